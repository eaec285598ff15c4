"""The reconcile function's input: the schedule's whole run, or one of the state machine's steps.
Strict, so a step's input that Step Functions would build wrong is refused, not guessed."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tokenwarden.local.stack import load_function

HANDLER = load_function("reconcile")
NIGHT = {"run_id": "r1", "started_at": "2030-01-01T02:00:00Z"}


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (None, "ReconcileInput"),
        ({}, "ReconcileInput"),
        ({"mode": "plan"}, "ReconcileInput"),
        ({"mode": "plan_night", "allow_mass_revoke": False, "max_principals": 50}, "PlanNightInput"),
        (
            {"mode": "principal", "principal": "alpha", "run_id": "a1", "allow_mass_revoke": False},
            "PrincipalInput",
        ),
        (
            {
                "mode": "plan_night",
                "max_principals": 3,
                "max_rounds": 2,
                "previous": {
                    "round": {"night": NIGHT, "work": ["alpha"], "upto": "alpha", "waiting": 4, "more": True},
                    "results": [{"outcomes": [{"principal": "alpha", "status": "ok", "done": ["onboard"]}]}],
                },
            },
            "PlanNightInput",
        ),
        ({"mode": "plan_night", "previous": None}, "PlanNightInput"),
        ({"mode": "summary", "night": NIGHT}, "SummaryInput"),
    ],
)
def test_each_mode_is_read_as_its_own_input(event: dict[str, Any] | None, kind: str) -> None:
    assert type(HANDLER.parse_request(event)).__name__ == kind


@pytest.mark.parametrize(
    "event",
    [
        {"mode": "apply", "surprise": True},
        {"mode": "plan_night", "allow_mass_revoke": "yes"},
        {"mode": "plan_night", "max_principals": 0},
        {"mode": "plan_night", "max_rounds": 0},
        {"mode": "plan_night", "previous": {"round": {"work": []}}},
        {"mode": "summary", "night": {"plan": NIGHT}},
        {"mode": "principal", "principal": "", "run_id": "r1"},
        {"mode": "principal", "run_id": "r1"},
        {"mode": "summary"},
        {"mode": "rotate"},
    ],
)
def test_a_malformed_step_input_is_refused(event: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        HANDLER.parse_request(event)
