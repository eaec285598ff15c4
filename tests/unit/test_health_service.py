"""The health check run on in-memory fakes: it alerts on changes of state only, names the likely
causes the ledger knows, and records what it saw (unless told not to commit)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes import FakeClock, FakeHealthStore, FakePromQL, FakeWorld
from tests.unit.builders import registry
from tokenwarden.domain.health import HealthState
from tokenwarden.service.health import HealthReport

MONDAY_4PM = datetime(2030, 5, 6, 16, 0, tzinfo=UTC)  # working hours are 9-18 UTC, Monday to Friday
TUESDAY_4PM = MONDAY_4PM + timedelta(days=1)
TEAMS = registry("alpha", "beta")
V1 = "11111111-1111-4111-8111-111111111111"


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld(clock=FakeClock(MONDAY_4PM))


def states(report: HealthReport) -> dict[str, HealthState]:
    return {t.team: t.state for t in report.teams}


def test_teams_that_report_are_healthy_and_nobody_is_told(world: FakeWorld) -> None:
    querier = FakePromQL(
        {"alpha": MONDAY_4PM - timedelta(minutes=5), "beta": MONDAY_4PM - timedelta(hours=1)}
    )
    store = FakeHealthStore()

    report = world.health(querier, store).run(TEAMS, MONDAY_4PM)

    assert states(report) == {"alpha": HealthState.HEALTHY, "beta": HealthState.HEALTHY}
    assert report.queries == len(querier.queries) == 2  # one per metric
    assert world.notifier.published == []
    assert store.saves == 1 and set(store.records) == {"alpha", "beta"}


def test_the_newest_sample_of_any_metric_counts(world: FakeWorld) -> None:
    querier = FakePromQL(
        by_metric={
            "session": {"alpha": MONDAY_4PM - timedelta(hours=6)},
            "token": {"alpha": MONDAY_4PM - timedelta(minutes=10)},
        }
    )

    report = world.health(querier).run(registry("alpha"), MONDAY_4PM)

    assert states(report) == {"alpha": HealthState.HEALTHY}
    assert report.teams[0].last_sample_at == MONDAY_4PM - timedelta(minutes=10)


def test_a_team_that_stops_reporting_is_announced_once_with_the_likely_cause(world: FakeWorld) -> None:
    secret = world.principal_resources("alpha")
    world.engine().run_all(secret.arn, V1)
    (key,) = world.iam.keys_of("tw-alpha")
    world.iam.set_credential_status("tw-alpha", key.id, active=False)  # switched off by hand
    world.notifier.published.clear()
    querier = FakePromQL({"alpha": MONDAY_4PM - timedelta(hours=7)})
    checker = world.health(querier)

    report = checker.run(registry("alpha"), MONDAY_4PM)
    checker.run(registry("alpha"), MONDAY_4PM + timedelta(hours=1))

    assert states(report) == {"alpha": HealthState.SILENT}
    assert any("Inactive" in cause for cause in report.teams[0].likely_causes)
    (alert,) = world.notifier.published
    assert alert.event_type.value == "team_silent"
    assert all(cause in alert.description for cause in report.teams[0].likely_causes)
    assert "aws secretsmanager get-secret-value" in " ".join(alert.next_steps)


def test_a_silent_team_is_reminded_after_the_reminder_interval(world: FakeWorld) -> None:
    querier = FakePromQL({"alpha": MONDAY_4PM - timedelta(hours=7)})
    checker = world.health(querier)
    checker.run(registry("alpha"), MONDAY_4PM)

    checker.run(registry("alpha"), TUESDAY_4PM)

    assert world.notifier.events() == ["team_silent", "team_silent"]
    assert world.notifier.published[-1].context == {"reminder": "true"}


def test_a_team_that_never_reported_is_told_once_its_silence_is_long_enough(world: FakeWorld) -> None:
    checker = world.health(FakePromQL())

    first = checker.run(registry("alpha"), MONDAY_4PM)
    assert states(first) == {"alpha": HealthState.NEVER_REPORTED} and world.notifier.published == []

    second = checker.run(registry("alpha"), TUESDAY_4PM)

    assert world.notifier.events() == ["team_never_reported"]
    assert second.teams[0].likely_causes == (
        "no current key: nothing the team sends can be accepted",
        "TokenWarden has never issued a key for this team",
    )


def test_a_silent_team_that_reports_again_has_recovered(world: FakeWorld) -> None:
    querier = FakePromQL({"alpha": MONDAY_4PM - timedelta(hours=7)})
    checker = world.health(querier)
    checker.run(registry("alpha"), MONDAY_4PM)
    querier.last_seen = {"alpha": TUESDAY_4PM - timedelta(minutes=1)}

    report = checker.run(registry("alpha"), TUESDAY_4PM)

    assert states(report) == {"alpha": HealthState.RECOVERED}
    assert world.notifier.events() == ["team_silent", "team_recovered"]


def test_without_commit_nothing_is_announced_or_recorded(world: FakeWorld) -> None:
    store = FakeHealthStore()
    report = world.health(FakePromQL({"alpha": MONDAY_4PM - timedelta(hours=7)}), store).run(
        registry("alpha"), MONDAY_4PM, commit=False
    )

    assert report.transitions != () and world.notifier.published == [] and store.saves == 0


def test_teams_that_report_without_being_registered_are_listed(world: FakeWorld) -> None:
    querier = FakePromQL({"alpha": MONDAY_4PM, "stranger": MONDAY_4PM})
    report = world.health(querier).run(registry("alpha"), MONDAY_4PM)
    assert report.unregistered_teams == ("stranger",)
    assert set(states(report)) == {"alpha"}
