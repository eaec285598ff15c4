"""Nights through the nightly state machine on `tokenwarden local up`: `apply --via-state-machine`
starts the stack's state machine (statemachine/nightly.asl.json, run by moto's ASL interpreter, its
Lambda tasks answered by the reconcile function in the stack's process) and prints the run report
the execution outputs. Judged by what the night did (keys a real exporter can use, the report), never
by the execution's status alone.

The stack and its registry are the module's own (see test_cli_e2e.py for why the registry grows)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Result, Stack, World, parse_time
from tokenwarden.local.laptop import send_session

pytestmark = pytest.mark.e2e

VIA = "--via-state-machine"


def outcomes_of(result: Result) -> dict[str, dict[str, Any]]:
    assert result.returncode == 0, str(result)
    return {o["principal"]: o for o in result.json()["outcomes"]}


def night(stack: Stack, registry: Path, *extra: str) -> Result:
    return stack.tw("apply", VIA, "--registry", str(registry), "--json", *extra)


def test_a_night_through_the_state_machine_onboards_and_reports_as_apply_does(
    stack: Stack, world: World
) -> None:
    registry = world.add(
        {"id": "sfn-web", "kind": "team", "owners": ["web@example.com"]},
        {"id": "sfn-ana", "kind": "developer", "team": "sfn-web", "owners": ["ana@example.com"]},
        {"id": "sfn-ops", "kind": "team", "owners": ["ops@example.com"]},
    )

    result = night(stack, registry)

    outcomes = outcomes_of(result)
    assert set(outcomes) == {"sfn-web", "sfn-ana", "sfn-ops"}
    for principal, outcome in outcomes.items():
        assert (outcome["status"], outcome["done"], outcome["error"]) == ("ok", ["secure", "onboard"], None)
        token = stack.secret_token(principal)
        assert token not in result.stdout + result.stderr, "the report printed a token"
        assert send_session(stack.otlp_endpoint, token, "sfn-web", user=principal), principal
    report = result.json()
    assert parse_time(report["started_at"])
    assert report["counts"] == {"secure": 3, "onboard": 3, "principals_ok": 3}
    assert report["min_days_to_expiry"] > 80

    # The next night, through the state machine or the plain run, has nothing to do.
    stack.advance(timedelta(days=1))
    assert {o["status"] for o in outcomes_of(night(stack, registry)).values()} == {"unchanged"}
    plain = stack.tw("apply", "--registry", str(registry), "--json")
    assert {o["status"] for o in outcomes_of(plain).values()} == {"unchanged"}


def test_time_travel_through_the_state_machine_rotates_every_key(stack: Stack, world: World) -> None:
    registry = world.add({"id": "sfn-rot", "kind": "team", "owners": ["rot@example.com"]})
    first = outcomes_of(night(stack, registry))["sfn-rot"]
    assert "onboard" in first["done"]
    before = stack.secret_token("sfn-rot")
    # 90-day keys rotate 14 (+ up to 3) days before they expire.
    at = stack.advance(timedelta(0)) + timedelta(days=80)

    result = night(stack, registry, "--at", at.isoformat())

    assert "rotate" in outcomes_of(result)["sfn-rot"]["done"], result.stdout
    after = stack.secret_token("sfn-rot")
    assert after != before
    assert send_session(stack.otlp_endpoint, after, "sfn-rot", user="sfn-rot")


def test_the_report_is_printed_for_people_too(stack: Stack, world: World) -> None:
    registry = world.add({"id": "sfn-txt", "kind": "team"})

    result = stack.tw("apply", VIA, "--registry", str(registry))

    assert result.returncode == 0, str(result)
    assert result.stdout.startswith("Run at ")
    assert any(line.split()[:2] == ["sfn-txt", "ok"] for line in result.stdout.splitlines()), result.stdout
    assert result.stdout.rstrip().endswith("0 principal(s) failed.")


def test_a_registry_that_does_not_load_is_refused_before_any_execution(
    stack: Stack, world: World, tmp_path: Path
) -> None:
    broken = tmp_path / "teams.yaml"
    broken.write_text("version: 1\nprincipals:\n  - id: [not, a, name]\n", encoding="utf-8")

    result = stack.tw("apply", VIA, "--registry", str(broken))

    assert result.returncode == 2, str(result)
    assert str(broken) in result.stderr and "Traceback" not in result.stderr


def test_without_a_state_machine_to_start_the_command_says_which_setting_is_missing(stack: Stack) -> None:
    env = {k: v for k, v in stack.env.items() if k != "TOKENWARDEN_STATE_MACHINE_ARN"}
    without = Stack(env, stack.exports, stack.process, stack.stderr_path, stack.victoriametrics)

    result = without.tw("apply", VIA)

    assert result.returncode == 2, str(result)
    assert "TOKENWARDEN_STATE_MACHINE_ARN" in result.stderr
