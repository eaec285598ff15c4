"""The nightly run in three steps, as the state machine runs it (statemachine/nightly.asl.json).

1. `plan_night`: one inventory read and one plan; the principals with work to do become the Map's
   items (at most `max_principals` of them, the rest are left for the next run).
2. `apply_batch`: each item, the same code the CLI's run applies to one principal
   (`Reconciler.apply_principal`: under its lease, read afresh, planned again, applied).
3. `summarise_night`: the outcomes gathered, every other principal reported as unchanged or
   deferred, the account audited, one `run_summary` and the run's metrics; the run report.

What passes between the steps is JSON that Step Functions carries (256 KiB at most per state):
principal ids, outcomes and findings, never a token.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from tokenwarden.domain import notifications as notes
from tokenwarden.domain.plan import Finding
from tokenwarden.domain.registry import Registry
from tokenwarden.observability import count
from tokenwarden.service.reconciler import PrincipalOutcome, Reconciler, RunReport

# Principals applied by one execution. An id and its outcome take about 150 bytes of state, so
# 1,000 stay well inside Step Functions' 256 KiB per state; the rest wait for the next run.
DEFAULT_MAX_PRINCIPALS = 1000


class NightPlan(BaseModel):
    """What the plan step hands to the Map (`work`) and to the summary."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    started_at: datetime
    allow_mass_revoke: bool = False
    work: tuple[str, ...]
    findings: tuple[Finding, ...] = ()


class BatchResult(BaseModel):
    """One Map item's result: the outcomes of its principals, or (recorded by the item's Catch when
    the task itself failed for good) the principals it did not finish and the error's name."""

    model_config = ConfigDict(frozen=True)

    outcomes: tuple[PrincipalOutcome, ...] = ()
    unfinished: tuple[str, ...] = ()
    error: str | None = None


class NightResults(BaseModel):
    """The summary step's input: the plan and every Map item's result."""

    model_config = ConfigDict(frozen=True)

    plan: NightPlan
    results: tuple[BatchResult, ...] = Field(default_factory=tuple)


def plan_night(
    reconciler: Reconciler,
    registry: Registry,
    now: datetime,
    allow_mass_revoke: bool = False,
    max_principals: int = DEFAULT_MAX_PRINCIPALS,
) -> NightPlan:
    """One inventory read, one plan: who has work tonight. The blast-radius guard is announced here,
    once, as the Lambda run does."""
    inventory = reconciler.inventory()
    plan = reconciler.plan(registry, now, inventory, allow_mass_revoke)
    if plan.guard is not None and plan.guard.tripped:
        reconciler.notifier.publish(
            notes.guard_tripped(plan.guard.would_deactivate, plan.guard.managed, plan.guard.limit, now)
        )
        count("GuardTripped", 1)
    work = [p.principal for p in plan.principals if reconciler.has_work(registry, p, inventory)]
    return NightPlan(
        run_id=uuid.uuid4().hex,
        started_at=now,
        allow_mass_revoke=allow_mass_revoke,
        work=tuple(work[:max_principals]),
        findings=plan.findings,
    )


def apply_batch(
    reconciler: Reconciler,
    registry: Registry,
    principals: Sequence[str],
    now: datetime,
    run_id: str,
    allow_mass_revoke: bool = False,
) -> BatchResult:
    """One Map item: each of its principals applied on its own (a failure is its outcome)."""
    return BatchResult(
        outcomes=tuple(
            reconciler.apply_principal(registry, principal, now, run_id, allow_mass_revoke)
            for principal in principals
        )
    )


def summarise_night(
    reconciler: Reconciler, registry: Registry, night: NightResults, now: datetime
) -> RunReport:
    """The run report, in the plan's order: the principals the Map applied, those an item could not
    finish (failed, with the error's name), and every other principal: deferred when it still has
    work (the rest of a night bigger than one execution), unchanged otherwise. One inventory read."""
    applied = {o.principal: o for result in night.results for o in result.outcomes}
    for result in night.results:
        for principal in result.unfinished:
            applied.setdefault(principal, _unfinished(principal, result.error))
    final = reconciler.inventory()
    plan = reconciler.plan(registry, now, final, night.plan.allow_mass_revoke)
    outcomes: list[PrincipalOutcome] = []
    for p in plan.principals:
        done = applied.pop(p.principal, None)
        outcomes.append(
            done if done is not None else _untouched(p.principal, reconciler.has_work(registry, p, final))
        )
    outcomes += applied.values()  # applied tonight and gone from the plan since (offboarded for good)
    return reconciler.close_run(
        registry, night.plan.started_at, now, tuple(outcomes), night.plan.findings, final
    )


def _unfinished(principal: str, error: str | None) -> PrincipalOutcome:
    return PrincipalOutcome(
        principal=principal, status="failed", error=f"task: {error or 'failed'}; the next run retries it"
    )


def _untouched(principal: str, has_work: bool) -> PrincipalOutcome:
    if has_work:
        return PrincipalOutcome(
            principal=principal, status="deferred", error="more work than one run; next run"
        )
    return PrincipalOutcome(principal=principal, status="unchanged")
