"""Snoozes on in-memory fakes: the service checks a request in full before it writes, the health check
reads every snooze once per run and shows the snoozed team, and `--until` reads in the team's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes import FakeClock, FakePromQL, FakeSnoozeLog, FakeWorld
from tests.unit.builders import registry
from tokenwarden.cli.parser import build_parser, command_name
from tokenwarden.cli.rendering import render_health, render_unsnooze
from tokenwarden.domain.health import HealthState
from tokenwarden.domain.reason import ReasonError
from tokenwarden.domain.registry import RegistryError, parse_registry
from tokenwarden.domain.snooze import SnoozeError, snooze_end
from tokenwarden.service.snooze import Snoozes

MONDAY_4PM = datetime(2030, 5, 6, 16, 0, tzinfo=UTC)  # working hours are 9-18 UTC, Monday to Friday
OPERATOR = "arn:aws:iam::123456789012:role/operator"
TEAMS = registry("alpha", "beta")


def test_until_is_read_in_the_teams_time_zone() -> None:
    now = datetime(2027, 1, 4, 12, tzinfo=UTC)
    assert snooze_end("2027-01-06", "Europe/Berlin", now) == datetime(2027, 1, 5, 23, tzinfo=UTC)
    assert snooze_end("2027-01-06T09:30", "America/New_York", now) == datetime(2027, 1, 6, 14, 30, tzinfo=UTC)
    assert snooze_end("2027-01-06T09:30Z", "America/New_York", now) == datetime(2027, 1, 6, 9, 30, tzinfo=UTC)


def test_a_snooze_is_recorded_with_who_when_until_and_why() -> None:
    log = FakeSnoozeLog()
    snooze = Snoozes(log).snooze(TEAMS, "alpha", "2030-05-10", " offsite ", OPERATOR, MONDAY_4PM)
    [record] = log.written
    assert (record.team, record.action, record.at, record.by) == ("alpha", "snooze", MONDAY_4PM, OPERATOR)
    assert record.until == snooze.until == datetime(2030, 5, 10, tzinfo=UTC)
    assert record.reason == snooze.reason == "offsite"


@pytest.mark.parametrize(
    ("team", "until", "reason", "error"),
    [
        ("gamma", "2030-05-10", "offsite", RegistryError),
        ("alpha", "2030-05-10", "offsite\x1b[2J", ReasonError),
        ("alpha", "2030-05-10", "", ReasonError),
        ("alpha", "2030-05-10", "x" * 201, SnoozeError),
        ("alpha", "2030-05-06", "offsite", SnoozeError),
        ("alpha", "2030-09-01", "offsite", SnoozeError),
    ],
)
def test_a_refused_snooze_records_nothing(team: str, until: str, reason: str, error: type[Exception]) -> None:
    log = FakeSnoozeLog()
    with pytest.raises(error):
        Snoozes(log).snooze(TEAMS, team, until, reason, OPERATOR, MONDAY_4PM)
    assert log.written == []


def test_an_unsnooze_ends_the_snooze_in_force_and_nothing_is_recorded_without_one() -> None:
    log = FakeSnoozeLog()
    snoozes = Snoozes(log)
    assert snoozes.unsnooze(TEAMS, "alpha", OPERATOR, MONDAY_4PM) is None
    assert log.written == []
    snoozes.snooze(TEAMS, "alpha", "2030-05-10", "offsite", OPERATOR, MONDAY_4PM)
    ended = snoozes.unsnooze(TEAMS, "alpha", OPERATOR, MONDAY_4PM + timedelta(hours=1))
    assert ended is not None and ended.reason == "offsite"
    assert [r.action for r in log.written] == ["snooze", "unsnooze"]
    assert snoozes.active(MONDAY_4PM + timedelta(hours=2)) == {}
    assert "ended at 2030-05-06 17:00 UTC" in render_unsnooze("alpha", ended, MONDAY_4PM + timedelta(hours=1))


def test_a_team_known_only_by_its_developers_can_be_snoozed_in_its_registry() -> None:
    reg = parse_registry(
        "principals:\n  - id: alpha\n  - id: ann\n    kind: developer\n    team: alpha\n", "teams.yaml"
    )
    with pytest.raises(RegistryError, match=r"unknown team 'ann': not in teams.yaml \(its teams: alpha\)"):
        Snoozes(FakeSnoozeLog()).snooze(reg, "ann", "2030-05-10", "offsite", OPERATOR, MONDAY_4PM)


def test_the_health_check_reads_the_snoozes_once_a_run_and_shows_the_snoozed_team() -> None:
    world = FakeWorld(clock=FakeClock(MONDAY_4PM))
    log = FakeSnoozeLog()
    Snoozes(log).snooze(TEAMS, "beta", "2030-05-10", "offsite", OPERATOR, MONDAY_4PM - timedelta(hours=8))
    # beta last reported on Monday at 08:00 UTC, before work: without its snooze it would be silent.
    querier = FakePromQL({"alpha": MONDAY_4PM, "beta": MONDAY_4PM - timedelta(hours=8)})
    checker = world.health(querier)
    checker.snoozes = log
    report = checker.run(TEAMS, MONDAY_4PM)
    assert log.reads == 1
    teams = {t.team: t for t in report.teams}
    assert teams["beta"].state is HealthState.HEALTHY and report.transitions == ()
    assert teams["beta"].snoozed_until == datetime(2030, 5, 10, tzinfo=UTC)
    assert (teams["beta"].snooze_reason, teams["beta"].snoozed_by) == ("offsite", OPERATOR)
    assert teams["alpha"].snoozed_until is None
    assert f"beta: snoozed until 2030-05-10 00:00 UTC by {OPERATOR}: offsite" in render_health(report)

    checker.snoozes = None
    unsnoozed = checker.run(TEAMS, MONDAY_4PM, commit=False)
    assert {t.team: t.state for t in unsnoozed.teams}["beta"] is HealthState.SILENT


def test_health_alone_still_runs_the_check_and_its_subcommands_are_named() -> None:
    parser = build_parser()
    assert command_name(parser.parse_args(["health", "--dry-run"])) == "health"
    snooze = parser.parse_args(["health", "snooze", "alpha", "--until", "2030-05-10", "--reason", "offsite"])
    assert command_name(snooze) == "health snooze"
    assert (snooze.team, snooze.until, snooze.reason) == ("alpha", "2030-05-10", "offsite")
    assert command_name(parser.parse_args(["health", "unsnooze", "alpha"])) == "health unsnooze"


def test_the_cli_reference_lists_health_and_its_subcommands() -> None:
    from tokenwarden.cli.reference import leaf_commands

    names = [c.prog for c in leaf_commands(build_parser())]
    assert names[names.index("tokenwarden health") :][:3] == [
        "tokenwarden health",
        "tokenwarden health snooze",
        "tokenwarden health unsnooze",
    ]
    assert "tokenwarden local" not in names and "tokenwarden local up" in names
