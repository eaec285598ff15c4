"""The world the demo's stories play in: the embedded stack, its clients, a reconciler on the stack's
clock, and the notifications the stack's topic delivers to its queue."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from tokenwarden.adapters.iam import IamAdapter
from tokenwarden.domain.outcomes import RunReport
from tokenwarden.domain.registry import Registry
from tokenwarden.local import realism
from tokenwarden.local.clock import StackClock
from tokenwarden.local.stack import LocalStack
from tokenwarden.service.reconciler import Reconciler
from tokenwarden.settings import Settings, load_settings
from tokenwarden.wiring import build_adapters, build_reconciler

# Secrets Manager rotates in the background; those rotations end long before the next night.
SETTLE_SECONDS = 120.0

Message = dict[str, Any]


def say(text: str = "") -> None:
    print(text, flush=True)


def event_type(message: Message) -> str:
    return str(message["metadata"]["eventType"])


def about(message: Message, principal: str) -> bool:
    """Whether a notification is about `principal`."""
    return bool(message["metadata"]["additionalContext"]["principal"] == principal)


def show(messages: list[Message], skip_summaries: bool = True) -> None:
    """Each notification as a person reads it: title, description, next steps."""
    for m in messages:
        if skip_summaries and event_type(m) == "run_summary":
            continue
        say(f"    {m['content']['title']}")
        say(f"      {m['content']['description']}")
        for step in m["content"].get("nextSteps", []):
            say(f"      -> {step}")


def tally(report: RunReport) -> tuple[dict[str, int], list[str]]:
    """A run's counts of what it did, and its failures."""
    failed = [f"{o.principal}: {o.error}" for o in report.failed]
    return {k: v for k, v in report.counts.items() if not k.startswith("principals_")}, failed


def counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))


@dataclass
class DemoWorld:
    registry: Registry
    settings: Settings
    stack: LocalStack
    session: Any
    reconciler: Reconciler
    queue: str
    endpoint: str

    @classmethod
    def open(cls, registry: Registry, stack: LocalStack, exports: dict[str, str]) -> DemoWorld:
        """The world on a started stack (whose exports are in the environment by now)."""
        import boto3

        settings = load_settings()
        reconciler = build_reconciler(settings, build_adapters(settings), stack.clock)
        world = cls(
            registry=registry,
            settings=settings,
            stack=stack,
            session=boto3.session.Session(region_name=exports["AWS_REGION"]),
            reconciler=reconciler,
            queue=exports["TOKENWARDEN_NOTIFICATIONS_QUEUE_URL"],
            endpoint=exports["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"],
        )
        world.simulate_waits()
        return world

    def simulate_waits(self) -> None:
        """The demo's runs wait as the stack's rotation function does: on the stack's simulated clock
        (IAM propagation, a new user becoming visible, a busy principal), not in real time."""

        def advance(seconds: float) -> None:
            self.stack.clock.advance(timedelta(seconds=max(0.0, seconds)))

        self.reconciler.engine.sleep = advance
        if isinstance(self.reconciler.iam, IamAdapter):
            self.reconciler.iam.sleep = advance
        if self.reconciler.leases is not None:
            self.reconciler.leases.sleep = advance

    @property
    def clock(self) -> StackClock:
        return self.stack.clock

    def next_night(self) -> datetime:
        """02:15 UTC of the stack's next day: when the nightly run is scheduled."""
        return self.clock.now().replace(hour=2, minute=15, second=0, microsecond=0) + timedelta(days=1)

    def nightly(self, at: datetime) -> tuple[dict[str, int], list[str]]:
        """The nightly run at `at`: its counts of what it did, and its failures."""
        report = self.reconciler.run(self.registry, self.clock.advance_to(at))
        realism.wait_idle(SETTLE_SECONDS)
        return tally(report)

    def nightly_via_state_machine(self, at: datetime) -> tuple[dict[str, int], list[str]]:
        """The nightly run at `at` as the schedule starts it: the stack's state machine, whose tasks
        the stack's reconcile function runs with the demo's registry; counted from its run report."""
        from tokenwarden.wiring import build_nightly_state_machine

        self.clock.advance_to(at)
        self.stack.deploy_registry(Path(self.registry.source))
        machine = build_nightly_state_machine(self.settings, self.session)
        output = machine.run({"allow_mass_revoke": False}, timeout_seconds=SETTLE_SECONDS)
        realism.wait_idle(SETTLE_SECONDS)
        return tally(RunReport.model_validate(output))

    def drain(self) -> list[Message]:
        """Every notification delivered since the last drain."""
        sqs = self.sqs
        messages: list[Message] = []
        while True:
            answer = sqs.receive_message(
                QueueUrl=self.queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            )
            batch = answer.get("Messages", [])
            messages += [json.loads(m["Body"]) for m in batch]
            if batch:
                sqs.delete_message_batch(
                    QueueUrl=self.queue,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                    ],
                )
            if len(batch) < 10:
                return messages

    @cached_property
    def secrets(self) -> Any:
        return self.session.client("secretsmanager")

    @cached_property
    def sqs(self) -> Any:
        return self.session.client("sqs")

    def token_of(self, principal: str) -> str:
        """The token a laptop reads today: the secret's AWSCURRENT value."""
        secret = self.settings.naming.secret_name(principal)
        return str(self.secrets.get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")["SecretString"])

    def send(self, token: str, team: str, user: str) -> bool:
        """One Claude Code session's metrics, exported as a laptop does; whether they were accepted."""
        from tokenwarden.local.laptop import send_session

        return bool(send_session(self.endpoint, token, team, user=user))
