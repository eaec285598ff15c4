"""The nightly run in the state machine's three steps, on in-memory fakes: the plan lists who has
work, each principal is applied by the same code as the CLI's run, and the summary reports the
night as one run would (and announces it once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes import FakeClock, FakeWorld
from tests.unit.builders import registry
from tokenwarden.domain.registry import Registry
from tokenwarden.service import night
from tokenwarden.service.reconciler import Reconciler, RunReport

T0 = datetime(2030, 5, 6, 2, 0, tzinfo=UTC)
TEAMS = registry("alpha", "beta", "gamma")


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld(clock=FakeClock(T0))


def through_steps(
    world: FakeWorld, reconciler: Reconciler, reg: Registry = TEAMS, **plan_options: int | bool
) -> tuple[night.NightPlan, RunReport]:
    """A night as the state machine runs it: plan, each item on its own, summary."""
    plan = night.plan_night(reconciler, reg, world.clock.now(), **plan_options)  # type: ignore[arg-type]
    results = tuple(
        night.apply_batch(reconciler, reg, [p], world.clock.now(), plan.run_id, plan.allow_mass_revoke)
        for p in plan.work
    )
    report = night.summarise_night(
        reconciler, reg, night.NightResults(plan=plan, results=results), world.clock.now()
    )
    return plan, report


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

    assert plan.work == ()
    assert statuses(report) == {"alpha": "unchanged", "beta": "unchanged", "gamma": "unchanged"}
    assert world.notifier.events() == ["run_summary"]


def test_principals_beyond_one_executions_share_are_deferred_to_the_next(world: FakeWorld) -> None:
    reconciler = world.reconciler()

    plan, report = through_steps(world, reconciler, max_principals=2)

    assert plan.work == ("alpha", "beta")
    assert statuses(report) == {"alpha": "ok", "beta": "ok", "gamma": "deferred"}
    assert report.counts["principals_deferred"] == 1
    plan, report = through_steps(world, reconciler, max_principals=2)
    assert plan.work == ("gamma",) and statuses(report)["gamma"] == "ok"


def test_a_task_that_failed_for_good_reports_its_principal_failed(world: FakeWorld) -> None:
    reconciler = world.reconciler()
    plan = night.plan_night(reconciler, TEAMS, T0)
    results = (
        night.apply_batch(reconciler, TEAMS, ["alpha"], T0, plan.run_id),
        night.BatchResult(unfinished=("beta",), error="Lambda.ServiceException"),
        night.apply_batch(reconciler, TEAMS, ["gamma"], T0, plan.run_id),
    )

    report = night.summarise_night(reconciler, TEAMS, night.NightResults(plan=plan, results=results), T0)

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


def test_a_night_whose_map_failed_reports_its_principals_deferred(world: FakeWorld) -> None:
    reconciler = world.reconciler()
    plan = night.plan_night(reconciler, TEAMS, T0)

    report = night.summarise_night(reconciler, TEAMS, night.NightResults(plan=plan, results=()), T0)

    assert statuses(report) == {"alpha": "deferred", "beta": "deferred", "gamma": "deferred"}
    assert world.notifier.events() == ["run_summary"]
