"""The nightly state machine's own definition run in-process by moto's ASL interpreter, its Lambda
tasks answered by the reconcile function's handler: the nights it runs are judged by their outputs
(the run report, the keys, the notifications), since an execution whose tasks could not be invoked
still ends SUCCEEDED."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from moto.core.config import default_user_config

from tests.conftest import Env
from tokenwarden.adapters.stepfunctions import ExecutionNotSucceeded, NightlyStateMachine
from tokenwarden.local import lambda_router
from tokenwarden.local.stack import load_function, nightly_definition

RECONCILE_ARN = "arn:aws:lambda:us-east-1:123456789012:function:tokenwarden-reconcile"
PRINCIPALS = ["platform-eng", "data-science", "mobile", "jdoe"]


@pytest.fixture
def nightly(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[NightlyStateMachine]:
    yield state_machine(env, monkeypatch, max_principals=500, max_rounds=120)


def state_machine(
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
    max_principals: int,
    max_rounds: int,
    registry: Path | None = None,
) -> NightlyStateMachine:
    """The nightly state machine on `env`, its tasks answered by the reconcile function (with
    `registry` when given, the shipped one otherwise)."""
    env.use_handlers(monkeypatch)
    if registry is not None:
        monkeypatch.setenv("TOKENWARDEN_REGISTRY_PATH", str(registry))
    monkeypatch.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
    reconcile = load_function("reconcile", env.clock)
    lambda_router.register(RECONCILE_ARN, reconcile.lambda_handler)
    sfn = env.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=f"tokenwarden-nightly-{max_principals}-{max_rounds}",
        definition=nightly_definition(RECONCILE_ARN, 2, max_principals, max_rounds),
        roleArn="arn:aws:iam::123456789012:role/tokenwarden/local/nightly",
    )["stateMachineArn"]
    return NightlyStateMachine(sfn, arn, max_poll_seconds=0.1)


def eight_teams(tmp_path: Path) -> Path:
    path = tmp_path / "teams.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "principals": [
                    {"id": f"team-{n}", "kind": "team", "owners": [f"team-{n}@example.com"]} for n in range(8)
                ],
            }
        ),
        encoding="utf-8",
    )
    return path


def history(env: Env, nth: int = 0) -> list[dict[str, Any]]:
    """The events of the world's `nth` execution of its state machine (the first by default)."""
    sfn = env.client("stepfunctions")
    (machine,) = sfn.list_state_machines()["stateMachines"]
    executions = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
    execution = sorted(executions, key=lambda e: e["startDate"])[nth]
    events: list[dict[str, Any]] = sfn.get_execution_history(
        executionArn=execution["executionArn"], maxResults=1000
    )["events"]
    return events


def plan_steps(env: Env) -> list[dict[str, Any]]:
    """The plan step's results in the world's first execution: one per round, and the last one."""
    exited = [e["stateExitedEventDetails"] for e in history(env) if "stateExitedEventDetails" in e]
    return [json.loads(e["output"])["round"] for e in exited if e["name"] == "Plan"]


def night(env: Env, machine: NightlyStateMachine) -> dict[str, Any]:
    report = machine.run({"allow_mass_revoke": False}, timeout_seconds=120)
    env.settle()
    return report


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {o["principal"]: o["status"] for o in report["outcomes"]}


def test_a_night_through_the_state_machine_onboards_every_principal(
    env: Env, nightly: NightlyStateMachine
) -> None:
    report = night(env, nightly)

    assert statuses(report) == dict.fromkeys(PRINCIPALS, "ok")
    assert report["counts"]["onboard"] == 4
    assert report["min_days_to_expiry"] == 60.0  # mobile's keys live 60 days (teams.yaml)
    for principal in PRINCIPALS:
        assert len(env.credentials(principal)) == 1, principal
        assert env.current_token(principal)
    events = [m["_attributes"]["event_type"] for m in env.messages()]
    assert events.count("onboarded") == 4
    assert events.count("run_summary") == 1


def test_the_next_night_through_the_state_machine_is_quiet(env: Env, nightly: NightlyStateMachine) -> None:
    night(env, nightly)
    env.messages()
    env.clock.advance(timedelta(days=1))

    report = night(env, nightly)

    assert statuses(report) == dict.fromkeys(PRINCIPALS, "unchanged")
    assert [m["_attributes"]["event_type"] for m in env.messages()] == ["run_summary"]
    # Summarised by its plan step, from the one inventory it read: no summary step ran.
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history(env, 1) if "stateEnteredEventDetails" in e
    ]
    assert entered == ["Night", "Plan", "More?", "Report"]


def test_a_principal_whose_task_fails_is_reported_and_the_others_are_onboarded(
    env: Env, nightly: NightlyStateMachine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenwarden.service import reconciler

    real = reconciler.Reconciler.apply_principal

    def lambda_dies_for_mobile(self: Any, registry: Any, principal_id: str, *args: Any) -> Any:
        if principal_id == "mobile":
            raise MemoryError("the function ran out of memory")
        return real(self, registry, principal_id, *args)

    monkeypatch.setattr(reconciler.Reconciler, "apply_principal", lambda_dies_for_mobile)

    report = night(env, nightly)

    assert statuses(report) == {"platform-eng": "ok", "data-science": "ok", "mobile": "failed", "jdoe": "ok"}
    (failed,) = [o for o in report["outcomes"] if o["status"] == "failed"]
    assert failed["error"].startswith("task: ")
    assert env.credentials("mobile") == []
    (summary,) = [m for m in env.messages() if m["_attributes"]["event_type"] == "run_summary"]
    assert "mobile (task: " in json.dumps(summary)


def test_an_execution_that_fails_is_said_by_its_status_and_error_name(
    env: Env, nightly: NightlyStateMachine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenwarden.service import night as steps

    def plan_refused(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a message that must not be shown")

    monkeypatch.setattr(steps, "plan_night", plan_refused)

    with pytest.raises(ExecutionNotSucceeded, match="FAILED") as raised:
        nightly.run({"allow_mass_revoke": False}, timeout_seconds=60)
    assert "must not be shown" not in str(raised.value)


def test_one_execution_takes_a_night_bigger_than_a_round_in_rounds(
    env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    machine = state_machine(env, monkeypatch, max_principals=3, max_rounds=60, registry=eight_teams(tmp_path))

    report = night(env, machine)

    assert statuses(report) == {f"team-{n}": "ok" for n in range(8)}
    assert report["counts"] == {"secure": 8, "onboard": 8, "principals_ok": 8}
    rounds = plan_steps(env)
    assert [len(r["work"]) for r in rounds] == [3, 3, 2, 0]
    assert len({r["night"]["run_id"] for r in rounds}) == 1
    assert rounds[-1]["night"]["stopped"] == "done"
    # Without retries, 15 history events a round and 20 once (docs/architecture.md).
    assert len(history(env)) == 15 * 3 + 20
    for n in range(8):
        assert env.current_token(f"team-{n}"), n
    events = [m["_attributes"]["event_type"] for m in env.messages()]
    assert (events.count("onboarded"), events.count("run_summary")) == (8, 1)


def test_a_round_where_every_principal_is_locked_stops_the_night(
    env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    machine = state_machine(env, monkeypatch, max_principals=3, max_rounds=60, registry=eight_teams(tmp_path))
    for n in range(3):  # another run holds the first round's principals
        assert env.adapters.ledger.acquire(f"team-{n}", "another-run", env.clock.now(), ttl_seconds=86400)

    report = night(env, machine)

    assert statuses(report) == {
        **{f"team-{n}": "locked" for n in range(3)},
        **{f"team-{n}": "deferred" for n in range(3, 8)},
    }
    assert [len(r["work"]) for r in plan_steps(env)] == [3, 0]
    assert "no principal of its last round finished" in json.dumps(report["findings"])
    assert env.credentials("team-3") == []
    events = [m["_attributes"]["event_type"] for m in env.messages()]
    assert events == ["run_summary"]


def test_the_round_limit_is_honoured_and_the_next_night_goes_on(
    env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    machine = state_machine(env, monkeypatch, max_principals=3, max_rounds=2, registry=eight_teams(tmp_path))

    report = night(env, machine)

    assert report["counts"] == {"secure": 6, "onboard": 6, "principals_ok": 6, "principals_deferred": 2}
    assert [len(r["work"]) for r in plan_steps(env)] == [3, 3, 0]
    assert "round limit" in json.dumps(report["findings"])
    env.clock.advance(timedelta(days=1))

    report = night(env, machine)

    assert report["counts"]["principals_ok"] == 2 and report["counts"]["principals_unchanged"] == 6
