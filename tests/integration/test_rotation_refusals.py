"""The rotation function runs rotations of its own secrets and nothing else. Invoked for a secret
without rotation, as another function, or with a version that is not AWSPENDING, it refuses, as
Secrets Manager's rotation templates do: IAM keys, secret versions, rotation settings, ledger
records and leases stay exactly as they were, nothing is announced, and only reads were made."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import T0, Env, days, simulate_waits
from tokenwarden import wiring
from tokenwarden.domain.model import LedgerState
from tokenwarden.local import lambda_router
from tokenwarden.local.fake_context import FakeContext
from tokenwarden.local.stack import load_function
from tokenwarden.service.rotation import RotationAbandoned, RotationRefused, unqualified_function_arn

PRINCIPAL = "platform-eng"
READS = {
    "secretsmanager:DescribeSecret",
    "dynamodb:GetItem",
    "dynamodb:Query",
}


def rotation_function(env: Env, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The rotation function as Lambda loads it, configured for this world; its AWS calls are
    counted in `env.log` and its waits move the world's clock."""
    for name, value in env.settings_environment().items():
        monkeypatch.setenv(name, value)
    real_build_adapters, real_build_engine = wiring.build_adapters, wiring.build_engine

    def build_adapters(settings: Any, session: Any = None) -> Any:
        return real_build_adapters(settings, session or env.session)

    def build_engine(settings: Any, adapters: Any, clock: Any) -> Any:
        adapters.iam.sleep = env.wait
        return simulate_waits(real_build_engine(settings, adapters, clock), env.wait)

    monkeypatch.setattr(wiring, "build_adapters", build_adapters)
    monkeypatch.setattr(wiring, "build_engine", build_engine)
    return load_function("rotate_secret")


def invoke(
    env: Env, function: Any, step: str, secret: str, version: str, as_arn: str | None = None
) -> tuple[object, BaseException | None]:
    """One invocation as Secrets Manager makes it; (result, None) or (None, the error raised)."""
    context = FakeContext(
        function_name="tokenwarden-rotate-secret",
        invoked_function_arn=as_arn or str(env.settings.rotation_lambda_arn),
    )
    event = {"Step": step, "SecretId": secret, "ClientRequestToken": version}
    try:
        return function.lambda_handler(event, context), None
    except Exception as error:
        return None, error


def snapshot(env: Env) -> dict[str, Any]:
    """Everything an invocation could change: users, keys, versions, rotation settings, ledger."""
    iam = env.client("iam")
    sm = env.client("secretsmanager")
    users = sorted(u["UserName"] for u in iam.list_users(PathPrefix="/tokenwarden/")["Users"])
    keys = {
        p.id: sorted((c["ServiceSpecificCredentialId"], c["Status"]) for c in env.credentials(p.id))
        for p in env.registry.principals
    }
    secrets = {}
    for p in env.registry.principals:
        described = sm.describe_secret(SecretId=env.settings.naming.secret_name(p.id))
        secrets[p.id] = (
            described.get("VersionIdsToStages"),
            described.get("RotationEnabled"),
            described.get("RotationLambdaARN"),
            described.get("RotationRules"),
        )
    ledger = env.client("dynamodb").scan(TableName=env.settings.ledger_table)["Items"]
    return {"users": users, "keys": keys, "secrets": secrets, "ledger": sorted(map(repr, ledger))}


@pytest.fixture
def world(env: Env, monkeypatch: pytest.MonkeyPatch) -> tuple[Env, Any]:
    env.run()
    env.messages()
    return env, rotation_function(env, monkeypatch)


def refused(env: Env, function: Any, step: str, secret: str, version: str, as_arn: str | None = None) -> str:
    """Invoke; assert the refusal changed nothing, announced nothing and only read; its message."""
    before = snapshot(env)
    env.log.calls.clear()
    result, error = invoke(env, function, step, secret, version, as_arn)
    calls = list(env.log.calls)
    assert result is None and isinstance(error, RotationRefused), error
    assert set(calls) <= READS, calls
    assert snapshot(env) == before
    assert env.messages() == []
    return str(error)


def secret_of(env: Env) -> str:
    return env.settings.naming.secret_name(PRINCIPAL)


def pending_version(env: Env) -> str:
    """A version Secrets Manager would make before createSecret: empty, labelled AWSPENDING."""
    sm = env.client("secretsmanager")
    version = str(uuid.uuid4())
    sm.put_secret_value(
        SecretId=secret_of(env), ClientRequestToken=version, SecretString="x", VersionStages=["AWSPENDING"]
    )
    return version


@pytest.mark.parametrize("step", ["createSecret", "setSecret", "testSecret", "finishSecret"])
def test_a_secret_without_rotation_is_refused(world: tuple[Env, Any], step: str) -> None:
    env, function = world
    version = pending_version(env)
    env.client("secretsmanager").cancel_rotate_secret(SecretId=secret_of(env))

    message = refused(env, function, step, secret_of(env), version)

    assert "rotation is not enabled" in message and secret_of(env) in message


@pytest.mark.parametrize("step", ["createSecret", "testSecret", "finishSecret"])
def test_an_invocation_as_another_function_is_refused(world: tuple[Env, Any], step: str) -> None:
    env, function = world
    version = pending_version(env)
    other = "arn:aws:lambda:us-east-1:123456789012:function:someone-elses-rotation"

    message = refused(env, function, step, secret_of(env), version, as_arn=other)

    assert other in message and str(env.settings.rotation_lambda_arn) in message


def test_a_secret_rotated_by_another_function_is_refused(world: tuple[Env, Any]) -> None:
    env, function = world
    other = "arn:aws:lambda:us-east-1:123456789012:function:someone-elses-rotation"
    lambda_router.register(other, lambda event, context: None)
    sm = env.client("secretsmanager")
    sm.rotate_secret(
        SecretId=secret_of(env),
        RotationLambdaARN=other,
        RotationRules={"AutomaticallyAfterDays": 30},
        RotateImmediately=False,
    )
    env.settle()
    version = pending_version(env)

    message = refused(env, function, "createSecret", secret_of(env), version)

    assert f"rotated by {other}" in message


@pytest.mark.parametrize("step", ["createSecret", "setSecret", "testSecret", "finishSecret"])
def test_a_token_that_is_not_a_version_of_the_secret_is_refused(world: tuple[Env, Any], step: str) -> None:
    env, function = world
    stranger = str(uuid.uuid4())

    message = refused(env, function, step, secret_of(env), stranger)

    assert f"{stranger} is not a version of {secret_of(env)}" in message


def test_a_version_with_another_label_is_refused(world: tuple[Env, Any]) -> None:
    env, function = world
    env.run(T0 + days(80))  # one rotation: the first key's version is now AWSPREVIOUS
    env.messages()
    previous = next(v for v, s in env.secret_versions(PRINCIPAL).items() if "AWSPREVIOUS" in s)

    for step in ("createSecret", "testSecret", "finishSecret"):
        message = refused(env, function, step, secret_of(env), previous)
        assert "AWSPREVIOUS, not AWSPENDING" in message


def test_a_nonexistent_secret_is_refused(world: tuple[Env, Any]) -> None:
    env, function = world
    message = refused(env, function, "createSecret", "tokenwarden/nobody", str(uuid.uuid4()))
    assert "tokenwarden/nobody does not exist" in message


def test_the_current_version_has_nothing_left_to_do(world: tuple[Env, Any]) -> None:
    env, function = world
    current = next(v for v, s in env.secret_versions(PRINCIPAL).items() if "AWSCURRENT" in s)
    before = snapshot(env)

    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        result, error = invoke(env, function, step, secret_of(env), current)
        assert error is None and result == {"step": step, "version": current, "status": "done"}

    assert snapshot(env) == before
    assert env.messages() == []


def test_a_late_retry_of_an_abandoned_rotation_ends_quietly_and_changes_nothing(
    world: tuple[Env, Any],
) -> None:
    """The reconciler gave the rotation up (AWSPENDING removed, its record abandoned): Secrets
    Manager's retries of it end without a change, a failure count or an announcement."""
    env, function = world
    version = pending_version(env)
    sm = env.client("secretsmanager")
    sm.update_secret_version_stage(
        SecretId=secret_of(env), VersionStage="AWSPENDING", RemoveFromVersionId=version
    )
    ledger = env.reconciler.ledger
    from tokenwarden.domain.model import LedgerEntry

    ledger.save(
        LedgerEntry(
            principal=PRINCIPAL,
            version_id=version,
            state=LedgerState.ABANDONED,
            created_at=env.clock.now(),
            reason="abandoned by a newer run",
        )
    )
    before = snapshot(env)

    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        result, error = invoke(env, function, step, secret_of(env), version)
        assert result is None and isinstance(error, RotationAbandoned), error
        assert not isinstance(error, RotationRefused)

    assert snapshot(env) == before
    assert env.messages() == []


def test_an_invocation_through_an_alias_of_the_function_is_admitted(world: tuple[Env, Any]) -> None:
    """Lambda gives the invoked ARN with its qualifier; the check is on the function."""
    env, function = world
    current = next(v for v, s in env.secret_versions(PRINCIPAL).items() if "AWSCURRENT" in s)
    alias = f"{env.settings.rotation_lambda_arn}:live"

    result, error = invoke(env, function, "testSecret", secret_of(env), current, as_arn=alias)

    assert error is None and result is not None


def test_a_refusal_says_why_and_holds_no_token(world: tuple[Env, Any]) -> None:
    env, function = world
    version = pending_version(env)
    env.client("secretsmanager").cancel_rotate_secret(SecretId=secret_of(env))
    _, error = invoke(env, function, "testSecret", secret_of(env), version)
    assert error is not None and error.__cause__ is None and error.__context__ is None
    assert env.current_token(PRINCIPAL) not in str(error)


@pytest.mark.parametrize(
    ("arn", "function"),
    [
        (
            "arn:aws:lambda:eu-west-1:111122223333:function:rot",
            "arn:aws:lambda:eu-west-1:111122223333:function:rot",
        ),
        (
            "arn:aws:lambda:eu-west-1:111122223333:function:rot:7",
            "arn:aws:lambda:eu-west-1:111122223333:function:rot",
        ),
        (
            "arn:aws:lambda:eu-west-1:111122223333:function:rot:$LATEST",
            "arn:aws:lambda:eu-west-1:111122223333:function:rot",
        ),
        ("rot", "rot"),
    ],
)
def test_the_qualifier_is_what_is_ignored(arn: str, function: str) -> None:
    assert unqualified_function_arn(arn) == function


def test_the_embedded_stack_invokes_the_rotation_function_as_the_secrets_rotation_arn(env: Env) -> None:
    """Secrets Manager (moto, routed in-process) invokes the function as the secret's
    RotationLambdaARN, so the whole embedded world rotates: onboarding, then a rotation."""
    env.run()
    seen: list[str] = []
    original = lambda_router._lookup(str(env.settings.rotation_lambda_arn))
    assert original is not None

    def spy(event: dict[str, Any], context: Any) -> object:
        seen.append(context.invoked_function_arn)
        return original.handler(event, context)

    lambda_router.register(str(env.settings.rotation_lambda_arn), spy)
    before = env.current_token(PRINCIPAL)
    env.run(T0 + days(80))

    assert env.current_token(PRINCIPAL) != before
    configured = env.client("secretsmanager").describe_secret(SecretId=secret_of(env))["RotationLambdaARN"]
    assert seen and set(seen) == {configured}
