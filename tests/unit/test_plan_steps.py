"""The planner's steps one at a time: what each decides, and what it hands to the next."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.builders import (
    CONFIG,
    DEFAULT_LIFECYCLE,
    NOW,
    ROTATION_ARN,
    credential,
    days,
    entry,
    healthy,
    hours,
    principal,
    rotated,
    secret,
    user,
    with_key,
)
from tokenwarden.domain.model import AWSCURRENT, AWSPENDING, LedgerState, PrincipalInventory
from tokenwarden.domain.plan import (
    ROTATION_TIMEOUT,
    ActionKind,
    PlanConfig,
    Unfinished,
    current_key,
    delete_after_retention,
    grace_ends_at,
    key_findings,
    other_keys,
    retire_after_grace,
    rotation_days,
    rotation_due_at,
    rotation_setup,
    unfinished_rotations,
    untracked_key,
)

ALPHA = principal("alpha")
NOTHING_UNFINISHED = Unfinished()
IN_PROGRESS = Unfinished(in_progress=True, note="rotation v2 in progress since ...")


def rotation_started(age: timedelta, state: LedgerState = LedgerState.PENDING) -> PrincipalInventory:
    """A healthy principal whose rotation to K2 (v2) started `age` ago."""
    k2 = credential("K2", created_at=NOW - age)
    return with_key(healthy(), k2, entry("v2", state, cred=k2), pending=True)


def revoked(inv: PrincipalInventory, *, reissue: bool) -> PrincipalInventory:
    """The current key K1 deactivated by `tokenwarden revoke`."""
    k1 = inv.credentials[0].model_copy(update={"status": "Inactive"})
    record = inv.ledger[0].model_copy(
        update={"revoked_at": NOW - hours(2), "revoked_by": "oncall", "reissue_requested": reissue}
    )
    return inv.model_copy(update={"credentials": (k1,), "ledger": (record,)})


# -- step 1: unfinished rotations --------------------------------------------------------------------


def test_a_young_rotation_is_reported_in_progress_and_not_abandoned() -> None:
    step = unfinished_rotations("alpha", rotation_started(timedelta(minutes=30)), NOW)
    assert step.in_progress
    assert step.actions == ()
    assert step.note == f"rotation v2 in progress since {NOW - timedelta(minutes=30):%Y-%m-%d %H:%M}"
    assert step.resume is None


def test_a_rotation_is_abandoned_exactly_at_the_timeout() -> None:
    step = unfinished_rotations("alpha", rotation_started(ROTATION_TIMEOUT), NOW)
    assert not step.in_progress
    assert step.note is None
    [abandon] = step.actions
    assert (abandon.kind, abandon.version_id, abandon.credential_id) == (
        ActionKind.ABANDON_PENDING,
        "v2",
        "K2",
    )
    assert abandon.reason == f"rotation started {NOW - ROTATION_TIMEOUT:%Y-%m-%d %H:%M} never completed"


def test_without_a_current_key_the_newest_key_issue_is_resumed_and_the_older_abandoned() -> None:
    inv = PrincipalInventory(
        principal="alpha",
        user=user(),
        secret=secret(versions={}),
        ledger=(
            entry("v2", LedgerState.CREATING, created_at=NOW - timedelta(minutes=5)),
            entry("v1", LedgerState.PENDING, created_at=NOW - timedelta(minutes=10)),
        ),
    )
    step = unfinished_rotations("alpha", inv, NOW)
    assert step.resume is not None and step.resume.version_id == "v2"
    # Young as it is, the older attempt is not "in progress": only the reconciler issues keys
    # for a principal without a current one, and it is the one planning now.
    assert not step.in_progress
    assert [a.version_id for a in step.actions] == ["v1"]


def test_the_current_versions_own_record_is_not_an_unfinished_rotation() -> None:
    inv = healthy()
    inv = inv.model_copy(
        update={"ledger": (inv.ledger[0].model_copy(update={"state": LedgerState.PENDING}),)}
    )
    step = unfinished_rotations("alpha", inv, NOW + days(3))
    assert step == Unfinished()


def test_awspending_on_an_unrecorded_version_is_abandoned_beside_a_current_key() -> None:
    inv = healthy()
    assert inv.secret is not None
    stray = inv.secret.model_copy(update={"versions": {"v1": (AWSCURRENT,), "vX": (AWSPENDING,)}})
    step = unfinished_rotations("alpha", inv.model_copy(update={"secret": stray}), NOW)
    [abandon] = step.actions
    assert (abandon.kind, abandon.version_id, abandon.credential_id) == (
        ActionKind.ABANDON_PENDING,
        "vX",
        None,
    )
    assert abandon.reason == "AWSPENDING is on a version TokenWarden never recorded"


def test_awspending_without_a_current_key_is_left_to_onboarding() -> None:
    inv = PrincipalInventory(principal="alpha", user=user(), secret=secret(versions={"vX": (AWSPENDING,)}))
    assert unfinished_rotations("alpha", inv, NOW).actions == ()


# -- step 2: the current key -------------------------------------------------------------------------


def test_onboarding_names_everything_missing_in_order_and_the_key_issue_it_resumes() -> None:
    inv = healthy()
    assert inv.secret is not None
    gone = inv.secret.model_copy(update={"deleted_at": NOW - hours(1), "versions": {}})
    resume = entry("v9", LedgerState.CREATING)
    step = current_key(
        ALPHA, inv.model_copy(update={"user": None, "secret": gone}), NOW, Unfinished(resume=resume)
    )
    [onboard] = step.actions
    assert onboard.kind == ActionKind.ONBOARD
    assert onboard.version_id == "v9"
    assert onboard.reason == (
        "no IAM user, no secret scheduled for deletion, no current key; resuming the unfinished key issue v9"
    )


def test_a_current_version_without_a_ledger_record_is_repaired() -> None:
    inv = healthy().model_copy(update={"ledger": ()})
    [repair] = current_key(ALPHA, inv, NOW, NOTHING_UNFINISHED).actions
    assert (repair.kind, repair.credential_id) == (ActionKind.REPAIR, None)
    assert "no ledger record" in repair.reason


def test_a_key_revoked_without_reissue_gets_a_note_and_no_new_key() -> None:
    step = current_key(ALPHA, revoked(healthy(), reissue=False), NOW, NOTHING_UNFINISHED)
    assert step.actions == ()
    assert step.note is not None
    assert "by oncall" in step.note
    assert "tokenwarden restore alpha" in step.note


def test_a_key_revoked_with_reissue_is_repaired_with_the_revocation_as_reason() -> None:
    [repair] = current_key(ALPHA, revoked(healthy(), reissue=True), NOW, NOTHING_UNFINISHED).actions
    assert (repair.kind, repair.credential_id) == (ActionKind.REPAIR, "K1")
    assert repair.reason.startswith(f"revoked {NOW - hours(2):%Y-%m-%d %H:%M} with --reissue")


def test_a_broken_key_waits_for_a_rotation_in_progress() -> None:
    step = current_key(ALPHA, healthy(status="Inactive"), NOW, IN_PROGRESS)
    assert step.actions == ()
    assert step.note is None  # the unfinished-rotations step says why


def test_an_interrupted_finish_is_resumed_only_with_a_working_key() -> None:
    inv = healthy()
    finishing = inv.model_copy(
        update={"ledger": (inv.ledger[0].model_copy(update={"state": LedgerState.PENDING}),)}
    )
    [resume] = current_key(ALPHA, finishing, NOW, NOTHING_UNFINISHED).actions
    assert (resume.kind, resume.version_id) == (ActionKind.RESUME_FINISH, "v1")

    expired = finishing.model_copy(
        update={"credentials": (finishing.credentials[0].model_copy(update={"status": "Expired"}),)}
    )
    assert [a.kind for a in current_key(ALPHA, expired, NOW, NOTHING_UNFINISHED).actions] == [
        ActionKind.REPAIR
    ]


def test_a_key_not_yet_due_is_upcoming_at_its_due_date() -> None:
    inv = healthy(age=days(10))
    step = current_key(ALPHA, inv, NOW, NOTHING_UNFINISHED)
    expires_at = inv.credentials[0].expires_at
    assert expires_at is not None
    assert step.actions == ()
    [upcoming] = step.upcoming
    assert (upcoming.kind, upcoming.credential_id) == (ActionKind.ROTATE, "K1")
    assert upcoming.at == rotation_due_at("alpha", DEFAULT_LIFECYCLE, expires_at)


def test_a_due_key_is_rotated_and_its_owners_alerted_once() -> None:
    step = current_key(ALPHA, healthy(expires_in=days(5)), NOW, NOTHING_UNFINISHED)
    assert [a.kind for a in step.actions] == [ActionKind.ROTATE, ActionKind.EXPIRING_SOON]
    assert step.actions[1].reason.endswith("(in 5 days)")
    assert step.upcoming == ()

    told = healthy(expires_in=days(5), notified=frozenset({"expiring_soon"}))
    assert [a.kind for a in current_key(ALPHA, told, NOW, NOTHING_UNFINISHED).actions] == [ActionKind.ROTATE]


def test_a_due_key_is_not_rotated_again_while_a_rotation_runs_but_still_alerted() -> None:
    step = current_key(ALPHA, healthy(expires_in=days(5)), NOW, IN_PROGRESS)
    assert [a.kind for a in step.actions] == [ActionKind.EXPIRING_SOON]
    assert [u.kind for u in step.upcoming] == [ActionKind.ROTATE]


def test_a_due_rotation_waits_for_the_previous_keys_grace() -> None:
    inv = rotated(superseded=days(2), current_expires_in=days(5))
    step = current_key(ALPHA, inv, NOW, NOTHING_UNFINISHED)
    assert ActionKind.ROTATE not in [a.kind for a in step.actions]
    assert (
        step.note
        == f"rotation waits until the previous key's grace ends {NOW - days(2) + days(7):%Y-%m-%d %H:%M}"
    )


# -- step 3: rotation set-up -------------------------------------------------------------------------


def test_rotation_configured_as_wanted_needs_nothing() -> None:
    assert rotation_setup(ALPHA, healthy(), CONFIG, in_progress=False) is None


@pytest.mark.parametrize(
    "change",
    [
        {"rotation_enabled": False},
        {"rotation_days": rotation_days(DEFAULT_LIFECYCLE) + 1},
        {"rotation_lambda_arn": ROTATION_ARN + "-old"},
    ],
)
def test_rotation_drifted_from_the_lifecycle_is_configured(change: dict[str, object]) -> None:
    inv = healthy()
    assert inv.secret is not None
    drifted = inv.model_copy(update={"secret": inv.secret.model_copy(update=change)})
    action = rotation_setup(ALPHA, drifted, CONFIG, in_progress=False)
    assert action is not None
    assert action.kind == ActionKind.CONFIGURE_ROTATION
    assert f"every {rotation_days(DEFAULT_LIFECYCLE)} days" in action.reason
    # Never touched while a rotation may still be running.
    assert rotation_setup(ALPHA, drifted, CONFIG, in_progress=True) is None


def test_without_a_configured_rotation_function_its_arn_is_not_compared() -> None:
    inv = healthy()
    assert inv.secret is not None
    other = inv.model_copy(
        update={"secret": inv.secret.model_copy(update={"rotation_lambda_arn": "elsewhere"})}
    )
    assert rotation_setup(ALPHA, other, PlanConfig(), in_progress=False) is None


def test_rotation_is_not_configured_before_the_current_key_is_known() -> None:
    unconfigured = secret(rotation_enabled=False)
    onboarding = PrincipalInventory(principal="alpha", secret=unconfigured)
    unrecorded = healthy().model_copy(update={"secret": unconfigured, "ledger": ()})
    assert rotation_setup(ALPHA, onboarding, CONFIG, in_progress=False) is None
    assert rotation_setup(ALPHA, unrecorded, CONFIG, in_progress=False) is None


# -- step 4: the other keys --------------------------------------------------------------------------


def test_other_keys_leave_the_current_key_alone_even_when_its_record_says_retired() -> None:
    # Offboarded, then added back before its secret was deleted: the current key's record says
    # retired long ago. Deciding that is the current-key step's job; this step must not delete it.
    inv = healthy(expires_in=days(1))
    record = inv.ledger[0].model_copy(
        update={
            "state": LedgerState.RETIRED,
            "superseded_at": NOW - days(30),
            "deactivated_at": NOW - days(30),
        }
    )
    step = other_keys(ALPHA, inv.model_copy(update={"ledger": (record,)}), NOW)
    assert step.actions == ()
    assert step.upcoming == ()


def test_a_previous_key_in_grace_is_upcoming_and_retired_after_it() -> None:
    inv = rotated(superseded=days(2))
    step = other_keys(ALPHA, inv, NOW)
    assert step.actions == ()
    [upcoming] = step.upcoming
    assert (upcoming.kind, upcoming.credential_id, upcoming.at) == (ActionKind.RETIRE, "K1", NOW + days(5))

    [retire] = other_keys(ALPHA, inv, NOW + days(5)).actions
    assert (retire.kind, retire.credential_id) == (ActionKind.RETIRE, "K1")


def test_every_other_key_gets_its_own_decision() -> None:
    k3 = credential("K3", created_at=NOW - hours(2))
    inv = with_key(rotated(superseded=days(8)), k3)
    step = other_keys(ALPHA, inv, NOW)
    assert [(a.kind, a.credential_id) for a in step.actions] == [(ActionKind.RETIRE, "K1")]
    assert [(u.kind, u.credential_id) for u in step.upcoming] == [(ActionKind.DELETE_UNTRACKED, "K3")]


def test_an_untracked_key_is_deleted_once_it_is_older_than_the_safety_hours() -> None:
    young = credential("K9", created_at=NOW - hours(23))
    action, upcoming = untracked_key("alpha", young, DEFAULT_LIFECYCLE, NOW)
    assert action is None and upcoming is not None
    assert (upcoming.kind, upcoming.at, upcoming.credential_id) == (
        ActionKind.DELETE_UNTRACKED,
        NOW + hours(1),
        "K9",
    )
    action, upcoming = untracked_key("alpha", young, DEFAULT_LIFECYCLE, NOW + hours(1))
    assert upcoming is None and action is not None
    assert (action.kind, action.credential_id) == (ActionKind.DELETE_UNTRACKED, "K9")
    assert (
        action.reason == f"key {young.alias} is in no ledger record (a crash leftover) and is older than 24 h"
    )


def test_the_grace_counts_from_the_hand_over_or_else_from_the_switch_off() -> None:
    superseded = entry("v1", LedgerState.PREVIOUS, superseded_at=NOW - days(3), deactivated_at=NOW - days(1))
    assert grace_ends_at(superseded, DEFAULT_LIFECYCLE, NOW) == NOW + days(4)
    switched_off = entry("v1", LedgerState.RETIRED, deactivated_at=NOW - days(1))
    assert grace_ends_at(switched_off, DEFAULT_LIFECYCLE, NOW) == NOW + days(6)


def test_a_replaced_key_is_retired_exactly_when_its_grace_ends() -> None:
    k1 = credential("K1")
    record = entry("v1", LedgerState.PREVIOUS, cred=k1, superseded_at=NOW - days(7))
    action, upcoming = retire_after_grace("alpha", k1, record, DEFAULT_LIFECYCLE, NOW)
    assert upcoming is None and action is not None
    assert (action.kind, action.credential_id) == (ActionKind.RETIRE, "K1")
    assert action.reason == f"key {k1.alias} was replaced {NOW - days(7):%Y-%m-%d}; its 7-day grace is over"
    action, upcoming = retire_after_grace("alpha", k1, record, DEFAULT_LIFECYCLE, NOW - hours(1))
    assert action is None and upcoming is not None and upcoming.at == NOW


def test_a_switched_off_key_is_deleted_when_its_rollback_window_ends() -> None:
    k1 = credential("K1", status="Inactive")
    record = entry(
        "v1", LedgerState.RETIRED, cred=k1, superseded_at=NOW - days(20), deactivated_at=NOW - days(6)
    )
    action, upcoming = delete_after_retention("alpha", k1, record, DEFAULT_LIFECYCLE, NOW)
    assert action is None and upcoming is not None
    assert (upcoming.kind, upcoming.at) == (ActionKind.DELETE, NOW + days(1))
    action, _ = delete_after_retention("alpha", k1, record, DEFAULT_LIFECYCLE, NOW + days(1))
    assert action is not None and action.kind is ActionKind.DELETE
    assert action.reason == (
        f"key {k1.alias} has been inactive since {NOW - days(6):%Y-%m-%d}; its 7-day rollback window is over"
    )


def test_a_key_that_expired_without_a_switch_off_is_deleted_a_retention_after_its_grace() -> None:
    k1 = credential("K1", status="Expired")
    record = entry("v1", LedgerState.PREVIOUS, cred=k1, superseded_at=NOW - days(10))
    _, upcoming = delete_after_retention("alpha", k1, record, DEFAULT_LIFECYCLE, NOW)
    assert upcoming is not None and upcoming.at == NOW - days(10) + days(7) + days(7)


# -- step 5: findings --------------------------------------------------------------------------------


def test_findings_name_a_user_at_the_key_limit_and_each_key_without_expiry() -> None:
    inv = with_key(healthy(), credential("K2", age_days=None, alias="laptop"))
    findings = key_findings("alpha", inv)
    assert [(f.kind, f.detail) for f in findings] == [
        ("user_at_key_limit", "2 of 2 keys in use"),
        ("key_without_expiry", "key laptop has no expiry IAM reports or TokenWarden recorded"),
    ]
    assert {f.principal for f in findings} == {"alpha"}


def test_a_healthy_principal_has_no_findings() -> None:
    assert key_findings("alpha", healthy()) == ()
