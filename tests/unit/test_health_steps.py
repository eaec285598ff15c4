"""The health evaluation's steps one at a time: judging one team, the record it saves, and each family
of likely causes on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tokenwarden.domain.health import (
    CauseWindow,
    HealthInputError,
    HealthState,
    TeamRecord,
    current_key_causes,
    current_revoked,
    expiring_key_cause,
    judge_team,
    last_sample,
    minutes_since,
    next_record,
    retirement_cause,
    retirement_causes,
    revoke_cause,
    revoke_causes,
    rotation_cause,
    rotation_causes,
    unusable_key_cause,
)
from tokenwarden.domain.model import Credential, KeyStatus, LedgerEntry, LedgerState
from tokenwarden.domain.registry import WEEKDAYS, ActivityProfile

ALWAYS = ActivityProfile(
    timezone="UTC", working_days=WEEKDAYS, start="00:00", end="23:59", silent_after_hours=4
)
NOW = datetime(2027, 6, 9, 12, 0, tzinfo=UTC)
LAST_SAMPLE = NOW - timedelta(hours=10)
WINDOW = CauseWindow(last_sample_at=LAST_SAMPLE, window=timedelta(hours=48))


def saved(
    state: HealthState,
    since: datetime = NOW - timedelta(days=1),
    last_sample_at: datetime | None = None,
    last_alert_at: datetime | None = None,
) -> TeamRecord:
    return TeamRecord(
        team="alpha",
        state=state,
        since=since,
        first_seen_at=NOW - timedelta(days=3),
        last_sample_at=last_sample_at,
        last_alert_at=last_alert_at,
    )


def entry(n: int, activated_at: datetime | None, principal: str = "alpha", **fields: object) -> LedgerEntry:
    return LedgerEntry.model_validate(
        {
            "principal": principal,
            "version_id": f"v{n}",
            "state": LedgerState.CURRENT,
            "created_at": NOW - timedelta(days=60),
            "credential_id": f"K{n}",
            "alias": f"key-{n}",
            "activated_at": activated_at,
            **fields,
        }
    )


def key(n: int = 2, status: KeyStatus = "Active", expires_at: datetime | None = None) -> Credential:
    return Credential(
        id=f"K{n}",
        user_name="tw-alpha",
        alias=f"key-{n}",
        status=status,
        created_at=NOW - timedelta(days=30),
        expires_at=expires_at or NOW + timedelta(days=60),
    )


# -- one team ------------------------------------------------------------------------------------------


def test_a_team_seen_for_the_first_time_starts_never_reported_without_an_alert() -> None:
    record, transition = judge_team("alpha", ALWAYS, None, None, NOW)
    assert transition is None
    assert (record.state, record.since, record.first_seen_at, record.last_alert_at) == (
        HealthState.NEVER_REPORTED,
        NOW,
        NOW,
        None,
    )


def test_a_healthy_team_past_its_threshold_goes_silent_and_says_so() -> None:
    before = saved(HealthState.HEALTHY, last_sample_at=NOW - timedelta(hours=5))
    record, transition = judge_team("alpha", ALWAYS, before, None, NOW)
    assert transition is not None
    assert (transition.event, transition.previous, transition.current) == (
        "team_silent",
        HealthState.HEALTHY,
        HealthState.SILENT,
    )
    assert transition.silent_active_hours == pytest.approx(5)
    assert (record.state, record.since, record.last_alert_at) == (HealthState.SILENT, NOW, NOW)


def test_a_team_under_its_threshold_stays_healthy_and_keeps_its_since() -> None:
    before = saved(HealthState.HEALTHY, last_sample_at=NOW - timedelta(hours=1))
    record, transition = judge_team("alpha", ALWAYS, before, NOW - timedelta(minutes=5), NOW)
    assert transition is None
    assert (record.state, record.since, record.last_sample_at) == (
        HealthState.HEALTHY,
        before.since,
        NOW - timedelta(minutes=5),
    )


def test_a_naive_time_in_a_saved_record_is_refused() -> None:
    naive = saved(HealthState.HEALTHY).model_copy(update={"since": datetime(2027, 6, 1, 9, 0)})
    with pytest.raises(HealthInputError, match="the saved since of 'alpha'"):
        judge_team("alpha", ALWAYS, naive, None, NOW)


def test_the_newer_of_the_saved_and_the_observed_sample_is_the_last_one() -> None:
    before = saved(HealthState.HEALTHY, last_sample_at=NOW - timedelta(hours=2))
    assert last_sample("alpha", before, NOW - timedelta(hours=3)) == NOW - timedelta(hours=2)
    assert last_sample("alpha", before, NOW - timedelta(hours=1)) == NOW - timedelta(hours=1)
    assert last_sample("alpha", None, None) is None
    with pytest.raises(HealthInputError, match="the saved last sample of 'alpha'"):
        last_sample("alpha", saved(HealthState.HEALTHY, last_sample_at=datetime(2027, 6, 9, 8, 0)), None)


def test_since_moves_only_with_the_state_and_the_alert_time_only_with_an_alert() -> None:
    alerted = NOW - timedelta(hours=30)
    before = saved(HealthState.SILENT, last_alert_at=alerted)
    same = next_record("alpha", before, HealthState.SILENT, None, None, NOW)
    assert (same.since, same.last_alert_at, same.first_seen_at) == (
        before.since,
        alerted,
        before.first_seen_at,
    )
    changed = next_record("alpha", before, HealthState.RECOVERED, "team_recovered", NOW, NOW)
    assert (changed.since, changed.last_alert_at, changed.last_sample_at) == (NOW, NOW, NOW)


def test_minutes_since_the_last_sample_are_never_negative() -> None:
    assert minutes_since(NOW - timedelta(minutes=90), NOW) == 90
    assert minutes_since(NOW + timedelta(minutes=1), NOW) == 0.0  # a sample stamped after now
    assert minutes_since(None, NOW) is None


# -- the window a cause must fall in -----------------------------------------------------------------


def test_the_window_reaches_back_its_length_before_the_last_sample_and_anything_after() -> None:
    edge = LAST_SAMPLE - timedelta(hours=48)
    assert WINDOW.relevant(edge) == edge
    assert WINDOW.relevant(edge - timedelta(seconds=1)) is None
    assert WINDOW.relevant(NOW) == NOW
    assert WINDOW.relevant(None) is None
    with pytest.raises(HealthInputError, match="a ledger time"):
        WINDOW.relevant(datetime(2027, 6, 9, 8, 0))


# -- revokes ---------------------------------------------------------------------------------------


def test_a_revoke_names_who_why_and_when() -> None:
    revoked = entry(
        1, NOW - timedelta(days=20), revoked_at=LAST_SAMPLE + timedelta(hours=1), revoked_by="bob"
    )
    assert revoke_cause(revoked, WINDOW) == (
        LAST_SAMPLE + timedelta(hours=1),
        "key key-1 was revoked by bob at 2027-06-09 03:00 UTC, after the last sample: "
        "every export with it is refused",
    )


def test_a_revoke_known_only_from_its_reason_uses_the_deactivation_time() -> None:
    off = LAST_SAMPLE - timedelta(hours=2)
    revoked = entry(1, NOW - timedelta(days=20), reason="revoked by hand", deactivated_at=off)
    [(at, text)] = revoke_causes([revoked, entry(2, NOW - timedelta(days=1))], WINDOW)
    assert at == off and "(revoked by hand)" in text and "2.0 h before the last sample" in text


def test_revokes_outside_the_window_or_without_a_last_sample_are_no_cause() -> None:
    old = entry(1, NOW - timedelta(days=20), revoked_at=LAST_SAMPLE - timedelta(hours=49))
    assert revoke_causes([old], WINDOW) == []
    recent = entry(1, NOW - timedelta(days=20), revoked_at=NOW)
    assert revoke_causes([recent], None) == []


def test_only_a_revoke_of_the_current_key_in_the_window_counts_as_its_revoke() -> None:
    revoked = entry(2, NOW - timedelta(days=20), revoked_at=NOW - timedelta(hours=1))
    assert current_revoked([revoked], key(2), WINDOW)
    assert not current_revoked([revoked], key(3), WINDOW)
    assert not current_revoked([revoked], None, WINDOW)
    assert not current_revoked([revoked], key(2), None)


# -- retirements -----------------------------------------------------------------------------------


def test_a_deactivated_previous_key_is_a_retirement() -> None:
    retired = entry(1, NOW - timedelta(days=20), deactivated_at=LAST_SAMPLE + timedelta(hours=2))
    at, text = retirement_cause(retired, WINDOW) or (None, "")
    assert at == LAST_SAMPLE + timedelta(hours=2)
    assert text.startswith(
        "previous key key-1 was deactivated at 2027-06-09 04:00 UTC (after the last sample)"
    )


def test_a_key_deleted_while_active_is_a_retirement_but_a_deleted_deactivated_one_is_not() -> None:
    deleted = entry(1, NOW - timedelta(days=20), deleted_at=LAST_SAMPLE - timedelta(hours=1))
    at, text = retirement_cause(deleted, WINDOW) or (None, "")
    assert at == LAST_SAMPLE - timedelta(hours=1)
    assert text.startswith("key key-1 was deleted while still active")
    long_off = entry(
        1, NOW - timedelta(days=20), deactivated_at=NOW - timedelta(days=10), deleted_at=LAST_SAMPLE
    )
    assert retirement_cause(long_off, WINDOW) is None  # deactivated long before: the deletion says nothing


def test_retirements_skip_revokes_the_current_key_and_keys_never_activated() -> None:
    off = LAST_SAMPLE + timedelta(hours=1)
    entries = [
        entry(1, NOW - timedelta(days=20), deactivated_at=off, revoked_at=off),  # a revoke: its own cause
        entry(2, NOW - timedelta(days=10), deactivated_at=off),  # the current key
        entry(3, None, deactivated_at=off),  # never activated
        entry(4, NOW - timedelta(days=30), deactivated_at=off),
    ]
    assert [text.split(" was")[0] for _, text in retirement_causes(entries, key(2), WINDOW)] == [
        "previous key key-4"
    ]
    assert retirement_causes(entries, key(2), None) == []


# -- rotations -------------------------------------------------------------------------------------


def test_a_rotation_names_the_key_it_replaced() -> None:
    entries = [entry(1, NOW - timedelta(days=20)), entry(2, LAST_SAMPLE - timedelta(hours=3))]
    [(at, text)] = rotation_causes(entries, WINDOW)
    assert at == LAST_SAMPLE - timedelta(hours=3)
    assert text == (
        "key key-1 was rotated to key-2 at 2027-06-08 23:00 UTC, 3.0 h before the last sample: "
        "laptops may still use the old key"
    )


def test_a_rotation_without_a_known_earlier_key_was_rotated_in() -> None:
    lone = entry(2, LAST_SAMPLE)
    _, text = rotation_cause(lone, LAST_SAMPLE, [lone], WINDOW) or (None, "")
    assert text.startswith("key key-2 was rotated in at")


def test_each_principals_first_key_is_no_rotation() -> None:
    entries = [entry(1, LAST_SAMPLE), entry(1, LAST_SAMPLE + timedelta(hours=1), principal="ann")]
    assert rotation_causes(entries, WINDOW) == []
    assert rotation_causes([entry(1, NOW - timedelta(days=20)), entry(2, NOW)], None) == []


# -- the current key itself --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "revoked", "expected"),
    [
        (None, False, "no current key: nothing the team sends can be accepted"),
        (key(status="Expired"), False, "current key key-2 expired at 2027-08-08 12:00 UTC"),
        (key(expires_at=NOW), False, "current key key-2 expired at 2027-06-09 12:00 UTC"),
        (key(status="Inactive"), False, "current key key-2 is Inactive"),
        (key(status="Inactive"), True, None),  # its revoke already explains it
        (key(), False, None),
    ],
)
def test_an_unusable_current_key(current: Credential | None, revoked: bool, expected: str | None) -> None:
    found = unusable_key_cause(current, revoked, NOW)
    if expected is None:
        assert found is None
    else:
        assert found is not None and found.startswith(expected)


def test_a_current_key_expiring_within_the_window_needs_a_rotation() -> None:
    soon = key(expires_at=NOW + timedelta(hours=12))
    assert expiring_key_cause(soon, NOW, timedelta(hours=12)) == (
        "current key key-2 expires at 2027-06-10 00:00 UTC (in 12.0 h): it needs a rotation now"
    )
    assert expiring_key_cause(soon, NOW, timedelta(hours=11)) is None
    assert expiring_key_cause(key(expires_at=NOW), NOW, timedelta(hours=12)) is None  # already expired
    assert expiring_key_cause(None, NOW, timedelta(hours=12)) is None


def test_the_current_key_is_either_unusable_or_expiring_never_both() -> None:
    window = timedelta(hours=48)
    assert current_key_causes(key(status="Inactive"), False, NOW, window)[1] == []
    revoked_soon = key(status="Inactive", expires_at=NOW + timedelta(hours=1))
    unusable, expiring = current_key_causes(revoked_soon, True, NOW, window)
    assert unusable == [] and len(expiring) == 1  # revoked, and about to expire as well
    assert current_key_causes(key(), False, NOW, window) == ([], [])
