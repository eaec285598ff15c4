"""What the telemetry end-to-end tests share: the CLI run at a simulated moment against a registry,
the notifications drained from the stack's queue, a principal's current token, the next weekday.

The tests (health, rollback, snooze) run on an embedded stack with VictoriaMetrics, whose exports
`Telemetry.of` sets in the environment; each sends real OpenTelemetry exports with
`tokenwarden.local.laptop.send_session` and judges what `tokenwarden` says and sends."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from tokenwarden.cli.main import main
from tokenwarden.local import realism
from tokenwarden.local.clock import RemoteStackClock


def weekday(at: datetime) -> datetime:
    while at.weekday() >= 5:
        at += timedelta(days=1)
    return at


def run(*argv: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = main(list(argv))
    realism.wait_idle(60)  # the rotations Secrets Manager runs in the background, as the next night would
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def drain(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        for m in batch:
            attributes = {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}
            messages.append({**json.loads(m["Body"]), "_attributes": attributes})
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return messages


def token(principal: str) -> str:
    sm = boto3.client("secretsmanager")
    return str(
        sm.get_secret_value(SecretId=f"tokenwarden/{principal}", VersionStage="AWSCURRENT")["SecretString"]
    )


@dataclass(frozen=True)
class Telemetry:
    """One test's world on the stack: its registry, the OTLP endpoint, the notifications queue, the
    stack's clock and the first weekday morning after now (10:00, simulated)."""

    registry: Path
    endpoint: str
    queue: str
    clock: RemoteStackClock
    start: datetime
    capsys: pytest.CaptureFixture[str]

    @classmethod
    def of(
        cls,
        stack: dict[str, str],
        registry: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> Telemetry:
        for name, value in stack.items():
            monkeypatch.setenv(name, value)  # the autouse offline fixture clears some of them
        path = tmp_path / "teams.yaml"
        path.write_text(registry)
        clock = RemoteStackClock(stack["TOKENWARDEN_STACK_URL"])
        start = weekday(clock.now().replace(hour=10, minute=0) + timedelta(days=1))
        return cls(
            path,
            stack["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"],
            stack["TOKENWARDEN_NOTIFICATIONS_QUEUE_URL"],
            clock,
            start,
            capsys,
        )

    def at(self, moment: datetime | None, *argv: str) -> str:
        """`tokenwarden <argv>` against the registry, at `moment` (simulated) or now."""
        when = ("--at", moment.isoformat()) if moment is not None else ()
        return run(*argv, "--registry", str(self.registry), *when, capsys=self.capsys)
