"""Shared fixtures: moto plus the project's SSC extension, the real adapters, a simulated clock,
a real OTLP endpoint on loopback, and an `Env` that runs the reconciler and reads the world."""

from __future__ import annotations

import json
import socket
import threading
import time as _real_time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from tokenwarden.domain.registry import Registry
    from tokenwarden.local.clock import StackClock
    from tokenwarden.service.breakglass import BreakGlass
    from tokenwarden.service.reconciler import Reconciler
    from tokenwarden.settings import Settings
    from tokenwarden.wiring import Adapters

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2027, 1, 4, 2, 15, tzinfo=UTC)
SERVICE_ROLES = "arn:aws:iam::123456789012:role/tokenwarden/test/*"
OPERATORS = "arn:aws:iam::123456789012:role/platform-admin"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no real endpoints, whatever the developer's shell has."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "TOKENWARDEN_STACK_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")


class _SimulatedTime:
    """`time` as botocore's retry code sees it in the tests' process: its back-off sleeps and its
    client-side rate limiter move a simulated offset instead of waiting. Every retry still happens,
    in the same order, with the same decisions; only the waiting is simulated, as it is for the
    product's own waits in the embedded world."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.offset += max(seconds, 0.0)

    def time(self) -> float:
        return _real_time.time() + self.offset

    def __getattr__(self, name: str) -> Any:
        return getattr(_real_time, name)


@pytest.fixture(autouse=True)
def _simulated_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.endpoint
    import botocore.retries.bucket

    simulated = _SimulatedTime()
    monkeypatch.setattr(botocore.endpoint, "time", simulated)
    monkeypatch.setattr(botocore.retries.bucket, "time", simulated)


class Crash(BaseException):
    """A process dying between two AWS calls: nothing in the product may catch it."""


@dataclass
class CallLog:
    """Counts every AWS call made through the test session; can crash after the n-th."""

    calls: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    crash_after: int | None = None

    def after_call(self, model: Any, http_response: Any, parsed: Any, **_: Any) -> None:
        self.calls.append(f"{model.service_model.service_name}:{model.name}")
        code = (parsed or {}).get("Error", {}).get("Code") if isinstance(parsed, dict) else None
        if code:
            self.errors.append(f"{model.name}:{code}")
        # Only the process being killed dies: background rotations run on other threads (on AWS,
        # in other processes).
        if (
            self.crash_after is not None
            and len(self.calls) >= self.crash_after
            and threading.current_thread() is threading.main_thread()
        ):
            self.crash_after = None
            raise Crash(f"crash after call {len(self.calls)} ({self.calls[-1]})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Env:
    """One moto world with TokenWarden deployed in it."""

    session: boto3.session.Session
    settings: Settings
    clock: StackClock
    log: CallLog
    adapters: Adapters
    reconciler: Reconciler
    registry: Registry
    queue_url: str
    otlp_url: str
    glass: BreakGlass

    def run(self, at: datetime | None = None, registry: Any = None, settle: bool = True) -> Any:
        """One reconciler run; then (unless `settle` is False) the rotations it started in the
        background finish, as they would long before the next night."""
        now = self.clock.advance_to(at) if at else self.clock.now()
        report = self.reconciler.run(registry or self.registry, now)
        if settle:
            self.settle()
        return report

    def settings_environment(self) -> dict[str, str]:
        """The variables the template gives every function (and a CLI user exports), for this world."""
        s = self.settings
        return {
            "TOKENWARDEN_TOPIC_ARN": str(s.topic_arn),
            "TOKENWARDEN_ROTATION_LAMBDA_ARN": str(s.rotation_lambda_arn),
            "TOKENWARDEN_OTLP_ENDPOINT": str(s.otlp_endpoint),
            "TOKENWARDEN_SECRETS_KMS_KEY_ID": str(s.secrets_kms_key_id),
            "TOKENWARDEN_SERVICE_ROLE_ARN_PATTERN": str(s.service_role_arn_pattern),
            "TOKENWARDEN_OPERATOR_ARNS": s.operator_arns,
        }

    def use_handlers(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Set the variables the template gives every function (and the shipped registry) for this
        world, and make the engines the handlers build wait on its simulated clock."""
        from tokenwarden import wiring

        for name, value in {
            **self.settings_environment(),
            "TOKENWARDEN_REGISTRY_PATH": str(ROOT / "teams.yaml"),
        }.items():
            monkeypatch.setenv(name, value)
        real_build_engine = wiring.build_engine

        def build_engine(settings: Any, adapters: Any, clock: Any) -> Any:
            engine = real_build_engine(settings, adapters, clock)
            adapters.iam.sleep = self.wait
            return simulate_waits(engine, self.wait)

        monkeypatch.setattr(wiring, "build_engine", build_engine)

    def wait(self, seconds: float) -> None:
        """A wait of the product's: the world's time is simulated, so it moves the clock instead
        (and lets the background rotations, on real threads, move a little too)."""
        self.clock.advance(timedelta(seconds=seconds))
        _real_time.sleep(0.005)

    def settle(self, timeout: float = 60.0) -> None:
        from tokenwarden.local import realism

        if not realism.wait_idle(timeout):
            raise AssertionError(f"background rotations still running after {timeout} s")

    def client(self, name: str) -> Any:
        return self.session.client(name)

    def current_token(self, principal: str) -> str:
        sm = self.client("secretsmanager")
        secret = self.settings.naming.secret_name(principal)
        return str(sm.get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")["SecretString"])

    def credentials(self, principal: str) -> list[dict[str, Any]]:
        """The user's keys as IAM lists them, plus `_Expires`: when IAM really expires each one
        (its answers may leave ExpirationDate out)."""
        from moto.iam.models import iam_backends

        from tokenwarden.local import iam_ssc

        iam = self.client("iam")
        try:
            answer = iam.list_service_specific_credentials(
                UserName=self.settings.naming.user_name(principal), ServiceName="cloudwatch.amazonaws.com"
            )
        except ClientError:
            return []
        store = iam_ssc._existing_store(iam_backends["123456789012"]["global"])
        listed = list(answer["ServiceSpecificCredentials"])
        for cred in listed:
            known = store.credentials.get(cred["ServiceSpecificCredentialId"]) if store else None
            cred["_Expires"] = known.expiration_date if known else cred.get("ExpirationDate")
        return listed

    def secret_versions(self, principal: str) -> dict[str, list[str]]:
        sm = self.client("secretsmanager")
        answer = sm.describe_secret(SecretId=self.settings.naming.secret_name(principal))
        return dict(answer.get("VersionIdsToStages") or {})

    def messages(self) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            for m in batch:
                body = json.loads(m["Body"])
                body["_attributes"] = {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}
                out.append(body)
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
            if not batch:
                return out


def simulate_waits(engine: Any, wait: Any) -> Any:
    """The engine (and its leases) waiting with `wait`: on the world's simulated clock."""
    engine.sleep = wait
    if engine.leases is not None:
        engine.leases.sleep = wait
    return engine


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    with open_env(monkeypatch) as world:
        yield world


@contextmanager
def open_env(
    monkeypatch: pytest.MonkeyPatch, behaviour: Any = None, settings_overrides: dict[str, Any] | None = None
) -> Iterator[Env]:
    from moto import mock_aws

    from tokenwarden.adapters.ledger import create_table
    from tokenwarden.domain.registry import load_registry
    from tokenwarden.local import iam_ssc, lambda_router, realism
    from tokenwarden.local.clock import StackClock, set_default_clock
    from tokenwarden.local.stack import load_function, stack_http_handler
    from tokenwarden.settings import Settings
    from tokenwarden.wiring import build_adapters, build_breakglass, build_reconciler

    clock = StackClock(start=T0)
    set_default_clock(clock)

    def wait(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))
        _real_time.sleep(0.005)  # background rotations run on real threads: let them move too

    iam_ssc.install(clock)
    otlp = ThreadingHTTPServer(("127.0.0.1", 0), stack_http_handler(clock, None))
    threading.Thread(target=otlp.serve_forever, daemon=True).start()
    otlp_url = f"http://127.0.0.1:{otlp.server_address[1]}/v1/metrics"
    log = CallLog()
    try:
        with mock_aws(config={"iam": {"load_aws_managed_policies": True}}):
            # As harsh as AWS unless TOKENWARDEN_STACK_* says otherwise (see docs/embedded-stack.md).
            realism.install(behaviour or realism.StackBehaviour(), clock)
            setup = realism.setup_calls()
            setup.__enter__()
            session = boto3.session.Session(region_name="us-east-1")
            session._session.register("after-call", log.after_call)
            kms_key = session.client("kms").create_key()["KeyMetadata"]["Arn"]
            topic = session.client("sns").create_topic(Name="tokenwarden")["TopicArn"]
            sqs = session.client("sqs")
            queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            session.client("sns").subscribe(
                TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
            )
            create_table(session.client("dynamodb"), "tokenwarden-ledger")
            rotation_arn = "arn:aws:lambda:us-east-1:123456789012:function:tokenwarden-rotate-secret"
            # The secrets' own key, as the template makes it: every secret is made and verified
            # exactly as in a deployment (never under the AWS managed key).
            settings = Settings(
                **{
                    "region": "us-east-1",
                    "topic_arn": topic,
                    "rotation_lambda_arn": rotation_arn,
                    "secrets_kms_key_id": kms_key,
                    "service_role_arn_pattern": SERVICE_ROLES,
                    "operator_arns": OPERATORS,
                    "otlp_endpoint": otlp_url,
                    **(settings_overrides or {}),
                }
            )
            adapters = build_adapters(settings, session)
            # The composition root's own objects. The world's time is simulated: every wait of the
            # product moves the clock instead. The rotation function runs the reconciler's engine.
            reconciler = build_reconciler(settings, adapters, clock)
            glass = build_breakglass(settings, adapters, clock)
            adapters.iam.sleep = glass.sleep = wait
            for engine in (reconciler.engine, glass.engine):
                simulate_waits(engine, wait)
            rotate = load_function("rotate_secret")
            monkeypatch.setattr(rotate, "_engine", lambda: reconciler.engine)
            lambda_router.register(rotation_arn, rotate.lambda_handler)
            log.calls.clear()
            setup.__exit__(None, None, None)  # the world's own set-up is never faulted; the product is
            yield Env(
                session=session,
                settings=settings,
                clock=clock,
                log=log,
                adapters=adapters,
                reconciler=reconciler,
                registry=load_registry(ROOT / "teams.yaml"),
                queue_url=queue_url,
                otlp_url=otlp_url,
                glass=glass,
            )
    finally:
        realism.uninstall()
        lambda_router.unregister_all()
        set_default_clock(None)
        stopper = threading.Thread(target=otlp.shutdown, daemon=True)
        stopper.start()
        stopper.join(timeout=5)  # never hang a test run on a server thread that is stuck or gone
        otlp.server_close()


def check_invariants(env: Env, registry: Any = None) -> list[str]:
    """DESIGN §3 invariants 1 and 4 for every registered principal; returns the violations."""
    from tokenwarden.local import iam_ssc

    problems: list[str] = []
    registry = registry or env.registry
    for principal in registry.principals:
        p = principal.id
        try:
            token = env.current_token(p)
        except ClientError as exc:
            problems.append(f"{p}: no AWSCURRENT token ({exc.response['Error']['Code']})")
            continue
        verdict = iam_ssc.authenticate(token)
        if not verdict.accepted:
            problems.append(f"{p}: AWSCURRENT token is {verdict.reason}")
        creds = env.credentials(p)
        current = [c for c in creds if c["ServiceSpecificCredentialId"] == verdict.credential_id]
        if len(current) != 1 or current[0]["Status"] != "Active":
            problems.append(f"{p}: current key missing or not Active")
        elif current[0].get("ExpirationDate") is not None and current[0]["ExpirationDate"] <= env.clock.now():
            # IAM may leave ExpirationDate out (CloudWatch keys); its Status still turns Expired.
            problems.append(f"{p}: current key expired")
        versions = env.secret_versions(p)
        pending = [v for v, stages in versions.items() if "AWSPENDING" in stages]
        if pending and "AWSCURRENT" not in versions[pending[0]]:
            problems.append(f"{p}: AWSPENDING left on a non-current version")
    return problems


def days(n: float) -> timedelta:
    return timedelta(days=n)
