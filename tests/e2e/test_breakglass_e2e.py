"""Break-glass, offboarding, the guard and the audit through the CLI, against the embedded stack,
with the OpenTelemetry exporter as the judge of which tokens still work."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import Cli, aws_command, in_process_stack
from tokenwarden.cli.main import main
from tokenwarden.local import realism
from tokenwarden.local.clock import RemoteStackClock
from tokenwarden.local.laptop import send_session

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack() -> Iterator[dict[str, str]]:
    with in_process_stack(victoriametrics=False) as exports:
        yield exports


@pytest.fixture
def cli(
    stack: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Cli]:
    for name, value in stack.items():
        monkeypatch.setenv(name, value)

    def run(*argv: str, expect: int = 0) -> str:
        capsys.readouterr()
        code = main(list(argv))
        realism.wait_idle(60)  # the rotations Secrets Manager runs in the background, as the next night would
        captured = capsys.readouterr()
        assert code == expect, captured.err
        return captured.out + captured.err

    yield run


def token(principal: str) -> str:
    sm = boto3.client("secretsmanager")
    return str(
        sm.get_secret_value(SecretId=f"tokenwarden/{principal}", VersionStage="AWSCURRENT")["SecretString"]
    )


def keys(principal: str) -> list[dict[str, object]]:
    iam = boto3.client("iam")
    try:
        return list(
            iam.list_service_specific_credentials(UserName=f"tw-{principal}")["ServiceSpecificCredentials"]
        )
    except iam.exceptions.NoSuchEntityException:
        return []


def registry(tmp_path: Path, *ids: str) -> str:
    path = tmp_path / f"teams-{'-'.join(ids) or 'empty'}.yaml"
    path.write_text("principals:\n" + "".join(f"  - {{id: {i}}}\n" for i in ids) if ids else "")
    return str(path)


def test_revoke_refuses_the_leaked_token_at_once_and_the_reissued_one_works(
    cli: Cli, stack: dict[str, str], tmp_path: Path
) -> None:
    endpoint = stack["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]
    teams = registry(tmp_path, "red", "blue")
    cli("apply", "--registry", teams, "--quiet")
    leaked = token("red")
    assert send_session(endpoint, leaked, "red")

    out = cli("revoke", "red", "--reason", "pasted in #general", "--reissue", "--registry", teams)

    assert "Revoked 1 key" in out and leaked not in out
    assert not send_session(endpoint, leaked, "red")
    fresh = token("red")
    assert fresh != leaked and send_session(endpoint, fresh, "red")
    again = cli("revoke", "red", "--reason", "pasted in #general", "--reissue", "--registry", teams)
    assert "no Active key" in again and token("red") == fresh and send_session(endpoint, fresh, "red")

    cli("revoke", "nobody", "--reason", "x", "--registry", teams, expect=2)
    cli("revoke", "blue", "--reason", " ", "--registry", teams, expect=2)
    assert send_session(endpoint, token("blue"), "blue")


def history(principal: str) -> list[dict[str, Any]]:
    """The principal's break-glass records as the ledger stores them."""
    answer = boto3.client("dynamodb").query(
        TableName=os.environ["TOKENWARDEN_LEDGER_TABLE"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :h)",
        ExpressionAttributeValues={":pk": {"S": f"P#{principal}"}, ":h": {"S": "H#"}},
        ConsistentRead=True,
    )
    return [json.loads(item["record"]["S"]) for item in answer["Items"]]


def test_a_leaked_key_comes_back_only_when_forced_and_the_revoke_stays_on_record(
    cli: Cli, stack: dict[str, str], tmp_path: Path
) -> None:
    endpoint = stack["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]
    teams = registry(tmp_path, "coral")
    cli("apply", "--registry", teams, "--quiet")
    leaked = token("coral")
    caller = boto3.client("sts").get_caller_identity()["Arn"]
    cli("revoke", "coral", "--reason", "pasted in #general", "--reissue", "--registry", teams)
    fresh = token("coral")
    (revoke,) = history("coral")
    assert revoke["actor"] == {
        "acted_as": caller,
        "requester": caller,
        "claimed_by": None,
        "request_id": None,
    }

    refused = cli("restore", "coral", "--registry", teams, expect=2)
    assert "issued a replacement" in refused and "--force --reason" in refused
    assert history("coral") == [revoke] and not send_session(endpoint, leaked, "coral")
    hostile = cli(
        "restore", "coral", "--force", "--reason", "ok\x1b]0;approved\x07", "--registry", teams, expect=2
    )
    assert "printable" in hostile and history("coral") == [revoke]

    out = cli("restore", "coral", "--force", "--reason", "the paste was a demo key", "--registry", teams)

    assert "works until" in out and "not a new one" in out and "(forced: the paste was a demo key)" in out
    assert f"Recorded as {caller}: undoes revoke #1" in out
    assert leaked not in out and fresh not in out
    assert send_session(endpoint, leaked, "coral") and send_session(endpoint, fresh, "coral")
    assert token("coral") == fresh
    before, restore = history("coral")
    assert before == revoke  # the revoke's record as written
    assert restore["forced"] and restore["force_reason"] == "the paste was a demo key"
    assert restore["actor"]["requester"] == caller

    again = cli("restore", "coral", "--force", "--reason", "once more", "--registry", teams, expect=2)
    assert "already restored" in again and len(history("coral")) == 2


def test_a_restored_revoke_is_not_restored_twice_and_a_new_revoke_is(
    cli: Cli, stack: dict[str, str], tmp_path: Path
) -> None:
    endpoint = stack["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]
    teams = registry(tmp_path, "jade")
    cli("apply", "--registry", teams, "--quiet")
    working = token("jade")
    cli("revoke", "jade", "--reason", "laptop stolen", "--registry", teams)
    assert not send_session(endpoint, working, "jade")
    cli("revoke", "jade", "--reason", "laptop stolen\n[INFO] restored", "--registry", teams, expect=2)

    out = cli("restore", "jade", "--registry", teams)
    assert "The current key works again." in out and send_session(endpoint, working, "jade")
    cli("restore", "jade", "--registry", teams, expect=2)
    cli("revoke", "jade", "--reason", "laptop stolen", "--registry", teams)
    assert not send_session(endpoint, working, "jade")
    assert "undoes revoke #2" in cli("restore", "jade", "--registry", teams)
    assert send_session(endpoint, working, "jade")
    assert [r["kind"] for r in history("jade")] == ["revoke", "restore", "revoke", "restore"]


def test_offboarding_leaves_no_active_key_then_no_key_then_no_user(
    cli: Cli, stack: dict[str, str], tmp_path: Path
) -> None:
    both = registry(tmp_path, "green", "amber")
    only_green = registry(tmp_path, "green")
    cli("apply", "--registry", both, "--quiet")
    amber = token("amber")
    start = RemoteStackClock(stack["TOKENWARDEN_STACK_URL"]).now()

    cli("apply", "--registry", only_green, "--at", (start + timedelta(days=1)).isoformat(), "--quiet")
    assert [k["Status"] for k in keys("amber")] == ["Inactive"]
    assert not send_session(stack["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"], amber, "amber")
    cli("apply", "--registry", only_green, "--at", (start + timedelta(days=9)).isoformat(), "--quiet")
    assert keys("amber") == []
    cli("apply", "--registry", only_green, "--at", (start + timedelta(days=10)).isoformat(), "--quiet")
    users = boto3.client("iam").list_users(PathPrefix="/tokenwarden/")["Users"]
    assert "tw-amber" not in [u["UserName"] for u in users]


def test_an_empty_registry_revokes_nobody(cli: Cli, stack: dict[str, str], tmp_path: Path) -> None:
    teams = registry(tmp_path, "violet")
    cli("apply", "--registry", teams, "--quiet")
    before = token("violet")
    out = cli("apply", "--registry", registry(tmp_path), expect=2)
    assert "empty" in out
    assert send_session(stack["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"], before, "violet")


def test_a_hand_made_key_shows_in_the_audit_and_is_left_alone(
    cli: Cli, stack: dict[str, str], tmp_path: Path
) -> None:
    teams = registry(tmp_path, "teal")
    cli("apply", "--registry", teams, "--quiet")
    iam = boto3.client("iam")
    iam.create_user(UserName="clicked-in-console")
    clock = RemoteStackClock(stack["TOKENWARDEN_STACK_URL"])
    clock.advance_to(clock.now() + timedelta(minutes=1))  # IAM: a new user, a moment later
    made = iam.create_service_specific_credential(
        UserName="clicked-in-console", ServiceName="cloudwatch.amazonaws.com"
    )
    key_id = made["ServiceSpecificCredential"]["ServiceSpecificCredentialId"]

    findings = json.loads(cli("audit", "--registry", teams, "--json"))
    about = [f for f in findings if key_id in f["detail"]]
    assert {f["kind"] for f in about} == {"key_without_expiry", "key_outside_tokenwarden"}
    cli("apply", "--registry", teams, "--quiet")
    listed = iam.list_service_specific_credentials(UserName="clicked-in-console")[
        "ServiceSpecificCredentials"
    ]
    assert [(k["ServiceSpecificCredentialId"], k["Status"]) for k in listed] == [(key_id, "Active")]


def test_a_principal_added_back_after_offboarding_gets_a_working_token_from_the_recipe(
    cli: Cli, stack: dict[str, str], tmp_path: Path
) -> None:
    endpoint = stack["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]
    both = registry(tmp_path, "plum", "sage")
    only_sage = registry(tmp_path, "sage")
    cli("apply", "--registry", both, "--quiet")
    offboarded = token("plum")
    start = RemoteStackClock(stack["TOKENWARDEN_STACK_URL"]).now()
    cli("apply", "--registry", only_sage, "--at", (start + timedelta(days=1)).isoformat(), "--quiet")
    assert not send_session(endpoint, offboarded, "plum")

    out = cli("apply", "--registry", both, "--at", (start + timedelta(days=2)).isoformat())

    assert "onboard" in out
    recipe = subprocess.run(  # the seed's recipe, exactly: no version stage asked for
        [
            *aws_command(),
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "tokenwarden/plum",
            "--query",
            "SecretString",
            "--output",
            "text",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    assert recipe != offboarded
    assert send_session(endpoint, recipe, "plum")
