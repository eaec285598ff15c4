"""Quiet time: public holidays, quiet days and snoozes do not count toward silence, exactly as nights
and weekends do not, and a team is not reminded of its silence during them. Fixed dates: 2026-12-25
is a Friday (a public holiday in Germany), 2027-02-12 a Friday (Lincoln's Birthday, a holiday in New
York State but not a federal one), 2027-02-15 a Monday (Washington's Birthday, federal)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import ROOT
from tokenwarden.domain.calendar import DayRange, Span, day_range, holiday_dates, merged, overlap, quiet_dates
from tokenwarden.domain.health import (
    HealthState,
    TeamRecord,
    Transition,
    active_hours,
    evaluate,
    in_quiet_time,
)
from tokenwarden.domain.registry import ActivityProfile, Registry, RegistryError, parse_registry
from tokenwarden.domain.snooze import SnoozeRecord, snooze_spans

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
EVERY_15_MINUTES = timedelta(minutes=15)
OPERATOR = "arn:aws:iam::123456789012:user/ops"


def berlin(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def new_york(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


def team(activity: str, name: str = "alpha") -> Registry:
    """A registry of one team with the given activity block (YAML, indented under `activity:`)."""
    return parse_registry(f"principals:\n  - id: {name}\n    activity:\n{activity}", "teams.yaml")


def first_silence(
    reg: Registry,
    last_sample: datetime,
    until: datetime,
    snoozes: Mapping[str, Sequence[Span]] | None = None,
) -> datetime | None:
    """Runs the check every 15 minutes from the last sample on; when `team_silent` first went out."""
    [name] = sorted(reg.teams)
    records: dict[str, TeamRecord] = {}
    at = last_sample
    while at <= until:
        result = evaluate(reg, {name: last_sample}, records, at, snoozes=snoozes)
        records = result.records
        if any(t.event == "team_silent" for t in result.transitions):
            return at
        at += EVERY_15_MINUTES
    return None


# --- the registry ---------------------------------------------------------------------------------------


def test_a_calendar_and_quiet_days_are_read_from_the_registry_and_merged_over_the_defaults() -> None:
    reg = parse_registry(
        """
defaults:
  activity:
    holidays: DE
    quiet_days: [2026-12-24]
principals:
  - id: alpha
  - id: beta
    activity:
      holidays: US-NY
      quiet_days: [2026-12-24, "2026-12-28..2027-01-01"]
""",
        "teams.yaml",
    )
    alpha, beta = (p.activity for p in reg.principals)
    assert (alpha.holidays, alpha.quiet_days) == ("DE", (DayRange(date(2026, 12, 24), date(2026, 12, 24)),))
    assert beta.holidays == "US-NY"
    assert beta.quiet_days[1] == DayRange(date(2026, 12, 28), date(2027, 1, 1))
    assert [str(d) for d in beta.quiet_days] == ["2026-12-24", "2026-12-28..2027-01-01"]


@pytest.mark.parametrize(
    ("activity", "said"),
    [
        ("holidays: XX", "unknown holiday calendar country 'XX'"),
        ("holidays: DE-ZZ", "DE has no holiday subdivision 'ZZ' (it has BB, BE, BW, BY"),
        ("holidays: US-XX", "US has no holiday subdivision 'XX'"),
        ("holidays: de", "'de' is not a holiday calendar: write a country code"),
        ("holidays: NO", 'write the calendar quoted, e.g. "NO"'),
        ("quiet_days: [2027-01-05..2027-01-01]", "the range '2027-01-05..2027-01-01' ends before it starts"),
        ("quiet_days: [2026-01-01..2027-06-01]", "longer than 366 days"),
        ("quiet_days: [christmas]", "'christmas' is not a date"),
        ("quiet_days: [2026-12-24T10:00:00Z]", "is a time: a quiet day is a date"),
        ("quiet_days: 2026-12-24", "must be a list, not a date"),
    ],
)
def test_a_bad_calendar_or_quiet_day_is_a_registry_error_naming_the_team_and_the_field(
    activity: str, said: str
) -> None:
    with pytest.raises(RegistryError) as raised:
        team(f"      {activity}\n", name="platform-eng")
    message = str(raised.value)
    assert "principals[0] (id 'platform-eng'), field activity." in message
    assert said in message


def test_a_date_that_does_not_exist_is_a_yaml_error_with_its_line() -> None:
    with pytest.raises(RegistryError, match=r"line 4, column 20: '2026-13-01' is not a date"):
        team("      quiet_days: [2026-13-01]\n")


def test_a_calendar_is_checked_once_per_code_not_once_per_principal() -> None:
    from tokenwarden.domain.calendar import check_calendar

    check_calendar.cache_clear()
    principals = "\n".join(f"  - id: team-{n}" for n in range(50))
    parse_registry(f"defaults:\n  activity:\n    holidays: DE-BY\nprincipals:\n{principals}\n", "teams.yaml")
    assert check_calendar.cache_info().misses == 1


# --- the calendar ---------------------------------------------------------------------------------------


def test_holidays_come_from_the_country_and_its_subdivision() -> None:
    february = (date(2027, 2, 1), date(2027, 2, 28))
    assert holiday_dates("US", *february) == {date(2027, 2, 15)}
    assert holiday_dates("US-NY", *february) == {date(2027, 2, 12), date(2027, 2, 15)}
    assert date(2026, 12, 25) in holiday_dates("DE", date(2026, 12, 1), date(2026, 12, 31))


def test_quiet_days_and_holidays_combine_within_the_asked_dates() -> None:
    days = (day_range("2026-12-24"), day_range("2026-12-30..2027-01-02"))
    found = quiet_dates("DE", days, date(2026, 12, 24), date(2027, 1, 1))
    assert found == {date(2026, 12, d) for d in (24, 25, 26, 30, 31)} | {date(2027, 1, 1)}
    assert quiet_dates(None, (), date(2026, 1, 1), date(2026, 12, 31)) == frozenset()


def test_spans_are_merged_before_they_are_subtracted() -> None:
    at = berlin(2027, 6, 7, 9)
    spans = merged(
        [Span(at, at + timedelta(hours=2)), Span(at + timedelta(hours=1), at + timedelta(hours=3))]
    )
    assert spans == [Span(at, at + timedelta(hours=3))]
    assert overlap(spans, at + timedelta(hours=2), at + timedelta(hours=5)) == timedelta(hours=1)


# --- active hours ---------------------------------------------------------------------------------------

OFFICE_DE = ActivityProfile(timezone="Europe/Berlin", holidays="DE")


def test_a_public_holiday_counts_zero_like_a_weekend_day() -> None:
    # Thursday 24 December 16:00 to Monday 28 December 11:00: Thursday's last 2 h, Monday's first 2 h.
    start, end = berlin(2026, 12, 24, 16), berlin(2026, 12, 28, 11)
    assert active_hours(OFFICE_DE, start, end) == pytest.approx(4.0)
    assert active_hours(ActivityProfile(timezone="Europe/Berlin"), start, end) == pytest.approx(13.0)


def test_a_holiday_is_a_local_date_in_the_teams_zone() -> None:
    # 25 December in Berlin starts at 23:00 UTC on the 24th; a 24-hour working day shows the edge.
    profile = OFFICE_DE.model_copy(update={"start": datetime.min.time(), "end": datetime.max.time()})
    assert active_hours(profile, berlin(2026, 12, 24, 23), berlin(2026, 12, 25, 1)) == pytest.approx(1.0)


def test_quiet_days_count_zero() -> None:
    profile = ActivityProfile(timezone="Europe/Berlin", quiet_days=(day_range("2027-06-08..2027-06-09"),))
    assert active_hours(profile, berlin(2027, 6, 7, 9), berlin(2027, 6, 11, 9)) == pytest.approx(18.0)


def test_snoozed_spans_count_zero_and_only_their_working_hours_are_removed() -> None:
    profile = ActivityProfile(timezone="Europe/Berlin")
    snoozed = [Span(berlin(2027, 6, 7, 12), berlin(2027, 6, 8, 12))]  # Monday noon to Tuesday noon
    assert active_hours(profile, berlin(2027, 6, 7, 9), berlin(2027, 6, 8, 18), snoozed) == pytest.approx(9.0)


def test_quiet_time_is_known_for_now() -> None:
    snoozed = [Span(berlin(2027, 6, 7, 12), berlin(2027, 6, 8, 12))]
    assert in_quiet_time(OFFICE_DE, (), berlin(2026, 12, 25, 10))
    assert not in_quiet_time(OFFICE_DE, (), berlin(2026, 12, 28, 10))
    assert in_quiet_time(OFFICE_DE, snoozed, berlin(2027, 6, 7, 12))
    assert not in_quiet_time(OFFICE_DE, snoozed, berlin(2027, 6, 8, 12))


# --- the health check every 15 minutes ------------------------------------------------------------------


def test_a_silence_whose_threshold_falls_on_a_holiday_is_announced_after_it() -> None:
    last = berlin(2026, 12, 24, 16)  # Thursday; 2 working hours left that day, the threshold is 4
    with_calendar = team("      timezone: Europe/Berlin\n      holidays: DE\n")
    without = team("      timezone: Europe/Berlin\n")
    assert first_silence(without, last, berlin(2026, 12, 29, 0)) == berlin(2026, 12, 25, 11)
    assert first_silence(with_calendar, last, berlin(2026, 12, 29, 0)) == berlin(2026, 12, 28, 11)


@pytest.mark.parametrize("minute", [0, 1, 7, 14, 15, 29, 44, 52, 59])
def test_a_silence_is_announced_within_15_minutes_of_its_threshold(minute: int) -> None:
    """The schedule runs on the quarter hours; the last sample falls anywhere between them."""
    last = berlin(2027, 6, 7, 10, minute)  # Monday; the 4-hour threshold falls at 14:<minute>
    reg = team("      timezone: Europe/Berlin\n")
    records: dict[str, TeamRecord] = {}
    run = berlin(2027, 6, 7, 10)
    while run < berlin(2027, 6, 8, 0):
        result = evaluate(reg, {"alpha": last}, records, run)
        records = result.records
        if result.transitions:
            break
        run += EVERY_15_MINUTES
    threshold = last + timedelta(hours=4)
    assert [t.event for t in result.transitions] == ["team_silent"]
    assert threshold <= run < threshold + EVERY_15_MINUTES


def test_a_subdivision_has_its_own_holidays() -> None:
    last = new_york(2027, 2, 11, 16)  # Thursday
    federal = team("      timezone: America/New_York\n      holidays: US\n")
    state = team("      timezone: America/New_York\n      holidays: US-NY\n")
    # Friday 12th is a working day for the nation, Lincoln's Birthday in New York State; Monday 15th is
    # Washington's Birthday for both.
    assert first_silence(federal, last, new_york(2027, 2, 17, 0)) == new_york(2027, 2, 12, 11)
    assert first_silence(state, last, new_york(2027, 2, 17, 0)) == new_york(2027, 2, 16, 11)


def test_quiet_days_hold_the_alert_until_the_team_is_back() -> None:
    reg = team(
        "      timezone: Europe/Berlin\n      holidays: DE\n      quiet_days: [2026-12-28..2027-01-01]\n"
    )
    assert first_silence(reg, berlin(2026, 12, 24, 16), berlin(2027, 1, 6, 0)) == berlin(2027, 1, 4, 11)


def record(action: str, at: datetime, until: datetime | None = None) -> SnoozeRecord:
    return SnoozeRecord(
        team="alpha",
        action=action,  # type: ignore[arg-type]
        at=at,
        by=OPERATOR,
        until=until,
        reason="offsite" if action == "snooze" else None,
    )


def test_a_snooze_that_ends_lets_the_silence_count_again() -> None:
    reg = team("      timezone: Europe/Berlin\n")
    last = berlin(2027, 6, 7, 10)  # Monday
    snoozed = snooze_spans([record("snooze", berlin(2027, 6, 7, 10, 30), until=berlin(2027, 6, 9, 0))])
    # Half an hour on Monday, then nothing until Wednesday 09:00, then 3.5 h.
    assert first_silence(reg, last, berlin(2027, 6, 10, 0), snoozed) == berlin(2027, 6, 9, 12, 30)
    assert first_silence(reg, last, berlin(2027, 6, 10, 0)) == berlin(2027, 6, 7, 14)


def test_an_unsnooze_ends_the_snooze_early() -> None:
    reg = team("      timezone: Europe/Berlin\n")
    snoozed = snooze_spans(
        [
            record("snooze", berlin(2027, 6, 7, 10, 30), until=berlin(2027, 6, 12, 0)),
            record("unsnooze", berlin(2027, 6, 8, 9)),
        ]
    )
    assert snoozed == {"alpha": [Span(berlin(2027, 6, 7, 10, 30), berlin(2027, 6, 8, 9))]}
    assert first_silence(reg, berlin(2027, 6, 7, 10), berlin(2027, 6, 10, 0), snoozed) == berlin(
        2027, 6, 8, 12, 30
    )


def test_a_new_snooze_replaces_the_one_in_force() -> None:
    spans = snooze_spans(
        [
            record("snooze", berlin(2027, 6, 7, 10), until=berlin(2027, 6, 20, 0)),
            record("snooze", berlin(2027, 6, 8, 10), until=berlin(2027, 6, 9, 0)),
        ]
    )
    assert spans == {
        "alpha": [
            Span(berlin(2027, 6, 7, 10), berlin(2027, 6, 8, 10)),
            Span(berlin(2027, 6, 8, 10), berlin(2027, 6, 9, 0)),
        ]
    }


def reminders(
    reg: Registry, start: datetime, end: datetime, snoozes: Mapping[str, Sequence[Span]]
) -> list[datetime]:
    """When `team_silent_reminder` went out, with the check every 15 minutes from `start` to `end`
    for a team silent since `start` (its last sample 6 working hours before)."""
    last = start - timedelta(hours=6)
    records: dict[str, TeamRecord] = {}
    sent: list[datetime] = []
    at = start
    while at <= end:
        result = evaluate(reg, {"alpha": last}, records, at, snoozes=snoozes)
        records = result.records
        sent += [at for t in result.transitions if t.event == "team_silent_reminder"]
        at += EVERY_15_MINUTES
    return sent


def test_no_reminder_goes_out_while_a_team_is_snoozed_and_one_does_after_it() -> None:
    reg = team("      timezone: Europe/Berlin\n      working_days: [mon, tue, wed, thu, fri, sat, sun]\n")
    start = berlin(2027, 6, 7, 17)  # silent from here; reminders every 24 h of wall-clock time
    snoozed = {"alpha": [Span(berlin(2027, 6, 8, 12), berlin(2027, 6, 10, 12))]}
    assert reminders(reg, start, berlin(2027, 6, 10, 18), {}) == [
        berlin(2027, 6, 8, 17),
        berlin(2027, 6, 9, 17),
        berlin(2027, 6, 10, 17),
    ]
    assert reminders(reg, start, berlin(2027, 6, 10, 18), snoozed) == [berlin(2027, 6, 10, 12)]


def test_no_reminder_goes_out_on_a_holiday() -> None:
    reg = team(
        "      timezone: Europe/Berlin\n      holidays: DE\n      working_days: [mon, tue, wed, thu, fri, sat, sun]\n"
    )
    sent = reminders(reg, berlin(2026, 12, 24, 9), berlin(2026, 12, 27, 18), {})
    assert sent == [berlin(2026, 12, 27, 0)]  # 25 and 26 December are holidays; the 27th is not


def test_a_team_that_reports_while_snoozed_recovers_with_its_alert() -> None:
    reg = team("      timezone: Europe/Berlin\n")
    silent = TeamRecord(
        team="alpha",
        state=HealthState.SILENT,
        since=berlin(2027, 6, 7, 14),
        first_seen_at=berlin(2027, 6, 1, 9),
        last_sample_at=berlin(2027, 6, 7, 10),
        last_alert_at=berlin(2027, 6, 7, 14),
    )
    snoozed = {"alpha": [Span(berlin(2027, 6, 7, 15), berlin(2027, 6, 9, 0))]}
    now = berlin(2027, 6, 8, 10)
    result = evaluate(reg, {"alpha": now - timedelta(minutes=5)}, {"alpha": silent}, now, snoozes=snoozed)
    assert [t.event for t in result.transitions] == ["team_recovered"]


def test_transitions_carry_the_active_hours_without_the_quiet_time() -> None:
    reg = team("      timezone: Europe/Berlin\n      holidays: DE\n")
    now = berlin(2026, 12, 28, 11)
    result = evaluate(reg, {"alpha": berlin(2026, 12, 24, 16)}, {}, now)
    [transition] = result.transitions
    assert isinstance(transition, Transition)
    assert transition.silent_active_hours == pytest.approx(4.0)


# --- cold start -----------------------------------------------------------------------------------------


def test_the_health_function_does_not_import_holidays_at_load_or_for_a_registry_without_a_calendar() -> None:
    """The library is read only when a team names a calendar: the health check's cold start and a
    registry without one never pay for it."""
    script = f"""
import os, sys
os.environ.update(TOKENWARDEN_REGISTRY_PATH={str(ROOT / "teams.yaml")!r},
                  TOKENWARDEN_PROMQL_DIALECT="prometheus", TOKENWARDEN_PROMQL_URL="http://127.0.0.1:9",
                  AWS_DEFAULT_REGION="eu-west-1")
from datetime import UTC, datetime
from tokenwarden.local.stack import load_function
load_function("health")
from tokenwarden.domain.health import evaluate
from tokenwarden.domain.registry import parse_registry
plain = parse_registry("principals:\\n  - id: a\\n    activity:\\n      quiet_days: [2026-12-24]\\n", "t")
evaluate(plain, {{}}, {{}}, datetime(2026, 12, 25, 10, tzinfo=UTC))
print("holidays" in sys.modules)
parse_registry("principals:\\n  - id: a\\n    activity:\\n      holidays: DE\\n", "t")
print("holidays" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "True"]


def test_the_evidence_reports_threshold_leaves_out_the_same_quiet_time() -> None:
    """Minutes to detection are measured from the crossing the health check judged, not a naive one."""
    from tokenwarden.domain.journal import threshold_crossed_at

    assert threshold_crossed_at(OFFICE_DE, berlin(2026, 12, 24, 16), 4) == berlin(2026, 12, 28, 11)
    office = ActivityProfile(timezone="Europe/Berlin")
    snoozed = [Span(berlin(2027, 6, 7, 10, 30), berlin(2027, 6, 9, 0))]
    assert threshold_crossed_at(office, berlin(2027, 6, 7, 10), 4, snoozed) == berlin(2027, 6, 9, 12, 30)
    assert threshold_crossed_at(office, berlin(2027, 6, 7, 10), 4) == berlin(2027, 6, 7, 14)
