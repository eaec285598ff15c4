"""The nightly run in the state machine's three steps, on in-memory fakes: the plan lists who has
work, each principal is applied by the same code as the CLI's run, and the summary reports the
night as one run would (and announces it once)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes import FakeClock, FakeWorld
from tests.unit.builders import registry
from tokenwarden.cli import rendering
from tokenwarden.domain.outcomes import (
    BatchResult,
    Finding,
    NightRound,
    NightState,
    PrincipalOutcome,
    RoundResults,
    RunReport,
)
from tokenwarden.domain.registry import Registry
from tokenwarden.service import night
from tokenwarden.service.reconciler import Reconciler

T0 = datetime(2030, 5, 6, 2, 0, tzinfo=UTC)
TEAMS = registry("alpha", "beta", "gamma")


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld(clock=FakeClock(T0))


def through_steps(
    world: FakeWorld, reconciler: Reconciler, reg: Registry = TEAMS, **plan_options: int | bool
) -> tuple[NightRound, RunReport]:
    """A night as the state machine runs it: rounds of plan and each item on its own, then the
    summary, unless the first plan step summarised a quiet night itself. The plan returned is the
    first round's."""
    rounds = list(each_round(world, reconciler, reg, **plan_options))
    report = rounds[-1].report or night.summarise_night(reconciler, reg, rounds[-1].night, world.clock.now())
    return rounds[0], report


def each_round(
    world: FakeWorld, reconciler: Reconciler, reg: Registry = TEAMS, **plan_options: int | bool
) -> Iterator[NightRound]:
    """Every round's plan, the last one's (no more work) included, as the state machine loops."""
    previous: RoundResults | None = None
    while True:
        planned = night.plan_night(
            reconciler,
            reg,
            world.clock.now(),
            previous=previous,
            **plan_options,  # type: ignore[arg-type]
        )
        yield planned
        if not planned.more:
            return
        results = tuple(
            night.apply_batch(
                reconciler, reg, [p], world.clock.now(), planned.night.run_id, planned.night.allow_mass_revoke
            )
            for p in planned.work
        )
        previous = RoundResults(round=planned, results=results)


def statuses(report: RunReport) -> dict[str, str]:
    return {o.principal: o.status for o in report.outcomes}


def test_a_first_night_plans_every_principal_and_onboards_each(world: FakeWorld) -> None:
    plan, report = through_steps(world, world.reconciler())

    assert plan.work == ("alpha", "beta", "gamma")
    assert statuses(report) == {"alpha": "ok", "beta": "ok", "gamma": "ok"}
    assert report.counts == {"secure": 3, "onboard": 3, "principals_ok": 3}
    assert world.notifier.events().count("onboarded") == 3
    assert world.notifier.events()[-1] == "run_summary"
    assert world.notifier.events().count("run_summary") == 1
    assert report.min_days_to_expiry == 90.0


def test_the_steps_report_what_one_run_reports(world: FakeWorld) -> None:
    twin = FakeWorld(clock=FakeClock(T0))

    _, stepped = through_steps(world, world.reconciler())
    whole = twin.reconciler().run(TEAMS, T0)

    assert [(o.principal, o.status, o.done) for o in stepped.outcomes] == [
        (o.principal, o.status, o.done) for o in whole.outcomes
    ]
    assert stepped.counts == whole.counts
    assert world.notifier.events() == twin.notifier.events()


def test_a_quiet_night_has_no_items_and_reports_everyone_unchanged(world: FakeWorld) -> None:
    reconciler = world.reconciler()
    through_steps(world, reconciler)
    world.clock.advance(timedelta(days=1))
    world.notifier.published.clear()

    plan, report = through_steps(world, reconciler)

    assert plan.work == () and plan.report == report, "summarised by the plan step"
    assert statuses(report) == {"alpha": "unchanged", "beta": "unchanged", "gamma": "unchanged"}
    assert world.notifier.events() == ["run_summary"]


def test_a_quiet_night_reads_the_account_once(world: FakeWorld) -> None:
    reconciler = world.reconciler()
    through_steps(world, reconciler)
    world.clock.advance(timedelta(days=1))
    listed = world.secrets.count("list_secrets")

    through_steps(world, reconciler)

    assert world.secrets.count("list_secrets") - listed == 1


def test_a_night_bigger_than_one_round_is_done_in_rounds_by_one_execution(world: FakeWorld) -> None:
    reconciler = world.reconciler()

    rounds = list(each_round(world, reconciler, max_principals=2))

    assert [r.work for r in rounds] == [("alpha", "beta"), ("gamma",), ()]
    assert len({r.night.run_id for r in rounds}) == 1, "one run id for the whole night"
    report = night.summarise_night(reconciler, TEAMS, rounds[-1].night, world.clock.now())
    assert statuses(report) == {"alpha": "ok", "beta": "ok", "gamma": "ok"}
    assert report.counts == {"secure": 3, "onboard": 3, "principals_ok": 3}
    assert world.notifier.events().count("run_summary") == 1
    assert rounds[-1].night.stopped == "done" and rounds[-1].night.rounds == 2


def test_the_round_limit_leaves_the_rest_deferred_to_the_next_night(world: FakeWorld) -> None:
    reconciler = world.reconciler()

    plan, report = through_steps(world, reconciler, max_principals=2, max_rounds=1)

    assert plan.work == ("alpha", "beta")
    assert statuses(report) == {"alpha": "ok", "beta": "ok", "gamma": "deferred"}
    assert report.counts["principals_deferred"] == 1
    (stopped,) = [f for f in report.findings if f.kind == "night_stopped"]
    assert "round limit" in stopped.detail and "1 principal(s) with work are deferred" in stopped.detail
    plan, report = through_steps(world, reconciler, max_principals=2, max_rounds=1)
    assert plan.work == ("gamma",) and statuses(report)["gamma"] == "ok"
    assert not any(f.kind == "night_stopped" for f in report.findings)


def test_a_round_where_no_principal_progresses_stops_the_night(world: FakeWorld) -> None:
    reconciler = world.reconciler()
    for held in ("alpha", "beta"):  # another run is working on them
        assert world.leases().acquire(held, "another-run")

    rounds = list(each_round(world, reconciler, max_principals=2))

    assert [r.work for r in rounds] == [("alpha", "beta"), ()]
    assert rounds[-1].night.stopped == "no_progress"
    report = night.summarise_night(reconciler, TEAMS, rounds[-1].night, world.clock.now())
    assert statuses(report) == {"alpha": "locked", "beta": "locked", "gamma": "deferred"}
    assert world.iam.count("create_user") == 0
    (stopped,) = [f for f in report.findings if f.kind == "night_stopped"]
    assert "no principal of its last round finished" in stopped.detail
    assert world.notifier.events() == ["run_summary"]


@pytest.mark.parametrize(
    ("rounds", "waiting", "progressed", "stop"),
    [
        (1, 5, True, None),
        (59, 1, True, None),
        (1, 0, True, "done"),
        (60, 0, False, "done"),
        (1, 5, False, "no_progress"),
        (60, 5, False, "no_progress"),
        (60, 5, True, "round_limit"),
        (61, 5, True, "round_limit"),
    ],
)
def test_the_night_goes_on_while_work_is_left_the_last_round_progressed_and_rounds_remain(
    rounds: int, waiting: int, progressed: bool, stop: str | None
) -> None:
    assert night.next_round(rounds, 60, waiting, progressed) == stop


@pytest.mark.parametrize(
    ("statuses_of_round", "progressed"),
    [
        (("ok", "failed"), True),
        (("unchanged",), True),
        (("failed", "locked"), False),
        ((), False),
    ],
)
def test_progress_is_a_principal_that_finished(statuses_of_round: tuple[str, ...], progressed: bool) -> None:
    results = [BatchResult(outcomes=(outcome(f"p{n}", s),)) for n, s in enumerate(statuses_of_round)]
    results.append(BatchResult(unfinished=("gone",), error="States.Timeout"))

    assert night.progressed(results) is progressed


def outcome(principal: str, status: str, *done: str) -> PrincipalOutcome:
    return PrincipalOutcome.model_validate({"principal": principal, "status": status, "done": done})


def a_round(state: NightState, upto: str, *outcomes: PrincipalOutcome) -> RoundResults:
    planned = NightRound(night=state, work=tuple(o.principal for o in outcomes), upto=upto, more=True)
    return RoundResults(round=planned, results=tuple(BatchResult(outcomes=(o,)) for o in outcomes))


def test_rounds_accumulate_counts_and_outcomes_and_move_past_the_principals_they_took() -> None:
    start = NightState(run_id="ab", started_at=T0)

    first = night.tally(a_round(start, "b", outcome("a", "ok", "secure", "onboard"), outcome("b", "failed")))
    second = night.tally(a_round(first, "d", outcome("c", "ok", "secure", "rotate"), outcome("d", "locked")))

    assert (second.rounds, second.through) == (2, "d")
    assert second.counts == {
        "secure": 2,
        "onboard": 1,
        "rotate": 1,
        "principals_ok": 2,
        "principals_failed": 1,
        "principals_locked": 1,
    }
    assert [o.principal for o in second.outcomes] == ["a", "b", "c", "d"]
    assert second.unlisted == 0 and second.run_id == "ab"


def test_a_night_names_at_most_its_limit_of_outcomes_the_most_pressing_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(night, "MAX_LISTED_OUTCOMES", 2)
    start = NightState(run_id="ab", started_at=T0)

    first = night.tally(a_round(start, "b", outcome("a", "ok", "onboard"), outcome("b", "ok", "onboard")))
    second = night.tally(a_round(first, "d", outcome("c", "failed"), outcome("d", "ok", "onboard")))

    assert [(o.principal, o.status) for o in second.outcomes] == [("c", "failed"), ("a", "ok")]
    assert second.unlisted == 2
    assert (second.counts["principals_ok"], second.counts["principals_failed"]) == (3, 1)


def test_a_night_too_big_to_name_reports_every_principal_in_its_counts(
    world: FakeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(night, "MAX_LISTED_OUTCOMES", 2)
    reconciler = world.reconciler()
    five = registry(*[f"team-{n}" for n in range(5)])
    world.iam.fail("create_user", RuntimeError("boom"))  # the first principal's onboarding fails

    _, report = through_steps(world, reconciler, five, max_principals=2)

    assert report.counts["principals_ok"] == 4 and report.counts["principals_failed"] == 1
    assert len(report.outcomes) == 2
    assert report.outcomes[0].status == "failed"
    summary = world.notifier.published[-1]
    assert summary.description.startswith("5 principal(s): 4 ok, 1 failed")
    printed = rendering.render_report(report)
    assert "and 3 more principal(s), counted, not named" in printed
    assert printed.endswith("1 principal(s) failed.")
    world.clock.advance(timedelta(days=1))

    _, quiet = through_steps(world, reconciler, five, max_principals=2)

    assert quiet.counts["principals_unchanged"] == 4 and quiet.counts["principals_ok"] == 1
    assert sum(v for k, v in quiet.counts.items() if k.startswith("principals_")) == 5


def test_a_task_that_failed_for_good_reports_its_principal_failed(world: FakeWorld) -> None:
    reconciler = world.reconciler()
    planned = night.plan_night(reconciler, TEAMS, T0)
    results = (
        night.apply_batch(reconciler, TEAMS, ["alpha"], T0, planned.night.run_id),
        BatchResult(unfinished=("beta",), error="Lambda.ServiceException"),
        night.apply_batch(reconciler, TEAMS, ["gamma"], T0, planned.night.run_id),
    )
    last = night.plan_night(reconciler, TEAMS, T0, previous=RoundResults(round=planned, results=results))

    report = night.summarise_night(reconciler, TEAMS, last.night, T0)

    assert statuses(report) == {"alpha": "ok", "beta": "failed", "gamma": "ok"}
    (failed,) = report.failed
    assert failed.error is not None and "Lambda.ServiceException" in failed.error
    assert "beta (task: Lambda.ServiceException" in world.notifier.published[-1].description


def test_one_principals_failure_is_its_outcome_and_the_others_go_on(world: FakeWorld) -> None:
    reconciler = world.reconciler()
    world.iam.fail("create_user", RuntimeError("boom"))

    _, report = through_steps(world, reconciler)

    assert statuses(report) == {"alpha": "failed", "beta": "ok", "gamma": "ok"}
    assert world.notifier.published[-1].severity == "critical"


def test_the_guard_is_announced_once_by_the_plan_and_holds_the_offboardings(world: FakeWorld) -> None:
    reconciler = world.reconciler()
    everyone = registry(*[f"team-{n}" for n in range(6)])
    through_steps(world, reconciler, everyone)
    world.notifier.published.clear()

    plan, report = through_steps(world, reconciler, registry("team-0"))

    assert plan.work == ()
    assert world.notifier.events() == ["guard_tripped", "run_summary"]
    assert any(f.kind == "guard_tripped" for f in report.findings)
    assert world.iam.count("set_credential_status") == 0


def test_the_night_carries_a_bounded_share_of_the_plans_findings_and_counts_the_rest(
    world: FakeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconciler = world.reconciler()
    everyone = registry(*[f"team-{n}" for n in range(6)])
    through_steps(world, reconciler, everyone)
    monkeypatch.setattr(night, "MAX_FINDING_CHARS", 60)

    plan, report = through_steps(world, reconciler, registry("team-0"))

    (guard,) = plan.night.findings
    assert len(guard.detail) == 60 and guard.detail.endswith("(cut short)")
    assert guard.kind == "guard_tripped" and guard in report.findings
    monkeypatch.setattr(night, "MAX_CARRIED_FINDINGS", 0)

    plan, report = through_steps(world, reconciler, registry("team-0"))

    assert plan.night.findings == () and plan.night.unlisted_findings == 1
    (unlisted,) = [f for f in report.findings if f.kind == "findings_unlisted"]
    assert unlisted.detail.startswith("1 more finding(s)")
    assert "- findings_unlisted: 1 more finding(s)" in world.notifier.published[-1].description


def test_the_run_report_names_a_bounded_share_of_the_findings_and_the_run_summary_counts_them_all(
    world: FakeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconciler = world.reconciler()
    through_steps(world, reconciler, registry(*[f"team-{n}" for n in range(6)]))
    monkeypatch.setattr(night, "MAX_REPORTED_FINDINGS", 0)

    _, report = through_steps(world, reconciler, registry("team-0"))

    (counted,) = report.findings
    # The guard's finding and the audit's of the five principals it holds back.
    assert counted.kind == "findings_unlisted" and counted.detail.startswith("6 more finding(s) of the night")
    summary = world.notifier.published[-1].description
    assert "Drift and findings (6)" in summary and "- guard_tripped:" in summary


def test_a_report_within_its_limit_is_reported_whole() -> None:
    findings = tuple(Finding(principal=f"p{n}", kind="drift", detail="x" * 500) for n in range(3))
    report = RunReport(started_at=datetime(2030, 1, 1, tzinfo=UTC), outcomes=(), findings=findings, counts={})

    assert night.reported(report).findings == tuple(
        f.model_copy(update={"detail": "x" * (night.MAX_FINDING_CHARS - 16) + " ... (cut short)"})
        for f in findings
    )
    assert night.reported(report.model_copy(update={"findings": findings[:1]})).findings[0].principal == "p0"


def test_an_outcome_carries_a_bounded_note_that_counts_the_others() -> None:
    many = PrincipalOutcome(
        principal="a", status="ok", done=("retire",), notes=("x" * 500, "second", "third")
    )
    short = PrincipalOutcome(principal="b", status="ok", done=("retire",), notes=("team b was silent",))

    (note,) = night.bounded_notes(many).notes

    assert len(note) == night.MAX_NOTE_CHARS
    assert note.startswith("x" * 50) and note.endswith("(and 2 more note(s) in the reconciler's log)")
    assert night.bounded_notes(short) == short
    assert night.bounded_notes(many).model_copy(update={"notes": many.notes}) == many


def test_each_map_item_bounds_its_notes_and_its_output_reads_back_whole(
    world: FakeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconciler = world.reconciler()
    noted = PrincipalOutcome(principal="alpha", status="ok", done=("retire",), notes=("n" * 400,) * 2)
    monkeypatch.setattr(reconciler, "apply_principal", lambda *args, **kwargs: noted)

    result = night.apply_batch(reconciler, TEAMS, ["alpha"], T0, "ab")

    assert result.outcomes == (night.bounded_notes(noted),)
    assert BatchResult.model_validate(night.item_output(result)) == result
    state = night.tally(a_round(NightState(run_id="ab", started_at=T0), "alpha", *result.outcomes))
    assert NightState.model_validate_json(state.model_dump_json()) == state


def test_a_night_whose_map_failed_reports_its_principals_deferred(world: FakeWorld) -> None:
    reconciler = world.reconciler()
    planned = night.plan_night(reconciler, TEAMS, T0)

    report = night.summarise_night(reconciler, TEAMS, planned.night, T0)

    assert statuses(report) == {"alpha": "deferred", "beta": "deferred", "gamma": "deferred"}
    assert world.notifier.events() == ["run_summary"]
