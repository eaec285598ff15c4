"""Bad input against a deployed world: malformed Lambda events and bad CLI invocations each fail
with an error that names the field, before a single AWS call, and the moto world is exactly as it was."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from tests.conftest import ROOT, Env, open_env
from tokenwarden.local.fake_context import FakeContext
from tokenwarden.local.stack import load_function

UUID = "3f1d2a6e-0c3b-4f7e-9a59-2d7c1e8b4a10"
SCHEDULER_ENVELOPE = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.scheduler",
    "detail": {},
}


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every AWS call any client makes from here on (the handlers build their own sessions)."""
    from botocore.client import BaseClient

    calls: list[str] = []
    original = BaseClient._make_api_call

    def record(self: Any, operation: str, params: Any) -> Any:
        calls.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    yield calls


@pytest.fixture(scope="module")
def onboarded() -> Iterator[Env]:
    """One world for the module (bad events change nothing, so they can share it): the shipped
    registry onboarded, the handlers configured for this world, the inbox drained."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "TOKENWARDEN_STACK_URL"):
            mp.delenv(name, raising=False)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }.items():
            mp.setenv(name, value)
        with open_env(mp) as env:
            for name, value in {
                **env.settings_environment(),
                "TOKENWARDEN_REGISTRY_PATH": str(ROOT / "teams.yaml"),
                "TOKENWARDEN_PROBE_ATTEMPTS": "1",
                "TOKENWARDEN_PROMQL_URL": "http://127.0.0.1:9/unused",
                "TOKENWARDEN_PROMQL_DIALECT": "prometheus",
            }.items():
                mp.setenv(name, str(value))
            env.run()
            env.messages()
            yield env


def snapshot(env: Env) -> dict[str, Any]:
    """What a bad input must not change: keys, users, secret versions, ledger records."""
    iam = env.client("iam")
    users = sorted(u["UserName"] for u in iam.list_users(PathPrefix="/tokenwarden/")["Users"])
    keys = {
        p.id: sorted((c["ServiceSpecificCredentialId"], c["Status"]) for c in env.credentials(p.id))
        for p in env.registry.principals
    }
    versions = {p.id: env.secret_versions(p.id) for p in env.registry.principals}
    ledger = env.client("dynamodb").scan(TableName=env.settings.ledger_table)["Items"]
    return {"users": users, "keys": keys, "versions": versions, "ledger": sorted(map(repr, ledger))}


def refuses(
    env: Env, calls: list[str], function: str, event: object, fields: tuple[str, ...]
) -> ValidationError | ValueError:
    handler = load_function(function)
    before = snapshot(env)
    calls.clear()
    with pytest.raises(ValueError) as info:
        handler.lambda_handler(event, FakeContext())
    made = list(calls)
    assert made == [], f"{function} made AWS calls on a bad event: {made}"
    assert snapshot(env) == before
    assert env.messages() == []
    error = info.value
    if isinstance(error, ValidationError):
        named = {str(part) for e in error.errors() for part in e["loc"]}
        for field in fields:
            assert field in named, f"{field!r} not named by {error}"
    else:
        for field in fields:
            assert field in str(error)
    assert "Traceback" not in str(error)
    return error


NOT_A_MAPPING: list[object] = [[], [{"mode": "apply"}], "apply", 0, False, ""]


@pytest.mark.parametrize("event", NOT_A_MAPPING, ids=repr)
@pytest.mark.parametrize("function", ["reconcile", "health", "revoke", "restore", "rotate_secret"])
def test_an_event_that_is_not_an_object_is_refused(
    onboarded: Env, aws_calls: list[str], function: str, event: object
) -> None:
    error = refuses(onboarded, aws_calls, function, event, ())
    assert isinstance(error, ValidationError)
    assert any(e["type"] in ("model_type", "dict_type") for e in error.errors()), error


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        ({"mode": "APPLY"}, ("mode",)),
        ({"mode": None}, ("mode",)),
        ({"mode": ["apply"]}, ("mode",)),
        ({"mode": "apply", "allow_mass_revoke": "yes"}, ("allow_mass_revoke",)),
        ({"mode": "apply", "allow_mass_revoke": "false"}, ("allow_mass_revoke",)),
        ({"allow_mass_revoke": 1}, ("allow_mass_revoke",)),
        ({"mode": "apply", "surprise": True}, ("surprise",)),
        ({"Mode": "apply"}, ("Mode",)),
        (SCHEDULER_ENVELOPE, ("detail-type", "source")),
        # The state machine's per-principal step: a registry id and the plan's run id, nothing else.
        ({"mode": "principal", "run_id": "ab12", "principal": "alpha\r\nforged: line"}, ("principal",)),
        ({"mode": "principal", "run_id": "ab12", "principal": "x" * 10_000}, ("principal",)),
        ({"mode": "principal", "run_id": "'; DROP", "principal": "alpha"}, ("run_id",)),
        ({"mode": "principal", "run_id": "a" * 65, "principal": "alpha"}, ("run_id",)),
    ],
    ids=repr,
)
def test_reconcile_refuses_a_malformed_input(
    onboarded: Env, aws_calls: list[str], event: dict[str, Any], fields: tuple[str, ...]
) -> None:
    refuses(onboarded, aws_calls, "reconcile", event, fields)


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        ({"mode": "apply"}, ("mode",)),
        ({"mode": 1}, ("mode",)),
        ({"mode": "check", "teams": ["mobile"]}, ("teams",)),
        (SCHEDULER_ENVELOPE, ("detail-type",)),
    ],
    ids=repr,
)
def test_health_refuses_a_malformed_input(
    onboarded: Env, aws_calls: list[str], event: dict[str, Any], fields: tuple[str, ...]
) -> None:
    refuses(onboarded, aws_calls, "health", event, fields)


REVOKE = {
    "action": "revoke",
    "principal": "platform-eng",
    "reason": "leaked",
    "requested_by": "alice@example.com",
}


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        ({}, ("principal", "requested_by", "reason")),
        ({k: v for k, v in REVOKE.items() if k != "reason"}, ("reason",)),
        ({**REVOKE, "reason": "   "}, ("reason",)),
        ({**REVOKE, "reason": "line one\nline two"}, ("reason",)),
        ({**REVOKE, "reason": "x" * 501}, ("reason",)),
        ({**REVOKE, "reissue": "true"}, ("reissue",)),
        ({**REVOKE, "reissue": 1}, ("reissue",)),
        ({**REVOKE, "principal": 42}, ("principal",)),
        ({**REVOKE, "principal": ["platform-eng"]}, ("principal",)),
        ({**REVOKE, "principal": "Platform-Eng"}, ("principal",)),
        ({**REVOKE, "principal": "../platform-eng"}, ("principal",)),
        ({**REVOKE, "principal": ""}, ("principal",)),
        ({**REVOKE, "requested_by": ""}, ("requested_by",)),
        ({**REVOKE, "requested_by": None}, ("requested_by",)),
        ({**REVOKE, "action": "delete"}, ("action",)),
        ({**REVOKE, "force": True}, ("force",)),
        # The revoke function only revokes: a restore goes to the restore function.
        ({**REVOKE, "action": "restore"}, ("action",)),
    ],
    ids=repr,
)
def test_revoke_refuses_a_malformed_input(
    onboarded: Env, aws_calls: list[str], event: dict[str, Any], fields: tuple[str, ...]
) -> None:
    refuses(onboarded, aws_calls, "revoke", event, fields)


def test_revoke_of_a_principal_not_in_the_registry_is_a_typed_error(
    onboarded: Env, aws_calls: list[str]
) -> None:
    from tokenwarden.domain.registry import RegistryError

    error = refuses(onboarded, aws_calls, "revoke", {**REVOKE, "principal": "nobody"}, ("nobody",))
    assert isinstance(error, RegistryError)


def test_revoke_with_a_broken_registry_names_the_file(
    onboarded: Env, aws_calls: list[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenwarden.domain.registry import RegistryError

    broken = tmp_path / "teams.yaml"
    broken.write_text("principals: [{id: platform-eng, colour: red}]\n", encoding="utf-8")
    monkeypatch.setenv("TOKENWARDEN_REGISTRY_PATH", str(broken))
    error = refuses(onboarded, aws_calls, "revoke", REVOKE, (str(broken), "colour"))
    assert isinstance(error, RegistryError)


ROTATION = {"Step": "createSecret", "SecretId": "tokenwarden/platform-eng", "ClientRequestToken": UUID}


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        ({}, ("Step", "SecretId", "ClientRequestToken")),
        ({**ROTATION, "Step": "rotate"}, ("Step",)),
        ({**ROTATION, "Step": "createsecret"}, ("Step",)),
        ({**ROTATION, "Step": None}, ("Step",)),
        ({**ROTATION, "SecretId": 5}, ("SecretId",)),
        ({**ROTATION, "SecretId": ""}, ("SecretId",)),
        ({**ROTATION, "SecretId": "tokenwarden/platform eng"}, ("SecretId",)),
        ({**ROTATION, "ClientRequestToken": "abc"}, ("ClientRequestToken",)),
        ({**ROTATION, "ClientRequestToken": "x" * 65}, ("ClientRequestToken",)),
        ({**ROTATION, "ClientRequestToken": 123}, ("ClientRequestToken",)),
        ({"step": "createSecret", "secret_id": "tokenwarden/platform-eng", "token": 1}, ("token",)),
    ],
    ids=repr,
)
def test_rotation_refuses_a_malformed_event(
    onboarded: Env, aws_calls: list[str], event: dict[str, Any], fields: tuple[str, ...]
) -> None:
    refuses(onboarded, aws_calls, "rotate_secret", event, fields)


def test_rotation_ignores_fields_secrets_manager_may_add(onboarded: Env) -> None:
    rotate = load_function("rotate_secret")
    parsed = rotate.RotationEvent.model_validate({**ROTATION, "RotationToken": "opaque"})
    assert (parsed.step, parsed.token) == ("createSecret", UUID)


# -- the CLI against the same world -----------------------------------------------------------------


def cli(*argv: str) -> tuple[int, str, str]:
    import contextlib
    import io

    from tokenwarden.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


BROKEN_REGISTRIES = {
    # Each would, if read leniently, take keys away: a truncated list, a renamed principal, or a
    # principal hidden behind a typo.
    "truncated": "principals:\n  - id: platform-eng\n  - id: data-science\n  - id: mobile\n  - id: jdoe\n    kind: developer\n    team: platform-eng\n  - id:\n",
    "typo in a key": "principals:\n  - id: platform-eng\n  - idd: data-science\n",
    "duplicate": "principals: [{id: platform-eng}, {id: platform-eng}]\n",
    "not utf-8": b"principals: [{id: platform-eng, owners: [caf\xe9]}]\n",
    "empty": "",
}


@pytest.mark.parametrize("content", list(BROKEN_REGISTRIES.values()), ids=list(BROKEN_REGISTRIES))
@pytest.mark.parametrize(
    "argv",
    [
        ["apply"],
        ["apply", "--allow-mass-revoke"],
        ["revoke", "platform-eng", "--reason", "leaked"],
        ["restore", "mobile"],
    ],
    ids=" ".join,
)
def test_a_broken_registry_never_changes_the_world(
    onboarded: Env, aws_calls: list[str], tmp_path: Any, argv: list[str], content: str | bytes
) -> None:
    path = tmp_path / "teams.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    before = snapshot(onboarded)
    aws_calls.clear()
    code, out, err = cli(*argv, "--registry", str(path))
    assert (code, out) == (2, ""), err
    assert err.startswith(f"tokenwarden: {path}"), err
    assert aws_calls == []
    assert snapshot(onboarded) == before
    assert onboarded.messages() == []


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["revoke", "nobody", "--reason", "leaked", "--reissue"], "unknown principal 'nobody'"),
        (["revoke", "platform-eng", "--reason", " "], "--reason must say why"),
        (["revoke", "platform-eng", "--reason", "a\nb"], "one line"),
        (["revoke", "platform-eng", "--reissue"], "--reason"),
        (["revoke", "platform-eng", "--reason", "leaked", "--force"], "unrecognized arguments: --force"),
        (["restore", "nobody"], "unknown principal 'nobody'"),
        (["pickup", "nobody"], "unknown principal 'nobody'"),
        (["apply", "--at", "2027-02-01"], "embedded local stack"),
        (["health", "--at", "2027-02-01"], "embedded local stack"),
        (["apply", "--at", "next week"], "--at 'next week'"),
        (["plan", "--at", "0001-01-01"], "--at '0001-01-01' is outside"),
        (["status", "--at", "9999-12-31"], "--at '9999-12-31' is outside"),
        (["apply", "--allow-mass-revok"], "unrecognized arguments"),
    ],
    ids=repr,
)
def test_bad_cli_input_changes_nothing(
    onboarded: Env, aws_calls: list[str], argv: list[str], fragment: str
) -> None:
    before = snapshot(onboarded)
    aws_calls.clear()
    code, out, err = cli(*argv, "--registry", str(ROOT / "teams.yaml"))
    assert (code, out) == (2, ""), err
    assert fragment in err
    assert len(err.strip().splitlines()) == 1, err
    assert aws_calls == []
    assert snapshot(onboarded) == before
    assert onboarded.messages() == []
