"""The nightly state machine's own definition run in-process by moto's ASL interpreter, its Lambda
tasks answered by the reconcile function's handler: the nights it runs are judged by their outputs
(the run report, the keys, the notifications), since an execution whose tasks could not be invoked
still ends SUCCEEDED."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from moto.core.config import default_user_config

from tests.conftest import Env
from tokenwarden.adapters.stepfunctions import ExecutionNotSucceeded, NightlyStateMachine
from tokenwarden.local import lambda_router
from tokenwarden.local.stack import load_function, nightly_definition

RECONCILE_ARN = "arn:aws:lambda:us-east-1:123456789012:function:tokenwarden-reconcile"
PRINCIPALS = ["platform-eng", "data-science", "mobile", "jdoe"]


@pytest.fixture
def nightly(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[NightlyStateMachine]:
    env.use_handlers(monkeypatch)
    monkeypatch.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
    reconcile = load_function("reconcile", env.clock)
    lambda_router.register(RECONCILE_ARN, reconcile.lambda_handler)
    sfn = env.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="tokenwarden-nightly",
        definition=nightly_definition(RECONCILE_ARN, max_concurrency=2, max_principals=1000),
        roleArn="arn:aws:iam::123456789012:role/tokenwarden/local/nightly",
    )["stateMachineArn"]
    yield NightlyStateMachine(sfn, arn, max_poll_seconds=0.1)


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
