"""The CLI against `tokenwarden local up`, with real clients: the AWS CLI reads the secret exactly as the
seed's recipe does and the OpenTelemetry SDK's OTLP/HTTP exporter sends with the token it got.

The stack (and its clock) is shared by the module. The registry is the whole truth (`apply` offboards
what it does not list), so every test adds principals no other test uses to one growing registry
(`world`) and applies all of it; each test reads the stack's time instead of assuming one. The tests
therefore pass in any order.
"""

from __future__ import annotations

import subprocess
import uuid
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    ROOT,
    Result,
    Stack,
    World,
    clean_environment,
    parse_time,
    together,
    tokenwarden_command,
)
from tokenwarden.local.laptop import send_session

pytestmark = pytest.mark.e2e

MADE_UP_TOKEN = "not-a-real-key-" + uuid.uuid4().hex
REQUIRED_STATUS_FIELDS = {"principal", "secret_id", "current_credential_id", "credentials"}
REQUIRED_CREDENTIAL_FIELDS = {"id", "status", "expires_at"}


def _iso(value: datetime) -> str:
    return value.isoformat()


def outcomes_of(result: Result) -> dict[str, dict[str, Any]]:
    """`apply --json` outcomes by principal; the run must have succeeded and offboarded nobody."""
    assert result.returncode == 0, str(result)
    outcomes = {o["principal"]: o for o in result.json()["outcomes"]}
    offboarded = [p for p, o in outcomes.items() if "offboard" in o["done"]]
    assert not offboarded, f"a registered principal was offboarded: {offboarded}\n{result}"
    return outcomes


def status_of(stack: Stack, registry: Path, principal: str) -> dict[str, Any]:
    """One principal's row of `status --json`."""
    rows = stack.tw("status", "--registry", str(registry), "--json", check=True).json()
    assert isinstance(rows, list), rows
    matching = [r for r in rows if r["principal"] == principal]
    assert len(matching) == 1, rows
    return dict(matching[0])


# -- onboarding ---------------------------------------------------------------------------------


def test_apply_onboards_and_the_seed_recipe_reads_a_token_the_exporter_accepts(
    stack: Stack, world: World
) -> None:
    registry = world.add(
        {"id": "e2e-web", "kind": "team", "owners": ["web@example.com"], "notify": "#web"},
        {"id": "e2e-ana", "kind": "developer", "team": "e2e-web", "owners": ["ana@example.com"]},
    )
    result = stack.tw("apply", "--registry", str(registry), "--json")
    outcomes = outcomes_of(result)
    assert parse_time(result.json()["started_at"])
    for principal in ("e2e-web", "e2e-ana"):
        assert outcomes[principal]["status"] == "ok", result.stdout
        assert "onboard" in outcomes[principal]["done"], result.stdout
        assert outcomes[principal]["error"] is None, result.stdout

    principals = ("e2e-web", "e2e-ana")
    tokens = dict(
        zip(principals, together(*(partial(stack.secret_token, p) for p in principals)), strict=True)
    )
    assert tokens["e2e-web"] != tokens["e2e-ana"]
    for principal, token in tokens.items():
        assert token not in result.stdout + result.stderr, "apply printed a token"
        assert send_session(stack.otlp_endpoint, token, "e2e-web", user=principal), (
            f"{principal}'s token refused"
        )
    assert not send_session(stack.otlp_endpoint, MADE_UP_TOKEN, "e2e-web", user="intruder")

    if stack.victoriametrics:
        # Accepted exports reach VictoriaMetrics on the stack's clock (which the rotation function's
        # simulated waits may have moved past t0); the refused one does not.
        sent_by = stack.advance(timedelta(0))
        series = stack.promql(
            'claude_code.session.count{"team.id"="e2e-web"}', sent_by + timedelta(seconds=1)
        )
        assert {s["metric"].get("user.id") for s in series} == {"e2e-web", "e2e-ana"}, series

    # The run converged: a second one has nothing to do, for anyone.
    again = stack.tw("apply", "--registry", str(registry), "--json")
    assert {o["status"] for o in outcomes_of(again).values()} == {"unchanged"}, again.stdout


# -- status -------------------------------------------------------------------------------------


def test_status_json_names_the_key_iam_lists(stack: Stack, world: World) -> None:
    registry = world.add({"id": "e2e-stat", "kind": "team"})
    outcomes_of(stack.tw("apply", "--registry", str(registry), "--json"))

    result, listed, table = together(
        partial(stack.tw, "status", "--registry", str(registry), "--json"),
        partial(stack.credentials, "e2e-stat"),
        partial(stack.tw, "status", "--registry", str(registry)),
    )
    assert result.returncode == 0, str(result)
    rows = result.json()
    assert isinstance(rows, list), rows
    assert {r["principal"] for r in rows} == world.ids, rows
    for row in rows:
        assert set(row) >= REQUIRED_STATUS_FIELDS, row
        assert row["secret_id"] == f"tokenwarden/{row['principal']}", row
        for cred in row["credentials"]:
            assert set(cred) >= REQUIRED_CREDENTIAL_FIELDS, cred
            parse_time(cred["expires_at"])
    row = next(r for r in rows if r["principal"] == "e2e-stat")
    assert row["current_credential_id"]
    assert [c["id"] for c in row["credentials"]] == [row["current_credential_id"]], row
    assert row["credentials"][0]["status"] == "Active"

    assert [c["ServiceSpecificCredentialId"] for c in listed] == [row["current_credential_id"]]
    # IAM may list a CloudWatch key without ExpirationDate: then status shows CreateDate + the age asked for.
    iam_says = listed[0].get("ExpirationDate")
    expected = parse_time(iam_says) if iam_says else parse_time(listed[0]["CreateDate"]) + timedelta(days=90)
    assert parse_time(row["credentials"][0]["expires_at"]) == expected

    assert table.returncode == 0, str(table)
    assert "PRINCIPAL" in table.stdout and "e2e-stat" in table.stdout, table.stdout


# -- time travel: rotate, grace, retire, delete ------------------------------------------------


def test_time_travel_rotates_retires_and_deletes(stack: Stack, world: World) -> None:
    p = "e2e-life"
    registry = world.add({"id": p, "kind": "team", "owners": ["life@example.com"]})
    onboard = stack.tw("apply", "--registry", str(registry), "--json")
    assert "onboard" in outcomes_of(onboard)[p]["done"], onboard.stdout
    t0 = parse_time(onboard.json()["started_at"])
    old_token, status = together(partial(stack.secret_token, p), partial(status_of, stack, registry, p))
    old_id = status["current_credential_id"]
    assert send_session(stack.otlp_endpoint, old_token, p)

    # ~80 days later the key is near expiry (90-day lifetime, rotate 14 (+ up to 3 jitter) days before).
    rotate = stack.tw("apply", "--registry", str(registry), "--at", _iso(t0 + timedelta(days=80)), "--json")
    outcome = outcomes_of(rotate)[p]
    assert outcome["status"] == "ok" and "rotate" in outcome["done"], rotate.stdout
    assert parse_time(rotate.json()["started_at"]) >= t0 + timedelta(days=80)

    new_token, status, listed = together(
        partial(stack.secret_token, p), partial(status_of, stack, registry, p), partial(stack.credentials, p)
    )
    assert new_token != old_token, "the AWS CLI still reads the old token after a rotation"
    new_id = status["current_credential_id"]
    assert new_id != old_id
    by_id = {c["id"]: c for c in status["credentials"]}
    assert set(by_id) == {old_id, new_id}, status
    assert by_id[old_id]["status"] == "Active", "the previous key must stay Active through the grace"
    assert {c["ServiceSpecificCredentialId"]: c["Status"] for c in listed} == {
        old_id: "Active",
        new_id: "Active",
    }
    assert send_session(stack.otlp_endpoint, new_token, p), "the new token is refused"
    assert send_session(stack.otlp_endpoint, old_token, p), "the old token is refused during its grace"

    # ~8 days later the grace (7 days) is over: the old key is deactivated.
    retire = stack.tw("apply", "--registry", str(registry), "--at", _iso(t0 + timedelta(days=88)), "--json")
    assert "retire" in outcomes_of(retire)[p]["done"], retire.stdout
    assert not send_session(stack.otlp_endpoint, old_token, p), "a retired token is still accepted"
    assert send_session(stack.otlp_endpoint, new_token, p), "the current token is refused after retirement"
    listed = {c["ServiceSpecificCredentialId"]: c["Status"] for c in stack.credentials(p)}
    assert listed == {old_id: "Inactive", new_id: "Active"}, listed

    # ~8 more days and the rollback window (7 days) is over: the old key is deleted.
    delete = stack.tw("apply", "--registry", str(registry), "--at", _iso(t0 + timedelta(days=96)), "--json")
    assert "delete" in outcomes_of(delete)[p]["done"], delete.stdout
    status, listed = together(partial(status_of, stack, registry, p), partial(stack.credentials, p))
    assert [c["id"] for c in status["credentials"]] == [new_id], status
    assert status["current_credential_id"] == new_id
    assert [c["ServiceSpecificCredentialId"] for c in listed] == [new_id]
    assert not send_session(stack.otlp_endpoint, old_token, p)
    assert send_session(stack.otlp_endpoint, new_token, p)

    # Asking for a time before the stack's own never moves its clock back (nor brings the old key back).
    replay = stack.tw("plan", "--registry", str(registry), "--at", _iso(t0), "--json")
    assert replay.returncode == 0, str(replay)
    plan = replay.json()
    assert parse_time(plan["generated_at"]) >= t0 + timedelta(days=96), replay.stdout
    assert [a for pp in plan["principals"] if pp["principal"] == p for a in pp["actions"]] == [], (
        replay.stdout
    )

    # No token in anything the CLI or the stack (which runs the rotation function) printed on the way.
    printed = "\n".join([*stack.tokenwarden_output, stack.stack_stderr()])
    assert old_token not in printed and new_token not in printed, "a token was printed"


# -- plan ---------------------------------------------------------------------------------------


def test_plan_is_readable_parses_as_json_and_changes_nothing(stack: Stack, world: World) -> None:
    newcomers = {"e2e-plan", "e2e-plan-dev"}
    registry = world.with_extra(
        {"id": "e2e-plan", "kind": "team"}, {"id": "e2e-plan-dev", "kind": "developer", "team": "e2e-plan"}
    )
    text, result = together(
        partial(stack.tw, "plan", "--registry", str(registry)),
        partial(stack.tw, "plan", "--registry", str(registry), "--json"),
    )
    assert text.returncode == 0, str(text)
    assert text.stdout.startswith("Plan at "), text.stdout
    for expected in ("e2e-plan", "e2e-plan-dev", "onboard", "action(s)"):
        assert expected in text.stdout, text.stdout

    assert result.returncode == 0, str(result)
    plan = result.json()
    parse_time(plan["generated_at"])
    kinds = {p["principal"]: [a["kind"] for a in p["actions"]] for p in plan["principals"]}
    assert {p: kinds.get(p) for p in newcomers} == {p: ["onboard"] for p in newcomers}, plan
    # Everyone already onboarded has converged: nothing to do for them.
    assert {p: k for p, k in kinds.items() if p not in newcomers and k} == {}, plan
    assert all(a["reason"] for p in plan["principals"] for a in p["actions"]), plan

    assert not {f"tw-{p}" for p in newcomers} & stack.managed_users(), "plan created a user"


# -- bad input ----------------------------------------------------------------------------------

# case -> (file content, principals in it, what the message must name besides the file)
BAD_REGISTRIES = {
    "unknown-key": (
        "version: 1\nprincipals:\n  - id: e2e-bad-key-ok\n    kind: team\n"
        "  - id: e2e-bad-key\n    kind: team\n    colour: blue\n",
        {"e2e-bad-key-ok", "e2e-bad-key"},
        ("e2e-bad-key", "colour", "unknown key"),
    ),
    "empty-file": ("", set(), ("empty",)),
    "unknown-team": (
        "version: 1\nprincipals:\n  - id: e2e-bad-team-ok\n    kind: team\n"
        "  - id: e2e-bad-dev\n    kind: developer\n    team: e2e-no-such-team\n",
        {"e2e-bad-team-ok", "e2e-bad-dev"},
        ("e2e-bad-dev", "team", "e2e-no-such-team"),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_REGISTRIES))
def test_bad_registry_exits_2_names_the_file_and_changes_nothing(
    stack: Stack, world: World, tmp_path: Path, case: str
) -> None:
    text, principals, named = BAD_REGISTRIES[case]
    registry = tmp_path / f"{case}.yaml"
    registry.write_text(text, encoding="utf-8")
    results = together(
        *(
            partial(stack.tw, command, "--registry", str(registry), "--json")
            for command in ("apply", "plan", "status")
        )
    )
    for result in results:
        assert result.returncode == 2, str(result)
        assert str(registry) in result.stderr, str(result)
        for word in named:
            assert word in result.stderr, f"the message does not name {word!r}:\n{result}"
        assert result.stdout == "", str(result)
    users = stack.managed_users()
    assert not {f"tw-{p}" for p in principals} & users, f"{case}: a user was created"
    # Had it run, a registry that lists none of them would have offboarded everyone else.
    assert {f"tw-{p}" for p in world.ids} <= users


def test_at_not_a_date_exits_2_and_changes_nothing(stack: Stack, world: World) -> None:
    registry = world.with_extra({"id": "e2e-bad-at", "kind": "team"})
    results = together(
        *(
            partial(stack.tw, command, "--registry", str(registry), "--at", "not-a-date")
            for command in ("apply", "plan")
        )
    )
    for result in results:
        assert result.returncode == 2, str(result)
        assert "not-a-date" in result.stderr, str(result)
    assert "tw-e2e-bad-at" not in stack.managed_users()


# -- help ---------------------------------------------------------------------------------------

HELP = {
    (): "Exit codes",
    ("plan",): "example:",
    ("apply",): "example:",
    ("status",): "example:",
    ("local", "up"): "export",
    ("restore",): "--force",
}


def test_help_of_every_command_exits_0_and_explains_it() -> None:
    env = clean_environment()
    running = {
        words: subprocess.Popen(
            [*tokenwarden_command(), *words, "--help"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for words in HELP
    }
    for words, process in running.items():
        stdout, stderr = process.communicate(timeout=60)
        label = " ".join(["tokenwarden", *words, "--help"])
        assert process.returncode == 0, f"{label} exited {process.returncode}: {stderr}"
        assert stdout.startswith("usage: tokenwarden"), f"{label}:\n{stdout}"
        assert HELP[words] in stdout, f"{label} shows no {HELP[words]!r}:\n{stdout}"
        if not words:
            for command in ("plan", "apply", "status", "local", "demo"):
                assert command in stdout, f"{label} does not list {command}:\n{stdout}"


def test_local_up_with_an_empty_or_public_host_exits_2_and_serves_nothing() -> None:
    """An empty --host would bind every interface: refused as any non-loopback address is."""
    env = clean_environment()
    running = {
        host: subprocess.Popen(
            [*tokenwarden_command(), "local", "up", "--host", host, "--no-victoriametrics"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for host in ("", "0.0.0.0")
    }
    for host, process in running.items():
        try:
            stdout, stderr = process.communicate(timeout=60)
        finally:
            process.kill()
        assert process.returncode == 2, f"--host {host!r} exited {process.returncode}: {stderr}"
        assert "loopback" in stderr and "--host 127.0.0.1" in stderr, stderr
        assert stdout == "", f"--host {host!r} started the stack:\n{stdout}"
