"""What a revoke does when it meets a revoke already made or still under way, decided without AWS:
whether it repeats an earlier revoke, what becomes of each key, and whether a key record is marked;
then what the service hands those decisions, and what a restore refuses before it looks at a key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tokenwarden.domain.breakglass import (
    REPEAT_WINDOW,
    EarlierRevoke,
    KeyOutcome,
    RepeatOutcome,
    decide_key,
    decide_repeat,
    is_marked,
    is_stranded,
)
from tokenwarden.domain.model import Credential, KeyStatus, LedgerEntry, LedgerState
from tokenwarden.domain.registry import ActivityProfile, Lifecycle, Principal
from tokenwarden.service.breakglass import (
    Actor,
    BreakGlassError,
    History,
    RestoreRecord,
    RevokedKey,
    RevokeRecord,
    _check_restorable,
)

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
REVOKED_AT = NOW - timedelta(hours=1)


def earlier(
    number: int = 1,
    reason: str = "leak",
    at: datetime = REVOKED_AT,
    restored: bool = False,
    keys: frozenset[str] = frozenset({"K1"}),
) -> EarlierRevoke:
    return EarlierRevoke(number=number, reason=reason, revoked_at=at, restored=restored, credential_ids=keys)


def cred(cid: str = "K2", status: KeyStatus = "Active", created_at: datetime | None = None) -> Credential:
    return Credential(
        id=cid,
        user_name="tw-alpha",
        alias=f"alpha-{cid}",
        status=status,
        created_at=created_at or NOW - timedelta(days=10),
        expires_at=NOW + timedelta(days=80),
    )


def record(
    cid: str = "K2",
    state: LedgerState = LedgerState.CURRENT,
    created_at: datetime | None = None,
    **fields: object,
) -> LedgerEntry:
    return LedgerEntry.model_validate(
        {
            "principal": "alpha",
            "version_id": f"v-{cid}",
            "state": state,
            "created_at": created_at or NOW - timedelta(days=10),
            "credential_id": cid,
            **fields,
        }
    )


# -- whether a revoke repeats an earlier one ---------------------------------------------------------


def test_a_revoke_with_no_earlier_revoke_is_new() -> None:
    decision = decide_repeat([], "leak", NOW)
    assert decision.outcome is RepeatOutcome.NEW and decision.repeats is None and not decision.is_repeat


def test_a_revoke_whose_reason_no_earlier_revoke_had_is_new() -> None:
    decision = decide_repeat([earlier(reason="laptop stolen")], "leak", NOW)
    assert decision.outcome is RepeatOutcome.NEW and decision.repeats is None


def test_the_same_reason_within_the_window_repeats_that_revoke() -> None:
    decision = decide_repeat([earlier(number=3)], "leak", NOW)
    assert decision.outcome is RepeatOutcome.REPEAT and decision.repeats == 3 and decision.is_repeat
    assert decision.reason == "revoke #3 had the same reason 1.0 h ago and was not restored"


def test_the_repeat_window_ends_exactly_after_its_length() -> None:
    just_inside = decide_repeat([earlier(at=NOW - REPEAT_WINDOW + timedelta(seconds=1))], "leak", NOW)
    at_the_end = decide_repeat([earlier(at=NOW - REPEAT_WINDOW)], "leak", NOW)
    assert just_inside.outcome is RepeatOutcome.REPEAT
    assert at_the_end.outcome is RepeatOutcome.STALE and at_the_end.repeats is None
    assert at_the_end.reason == "revoke #1, with the same reason, is older than 1 day, 0:00:00"


def test_a_restored_revoke_is_not_repeated_even_when_recent() -> None:
    decision = decide_repeat([earlier(restored=True)], "leak", NOW)
    assert decision.outcome is RepeatOutcome.RESTORED and decision.repeats is None
    assert decision.reason == "revoke #1, with the same reason, was restored"


def test_only_the_latest_revoke_with_the_reason_counts() -> None:
    # #1 stands and is recent, but #2 with the same reason was undone: a new revoke, not #1 again.
    undone_later = [earlier(number=1), earlier(number=2, restored=True)]
    assert decide_repeat(undone_later, "leak", NOW).outcome is RepeatOutcome.RESTORED
    # A later revoke with another reason does not hide the latest with this one.
    other_later = [earlier(number=1), earlier(number=2, reason="other")]
    assert decide_repeat(other_later, "leak", NOW).repeats == 1


@pytest.mark.parametrize(
    ("outcome_args", "reissue", "takes_held_off", "taken", "reported_repeated"),
    [
        ({}, True, False, 0, True),  # a repeat that found nothing left: "already revoked"
        ({}, False, False, 1, False),  # a repeat that took a key left active
        ({"restored": True}, True, True, 0, False),  # new revoke with a replacement
        ({"restored": True}, False, False, 0, False),  # new revoke without one
    ],
)
def test_what_a_decision_means_for_held_off_keys_and_the_result(
    outcome_args: dict[str, Any], reissue: bool, takes_held_off: bool, taken: int, reported_repeated: bool
) -> None:
    decision = decide_repeat([earlier(**outcome_args)], "leak", NOW)
    assert decision.takes_held_off(reissue) is takes_held_off
    assert decision.reports_repeated(taken) is reported_repeated


# -- what becomes of each key ------------------------------------------------------------------------


def test_an_active_key_is_switched_off_by_a_new_revoke() -> None:
    decision = decide_key(cred(status="Active"), record(), None)
    assert decision.outcome is KeyOutcome.SWITCH_OFF and decision.taken and decision.credential_id == "K2"


def test_an_active_key_without_a_record_is_switched_off_too() -> None:
    assert decide_key(cred(status="Active"), None, None).outcome is KeyOutcome.SWITCH_OFF


def test_a_key_switched_off_by_a_killed_run_is_taken_into_the_record() -> None:
    decision = decide_key(cred(status="Inactive"), record(state=LedgerState.PREVIOUS), None)
    assert decision.outcome is KeyOutcome.RECORD_STRANDED and decision.taken


@pytest.mark.parametrize(
    ("status", "known"),
    [
        ("Inactive", None),  # no record says it was live
        ("Inactive", record(revoked_at=REVOKED_AT)),  # a revoke recorded it
        ("Inactive", record(deactivated_at=REVOKED_AT)),  # retired as planned
        ("Inactive", record(state=LedgerState.RETIRED)),  # not recorded live
        ("Inactive", record(state=LedgerState.PENDING)),  # a rotation's key, not a live one
        ("Expired", record()),  # expired keys are not revoked
        ("Expired", None),
    ],
)
def test_a_key_already_off_is_left_alone(status: KeyStatus, known: LedgerEntry | None) -> None:
    decision = decide_key(cred(status=status), known, None)
    assert decision.outcome is KeyOutcome.ALREADY_OFF and not decision.taken
    assert decision.reason == f"it is {status}, and no run left it unrecorded"


def test_a_repeat_leaves_the_keys_its_revoke_took_whatever_their_state() -> None:
    repeat = earlier(keys=frozenset({"K1"}))
    for status in ("Active", "Inactive", "Expired"):
        decision = decide_key(cred("K1", status=status), record("K1", state=LedgerState.PREVIOUS), repeat)
        assert decision.outcome is KeyOutcome.ALREADY_TAKEN and not decision.taken
        assert decision.reason == "revoke #1 took it"


def test_a_repeat_leaves_the_replacement_its_first_run_issued() -> None:
    repeat = earlier()
    made_then = cred(status="Active", created_at=NOW - timedelta(days=30))
    issued = decide_key(made_then, record(created_at=REVOKED_AT), repeat)  # the record says when
    assert issued.outcome is KeyOutcome.REPLACEMENT and not issued.taken
    unrecorded = decide_key(cred(status="Active", created_at=REVOKED_AT + timedelta(minutes=1)), None, repeat)
    assert unrecorded.outcome is KeyOutcome.REPLACEMENT  # without a record, IAM's creation time


def test_a_repeat_still_takes_an_older_key_left_active() -> None:
    older = record(created_at=REVOKED_AT - timedelta(seconds=1))
    assert decide_key(cred(status="Active"), older, earlier()).outcome is KeyOutcome.SWITCH_OFF
    stranded = record(state=LedgerState.CURRENT, created_at=REVOKED_AT - timedelta(days=1))
    assert decide_key(cred(status="Inactive"), stranded, earlier()).outcome is KeyOutcome.RECORD_STRANDED


def test_a_new_revoke_takes_a_key_whatever_its_age() -> None:
    young = cred(status="Active", created_at=NOW)
    assert decide_key(young, record(created_at=NOW), None).outcome is KeyOutcome.SWITCH_OFF


def test_stranded_needs_every_sign_of_an_unrecorded_switch_off() -> None:
    live = record(state=LedgerState.CURRENT)
    assert is_stranded(cred(status="Inactive"), live)
    assert not is_stranded(cred(status="Active"), live)
    assert not is_stranded(cred(status="Inactive"), None)
    assert not is_stranded(cred(status="Inactive"), record(state=LedgerState.DELETED))


# -- whether a key record carries the revoke ---------------------------------------------------------


def test_a_key_record_is_marked_only_by_the_revoke_that_took_it() -> None:
    assert is_marked(record(revoked_at=REVOKED_AT), REVOKED_AT)
    assert not is_marked(record(revoked_at=REVOKED_AT - timedelta(days=2)), REVOKED_AT)  # an older revoke
    assert not is_marked(record(), REVOKED_AT)
    assert not is_marked(None, REVOKED_AT)  # lost between the revoke's writes


# -- the service's records, as the decisions read them ------------------------------------------------

ONCALL = Actor.caller("arn:aws:sts::123456789012:assumed-role/Oncall/carol")
ALPHA = Principal(
    id="alpha",
    kind="team",
    team="alpha",
    owners=(),
    notify=None,
    activity=ActivityProfile(),
    lifecycle=Lifecycle(),
)


def revoke_record(
    number: int, reason: str = "leak", reissue: bool = False, keys: tuple[str, ...] = ()
) -> RevokeRecord:
    return RevokeRecord(
        principal="alpha",
        number=number,
        revoked_at=REVOKED_AT,
        actor=ONCALL,
        reason=reason,
        reissue=reissue,
        keys=tuple(RevokedKey(credential_id=k, alias=f"a-{k}", version_id=f"v-{k}") for k in keys),
    )


def test_the_history_hands_the_decision_its_revokes_with_their_keys_and_restores() -> None:
    history = History(
        revokes=(revoke_record(1, keys=("K1",)), revoke_record(2, keys=("K2", "K3"))),
        restores={1: RestoreRecord(principal="alpha", revoke=1, restored_at=NOW, actor=ONCALL, keys=())},
    )
    assert history.earlier() == [
        earlier(number=1, restored=True, keys=frozenset({"K1"})),
        earlier(number=2, keys=frozenset({"K2", "K3"})),
    ]
    assert history.repeat_decision("leak", NOW).repeats == 2
    repeated = history.repeat_of("leak", NOW)
    assert repeated is not None and repeated.number == 2
    assert history.numbered(None) is None


def test_a_new_revoke_is_numbered_after_the_latest() -> None:
    record = History(revokes=(revoke_record(4),)).next_revoke("alpha", NOW, ONCALL, "other", True, [])
    assert (record.number, record.revoked_at, record.reason, record.reissue) == (5, NOW, "other", True)


@pytest.mark.parametrize(
    ("reissue", "force_reason", "at", "refusal"),
    [
        (True, None, NOW, "issued a replacement"),
        (False, "sure", NOW, "--force is for a revoke that issued a replacement"),
        (False, None, REVOKED_AT + timedelta(days=7), "older than the 7-day retention"),
        (True, "sure", REVOKED_AT + timedelta(days=7), "older than the 7-day retention"),
    ],
)
def test_a_restore_the_revoke_does_not_allow_is_refused(
    reissue: bool, force_reason: str | None, at: datetime, refusal: str
) -> None:
    with pytest.raises(BreakGlassError, match=refusal):
        _check_restorable(ALPHA, revoke_record(1, reissue=reissue), at, force_reason)


@pytest.mark.parametrize(("reissue", "force_reason"), [(False, None), (True, "leaked key needed back")])
def test_a_restore_within_the_retention_is_allowed(reissue: bool, force_reason: str | None) -> None:
    just_in_time = REVOKED_AT + timedelta(days=7) - timedelta(seconds=1)
    _check_restorable(ALPHA, revoke_record(1, reissue=reissue), just_in_time, force_reason)
