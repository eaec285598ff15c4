"""What a run reports, and what the nightly state machine carries between its steps.

A run's findings, each principal's outcome and the run report; the night's state from round to
round (statemachine/nightly.asl.json, tokenwarden.service.night). Plain models with nothing to
import but pydantic: the reconcile function parses its events into them at import, and loads the
reconciler only when its first invocation builds it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

# Principals applied by one round. An outcome takes about 150 bytes of state, about 300 for a
# failure with a long id and error or a retirement with its note at the cap: 500 of them, their ids,
# the night's named outcomes and its findings stay inside Step Functions' 256 KiB per state (228 KiB
# at every cap, tests/infra/test_state_machine.py); the rest wait for the next round.
DEFAULT_MAX_PRINCIPALS = 500
# Rounds one execution runs: 120 rounds of 500 take 60,000 principals with work in one night.
DEFAULT_MAX_ROUNDS = 120


class Finding(BaseModel):
    """Something a person should look at; the reconciler does not act on it."""

    model_config = ConfigDict(frozen=True)

    principal: str | None
    kind: str
    detail: str


Status = Literal["ok", "unchanged", "failed", "locked", "deferred"]


class PrincipalOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    principal: str
    status: Status
    done: tuple[str, ...] = ()
    error: str | None = None
    # What a person should know about what was done, e.g. a key retired for a team already silent.
    notes: tuple[str, ...] = ()


class RunReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    started_at: datetime
    outcomes: tuple[PrincipalOutcome, ...]
    findings: tuple[Finding, ...]
    counts: dict[str, int]
    min_days_to_expiry: float | None = None

    @property
    def failed(self) -> tuple[PrincipalOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "failed")


Stop = Literal["done", "no_progress", "round_limit"]


class NightState(BaseModel):
    """The night so far, carried from round to round and handed to the summary."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    started_at: datetime
    allow_mass_revoke: bool = False
    findings: tuple[Finding, ...] = ()
    unlisted_findings: int = 0  # the first plan's findings that `findings` has no room to carry
    rounds: int = 0
    # The last principal id (in id order) an applied round reached; the next round starts after it.
    through: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    outcomes: tuple[PrincipalOutcome, ...] = ()
    unlisted: int = 0  # principals the rounds applied that `outcomes` has no room to name
    stopped: Stop | None = None

    @field_serializer("outcomes", when_used="json")
    def _lean_outcomes(self, outcomes: tuple[PrincipalOutcome, ...]) -> list[dict[str, Any]]:
        """The named outcomes without their fields at defaults: read back the same, in less state."""
        return [o.model_dump(mode="json", exclude_defaults=True) for o in outcomes]


class NightRound(BaseModel):
    """What the plan step hands to the Map (`work`, when `more`) and to the next round."""

    model_config = ConfigDict(frozen=True)

    night: NightState
    work: tuple[str, ...] = ()
    upto: str | None = None  # where `through` stands once this round is applied
    waiting: int = 0  # principals with work beyond this round when it was planned
    more: bool = False
    # A night whose first plan finds nothing to do is summarised by that plan step, from the
    # inventory it read: the run report, and no summary step reading the account again.
    report: RunReport | None = None


class BatchResult(BaseModel):
    """One Map item's result: the outcomes of its principals, or (recorded by the item's Catch when
    the task itself failed for good) the principals it did not finish and the error's name."""

    model_config = ConfigDict(frozen=True)

    outcomes: tuple[PrincipalOutcome, ...] = ()
    unfinished: tuple[str, ...] = ()
    error: str | None = None


class RoundResults(BaseModel):
    """A round as the Map left it: its plan and every item's result."""

    model_config = ConfigDict(frozen=True)

    round: NightRound
    results: tuple[BatchResult, ...] = ()
