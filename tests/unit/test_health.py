"""Health evaluation: active hours in each team's own time zone, the state machine that alerts on changes
(never every hour), drift, and likely causes read from the ledger (DESIGN §2 "Health Lambda")."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tokenwarden.domain.health import (
    DEFAULT_POLICY,
    Evaluation,
    HealthInputError,
    HealthPolicy,
    HealthState,
    TeamRecord,
    Transition,
    active_hours,
    evaluate,
    likely_causes,
    team_profiles,
)
from tokenwarden.domain.model import Credential, KeyStatus, LedgerEntry, LedgerState
from tokenwarden.domain.registry import ActivityProfile, Registry, parse_registry

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE = ActivityProfile(timezone="Europe/Berlin")  # Mon-Fri 09:00-18:00, silent after 4 h
EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

REGISTRY_YAML = """
version: 1
defaults:
  activity:
    timezone: Europe/Berlin
principals:
  - id: alpha
    kind: team
  - id: beta
    kind: team
    activity:
      timezone: America/New_York
      silent_after_hours: 6
  - id: ann
    kind: developer
    team: alpha
    activity:
      timezone: Asia/Tokyo
      working_days: [sat, sun]
      start: "00:00"
      end: "23:00"
      silent_after_hours: 1
"""


def berlin(day: int, hour: int, minute: int = 0, month: int = 6) -> datetime:
    """A time in June 2027 (Mon 7, Fri 11, Mon 14 June) unless another month is given."""
    return datetime(2027, month, day, hour, minute, tzinfo=BERLIN)


def registry(text: str = REGISTRY_YAML) -> Registry:
    return parse_registry(text, "test")


def alpha_only(silent_after_hours: float = 4) -> Registry:
    return registry(
        f"""
principals:
  - id: alpha
    activity:
      timezone: Europe/Berlin
      silent_after_hours: {silent_after_hours}
"""
    )


def hourly(start: datetime, end: datetime, step: timedelta = timedelta(hours=1)) -> Iterator[datetime]:
    at = start
    while at <= end:
        yield at
        at += step


class Runner:
    """Runs evaluate like the hourly Lambda: each run starts from the records the last one saved."""

    def __init__(self, reg: Registry, policy: HealthPolicy = DEFAULT_POLICY) -> None:
        self.registry = reg
        self.policy = policy
        self.records: dict[str, TeamRecord] = {}
        self.samples: dict[str, datetime] = {}
        self.log: list[tuple[datetime, Transition]] = []

    def run(self, now: datetime) -> Evaluation:
        result = evaluate(self.registry, self.samples, self.records, now, self.policy)
        self.records = result.records
        self.log += [(now, t) for t in result.transitions]
        return result

    def run_hourly(self, start: datetime, end: datetime) -> list[tuple[datetime, Transition]]:
        before = len(self.log)
        for now in hourly(start, end):
            self.run(now)
        return self.log[before:]


# --- active_hours ---------------------------------------------------------------------------------------


def test_a_working_week_counts_its_working_hours_only() -> None:
    assert active_hours(OFFICE, berlin(7, 0), berlin(14, 0)) == 45.0


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (berlin(7, 18), berlin(8, 9), 0.0),  # a night
        (berlin(7, 17), berlin(8, 10), 2.0),  # the last hour of Monday and the first of Tuesday
        (berlin(7, 10, 30), berlin(7, 11, 15), 0.75),  # inside one working day
        (berlin(7, 6), berlin(7, 8), 0.0),  # before work
        (berlin(11, 18), berlin(14, 9), 0.0),  # Friday evening to Monday morning
        (berlin(12, 0), berlin(13, 23, 59), 0.0),  # a weekend
        (berlin(11, 17), berlin(14, 13), 5.0),  # Friday 17:00 to Monday 13:00
        (berlin(8, 12), berlin(8, 12), 0.0),  # an empty interval
        (berlin(8, 12), berlin(8, 11), 0.0),  # a reversed interval
    ],
)
def test_nights_and_weekends_do_not_count(start: datetime, end: datetime, expected: float) -> None:
    assert active_hours(OFFICE, start, end) == pytest.approx(expected)


def test_the_answer_does_not_depend_on_the_zone_the_times_are_given_in() -> None:
    start, end = berlin(11, 17), berlin(14, 13)
    assert active_hours(OFFICE, start.astimezone(UTC), end.astimezone(NEW_YORK)) == 5.0


def test_hours_are_judged_in_the_profiles_zone() -> None:
    new_york = ActivityProfile(timezone="America/New_York")
    # 09:00-18:00 Berlin is 03:00-12:00 in New York: only 09:00-12:00 of it is New York's working time.
    assert active_hours(new_york, berlin(8, 9), berlin(8, 18)) == 3.0


@pytest.mark.parametrize(
    ("zone", "change_day"),
    [
        (BERLIN, datetime(2027, 3, 28)),  # last Sunday of March: 02:00 CET -> 03:00 CEST
        (BERLIN, datetime(2027, 10, 31)),  # last Sunday of October: 03:00 CEST -> 02:00 CET
        (NEW_YORK, datetime(2027, 3, 14)),  # second Sunday of March
        (NEW_YORK, datetime(2027, 11, 7)),  # first Sunday of November
    ],
)
def test_a_working_day_is_nine_hours_on_a_daylight_saving_change_day(
    zone: ZoneInfo, change_day: datetime
) -> None:
    profile = ActivityProfile(timezone=zone.key, working_days=EVERY_DAY)
    midnight = change_day.replace(tzinfo=zone)
    next_midnight = (change_day + timedelta(days=1)).replace(tzinfo=zone)
    assert (next_midnight.astimezone(UTC) - midnight.astimezone(UTC)) != timedelta(
        hours=24
    )  # it is a DST day
    assert active_hours(profile, midnight, next_midnight) == 9.0


@pytest.mark.parametrize(
    ("zone", "change_day", "expected"),
    [
        (BERLIN, datetime(2027, 3, 28), 5.0),
        (BERLIN, datetime(2027, 10, 31), 7.0),
        (NEW_YORK, datetime(2027, 3, 14), 5.0),
        (NEW_YORK, datetime(2027, 11, 7), 7.0),
    ],
)
def test_a_working_window_across_the_change_counts_real_elapsed_time(
    zone: ZoneInfo, change_day: datetime, expected: float
) -> None:
    night_shift = ActivityProfile(timezone=zone.key, working_days=EVERY_DAY, start=time(0, 0), end=time(6, 0))
    day_start = change_day.replace(tzinfo=zone)
    assert active_hours(night_shift, day_start, day_start + timedelta(days=1)) == expected


@pytest.mark.parametrize(
    ("friday", "monday"),
    [
        (datetime(2027, 3, 26, 17, tzinfo=BERLIN), datetime(2027, 3, 29, 10, tzinfo=BERLIN)),
        (datetime(2027, 10, 29, 17, tzinfo=BERLIN), datetime(2027, 11, 1, 10, tzinfo=BERLIN)),
    ],
)
def test_a_weekend_with_a_daylight_saving_change_still_counts_zero(
    friday: datetime, monday: datetime
) -> None:
    # Friday 17:00-18:00 and Monday 09:00-10:00; an implementation that kept Friday's UTC offset would
    # place Monday's 09:00 an hour off.
    assert active_hours(OFFICE, friday.astimezone(UTC), monday.astimezone(UTC)) == 2.0
    assert (
        active_hours(OFFICE, friday - timedelta(days=4, hours=17), monday + timedelta(days=4, hours=14))
        == 90.0
    )


def test_naive_times_are_refused() -> None:
    with pytest.raises(HealthInputError, match="timezone-aware"):
        active_hours(OFFICE, datetime(2027, 6, 7, 9), berlin(7, 12))


# --- team profiles ----------------------------------------------------------------------------------------


def test_developers_roll_up_to_their_team() -> None:
    reg = registry()
    profiles = team_profiles(reg)
    assert set(profiles) == {"alpha", "beta"}
    alpha = reg.get("alpha")
    assert alpha is not None
    assert profiles["alpha"] == alpha.activity
    assert profiles["alpha"].timezone == "Europe/Berlin"  # not the developer's Tokyo weekend profile
    assert profiles["beta"].silent_after_hours == 6


def test_a_developer_sample_day_does_not_decide_the_teams_health() -> None:
    # Saturday is a working day for the developer `ann`, not for team alpha: alpha is not silent.
    reg = registry()
    saturday = berlin(12, 20)
    result = evaluate(reg, {"alpha": berlin(11, 18), "beta": saturday}, {}, saturday + timedelta(hours=20))
    assert set(result.records) == {"alpha", "beta"}
    assert result.records["alpha"].state is HealthState.HEALTHY
    assert result.transitions == ()


# --- evaluate: the state machine ---------------------------------------------------------------------------


def test_a_new_team_alerts_never_reported_exactly_once() -> None:
    runner = Runner(alpha_only())
    first = runner.run(berlin(7, 8))  # Monday before work: the first run that knows alpha
    assert first.transitions == ()
    assert first.records["alpha"] == TeamRecord(
        team="alpha",
        state=HealthState.NEVER_REPORTED,
        since=berlin(7, 8),
        first_seen_at=berlin(7, 8),
    )
    log = runner.run_hourly(berlin(7, 9), berlin(14, 18))  # a week of hourly runs
    assert [(at, t.event) for at, t in log] == [(berlin(7, 13), "team_never_reported")]
    transition = log[0][1]
    assert transition.previous is HealthState.NEVER_REPORTED
    assert transition.current is HealthState.NEVER_REPORTED
    assert transition.last_sample_at is None
    assert transition.silent_active_hours == 4.0
    record = runner.records["alpha"]
    assert (record.state, record.since, record.last_alert_at) == (
        HealthState.NEVER_REPORTED,
        berlin(7, 8),
        berlin(7, 13),
    )


def test_a_new_team_that_reports_before_its_deadline_becomes_healthy_without_an_alert() -> None:
    runner = Runner(alpha_only())
    runner.run(berlin(7, 9))
    runner.samples["alpha"] = berlin(7, 11, 30)
    result = runner.run(berlin(7, 12))
    assert result.transitions == ()
    assert result.records["alpha"].state is HealthState.HEALTHY
    assert result.records["alpha"].since == berlin(7, 12)


def test_a_never_reported_team_that_starts_reporting_recovers() -> None:
    runner = Runner(alpha_only())
    runner.run_hourly(berlin(7, 9), berlin(7, 15))
    runner.samples["alpha"] = berlin(7, 15, 40)
    result = runner.run(berlin(7, 16))
    assert [(t.event, t.previous, t.current) for t in result.transitions] == [
        ("team_recovered", HealthState.NEVER_REPORTED, HealthState.RECOVERED)
    ]
    assert result.transitions[0].last_sample_at == berlin(7, 15, 40)


def test_healthy_silent_reminder_recovered_healthy() -> None:
    runner = Runner(alpha_only())
    runner.samples["alpha"] = berlin(7, 10)
    assert runner.run_hourly(berlin(7, 10), berlin(7, 13)) == []
    assert runner.records["alpha"].state is HealthState.HEALTHY

    # Four active hours after the last sample: silent, once.
    log = runner.run_hourly(berlin(7, 14), berlin(8, 13))
    assert [(at, t.event) for at, t in log] == [(berlin(7, 14), "team_silent")]
    silent = log[0][1]
    assert (silent.previous, silent.current, silent.last_sample_at) == (
        HealthState.HEALTHY,
        HealthState.SILENT,
        berlin(7, 10),
    )
    assert silent.silent_active_hours == 4.0
    assert runner.records["alpha"].since == berlin(7, 14)

    # 23 h after the alert: no reminder yet; 24 h: the reminder; then quiet for another 23 h.
    log = runner.run_hourly(berlin(8, 14), berlin(9, 13))
    assert [(at, t.event) for at, t in log] == [(berlin(8, 14), "team_silent_reminder")]
    reminder = log[0][1]
    assert (reminder.previous, reminder.current) == (HealthState.SILENT, HealthState.SILENT)
    assert reminder.silent_active_hours == 8.0 + 5.0  # Monday 10:00-18:00 and Tuesday 09:00-14:00
    assert runner.records["alpha"].since == berlin(7, 14)  # the state did not change
    assert runner.records["alpha"].last_alert_at == berlin(8, 14)

    # Telemetry arrives again: recovered, then healthy without another message.
    runner.samples["alpha"] = berlin(9, 13, 30)
    result = runner.run(berlin(9, 14))
    assert [(t.event, t.previous, t.current) for t in result.transitions] == [
        ("team_recovered", HealthState.SILENT, HealthState.RECOVERED)
    ]
    assert result.records["alpha"].last_sample_at == berlin(9, 13, 30)
    result = runner.run(berlin(9, 15))
    assert result.transitions == ()
    assert result.records["alpha"].state is HealthState.HEALTHY
    assert result.records["alpha"].since == berlin(9, 15)


def test_a_recovered_team_that_goes_quiet_again_alerts_silent() -> None:
    runner = Runner(alpha_only())
    runner.samples["alpha"] = berlin(7, 9)
    runner.run_hourly(berlin(7, 9), berlin(7, 14))
    runner.samples["alpha"] = berlin(7, 14, 30)
    assert runner.run(berlin(7, 15)).records["alpha"].state is HealthState.RECOVERED
    # The next run is the next morning: 3.5 h on Monday + 1 h on Tuesday since the sample.
    result = runner.run(berlin(8, 10))
    assert [(t.event, t.previous, t.current) for t in result.transitions] == [
        ("team_silent", HealthState.RECOVERED, HealthState.SILENT)
    ]


def test_hourly_runs_on_unchanged_data_send_nothing() -> None:
    runner = Runner(registry())
    runner.samples = {"alpha": berlin(7, 9), "beta": berlin(7, 9)}
    runner.run_hourly(berlin(7, 9), berlin(8, 8))
    # alpha after 4 h in Berlin (13:00); beta after 6 h of New York's day (09:00-15:00 there).
    assert [(at, t.team, t.event) for at, t in runner.log] == [
        (berlin(7, 13), "alpha", "team_silent"),
        (datetime(2027, 6, 7, 15, tzinfo=NEW_YORK), "beta", "team_silent"),
    ]
    snapshot = runner.records
    # The same run repeated (a retry, or two schedules firing) changes nothing and sends nothing.
    again = evaluate(runner.registry, runner.samples, snapshot, berlin(8, 8))
    assert again.transitions == ()
    assert again.records == snapshot


def test_friday_evening_to_monday_morning_is_not_silence() -> None:
    runner = Runner(alpha_only())
    runner.samples["alpha"] = berlin(11, 17)  # Friday 17:00, an hour before the end of the week
    assert runner.run_hourly(berlin(11, 17), berlin(14, 11, 59)) == []
    assert runner.records["alpha"].state is HealthState.HEALTHY
    # 1 h on Friday + 3 h on Monday = the 4 h threshold at Monday 12:00.
    result = runner.run(berlin(14, 12))
    assert [(t.event, t.silent_active_hours) for t in result.transitions] == [("team_silent", 4.0)]


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (berlin(14, 12, 59), HealthState.HEALTHY),  # 1 h + 3 h 59 min = 4.983 h
        (berlin(14, 13), HealthState.SILENT),  # 1 h + 4 h = 5 h
    ],
)
def test_the_threshold_is_per_team(now: datetime, state: HealthState) -> None:
    result = evaluate(alpha_only(silent_after_hours=5), {"alpha": berlin(11, 17)}, {}, now)
    assert result.records["alpha"].state is state


def test_the_newest_of_the_saved_and_the_observed_sample_is_kept() -> None:
    saved = TeamRecord(
        team="alpha",
        state=HealthState.HEALTHY,
        since=berlin(7, 9),
        first_seen_at=berlin(1, 9),
        last_sample_at=berlin(8, 11),
    )
    # The query window no longer holds the sample: the saved one still counts.
    kept = evaluate(alpha_only(), {}, {"alpha": saved}, berlin(8, 12))
    assert kept.records["alpha"].last_sample_at == berlin(8, 11)
    assert kept.records["alpha"].state is HealthState.HEALTHY
    assert kept.records["alpha"].first_seen_at == berlin(1, 9)
    # An older observed sample does not move it back; a newer one moves it forward.
    older = evaluate(alpha_only(), {"alpha": berlin(8, 10)}, {"alpha": saved}, berlin(8, 12))
    assert older.records["alpha"].last_sample_at == berlin(8, 11)
    newer = evaluate(alpha_only(), {"alpha": berlin(8, 11, 45)}, {"alpha": saved}, berlin(8, 12))
    assert newer.records["alpha"].last_sample_at == berlin(8, 11, 45)
    assert newer.minutes_since_last_sample == {"alpha": 15.0}


def test_teams_outside_the_registry_are_drift_and_get_no_record() -> None:
    stale = TeamRecord(team="gone", state=HealthState.HEALTHY, since=berlin(1, 9), first_seen_at=berlin(1, 9))
    samples: Mapping[str, datetime] = {
        "zeta": berlin(7, 11),
        "alpha": berlin(7, 10, 30),
        "unattributed": berlin(7, 11),
        "ghost": berlin(7, 11),
    }
    result = evaluate(registry(), samples, {"gone": stale}, berlin(7, 12))
    assert result.unregistered_teams == ("ghost", "zeta")
    assert set(result.records) == {"alpha", "beta"}
    assert result.minutes_since_last_sample == {"alpha": 90.0, "beta": None}


def test_a_silent_team_seen_for_the_first_time_alerts_at_once() -> None:
    result = evaluate(alpha_only(), {"alpha": berlin(7, 9)}, {}, berlin(7, 15))
    assert [(t.event, t.previous, t.current) for t in result.transitions] == [
        ("team_silent", None, HealthState.SILENT)
    ]
    assert result.records["alpha"].first_seen_at == berlin(7, 15)


def test_the_reminder_interval_is_configurable() -> None:
    runner = Runner(alpha_only(), HealthPolicy(reminder_hours=6))
    runner.samples["alpha"] = berlin(7, 9)
    log = runner.run_hourly(berlin(7, 9), berlin(7, 23))
    assert [(at, t.event) for at, t in log] == [
        (berlin(7, 13), "team_silent"),
        (berlin(7, 19), "team_silent_reminder"),
    ]


def test_naive_now_is_refused() -> None:
    with pytest.raises(HealthInputError, match="now must be timezone-aware"):
        evaluate(alpha_only(), {}, {}, datetime(2027, 6, 7, 12))


# --- likely causes ----------------------------------------------------------------------------------------

LAST_SAMPLE = datetime(2027, 6, 9, 14, 0, tzinfo=UTC)
NOW = LAST_SAMPLE + timedelta(hours=20)


def entry(
    n: int,
    activated_at: datetime,
    principal: str = "alpha",
    **fields: object,
) -> LedgerEntry:
    return LedgerEntry.model_validate(
        {
            "principal": principal,
            "version_id": f"v{n}",
            "state": LedgerState.CURRENT,
            "created_at": activated_at - timedelta(minutes=5),
            "credential_id": f"ACCA{principal.upper()}{n}",
            "alias": f"{principal}-key-{n}",
            "expires_at": activated_at + timedelta(days=90),
            "activated_at": activated_at,
            **fields,
        }
    )


def key(
    n: int, status: KeyStatus = "Active", expires_at: datetime | None = None, principal: str = "alpha"
) -> Credential:
    return Credential(
        id=f"ACCA{principal.upper()}{n}",
        user_name=f"tw-{principal}",
        alias=f"{principal}-key-{n}",
        status=status,
        created_at=LAST_SAMPLE - timedelta(days=30),
        expires_at=expires_at or LAST_SAMPLE + timedelta(days=60),
    )


ONBOARDED = LAST_SAMPLE - timedelta(days=80)


def test_a_rotation_shortly_before_the_last_sample() -> None:
    rotated = LAST_SAMPLE - timedelta(hours=2)
    entries = [
        entry(1, ONBOARDED, state=LedgerState.PREVIOUS, superseded_at=rotated),
        entry(2, rotated),
    ]
    assert likely_causes(entries, key(2), LAST_SAMPLE, NOW) == [
        "key alpha-key-1 was rotated to alpha-key-2 at 2027-06-09 12:00 UTC, 2.0 h before the last sample: "
        "laptops may still use the old key"
    ]


def test_a_rotation_long_before_the_last_sample_is_not_a_cause() -> None:
    rotated = LAST_SAMPLE - timedelta(hours=49)
    entries = [entry(1, ONBOARDED, state=LedgerState.PREVIOUS), entry(2, rotated)]
    assert likely_causes(entries, key(2), LAST_SAMPLE, NOW) == []
    assert likely_causes(entries, key(2), LAST_SAMPLE, NOW, HealthPolicy(cause_window_hours=50)) != []


def test_the_first_key_of_a_principal_is_not_a_rotation() -> None:
    entries = [entry(1, LAST_SAMPLE - timedelta(hours=1))]
    assert likely_causes(entries, key(1), LAST_SAMPLE, NOW) == []


def test_a_retirement_after_the_last_sample() -> None:
    rotated = LAST_SAMPLE - timedelta(days=7, hours=3)
    retired = LAST_SAMPLE + timedelta(hours=3)
    entries = [
        entry(1, ONBOARDED, state=LedgerState.RETIRED, superseded_at=rotated, deactivated_at=retired),
        entry(2, rotated),
    ]
    assert likely_causes(entries, key(2), LAST_SAMPLE, NOW) == [
        "previous key alpha-key-1 was deactivated at 2027-06-09 17:00 UTC (after the last sample): "
        "laptops that never picked up the new key are now refused"
    ]


def test_a_revoke_of_the_current_key_names_who_and_why() -> None:
    revoked = LAST_SAMPLE + timedelta(minutes=30)
    entries = [
        entry(
            1,
            ONBOARDED,
            deactivated_at=revoked,
            revoked_at=revoked,
            revoked_by="alice",
            reason="token leaked in a screenshot",
        )
    ]
    causes = likely_causes(entries, key(1, status="Inactive"), LAST_SAMPLE, NOW)
    assert causes == [
        "key alpha-key-1 was revoked by alice (token leaked in a screenshot) at 2027-06-09 14:30 UTC, "
        "after the last sample: every export with it is refused"
    ]


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (None, "no current key: nothing the team sends can be accepted"),
        (
            key(2, status="Expired", expires_at=LAST_SAMPLE + timedelta(hours=1)),
            "current key alpha-key-2 expired at 2027-06-09 15:00 UTC: every export with it is refused",
        ),
        (
            key(2, status="Active", expires_at=NOW - timedelta(minutes=1)),
            "current key alpha-key-2 expired at 2027-06-10 09:59 UTC: every export with it is refused",
        ),
        (key(2, status="Inactive"), "current key alpha-key-2 is Inactive: every export with it is refused"),
        (
            key(2, expires_at=NOW + timedelta(hours=12)),
            "current key alpha-key-2 expires at 2027-06-10 22:00 UTC (in 12.0 h): it needs a rotation now",
        ),
    ],
)
def test_the_current_keys_state(current: Credential | None, expected: str) -> None:
    assert likely_causes([], current, LAST_SAMPLE, NOW) == [expected]
    assert likely_causes([], current, None, NOW) == [expected]  # also for a team that never reported


def test_nothing_fits() -> None:
    rotated = LAST_SAMPLE - timedelta(days=20)
    entries = [
        entry(1, ONBOARDED, state=LedgerState.DELETED, deactivated_at=rotated + timedelta(days=7)),
        entry(2, rotated),
    ]
    assert likely_causes(entries, key(2), LAST_SAMPLE, NOW) == []
    assert likely_causes([], key(2), None, NOW) == []


def test_a_team_that_never_reported_is_judged_on_its_current_key_only() -> None:
    entries = [
        entry(1, ONBOARDED, deactivated_at=NOW - timedelta(hours=1)),
        entry(2, NOW - timedelta(hours=2)),
    ]
    assert likely_causes(entries, key(2), None, NOW) == []


def test_causes_come_most_specific_first_across_the_teams_principals() -> None:
    entries = [
        # the team principal: rotated an hour before the last sample, its old key retired after it
        entry(1, ONBOARDED, deactivated_at=LAST_SAMPLE + timedelta(hours=1)),
        entry(2, LAST_SAMPLE - timedelta(hours=1)),
        # a developer of the team: revoked after the last sample
        entry(
            1,
            ONBOARDED,
            principal="ann",
            deactivated_at=LAST_SAMPLE + timedelta(hours=2),
            revoked_at=LAST_SAMPLE + timedelta(hours=2),
            reason="laptop stolen",
        ),
    ]
    causes = likely_causes(entries, key(2, expires_at=NOW + timedelta(hours=30)), LAST_SAMPLE, NOW)
    assert [cause.split(" at ")[0] for cause in causes] == [
        "key ann-key-1 was revoked (laptop stolen)",
        "previous key alpha-key-1 was deactivated",
        "key alpha-key-1 was rotated to alpha-key-2",
        "current key alpha-key-2 expires",
    ]
