"""The embedded stack's AWS behaviours (`tokenwarden.local.realism`): each switch does what it says,
can be turned off, and can be made worse.

The world here is moto (`mock_aws`, or a moto server where the point is server mode), the project's
IAM extension, a simulated clock and the stack's HTTP server on loopback, with `realism.install`
applied. Rotation functions are small recorders, not TokenWarden's: these tests judge the world, not
the product. Nothing waits on a timer: background rotations are awaited with `wait_idle`.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.responses import BaseResponse
from moto.secretsmanager.models import SecretsManagerBackend

from tokenwarden.local import iam_ssc, lambda_router, realism
from tokenwarden.local.async_rotation import PREVIOUS_ROTATION_MESSAGE, RotationKind, RotationOutcome
from tokenwarden.local.clock import StackClock, set_default_clock
from tokenwarden.local.faults import FAULTED_SERVICES, FaultInjector, HttpThrottle
from tokenwarden.local.realism import StackBehaviour
from tokenwarden.local.stack import simulate_waits, stack_http_handler

T0 = datetime(2027, 1, 4, 2, 15, tzinfo=UTC)
REGION = "us-east-1"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:harsh-world-rotation"
CLOUDWATCH = "cloudwatch.amazonaws.com"
SETTLE = 60.0  # generous: only ever waited out when something is broken
STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]
# For tests about something other than faults.
QUIET: dict[str, Any] = {"fault_rate": 0.0, "http_429_rate": 0.0}
NO_RETRIES = Config(retries={"total_max_attempts": 1})
# What botocore's retry logic (standard and adaptive modes; legacy retries these too) treats as
# throttling or as a transient server error.
RETRIED_CODES = {"Throttling", "ThrottlingException", "ProvisionedThroughputExceededException"}
RETRIED_STATUSES = {500, 502, 503, 504}

_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(autouse=True)
def _no_stack_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests say which behaviour they want; the shell's TOKENWARDEN_STACK_* must not choose."""
    for name in list(os.environ):
        if name.startswith(realism.ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


# -- the world ---------------------------------------------------------------------------------------


@dataclass
class World:
    clock: StackClock
    session: boto3.session.Session

    def client(self, name: str, config: Config | None = None) -> Any:
        return self.session.client(name, config=config)


@contextmanager
def harsh_world(**switches: Any) -> Iterator[World]:
    """mock_aws + the IAM extension + `realism.install(StackBehaviour(**switches))` on a stack clock."""
    clock = StackClock(start=T0)
    set_default_clock(clock)
    iam_ssc.install(clock)
    try:
        with mock_aws():
            try:
                realism.install(StackBehaviour(**switches), clock)
                yield World(clock=clock, session=boto3.session.Session(region_name=REGION))
            finally:
                realism.uninstall()  # background rotations end while moto is still mocked
                lambda_router.unregister_all()
    finally:
        set_default_clock(None)


@dataclass
class Recorder:
    """A rotation function that records each invocation; may wait on a gate and fail on demand."""

    fail: Callable[[str, int], bool] = lambda step, nth: False
    gate: threading.Event | None = None
    calls: list[dict[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, str]:
        if self.gate is not None:
            assert self.gate.wait(SETTLE), "the test never opened the gate"
        with self._lock:
            self.calls.append(dict(event))
            nth = sum(1 for c in self.calls if c["Step"] == event["Step"])
        if self.fail(event["Step"], nth):
            raise RuntimeError(f"{event['Step']} failed on purpose")
        return {}

    @property
    def steps(self) -> list[str]:
        with self._lock:
            return [c["Step"] for c in self.calls]


class WellBehaved(Recorder):
    """Recorder that also does what a rotation function must: stores the pending value, then moves
    AWSCURRENT to it and clears AWSPENDING in finishSecret."""

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, str]:
        answer = super().__call__(event, context)
        sm = boto3.client("secretsmanager", region_name=REGION)
        secret, token = event["SecretId"], event["ClientRequestToken"]
        if event["Step"] == "createSecret":
            sm.put_secret_value(
                SecretId=secret,
                ClientRequestToken=token,
                SecretString=f"v-{token}",
                VersionStages=["AWSPENDING"],
            )
        elif event["Step"] == "finishSecret":
            stages = sm.describe_secret(SecretId=secret)["VersionIdsToStages"]
            current = next(v for v, s in stages.items() if "AWSCURRENT" in s)
            sm.update_secret_version_stage(
                SecretId=secret, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=current
            )
            sm.update_secret_version_stage(
                SecretId=secret, VersionStage="AWSPENDING", RemoveFromVersionId=token
            )
        return answer


def versions(world: World, secret: str) -> dict[str, list[str]]:
    return dict(world.client("secretsmanager").describe_secret(SecretId=secret)["VersionIdsToStages"])


def new_secret(world: World, name: str = "tokenwarden/team-a") -> str:
    world.client("secretsmanager").create_secret(Name=name, SecretString="first")
    return name


def rotate(world: World, secret: str, **kwargs: Any) -> dict[str, Any]:
    answer: dict[str, Any] = world.client("secretsmanager").rotate_secret(
        SecretId=secret,
        RotationLambdaARN=FUNCTION_ARN,
        RotationRules={"AutomaticallyAfterDays": 30},
        **kwargs,
    )
    return answer


def settle() -> None:
    assert realism.wait_idle(SETTLE), "background rotations did not finish"


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


# -- switches and defaults ---------------------------------------------------------------------------


def test_defaults_are_harsh() -> None:
    behaviour = StackBehaviour()
    assert behaviour.gentle is False
    assert behaviour.async_rotation is True
    assert behaviour.rotation_attempts == 3
    assert behaviour.iam_propagation_seconds == 3.0
    assert behaviour.new_user_delay_seconds == 2.0
    assert behaviour.omit_expiration is True
    assert behaviour.fault_rate == 0.02
    assert behaviour.fault_seed == 7
    assert behaviour.http_429_rate == 0.05
    assert behaviour.effective() == behaviour
    summary = behaviour.summary()
    for word in (
        "async-rotation",
        "iam-propagation",
        "new-user-delay",
        "no-expiration-date",
        "faults",
        "http-429",
    ):
        assert word in summary
    assert " " not in summary  # printed unquoted after `export NAME=`


def test_gentle_turns_every_behaviour_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENWARDEN_STACK_GENTLE", "1")
    behaviour = StackBehaviour()
    live = behaviour.effective()
    assert behaviour.gentle
    assert not live.async_rotation
    assert live.iam_propagation_seconds == 0
    assert live.new_user_delay_seconds == 0
    assert not live.omit_expiration
    assert live.fault_rate == 0
    assert live.http_429_rate == 0
    assert behaviour.summary() == "gentle"


def test_each_switch_has_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENWARDEN_STACK_ASYNC_ROTATION", "0")
    monkeypatch.setenv("TOKENWARDEN_STACK_ROTATION_ATTEMPTS", "5")
    monkeypatch.setenv("TOKENWARDEN_STACK_IAM_PROPAGATION_SECONDS", "30")
    monkeypatch.setenv("TOKENWARDEN_STACK_OMIT_EXPIRATION", "false")
    monkeypatch.setenv("TOKENWARDEN_STACK_FAULT_RATE", "0.5")
    monkeypatch.setenv("TOKENWARDEN_STACK_HTTP_429_RATE", "0")
    behaviour = StackBehaviour()
    assert not behaviour.async_rotation
    assert behaviour.rotation_attempts == 5
    assert behaviour.iam_propagation_seconds == 30
    assert not behaviour.omit_expiration
    assert behaviour.fault_rate == 0.5
    assert behaviour.http_429_rate == 0
    monkeypatch.setenv("TOKENWARDEN_STACK_FAULT_RATE", "1.5")
    with pytest.raises(ValueError):
        StackBehaviour()


def test_gentle_install_leaves_moto_as_it_is() -> None:
    rotate_secret, call_action = SecretsManagerBackend.rotate_secret, BaseResponse.call_action
    with harsh_world(gentle=True):
        assert SecretsManagerBackend.rotate_secret is rotate_secret
        assert BaseResponse.call_action is call_action
        assert iam_ssc.consistency() == iam_ssc.Consistency()
        assert realism.injected_faults() == {}


# -- Secrets Manager: background rotation --------------------------------------------------------------


def test_rotate_secret_returns_before_the_rotation_function_runs() -> None:
    gate = threading.Event()
    recorder = Recorder(gate=gate)
    with harsh_world(**QUIET) as world:
        lambda_router.register(FUNCTION_ARN, recorder)
        secret = new_secret(world)
        answer = rotate(world, secret)
        token = answer["VersionId"]
        # Returned with the function not run yet: AWSPENDING sits on an empty version named by the token.
        assert recorder.calls == []
        assert versions(world, secret)[token] == ["AWSPENDING"]
        with pytest.raises(ClientError):
            world.client("secretsmanager").get_secret_value(SecretId=secret, VersionId=token)
        assert not realism.wait_idle(0)
        gate.set()
        settle()
        assert recorder.steps == STEPS
        arn = world.client("secretsmanager").describe_secret(SecretId=secret)["ARN"]
        assert {c["ClientRequestToken"] for c in recorder.calls} == {token}
        assert {c["SecretId"] for c in recorder.calls} == {arn}  # the ARN, as AWS sends it
        [record] = realism.rotation_records()
        assert (record.token, record.attempts, record.outcome) == (token, 1, RotationOutcome.SUCCEEDED)


def test_a_failing_step_reruns_the_whole_rotation_with_the_same_token() -> None:
    recorder = Recorder(fail=lambda step, nth: step == "testSecret" and nth == 1)
    with harsh_world(**QUIET) as world:
        lambda_router.register(FUNCTION_ARN, recorder)
        secret = new_secret(world)
        token = rotate(world, secret, ClientRequestToken="t" * 32)["VersionId"]
        settle()
        assert token == "t" * 32
        assert recorder.steps == STEPS[:3] + STEPS
        assert {c["ClientRequestToken"] for c in recorder.calls} == {token}
        [record] = realism.rotation_records()
        assert record.attempts == 2
        assert record.outcome is RotationOutcome.SUCCEEDED
        assert record.failures == ["attempt 1: testSecret: RotationHandlerFailed"]


@pytest.mark.parametrize("attempts", [3, 1])
def test_a_rotation_that_keeps_failing_leaves_awspending_and_blocks_the_next(attempts: int) -> None:
    recorder = Recorder(fail=lambda step, nth: step == "createSecret")
    with harsh_world(rotation_attempts=attempts, **QUIET) as world:
        lambda_router.register(FUNCTION_ARN, recorder)
        secret = new_secret(world)
        token = rotate(world, secret)["VersionId"]  # succeeds: the failure comes later
        settle()
        assert recorder.steps == ["createSecret"] * attempts
        [record] = realism.rotation_records()
        assert (record.attempts, record.outcome) == (attempts, RotationOutcome.FAILED)
        assert versions(world, secret)[token] == ["AWSPENDING"]
        with pytest.raises(ClientError) as refused:
            rotate(world, secret)
        assert error_code(refused) == "InvalidRequestException"
        assert refused.value.response["Error"]["Message"] == PREVIOUS_ROTATION_MESSAGE
        assert len(realism.rotation_records()) == 1


def test_retries_move_the_stack_clock_forward() -> None:
    recorder = Recorder(fail=lambda step, nth: step == "setSecret")
    with harsh_world(rotation_attempts=3, rotation_retry_clock_seconds=600, **QUIET) as world:
        lambda_router.register(FUNCTION_ARN, recorder)
        secret = new_secret(world)
        before = world.clock.now()
        rotate(world, secret)
        settle()
        assert world.clock.now() >= before + timedelta(seconds=2 * 600)


def test_a_successful_rotation_is_dated_on_the_stack_clock_and_its_token_is_not_reused() -> None:
    recorder = WellBehaved()
    with harsh_world(**QUIET) as world:
        lambda_router.register(FUNCTION_ARN, recorder)
        secret = new_secret(world)
        sm = world.client("secretsmanager")
        token = rotate(world, secret)["VersionId"]
        settle()
        assert versions(world, secret)[token] == ["AWSCURRENT"]
        assert sm.get_secret_value(SecretId=secret)["SecretString"] == f"v-{token}"
        described = sm.describe_secret(SecretId=secret)
        assert described["RotationEnabled"] is True
        assert described["LastRotatedDate"] >= T0
        # The same token again: that version exists, so nothing new starts.
        assert rotate(world, secret, ClientRequestToken=token)["VersionId"] == token
        settle()
        assert recorder.steps == STEPS
        assert len(realism.rotation_records()) == 1


def test_rotate_immediately_false_tests_on_a_pending_version_then_removes_it() -> None:
    gate = threading.Event()
    recorder = Recorder(gate=gate)
    with harsh_world(**QUIET) as world:
        lambda_router.register(FUNCTION_ARN, recorder)
        secret = new_secret(world)
        before = versions(world, secret)
        token = rotate(world, secret, RotateImmediately=False)["VersionId"]
        assert versions(world, secret)[token] == ["AWSPENDING"]
        gate.set()
        settle()
        assert recorder.steps == ["testSecret"]
        assert recorder.calls[0]["ClientRequestToken"] == token
        assert versions(world, secret) == before
        described = world.client("secretsmanager").describe_secret(SecretId=secret)
        assert described["RotationEnabled"] is True
        assert described["RotationLambdaARN"] == FUNCTION_ARN
        [record] = realism.rotation_records()
        assert (record.kind, record.outcome) == (RotationKind.CONFIGURATION_TEST, RotationOutcome.SUCCEEDED)


def test_rotate_secret_checks_the_secret_and_the_function_first() -> None:
    with harsh_world(**QUIET) as world:
        lambda_router.register(FUNCTION_ARN, Recorder())
        sm = world.client("secretsmanager")
        with pytest.raises(ClientError) as missing:
            rotate(world, "no-such-secret")
        assert error_code(missing) == "ResourceNotFoundException"
        secret = new_secret(world)
        with pytest.raises(ClientError) as no_function:
            sm.rotate_secret(SecretId=secret, RotationLambdaARN=FUNCTION_ARN + "-gone")
        assert error_code(no_function) == "ResourceNotFoundException"
        sm.delete_secret(SecretId=secret, RecoveryWindowInDays=7)
        with pytest.raises(ClientError) as deleted:
            rotate(world, secret)
        assert error_code(deleted) == "InvalidRequestException"
        assert realism.rotation_records() == []


def test_without_async_rotation_the_steps_run_inside_the_call() -> None:
    recorder = Recorder()
    with harsh_world(async_rotation=False, **QUIET) as world:
        lambda_router.register(FUNCTION_ARN, recorder)
        rotate(world, new_secret(world))
        assert recorder.steps == STEPS
        assert realism.rotation_records() == []
        assert realism.wait_idle(0)


def test_uninstall_cancels_waiting_rotations_and_gives_moto_back() -> None:
    rotate_secret, call_action = SecretsManagerBackend.rotate_secret, BaseResponse.call_action
    recorder = Recorder()
    with harsh_world(rotation_delay_seconds=3600, fault_rate=1.0) as world:
        lambda_router.register(FUNCTION_ARN, recorder)
        with realism.setup_calls():
            rotate(world, new_secret(world))
        assert SecretsManagerBackend.rotate_secret is not rotate_secret
        assert BaseResponse.call_action is not call_action
        realism.uninstall()
        assert recorder.calls == []
        assert not [t for t in threading.enumerate() if t.name.startswith("secretsmanager-rotation")]
        assert SecretsManagerBackend.rotate_secret is rotate_secret
        assert BaseResponse.call_action is call_action
        assert iam_ssc.consistency() == iam_ssc.Consistency()
        assert realism.behaviour() is None


# -- IAM: eventual consistency and keys without ExpirationDate --------------------------------------


def test_a_new_user_is_not_found_for_a_while() -> None:
    with harsh_world(**QUIET) as world:
        iam = world.client("iam")
        iam.create_user(UserName="tw-new")
        with pytest.raises(ClientError) as early:
            iam.create_service_specific_credential(
                UserName="tw-new", ServiceName=CLOUDWATCH, CredentialAgeDays=90
            )
        assert error_code(early) == "NoSuchEntity"
        world.clock.advance(timedelta(seconds=2))
        created = iam.create_service_specific_credential(
            UserName="tw-new", ServiceName=CLOUDWATCH, CredentialAgeDays=90
        )
        assert created["ServiceSpecificCredential"]["Status"] == "Active"


@pytest.mark.parametrize(("delay", "wait", "visible"), [(30.0, 2, False), (0.0, 0, True)])
def test_the_new_user_delay_can_be_longer_or_off(delay: float, wait: int, visible: bool) -> None:
    with harsh_world(new_user_delay_seconds=delay, **QUIET) as world:
        iam = world.client("iam")
        iam.create_user(UserName="tw-new")
        world.clock.advance(timedelta(seconds=wait))
        try:
            iam.create_service_specific_credential(
                UserName="tw-new", ServiceName=CLOUDWATCH, CredentialAgeDays=9
            )
        except ClientError as exc:
            assert not visible and exc.response["Error"]["Code"] == "NoSuchEntity"
        else:
            assert visible


@contextmanager
def stack_server(clock: StackClock, promql: str | None = None) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), stack_http_handler(clock, None, promql))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        stopper.join(timeout=5)
        server.server_close()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> Answer:
    request = urllib.request.Request(
        url, data=data, headers=headers or {}, method="GET" if data is None else "POST"
    )
    try:
        with _LOOPBACK.open(request, timeout=SETTLE) as answer:
            return Answer(answer.status, dict(answer.headers), answer.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, dict(exc.headers), exc.read())


def probe(base: str, token: str) -> int:
    body = json.dumps({"resourceMetrics": []}).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return http(f"{base}/v1/metrics", body, headers).status


def new_key(
    world: World, user: str = "tw-team-a", service: str = CLOUDWATCH, days: int = 90
) -> dict[str, Any]:
    iam = world.client("iam")
    iam.create_user(UserName=user)
    world.clock.advance(timedelta(minutes=1))  # past the new-user delay
    credential: dict[str, Any] = iam.create_service_specific_credential(
        UserName=user, ServiceName=service, CredentialAgeDays=days
    )["ServiceSpecificCredential"]
    return credential


def test_a_new_key_is_refused_until_iam_propagates_it() -> None:
    with harsh_world(**QUIET) as world, stack_server(world.clock) as base:
        key = new_key(world)
        token = key["ServiceCredentialSecret"]
        assert iam_ssc.authenticate(token).outcome is iam_ssc.AuthOutcome.PROPAGATING
        assert probe(base, token) == 401
        world.clock.advance(timedelta(seconds=3))
        assert probe(base, token) == 200
        # A reset secret is new to the service too.
        reset = world.client("iam").reset_service_specific_credential(
            ServiceSpecificCredentialId=key["ServiceSpecificCredentialId"]
        )["ServiceSpecificCredential"]["ServiceCredentialSecret"]
        assert probe(base, reset) == 401
        assert probe(base, token) == 401  # the old secret stopped at once
        world.clock.advance(timedelta(seconds=3))
        assert probe(base, reset) == 200


@pytest.mark.parametrize(("propagation", "accepted_after"), [(0.0, 0), (120.0, 119)])
def test_propagation_can_be_off_or_slower(propagation: float, accepted_after: int) -> None:
    with (
        harsh_world(iam_propagation_seconds=propagation, **QUIET) as world,
        stack_server(world.clock) as base,
    ):
        token = new_key(world)["ServiceCredentialSecret"]
        world.clock.advance(timedelta(seconds=accepted_after))
        assert probe(base, token) == (200 if propagation == 0 else 401)


def test_cloudwatch_keys_come_without_expiration_date_but_still_expire() -> None:
    with harsh_world(**QUIET) as world, stack_server(world.clock) as base:
        iam = world.client("iam")
        key = new_key(world, days=1)
        token = key["ServiceCredentialSecret"]
        assert "ExpirationDate" not in key
        [listed] = iam.list_service_specific_credentials(UserName="tw-team-a")["ServiceSpecificCredentials"]
        assert "ExpirationDate" not in listed
        bedrock = iam.create_service_specific_credential(
            UserName="tw-team-a", ServiceName="bedrock.amazonaws.com", CredentialAgeDays=1
        )["ServiceSpecificCredential"]
        assert "ExpirationDate" in bedrock  # documented for Bedrock keys
        world.clock.advance(timedelta(days=2))
        listed = iam.list_service_specific_credentials(UserName="tw-team-a", ServiceName=CLOUDWATCH)[
            "ServiceSpecificCredentials"
        ][0]
        assert listed["Status"] == "Expired"
        assert iam_ssc.authenticate(token).outcome is iam_ssc.AuthOutcome.EXPIRED
        assert probe(base, token) == 403


def test_expiration_date_is_back_when_the_switch_is_off() -> None:
    with harsh_world(omit_expiration=False, **QUIET) as world:
        key = new_key(world, days=1)
        assert key["ExpirationDate"] == key["CreateDate"] + timedelta(days=1)
        [listed] = world.client("iam").list_service_specific_credentials(UserName="tw-team-a")[
            "ServiceSpecificCredentials"
        ]
        assert listed["ExpirationDate"] == key["ExpirationDate"]


# -- throttling and server errors --------------------------------------------------------------------


def assert_retryable(exc: ClientError) -> None:
    status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
    assert exc.response["Error"]["Code"] in RETRIED_CODES or status in RETRIED_STATUSES, exc.response


def test_faults_are_retryable_and_come_before_the_action_runs() -> None:
    with harsh_world(fault_rate=1.0, http_429_rate=0.0) as world:
        attempts: list[Callable[[], Any]] = [
            lambda: world.client("iam", NO_RETRIES).create_user(UserName="tw-never"),
            lambda: world.client("secretsmanager", NO_RETRIES).create_secret(Name="never", SecretString="x"),
            lambda: world.client("sns", NO_RETRIES).create_topic(Name="never"),
            lambda: world.client("dynamodb", NO_RETRIES).list_tables(),
        ]
        for attempt in attempts:
            with pytest.raises(ClientError) as faulted:
                attempt()
            assert_retryable(faulted.value)
        assert realism.injected_faults() == dict.fromkeys(sorted(FAULTED_SERVICES), 1)
        # STS, SQS and KMS are never faulted.
        world.client("sts", NO_RETRIES).get_caller_identity()
        world.client("sqs", NO_RETRIES).list_queues()
        world.client("kms", NO_RETRIES).list_keys()
        # Nothing the faulted calls asked for happened.
        with realism.setup_calls():
            with pytest.raises(ClientError) as absent:
                world.client("iam").get_user(UserName="tw-never")
            assert error_code(absent) == "NoSuchEntity"
            assert world.client("secretsmanager").list_secrets()["SecretList"] == []
            assert world.client("sns").list_topics()["Topics"] == []
        assert realism.injected_faults()["iam"] == 1


def test_sdk_retries_carry_calls_through_faults() -> None:
    retrying = Config(retries={"mode": "standard", "max_attempts": 10})
    with harsh_world(fault_rate=0.25, http_429_rate=0.0, fault_seed=3) as world:
        iam = world.client("iam", retrying)
        for n in range(12):
            iam.create_user(UserName=f"tw-{n}")
        faulted = realism.injected_faults()["iam"]
        with realism.setup_calls():
            assert len(iam.list_users()["Users"]) == 12
    assert faulted > 0


def test_the_fault_plan_is_seeded() -> None:
    def plan(seed: int, rate: float = 0.3) -> list[str | None]:
        injector = FaultInjector(rate, seed)
        return [f.code if (f := injector.draw("iam")) else None for _ in range(300)]

    assert plan(7) == plan(7)
    assert plan(7) != plan(8)
    default = FaultInjector(StackBehaviour().fault_rate, 7)
    faults = sum(1 for _ in range(2000) if default.draw("secretsmanager"))
    assert 10 <= faults <= 100  # about 2% of 2000
    assert default.counts()["secretsmanager"] == faults
    assert FaultInjector(1.0, 7).draw("sts") is None


def test_faults_reach_a_moto_server_but_never_its_own_api() -> None:
    from moto.server import ThreadedMotoServer

    clock = StackClock(start=T0)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        realism.install(StackBehaviour(fault_rate=1.0, http_429_rate=0.0), clock)

        def client(name: str) -> Any:
            return boto3.client(name, region_name=REGION, endpoint_url=endpoint, config=NO_RETRIES)

        calls: list[Callable[[], Any]] = [
            lambda: client("iam").list_users(),
            lambda: client("secretsmanager").list_secrets(),
            lambda: client("dynamodb").list_tables(),
            lambda: client("sns").list_topics(),
        ]
        for call in calls:
            with pytest.raises(ClientError) as faulted:
                call()
            assert_retryable(faulted.value)
        assert http(f"{endpoint}/moto-api/reset", b"").status == 200
        client("sts").get_caller_identity()
        assert realism.injected_faults() == dict.fromkeys(sorted(FAULTED_SERVICES), 1)
    finally:
        realism.uninstall()
        server.stop()


# -- 429s from the stack's own endpoints -------------------------------------------------------------


class _Upstream(BaseHTTPRequestHandler):
    """A stand-in PromQL engine: echoes what it was asked."""

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _answer(self, body: bytes) -> None:
        if not self.path.startswith("/api/v1/query"):
            self.send_error(404)
            return
        data = json.dumps(
            {"status": "success", "data": {"method": self.command, "path": self.path, "body": body.decode()}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))


@contextmanager
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_otlp_endpoint_answers_429_with_retry_after() -> None:
    with harsh_world(fault_rate=0.0, http_429_rate=1.0) as world, stack_server(world.clock) as base:
        answer = http(f"{base}/v1/metrics", b"{}", {"Content-Type": "application/json"})
        assert answer.status == 429
        assert answer.headers["Retry-After"] == "1"
        assert realism.injected_faults()["otlp"] == 1
    with harsh_world(**QUIET) as world, stack_server(world.clock) as base:
        assert http(f"{base}/v1/metrics", b"{}", {"Content-Type": "application/json"}).status == 401


def test_the_promql_path_forwards_queries_and_throttles_some() -> None:
    with upstream() as engine:
        with harsh_world(**QUIET) as world, stack_server(world.clock, engine) as base:
            got = http(f"{base}/promql/api/v1/query?query=up").json()
            assert got["data"]["method"] == "GET"
            assert got["data"]["path"] == "/api/v1/query?query=up"
            form = {"Content-Type": "application/x-www-form-urlencoded"}
            posted = http(f"{base}/promql/api/v1/query_range", b"query=up&step=60", form).json()
            assert posted["data"]["method"] == "POST"
            assert posted["data"]["body"] == "query=up&step=60"
            assert http(f"{base}/promql/api/v1/labels").status == 404
        with (
            harsh_world(fault_rate=0.0, http_429_rate=1.0) as world,
            stack_server(world.clock, engine) as base,
        ):
            answer = http(f"{base}/promql/api/v1/query", b"query=up", form)
            assert answer.status == 429
            assert "Retry-After" in answer.headers
            assert answer.json()["status"] == "error"
            assert realism.injected_faults()["promql"] == 1


def test_the_default_429_share_is_seeded() -> None:
    def plan(seed: int) -> list[bool]:
        throttle = HttpThrottle(StackBehaviour().http_429_rate, seed)
        return [throttle.throttle("otlp") for _ in range(1000)]

    assert plan(7) == plan(7)
    assert 20 <= sum(plan(7)) <= 90  # about 5% of 1000


# -- the stack's control endpoints and wiring --------------------------------------------------------


def test_settle_and_the_read_endpoints_report_the_background() -> None:
    gate = threading.Event()
    with harsh_world(**QUIET) as world, stack_server(world.clock) as base:
        lambda_router.register(FUNCTION_ARN, Recorder(gate=gate))
        token = rotate(world, new_secret(world))["VersionId"]
        assert http(f"{base}/_tokenwarden/settle", json.dumps({"timeout": 0}).encode()).json() == {
            "idle": False
        }
        gate.set()
        assert http(f"{base}/_tokenwarden/settle", json.dumps({"timeout": SETTLE}).encode()).json() == {
            "idle": True
        }
        [record] = http(f"{base}/_tokenwarden/rotations").json()
        assert record["token"] == token
        assert record["outcome"] == "succeeded"
        assert record["kind"] == "rotation"
        described = http(f"{base}/_tokenwarden/behaviour").json()
        assert described["async_rotation"] is True
        assert described["gentle"] is False
        assert http(f"{base}/_tokenwarden/faults").json() == {}  # no faults switched on here
        assert http(f"{base}/_tokenwarden/settle", b"not json").status == 400


def test_the_rotation_function_waits_on_the_stack_clock() -> None:
    clock = StackClock(start=T0)
    engine = SimpleNamespace(sleep=lambda seconds: pytest.fail("slept for real"))
    rotate = SimpleNamespace(_engine=lambda: engine)
    simulate_waits(rotate, clock)  # type: ignore[arg-type]  # a stand-in for the loaded module
    assert rotate._engine() is engine
    before = clock.now()
    rotate._engine().sleep(90)
    assert clock.now() >= before + timedelta(seconds=90)


def test_get_secret_value_without_a_stage_reads_awscurrent_after_a_label_move() -> None:
    """The seed's recipe asks for no stage: AWS answers AWSCURRENT, wherever the label moved."""
    from tokenwarden.local import secrets_labels

    secrets_labels.install()
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        sm.create_secret(Name="tokenwarden/recipe", SecretString="first")
        old = sm.describe_secret(SecretId="tokenwarden/recipe")["VersionIdsToStages"]
        (old_version,) = old
        sm.put_secret_value(
            SecretId="tokenwarden/recipe",
            ClientRequestToken="v2" * 16,
            SecretString="second",
            VersionStages=["AWSPENDING"],
        )
        assert sm.get_secret_value(SecretId="tokenwarden/recipe")["SecretString"] == "first"
        sm.update_secret_version_stage(
            SecretId="tokenwarden/recipe",
            VersionStage="AWSCURRENT",
            MoveToVersionId="v2" * 16,
            RemoveFromVersionId=old_version,
        )
        assert sm.get_secret_value(SecretId="tokenwarden/recipe")["SecretString"] == "second"

        # A secret none of whose versions is current yet (the background rotation put its empty
        # AWSPENDING version first): AWS attaches the label; moto alone fails with an IndexError.
        from moto.secretsmanager.models import secretsmanager_backends

        sm.create_secret(Name="tokenwarden/empty")
        sm.put_secret_value(
            SecretId="tokenwarden/empty",
            ClientRequestToken="v3" * 16,
            SecretString="third",
            VersionStages=["AWSPENDING"],
        )
        version = (
            secretsmanager_backends["123456789012"]["us-east-1"]
            .secrets["tokenwarden/empty"]
            .versions["v3" * 16]
        )
        version["version_stages"] = ["AWSPENDING"]
        sm.update_secret_version_stage(
            SecretId="tokenwarden/empty", VersionStage="AWSCURRENT", MoveToVersionId="v3" * 16
        )
        assert sm.get_secret_value(SecretId="tokenwarden/empty")["SecretString"] == "third"


def test_the_local_stack_installs_its_behaviour_and_says_so() -> None:
    from tokenwarden.local.stack import LocalStack

    saved = dict(os.environ)
    stack = LocalStack(victoriametrics=False, behaviour=StackBehaviour(iam_propagation_seconds=7, **QUIET))
    try:
        exports = stack.start()
        assert exports["TOKENWARDEN_STACK_BEHAVIOUR"] == stack.behaviour.summary()
        assert "iam-propagation:7s" in exports["TOKENWARDEN_STACK_BEHAVIOUR"]
        assert iam_ssc.consistency().key_propagation_seconds == 7
        # testSecret keeps the product's default attempts: the stack's waits cost no real time.
        assert "TOKENWARDEN_PROBE_ATTEMPTS" not in exports
        assert realism.behaviour() == stack.behaviour
        described = http(exports["TOKENWARDEN_STACK_URL"] + "/_tokenwarden/behaviour").json()
        assert described["iam_propagation_seconds"] == 7
    finally:
        stack.stop()
        set_default_clock(None)
        os.environ.clear()
        os.environ.update(saved)
    assert realism.behaviour() is None
    assert iam_ssc.consistency() == iam_ssc.Consistency()


def test_the_demos_client_back_off_moves_the_stack_clock_and_is_restored() -> None:
    import botocore.endpoint

    clock = StackClock(start=datetime(2027, 1, 1, tzinfo=UTC))
    real = botocore.endpoint.time
    with realism.simulated_client_waits(clock):
        before = clock.now()
        botocore.endpoint.time.sleep(30)
        assert clock.now() >= before + timedelta(seconds=30)
        assert botocore.endpoint.time.time() > 0  # everything else is the real module
    assert botocore.endpoint.time is real
