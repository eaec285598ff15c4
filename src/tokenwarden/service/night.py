"""The nightly run as the state machine runs it (statemachine/nightly.asl.json): in rounds, one
execution for the whole night however many principals have work.

1. `plan_night`: one inventory read and one plan; the next principals with work (at most
   `max_principals`, in id order after the last round's) become the Map's items. From the second
   round on it first folds the last round's results into the night (`tally`) and decides whether
   another round runs (`next_round`): not when nothing is left, when the last round made no
   progress (every principal failed or was locked) or when the round limit is reached.
2. `apply_batch`: each item, the same code the CLI's run applies to one principal
   (`Reconciler.apply_principal`: under its lease, read afresh, planned again, applied).
3. `summarise_night`: once, after the last round: the night's counts, every principal no round
   took reported as unchanged or deferred, the account audited, one `run_summary` and the run's
   metrics; the run report.

What passes between the steps and the rounds is JSON that Step Functions carries (256 KiB at most
per state), so it is bounded: one round's ids and outcomes, the night's counts, the id the last
round reached, at most `MAX_LISTED_OUTCOMES` outcomes (failures first), each with at most
`MAX_NOTES` notes of `MAX_NOTE_CHARS`, and at most `MAX_CARRIED_FINDINGS` of the first plan's
findings of `MAX_FINDING_CHARS`; what does not fit is counted. Never a token.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from tokenwarden.domain import notifications as notes
from tokenwarden.domain.model import Inventory
from tokenwarden.domain.outcomes import (
    DEFAULT_MAX_PRINCIPALS,
    DEFAULT_MAX_ROUNDS,
    BatchResult,
    Finding,
    NightRound,
    NightState,
    PrincipalOutcome,
    RoundResults,
    RunReport,
    Stop,
)
from tokenwarden.domain.registry import Registry
from tokenwarden.observability import count
from tokenwarden.service.reconciler import Reconciler

# Outcomes the night carries by name and reports (failures first); beyond them, counts only.
# 200 outcomes with their errors take about 40 KiB, next to a round's results in the plan step's input.
MAX_LISTED_OUTCOMES = 200
# Notes an outcome carries in the state, each at most this long; the rest are counted. A principal
# retires at most its one previous key a night, and its note takes about 150 characters (more only
# with ids near the 48-character limit).
MAX_NOTES = 1
MAX_NOTE_CHARS = 150
# The first plan's findings the night carries to the summary (the run_summary lists 10), each at most
# this long; the rest are counted. The guard's finding names every principal it holds, so its length
# grows with the registry.
MAX_CARRIED_FINDINGS = 10
MAX_FINDING_CHARS = 400
# Findings the run report (the summary step's result and the execution's output) names: the drift
# audit finds one a principal at worst, which for a large registry would not fit a state. The rest
# are counted; the run_summary counts every one and `tokenwarden audit` lists them.
MAX_REPORTED_FINDINGS = 50
_CUT = " ... (cut short)"

# The order in which outcomes keep their place in a bounded list: what a person must act on first.
_PRIORITY = {"failed": 0, "locked": 1, "deferred": 2, "ok": 3, "unchanged": 4}


def plan_night(
    reconciler: Reconciler,
    registry: Registry,
    now: datetime,
    allow_mass_revoke: bool = False,
    max_principals: int = DEFAULT_MAX_PRINCIPALS,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    previous: RoundResults | None = None,
) -> NightRound:
    """The next round: the last one tallied, then (unless the night stops) one inventory read and
    one plan. The first round starts the night (its run id) and announces the blast-radius guard,
    once, as the Lambda run does."""
    if previous is None:
        night = NightState(run_id=uuid.uuid4().hex, started_at=now, allow_mass_revoke=allow_mass_revoke)
    else:
        night = tally(previous)
        stop = next_round(night.rounds, max_rounds, previous.round.waiting, progressed(previous.results))
        if stop is not None:
            return NightRound(night=night.model_copy(update={"stopped": stop}))
    inventory = reconciler.inventory()
    plan = reconciler.plan(registry, now, inventory, night.allow_mass_revoke)
    if previous is None:
        night = night.model_copy(
            update={
                "findings": carried_findings(plan.findings),
                "unlisted_findings": max(0, len(plan.findings) - MAX_CARRIED_FINDINGS),
            }
        )
        if plan.guard is not None and plan.guard.tripped:
            reconciler.notifier.publish(
                notes.guard_tripped(plan.guard.would_deactivate, plan.guard.managed, plan.guard.limit, now)
            )
            count("GuardTripped", 1)
    waiting = sorted(
        p.principal
        for p in plan.principals
        if _after(p.principal, night.through) and reconciler.has_work(registry, p, inventory)
    )
    work = tuple(waiting[:max_principals])
    if not work:
        night = night.model_copy(update={"stopped": "done"})
        if previous is not None:
            return NightRound(night=night)
        # A quiet night: the account as this step read it is the account at the night's end.
        return NightRound(night=night, report=summarise_night(reconciler, registry, night, now, inventory))
    return NightRound(night=night, work=work, upto=work[-1], waiting=len(waiting) - len(work), more=True)


def next_round(rounds: int, max_rounds: int, waiting: int, progressed: bool) -> Stop | None:
    """Whether the night goes on after `rounds` rounds (None) or why it stops: nothing was left
    beyond the last round, the last round made no progress (every one of its principals failed or
    was locked: another round would most likely fare no better, and the rest is reported
    deferred), or the round limit is reached."""
    if waiting == 0:
        return "done"
    if not progressed:
        return "no_progress"
    if rounds >= max_rounds:
        return "round_limit"
    return None


def progressed(results: Iterable[BatchResult]) -> bool:
    """Whether at least one principal of a round finished its work (applied, or found nothing to do)."""
    return any(o.status in ("ok", "unchanged") for result in results for o in result.outcomes)


def tally(previous: RoundResults) -> NightState:
    """The night with one more round folded in: its counts added, its outcomes named while there
    is room (failures first), the rest counted in `unlisted`, and `through` moved past it."""
    night = previous.round.night
    outcomes = round_outcomes(previous.results)
    counts = Counter(night.counts)
    for outcome in outcomes:
        counts.update(outcome.done)
        counts[f"principals_{outcome.status}"] += 1
    listed = _most_pressing(night.outcomes + outcomes, MAX_LISTED_OUTCOMES)
    return night.model_copy(
        update={
            "rounds": night.rounds + 1,
            "through": previous.round.upto,
            "counts": dict(counts),
            "outcomes": listed,
            "unlisted": night.unlisted + len(night.outcomes) + len(outcomes) - len(listed),
        }
    )


def round_outcomes(results: Iterable[BatchResult]) -> tuple[PrincipalOutcome, ...]:
    """Every Map item's outcomes; a principal its item did not finish is failed, by the error's name."""
    outcomes: dict[str, PrincipalOutcome] = {}
    for result in results:
        for outcome in result.outcomes:
            outcomes[outcome.principal] = outcome
        for principal in result.unfinished:
            outcomes.setdefault(principal, _unfinished(principal, result.error))
    return tuple(outcomes.values())


def apply_batch(
    reconciler: Reconciler,
    registry: Registry,
    principals: Sequence[str],
    now: datetime,
    run_id: str,
    allow_mass_revoke: bool = False,
) -> BatchResult:
    """One Map item: each of its principals applied on its own (a failure is its outcome), its
    notes bounded for the state."""
    return BatchResult(
        outcomes=tuple(
            bounded_notes(reconciler.apply_principal(registry, principal, now, run_id, allow_mass_revoke))
            for principal in principals
        )
    )


def item_output(result: BatchResult) -> dict[str, Any]:
    """A Map item's result as JSON for the state: fields at their defaults are left out (the plan
    step reads them back as defaults), which keeps a round's 500 results about 20 KiB smaller."""
    return result.model_dump(mode="json", exclude_defaults=True)


def bounded_notes(outcome: PrincipalOutcome) -> PrincipalOutcome:
    """The outcome with at most `MAX_NOTES` notes of at most `MAX_NOTE_CHARS` each, the last of
    them counting the notes left out (the reconciler logs every note as it is made)."""
    left = len(outcome.notes) - MAX_NOTES
    if left <= 0:
        kept = tuple(_cut(note, MAX_NOTE_CHARS) for note in outcome.notes)
    else:
        more = f" (and {left} more note(s) in the reconciler's log)"
        *first, last = outcome.notes[:MAX_NOTES]
        kept = (
            *(_cut(note, MAX_NOTE_CHARS) for note in first),
            _cut(last, MAX_NOTE_CHARS - len(more)) + more,
        )
    if kept == outcome.notes:
        return outcome
    return outcome.model_copy(update={"notes": kept})


def carried_findings(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """The first `MAX_CARRIED_FINDINGS` findings, each detail at most `MAX_FINDING_CHARS`."""
    return tuple(
        f.model_copy(update={"detail": _cut(f.detail, MAX_FINDING_CHARS)})
        for f in findings[:MAX_CARRIED_FINDINGS]
    )


def summarise_night(
    reconciler: Reconciler,
    registry: Registry,
    night: NightState,
    now: datetime,
    final: Inventory | None = None,
) -> RunReport:
    """The run report, once per night, in the plan's order: the principals the rounds applied, and
    every other one, deferred when it still has work (beyond the last round: a night stopped early,
    or a round whose Map failed), unchanged otherwise. One inventory read, unless the account as it
    is now is given (`final`: a quiet night's plan step read it). A night bigger than
    `MAX_LISTED_OUTCOMES` names its most pressing outcomes and counts every principal."""
    final = final if final is not None else reconciler.inventory()
    plan = reconciler.plan(registry, now, final, night.allow_mass_revoke)
    applied = {o.principal: o for o in night.outcomes}
    counts = Counter(night.counts)
    outcomes: list[PrincipalOutcome] = []
    behind = 0  # principals the rounds passed without naming them: unchanged, or applied and unlisted
    for p in plan.principals:
        outcome = applied.pop(p.principal, None)
        if outcome is None and night.unlisted and not _after(p.principal, night.through):
            behind += 1
            continue
        if outcome is None:
            outcome = _untouched(p.principal, reconciler.has_work(registry, p, final))
            counts[f"principals_{outcome.status}"] += 1
        outcomes.append(outcome)
    outcomes += applied.values()  # applied tonight and gone from the plan since (offboarded for good)
    counts["principals_unchanged"] += max(0, behind - night.unlisted)
    count("NightRounds", night.rounds)
    report = reconciler.close_run(
        registry,
        night.started_at,
        now,
        _in_plan_order(outcomes, _most_pressing(outcomes, MAX_LISTED_OUTCOMES)),
        night.findings + _unlisted_findings(night) + _stopped_early(night, counts["principals_deferred"]),
        final,
        counts={k: v for k, v in counts.items() if v},
    )
    return reported(report)


def reported(report: RunReport) -> RunReport:
    """The report as the state machine carries it: at most `MAX_REPORTED_FINDINGS` findings, each
    at most `MAX_FINDING_CHARS` long, and one that counts the rest."""
    findings = tuple(
        f.model_copy(update={"detail": _cut(f.detail, MAX_FINDING_CHARS)})
        for f in report.findings[:MAX_REPORTED_FINDINGS]
    )
    left = len(report.findings) - len(findings)
    if left > 0:
        findings += (_unlisted(f"{left} more finding(s) of the night; `tokenwarden audit` shows the drift"),)
    return report.model_copy(update={"findings": findings})


def _unlisted_findings(night: NightState) -> tuple[Finding, ...]:
    """The first plan's findings the night had no room to carry, as one finding that counts them,
    so the run_summary still says how many there were."""
    if not night.unlisted_findings:
        return ()
    return (
        _unlisted(
            f"{night.unlisted_findings} more finding(s) of the night's plan; `tokenwarden plan` shows every one"
        ),
    )


def _unlisted(detail: str) -> Finding:
    return Finding(principal=None, kind="findings_unlisted", detail=detail)


def _cut(text: str, limit: int) -> str:
    """`text`, or its start and a mark that it was cut, in at most `limit` characters."""
    if len(text) <= limit:
        return text
    return text[: limit - len(_CUT)] + _CUT


def _stopped_early(night: NightState, deferred: int) -> tuple[Finding, ...]:
    """A night that stopped with work left says why, so that the run_summary does."""
    if not deferred or night.stopped not in ("no_progress", "round_limit"):
        return ()
    why = (
        "no principal of its last round finished (each failed or was locked)"
        if night.stopped == "no_progress"
        else "it reached its round limit (NightlyMaxRounds)"
    )
    return (
        Finding(
            principal=None,
            kind="night_stopped",
            detail=f"the night stopped after {night.rounds} round(s): {why}; "
            f"{deferred} principal(s) with work are deferred to the next run",
        ),
    )


def _after(principal: str, through: str | None) -> bool:
    """Whether `principal` comes after the last round's reach (every principal does before the first)."""
    return through is None or principal > through


def _most_pressing(outcomes: Sequence[PrincipalOutcome], limit: int) -> tuple[PrincipalOutcome, ...]:
    """At most `limit` outcomes, the most pressing kept (failed, locked, deferred, ok, unchanged)."""
    if len(outcomes) <= limit:
        return tuple(outcomes)
    return tuple(sorted(outcomes, key=lambda o: _PRIORITY[o.status])[:limit])


def _in_plan_order(
    ordered: Sequence[PrincipalOutcome], kept: Sequence[PrincipalOutcome]
) -> tuple[PrincipalOutcome, ...]:
    keep = {o.principal for o in kept}
    return tuple(o for o in ordered if o.principal in keep)


def _unfinished(principal: str, error: str | None) -> PrincipalOutcome:
    return PrincipalOutcome(
        principal=principal, status="failed", error=f"task: {error or 'failed'}; the next run retries it"
    )


def _untouched(principal: str, has_work: bool) -> PrincipalOutcome:
    if has_work:
        return PrincipalOutcome(
            principal=principal, status="deferred", error="more work than one night; next run"
        )
    return PrincipalOutcome(principal=principal, status="unchanged")
