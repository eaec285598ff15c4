"""The planner: registry x inventory x now -> actions with reasons (DESIGN §2 Reconciler, §3)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    inventory,
    principal,
    registry,
    rotated,
    secret,
    user,
    with_key,
    with_stage,
)
from tokenwarden.domain.model import AWSCURRENT, AWSPENDING, AWSPREVIOUS, LedgerState, PrincipalInventory
from tokenwarden.domain.plan import (
    ORDER,
    ROTATION_TIMEOUT,
    Action,
    ActionKind,
    Plan,
    PlanConfig,
    PrincipalPlan,
    build_plan,
    rotation_days,
    rotation_due_at,
    rotation_jitter,
)
from tokenwarden.domain.registry import Lifecycle, Principal

DESTRUCTIVE = {ActionKind.RETIRE, ActionKind.DELETE, ActionKind.DELETE_UNTRACKED, ActionKind.ABANDON_PENDING}


def plan_for(
    inv: PrincipalInventory,
    *,
    now: datetime = NOW,
    who: Principal | None = None,
    config: PlanConfig = CONFIG,
) -> PrincipalPlan:
    who = who or principal(inv.principal)
    plan = build_plan(registry(who), inventory(inv), now, config)
    return principal_plan(plan, who.id)


def principal_plan(plan: Plan, principal_id: str) -> PrincipalPlan:
    """The part of the plan for a principal the test relies on being planned."""
    result = plan.for_principal(principal_id)
    assert result is not None, principal_id
    return result


def kinds(pp: PrincipalPlan) -> list[ActionKind]:
    return [a.kind for a in pp.actions]


def only(pp: PrincipalPlan, kind: ActionKind) -> Action:
    matching = [a for a in pp.actions if a.kind == kind]
    assert len(matching) == 1, pp.actions
    return matching[0]


def jitter(pid: str = "alpha", life: Lifecycle = DEFAULT_LIFECYCLE) -> timedelta:
    return rotation_jitter(pid, life)


# -- onboarding -----------------------------------------------------------------------------------


def test_new_principal_is_onboarded() -> None:
    pp = plan_for(PrincipalInventory(principal="alpha"))
    onboard = only(pp, ActionKind.ONBOARD)
    assert kinds(pp) == [ActionKind.ONBOARD]
    assert onboard.version_id is None
    assert "no IAM user" in onboard.reason
    assert "no secret" in onboard.reason
    assert pp.upcoming is None


def test_secret_without_a_current_version_is_onboarded() -> None:
    inv = PrincipalInventory(principal="alpha", user=user(), secret=secret(versions={}))
    onboard = only(plan_for(inv), ActionKind.ONBOARD)
    assert "no current key" in onboard.reason
    assert "IAM user" not in onboard.reason


def test_secret_scheduled_for_deletion_is_onboarded_again() -> None:
    inv = healthy()
    assert inv.secret is not None
    inv = inv.model_copy(update={"secret": inv.secret.model_copy(update={"deleted_at": NOW - hours(2)})})
    onboard = only(plan_for(inv), ActionKind.ONBOARD)
    assert "scheduled for deletion" in onboard.reason


def test_onboarding_resumes_the_newest_unfinished_key_issue() -> None:
    k2 = credential("K2", created_at=NOW - hours(2))
    inv = PrincipalInventory(
        principal="alpha",
        user=user(),
        credentials=(k2,),
        secret=secret(versions={"v2": (AWSPENDING,)}),
        ledger=(
            entry("v1", LedgerState.CREATING, created_at=NOW - hours(3)),
            entry("v2", LedgerState.PENDING, cred=k2),
            entry("v0", LedgerState.CREATING, created_at=NOW - hours(5)),
        ),
    )
    pp = plan_for(inv)
    onboard = only(pp, ActionKind.ONBOARD)
    assert onboard.version_id == "v2"
    assert "v2" in onboard.reason
    # The older unfinished attempts are abandoned; the resumed one's key is left alone.
    abandoned = sorted((a.version_id for a in pp.actions if a.kind == ActionKind.ABANDON_PENDING), key=str)
    assert abandoned == ["v0", "v1"]
    assert not any(a.credential_id == "K2" for a in pp.actions if a.kind in DESTRUCTIVE)


def test_onboarding_does_not_resume_when_a_current_key_exists() -> None:
    inv = with_key(
        healthy(),
        credential("K2", created_at=NOW - hours(3)),
        entry("v2", LedgerState.PENDING, cred=credential("K2", created_at=NOW - hours(3))),
    )
    pp = plan_for(inv)
    assert ActionKind.ONBOARD not in kinds(pp)
    assert only(pp, ActionKind.ABANDON_PENDING).version_id == "v2"


# -- routine rotation -----------------------------------------------------------------------------


def test_healthy_key_far_from_expiry_needs_nothing() -> None:
    inv = healthy(age=days(10))
    pp = plan_for(inv)
    assert pp.actions == ()
    assert pp.findings == ()
    assert pp.note is None
    k1 = inv.credentials[0]
    assert k1.expires_at is not None
    assert pp.upcoming is not None
    assert pp.upcoming.kind == ActionKind.ROTATE
    assert pp.upcoming.credential_id == "K1"
    assert pp.upcoming.at == rotation_due_at("alpha", DEFAULT_LIFECYCLE, k1.expires_at)
    assert pp.upcoming.at == k1.expires_at - days(14) - jitter()


def test_key_within_rotate_before_days_is_rotated() -> None:
    inv = healthy(expires_in=days(12))
    rotate = only(plan_for(inv), ActionKind.ROTATE)
    assert rotate.credential_id == "K1"
    assert "alias-k1" in rotate.reason
    assert f"{inv.credentials[0].expires_at:%Y-%m-%d}" in rotate.reason


def test_rotation_is_due_exactly_at_rotate_before_days_plus_jitter() -> None:
    due_now = healthy(expires_in=days(14) + jitter())
    assert ActionKind.ROTATE in kinds(plan_for(due_now))

    a_minute_early = healthy(expires_in=days(14) + jitter() + timedelta(minutes=1))
    pp = plan_for(a_minute_early)
    assert ActionKind.ROTATE not in kinds(pp)
    assert pp.upcoming is not None
    assert pp.upcoming.kind == ActionKind.ROTATE
    assert pp.upcoming.at == NOW + timedelta(minutes=1)


def test_rotation_honours_the_principals_own_lifecycle() -> None:
    life = Lifecycle(key_age_days=60, rotate_before_days=10, rotation_jitter_days=0)
    who = principal("mobile", lifecycle=life)
    inv = healthy("mobile", expires_in=days(12), lifecycle=life)
    assert ActionKind.ROTATE not in kinds(plan_for(inv, who=who))
    inv = healthy("mobile", expires_in=days(10), lifecycle=life)
    assert ActionKind.ROTATE in kinds(plan_for(inv, who=who))


def test_jitter_is_stable_and_bounded() -> None:
    life = Lifecycle(rotation_jitter_days=3)
    ids = [f"team-{i}" for i in range(200)]
    values = [rotation_jitter(pid, life) for pid in ids]
    assert values == [rotation_jitter(pid, Lifecycle(rotation_jitter_days=3)) for pid in ids]
    assert all(timedelta(0) <= v <= days(3) for v in values)
    assert all(v.total_seconds() % 3600 == 0 for v in values)
    # A cohort is spread out rather than rotated on one night.
    assert len(set(values)) > 20
    assert max(values) - min(values) >= days(2)


def test_no_jitter_when_jitter_days_is_zero() -> None:
    life = Lifecycle(rotation_jitter_days=0)
    assert {rotation_jitter(f"team-{i}", life) for i in range(50)} == {timedelta(0)}


def test_jitter_spreads_principals_with_the_same_expiry() -> None:
    ids = [f"team-{i}" for i in range(40)]
    early, late = max(ids, key=jitter), min(ids, key=jitter)
    assert jitter(early) > jitter(late)
    # Both keys expire at the same moment; NOW is between their due dates.
    expires_in = days(14) + (jitter(early) + jitter(late)) / 2
    plan = build_plan(
        registry(early, late),
        inventory(healthy(early, expires_in=expires_in), healthy(late, expires_in=expires_in)),
        NOW,
        CONFIG,
    )
    assert ActionKind.ROTATE in kinds(principal_plan(plan, early))
    assert ActionKind.ROTATE not in kinds(principal_plan(plan, late))


@pytest.mark.parametrize(
    "life",
    [
        Lifecycle(),
        Lifecycle(key_age_days=60, rotate_before_days=10),
        Lifecycle(key_age_days=20, rotate_before_days=5, grace_days=2, retention_days=3, expiry_alert_days=3),
        Lifecycle(
            key_age_days=10,
            rotate_before_days=2,
            rotation_jitter_days=0,
            grace_days=1,
            retention_days=1,
            expiry_alert_days=1,
        ),
    ],
)
def test_secrets_manager_backstop_fires_after_the_reconciler_and_before_expiry(life: Lifecycle) -> None:
    latest_reconciler_rotation = life.key_age_days - life.rotate_before_days
    assert latest_reconciler_rotation < rotation_days(life) < life.key_age_days


# -- the previous key: grace, retention -----------------------------------------------------------


def test_rotation_waits_while_the_previous_key_is_in_grace() -> None:
    inv = rotated(superseded=days(2), current_expires_in=days(10))
    pp = plan_for(inv)
    assert ActionKind.ROTATE not in kinds(pp)
    assert ActionKind.RETIRE not in kinds(pp)
    grace_end = NOW - days(2) + days(7)
    assert pp.note is not None
    assert "grace" in pp.note
    assert f"{grace_end:%Y-%m-%d %H:%M}" in pp.note
    assert pp.upcoming is not None
    assert pp.upcoming.kind == ActionKind.RETIRE
    assert pp.upcoming.at == grace_end


def test_rotation_proceeds_once_the_grace_is_over() -> None:
    inv = rotated(superseded=days(7), current_expires_in=days(10))
    pp = plan_for(inv)
    assert only(pp, ActionKind.ROTATE).credential_id == "K2"
    assert only(pp, ActionKind.RETIRE).credential_id == "K1"
    assert pp.note is None


def test_an_inactive_previous_key_does_not_block_rotation() -> None:
    inv = rotated(
        superseded=days(2),
        previous_status="Inactive",
        previous_state=LedgerState.RETIRED,
        deactivated=days(1),
        current_expires_in=days(10),
    )
    assert ActionKind.ROTATE in kinds(plan_for(inv))


def test_previous_key_is_retired_when_its_grace_is_over() -> None:
    pp = plan_for(rotated(superseded=days(7)))
    retire = only(pp, ActionKind.RETIRE)
    assert retire.credential_id == "K1"
    assert "alias-k1" in retire.reason
    assert "7-day grace" in retire.reason
    assert kinds(pp) == [ActionKind.RETIRE]


def test_previous_key_is_kept_active_during_its_grace() -> None:
    pp = plan_for(rotated(superseded=days(7) - timedelta(minutes=1)))
    assert pp.actions == ()
    assert pp.upcoming is not None
    assert pp.upcoming.kind == ActionKind.RETIRE
    assert pp.upcoming.credential_id == "K1"
    assert pp.upcoming.at == NOW + timedelta(minutes=1)


def test_grace_follows_the_principals_lifecycle() -> None:
    life = Lifecycle(grace_days=2)
    who = principal("alpha", lifecycle=life)
    assert ActionKind.RETIRE in kinds(plan_for(rotated(superseded=days(2), lifecycle=life), who=who))
    assert ActionKind.RETIRE not in kinds(plan_for(rotated(superseded=days(1), lifecycle=life), who=who))


def test_retired_key_is_deleted_after_retention() -> None:
    inv = rotated(
        superseded=days(14),
        previous_status="Inactive",
        previous_state=LedgerState.RETIRED,
        deactivated=days(7),
    )
    pp = plan_for(inv)
    delete = only(pp, ActionKind.DELETE)
    assert delete.credential_id == "K1"
    assert "7-day rollback window" in delete.reason
    assert kinds(pp) == [ActionKind.DELETE]


def test_retired_key_is_kept_during_retention() -> None:
    inv = rotated(
        superseded=days(14),
        previous_status="Inactive",
        previous_state=LedgerState.RETIRED,
        deactivated=days(6),
    )
    pp = plan_for(inv)
    assert pp.actions == ()
    assert pp.upcoming is not None
    assert pp.upcoming.kind == ActionKind.DELETE
    assert pp.upcoming.credential_id == "K1"
    assert pp.upcoming.at == NOW + days(1)


def test_retention_counts_from_the_deactivation_not_the_grace_end() -> None:
    # Retired late (e.g. the reconciler was down): the rollback window still lasts retention_days.
    inv = rotated(
        superseded=days(20),
        previous_status="Inactive",
        previous_state=LedgerState.RETIRED,
        deactivated=days(3),
    )
    pp = plan_for(inv)
    assert ActionKind.DELETE not in kinds(pp)
    assert pp.upcoming is not None
    assert pp.upcoming.at == NOW + days(4)


def test_key_recorded_as_deleted_but_still_listed_is_deleted() -> None:
    inv = rotated(superseded=days(1), previous_state=LedgerState.DELETED)
    assert only(plan_for(inv), ActionKind.DELETE).credential_id == "K1"


# -- untracked keys -------------------------------------------------------------------------------


def test_untracked_key_older_than_the_safety_age_is_deleted() -> None:
    inv = with_key(healthy(), credential("K9", created_at=NOW - hours(24)))
    pp = plan_for(inv)
    delete = only(pp, ActionKind.DELETE_UNTRACKED)
    assert delete.credential_id == "K9"
    assert "alias-k9" in delete.reason
    assert "24 h" in delete.reason


def test_young_untracked_key_is_left_alone() -> None:
    inv = with_key(healthy(), credential("K9", created_at=NOW - hours(23)))
    pp = plan_for(inv)
    assert pp.actions == ()
    assert pp.upcoming is not None
    assert pp.upcoming.kind == ActionKind.DELETE_UNTRACKED
    assert pp.upcoming.credential_id == "K9"
    assert pp.upcoming.at == NOW + hours(1)


def test_untracked_safety_age_follows_the_lifecycle() -> None:
    who = principal("alpha", untracked_safety_hours=2)
    inv = with_key(healthy(), credential("K9", created_at=NOW - hours(3)))
    assert ActionKind.DELETE_UNTRACKED in kinds(plan_for(inv, who=who))


# -- repair and unfinished rotations --------------------------------------------------------------


@pytest.mark.parametrize(
    ("inv", "words"),
    [
        (healthy().model_copy(update={"credentials": ()}), "deleted out of band"),
        (healthy(status="Inactive"), "deactivated out of band"),
        (healthy(status="Expired", expires_in=-days(1)), "expired"),
        (healthy(expires_in=timedelta(0)), "expired"),
        (healthy(expires_in=-hours(1)), "expired"),
    ],
    ids=["deleted", "inactive", "expired-status", "expires-now", "past-expiry-still-active"],
)
def test_broken_current_key_is_repaired(inv: PrincipalInventory, words: str) -> None:
    pp = plan_for(inv)
    repair = only(pp, ActionKind.REPAIR)
    assert repair.credential_id == "K1"
    assert words in repair.reason
    assert ActionKind.ROTATE not in kinds(pp)
    assert ActionKind.EXPIRING_SOON not in kinds(pp)


def test_current_key_without_expiry_is_repaired_and_reported() -> None:
    inv = healthy()
    k1 = inv.credentials[0].model_copy(update={"expires_at": None})
    pp = plan_for(inv.model_copy(update={"credentials": (k1,)}))
    assert "no expiry" in only(pp, ActionKind.REPAIR).reason
    assert [f.kind for f in pp.findings] == ["key_without_expiry"]


def test_awscurrent_without_a_ledger_record_is_repaired() -> None:
    inv = healthy().model_copy(update={"ledger": ()})
    pp = plan_for(inv)
    repair = only(pp, ActionKind.REPAIR)
    assert "no ledger record" in repair.reason
    # Starting a rotation comes last: from then on the background rotation holds the lease.
    assert pp.actions[-1].kind == ActionKind.REPAIR


def test_awscurrent_recorded_but_not_marked_current_resumes_finish() -> None:
    inv = healthy()
    inv = inv.model_copy(
        update={"ledger": (inv.ledger[0].model_copy(update={"state": LedgerState.PENDING}),)}
    )
    pp = plan_for(inv)
    resume = only(pp, ActionKind.RESUME_FINISH)
    assert resume.version_id == "v1"
    assert ActionKind.REPAIR not in kinds(pp)


def young_rotation(age: timedelta, *, expires_in: timedelta = timedelta(days=10)) -> PrincipalInventory:
    k2 = credential("K2", created_at=NOW - age)
    return with_key(
        healthy(expires_in=expires_in), k2, entry("v2", LedgerState.PENDING, cred=k2), pending=True
    )


def test_young_unfinished_rotation_is_left_running() -> None:
    pp = plan_for(young_rotation(timedelta(minutes=30)))
    assert ActionKind.ROTATE not in kinds(pp)
    assert ActionKind.ABANDON_PENDING not in kinds(pp)
    assert pp.note is not None
    assert "v2" in pp.note
    assert "in progress" in pp.note


def test_young_key_issue_without_a_key_yet_is_left_running() -> None:
    inv = healthy(expires_in=days(10))
    inv = inv.model_copy(
        update={
            "ledger": (*inv.ledger, entry("v2", LedgerState.CREATING, created_at=NOW - timedelta(minutes=5)))
        }
    )
    pp = plan_for(inv)
    assert ActionKind.ROTATE not in kinds(pp)
    assert pp.note is not None
    assert "v2" in pp.note


def test_broken_key_waits_for_a_young_rotation_instead_of_starting_another() -> None:
    inv = young_rotation(timedelta(minutes=20))
    k1 = inv.credentials[0].model_copy(update={"status": "Inactive"})
    pp = plan_for(inv.model_copy(update={"credentials": (k1, *inv.credentials[1:])}))
    assert ActionKind.REPAIR not in kinds(pp)
    assert pp.note is not None
    assert "in progress" in pp.note
    # Once it times out, the attempt is abandoned and the key repaired.
    pp = plan_for(
        inv.model_copy(update={"credentials": (k1, *inv.credentials[1:])}), now=NOW + ROTATION_TIMEOUT
    )
    assert kinds(pp) == [ActionKind.ABANDON_PENDING, ActionKind.REPAIR]


def test_young_rotation_still_gets_the_expiry_alert() -> None:
    pp = plan_for(young_rotation(timedelta(minutes=30), expires_in=days(3)))
    assert ActionKind.EXPIRING_SOON in kinds(pp)
    assert ActionKind.ROTATE not in kinds(pp)


@pytest.mark.parametrize("age", [ROTATION_TIMEOUT, hours(5), days(3)])
def test_old_unfinished_rotation_is_abandoned_and_rotation_restarted(age: timedelta) -> None:
    pp = plan_for(young_rotation(age))
    abandon = only(pp, ActionKind.ABANDON_PENDING)
    assert (abandon.version_id, abandon.credential_id) == ("v2", "K2")
    assert "never completed" in abandon.reason
    assert kinds(pp) == [ActionKind.ABANDON_PENDING, ActionKind.ROTATE]
    assert pp.note is None


def test_unknown_pending_version_is_abandoned() -> None:
    inv = with_stage(healthy(), "v9", AWSPENDING)
    abandon = only(plan_for(inv), ActionKind.ABANDON_PENDING)
    assert abandon.version_id == "v9"
    assert abandon.credential_id is None
    assert "never recorded" in abandon.reason


def test_pending_label_on_the_current_version_is_fine() -> None:
    inv = with_stage(healthy(), "v1", AWSPENDING)
    assert plan_for(inv).actions == ()


# -- rotation configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"rotation_enabled": False},
        {"rotation_days": 90},
        {"rotation_days": None},
        {"rotation_lambda_arn": "arn:aws:lambda:eu-west-1:123456789012:function:someone-else"},
        {"rotation_lambda_arn": None},
    ],
    ids=["disabled", "wrong-days", "no-days", "wrong-lambda", "no-lambda"],
)
def test_misconfigured_rotation_is_configured(change: dict[str, object]) -> None:
    inv = healthy()
    assert inv.secret is not None
    inv = inv.model_copy(update={"secret": inv.secret.model_copy(update=change)})
    pp = plan_for(inv)
    configure = only(pp, ActionKind.CONFIGURE_ROTATION)
    assert str(rotation_days(DEFAULT_LIFECYCLE)) in configure.reason
    assert kinds(pp) == [ActionKind.CONFIGURE_ROTATION]


def test_rotation_days_follow_the_principals_lifecycle() -> None:
    life = Lifecycle(key_age_days=60, rotate_before_days=10)
    assert rotation_days(life) != rotation_days(DEFAULT_LIFECYCLE)
    who = principal("mobile", lifecycle=life)
    # Configured for the default lifecycle, not mobile's.
    inv = healthy("mobile", lifecycle=life)
    assert inv.secret is not None
    wrong = inv.model_copy(
        update={"secret": inv.secret.model_copy(update={"rotation_days": rotation_days(DEFAULT_LIFECYCLE)})}
    )
    assert ActionKind.CONFIGURE_ROTATION in kinds(plan_for(wrong, who=who))
    assert plan_for(inv, who=who).actions == ()


def test_lambda_is_not_compared_when_the_deployment_has_none() -> None:
    inv = healthy()
    assert inv.secret is not None
    inv = inv.model_copy(
        update={"secret": inv.secret.model_copy(update={"rotation_lambda_arn": "arn:other"})}
    )
    assert plan_for(inv, config=PlanConfig()).actions == ()
    assert ActionKind.CONFIGURE_ROTATION in kinds(
        plan_for(inv, config=PlanConfig(rotation_lambda_arn=ROTATION_ARN))
    )


# -- expiry alert ---------------------------------------------------------------------------------


def test_expiring_key_is_announced_once() -> None:
    inv = healthy(expires_in=days(7))
    alert = only(plan_for(inv), ActionKind.EXPIRING_SOON)
    assert alert.credential_id == "K1"
    assert "alias-k1" in alert.reason
    assert f"{inv.credentials[0].expires_at:%Y-%m-%d}" in alert.reason

    already = healthy(expires_in=days(7), notified=frozenset({"expiring_soon"}))
    assert ActionKind.EXPIRING_SOON not in kinds(plan_for(already))
    # Other notifications on the record do not count.
    other = healthy(expires_in=days(7), notified=frozenset({"activated"}))
    assert ActionKind.EXPIRING_SOON in kinds(plan_for(other))


def test_no_expiry_alert_before_the_threshold() -> None:
    pp = plan_for(healthy(expires_in=days(7) + timedelta(minutes=1)))
    assert ActionKind.EXPIRING_SOON not in kinds(pp)
    assert ActionKind.ROTATE in kinds(pp)


def test_expiry_alert_fires_even_when_rotation_is_blocked() -> None:
    inv = rotated(superseded=days(1), current_expires_in=days(5))
    pp = plan_for(inv)
    assert ActionKind.ROTATE not in kinds(pp)
    assert ActionKind.EXPIRING_SOON in kinds(pp)


# -- order, findings, registry coverage -----------------------------------------------------------


def test_actions_are_ordered_by_kind() -> None:
    inv = healthy(expires_in=days(5))
    assert inv.secret is not None
    inv = inv.model_copy(update={"secret": inv.secret.model_copy(update={"rotation_enabled": False})})
    inv = with_stage(inv, "v9", AWSPENDING)
    k0 = credential("K0", status="Inactive", created_at=NOW - days(100))
    inv = with_key(
        inv,
        k0,
        entry(
            "v0", LedgerState.RETIRED, cred=k0, superseded_at=NOW - days(20), deactivated_at=NOW - days(10)
        ),
    )
    pp = plan_for(inv)
    # A stale AWSPENDING goes before RotateSecret is called again (it would be refused), and
    # the rotation starts last, once everything else for the principal is done.
    assert kinds(pp) == [
        ActionKind.ABANDON_PENDING,
        ActionKind.CONFIGURE_ROTATION,
        ActionKind.DELETE,
        ActionKind.EXPIRING_SOON,
        ActionKind.ROTATE,
    ]
    assert kinds(pp) == sorted(kinds(pp), key=ORDER.__getitem__)


def test_user_at_the_key_limit_is_reported() -> None:
    pp = plan_for(rotated(superseded=days(1)))
    assert [(f.principal, f.kind) for f in pp.findings] == [("alpha", "user_at_key_limit")]
    assert "2 of 2" in pp.findings[0].detail
    assert plan_for(healthy()).findings == ()


def test_other_key_without_expiry_is_reported() -> None:
    inv = with_key(healthy(), credential("K7", age_days=None, created_at=NOW - hours(1)))
    findings = {f.kind: f for f in plan_for(inv).findings}
    assert set(findings) == {"key_without_expiry", "user_at_key_limit"}
    assert "alias-k7" in findings["key_without_expiry"].detail


def test_a_principal_removed_from_the_registry_is_offboarded() -> None:
    plan = build_plan(
        registry("alpha", "beta", "gamma"),
        inventory(healthy("alpha"), healthy("beta"), healthy("gamma"), healthy("ghost")),
        NOW,
        CONFIG,
    )
    ghost = plan.for_principal("ghost")
    assert ghost is not None
    assert [a.kind for a in ghost.actions] == [ActionKind.OFFBOARD, ActionKind.DELETE_SECRET]
    assert all(a.principal == "ghost" for a in plan.actions)
    assert plan.guard is not None and not plan.guard.tripped


def test_offboarded_keys_are_deleted_after_the_retention_then_the_user() -> None:
    inactive = healthy("ghost", status="Inactive")
    plan = build_plan(registry("alpha"), inventory(healthy("alpha"), inactive), NOW, CONFIG)
    ghost = plan.for_principal("ghost")
    assert ghost is not None
    kinds = [a.kind for a in ghost.actions]
    assert ActionKind.OFFBOARD not in kinds
    empty = PrincipalInventory(principal="zz-old", user=user("zz-old"))
    plan = build_plan(registry("alpha"), inventory(healthy("alpha"), empty), NOW, CONFIG)
    old = plan.for_principal("zz-old")
    assert old is not None and [a.kind for a in old.actions] == [ActionKind.DELETE_USER]


def test_the_guard_holds_mass_deactivation_but_not_the_rest() -> None:
    world = inventory(
        *(healthy(name) for name in ("alpha", "beta", "gamma", "delta", "eps")),
        rotated("zeta", superseded=days(8)),
    )
    plan = build_plan(registry("alpha", "zeta"), world, NOW, CONFIG)
    assert plan.guard is not None and plan.guard.tripped
    assert plan.guard.would_deactivate == ("beta", "delta", "eps", "gamma")
    assert not any(a.kind == ActionKind.OFFBOARD for a in plan.actions)
    assert [f.kind for f in plan.findings] == ["guard_tripped"]
    assert any(a.kind == ActionKind.RETIRE and a.principal == "zeta" for a in plan.actions)

    forced = build_plan(
        registry("alpha", "zeta"), world, NOW, CONFIG.model_copy(update={"allow_mass_revoke": True})
    )
    assert forced.guard is not None and forced.guard.overridden and not forced.guard.tripped
    assert sum(a.kind == ActionKind.OFFBOARD for a in forced.actions) == 4


@pytest.mark.parametrize(
    ("managed", "removed", "tripped"),
    [(3, 2, False), (5, 2, False), (5, 3, True), (20, 4, False), (20, 5, True)],
)
def test_guard_threshold_is_max_of_two_and_twenty_percent(managed: int, removed: int, tripped: bool) -> None:
    names = [f"p{i:02d}" for i in range(managed)]
    plan = build_plan(registry(*names[removed:]), inventory(*(healthy(n) for n in names)), NOW, CONFIG)
    assert plan.guard is not None and plan.guard.tripped is tripped


def test_empty_inventory_for_one_principal_does_not_affect_others() -> None:
    plan = build_plan(
        registry("alpha", "beta", "gamma"),
        inventory(healthy("alpha"), rotated("gamma", superseded=days(8))),
        NOW,
        CONFIG,
    )
    assert [p.principal for p in plan.principals] == ["alpha", "beta", "gamma"]
    assert principal_plan(plan, "alpha").actions == ()
    assert kinds(principal_plan(plan, "beta")) == [ActionKind.ONBOARD]
    assert kinds(principal_plan(plan, "gamma")) == [ActionKind.RETIRE]
    assert [(a.principal, a.kind) for a in plan.actions] == [
        ("beta", ActionKind.ONBOARD),
        ("gamma", ActionKind.RETIRE),
    ]
    assert plan.findings == ()
    assert plan.generated_at == NOW


def test_developer_is_planned_like_any_principal() -> None:
    who = principal("jdoe", kind="developer", team="platform-eng")
    pp = plan_for(healthy("jdoe", expires_in=days(10)), who=who)
    assert only(pp, ActionKind.ROTATE).principal == "jdoe"


def test_describe_names_the_target_and_reason() -> None:
    action = only(plan_for(rotated(superseded=days(8))), ActionKind.RETIRE)
    assert action.describe().startswith("retire K1: key alias-k1")


# -- bugs -----------------------------------------------------------------------------------------


def test_finish_interrupted_after_the_label_move_keeps_the_old_key_in_grace() -> None:
    k1 = credential("K1", created_at=NOW - days(80))
    k2 = credential("K2", created_at=NOW - timedelta(minutes=10))
    inv = PrincipalInventory(
        principal="alpha",
        user=user(),
        credentials=(k1, k2),
        secret=secret(versions={"v1": (AWSPREVIOUS,), "v2": (AWSCURRENT,)}),
        ledger=(
            entry("v1", LedgerState.CURRENT, cred=k1, activated_at=k1.created_at),
            entry("v2", LedgerState.PENDING, cred=k2),
        ),
    )
    pp = plan_for(inv)
    assert only(pp, ActionKind.RESUME_FINISH).version_id == "v2"
    assert ActionKind.RETIRE not in kinds(pp)


def test_onboarding_after_secret_deletion_does_not_retire_the_current_key() -> None:
    inv = healthy(age=days(30))
    assert inv.secret is not None
    inv = inv.model_copy(update={"secret": inv.secret.model_copy(update={"deleted_at": NOW - hours(1)})})
    pp = plan_for(inv)
    assert ActionKind.ONBOARD in kinds(pp)
    assert not [a for a in pp.actions if a.kind in DESTRUCTIVE and a.credential_id == "K1"]


# -- properties over generated inventories --------------------------------------------------------

LIFECYCLES = [
    DEFAULT_LIFECYCLE,
    Lifecycle(key_age_days=60, rotate_before_days=10),
    Lifecycle(key_age_days=30, rotate_before_days=8, rotation_jitter_days=0, grace_days=2, retention_days=3),
]
OTHER_STATES = [
    None,
    LedgerState.CREATING,
    LedgerState.PENDING,
    LedgerState.PREVIOUS,
    LedgerState.RETIRED,
    LedgerState.DELETED,
    LedgerState.ABANDONED,
]
STATUSES = ["Active", "Inactive", "Expired"]
OFFSETS = st.integers(min_value=0, max_value=100 * 24).map(hours)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Lifecycle, PrincipalInventory]:
    """A principal whose AWSCURRENT version v1 is recorded as CURRENT, plus whatever else."""
    life = draw(st.sampled_from(LIFECYCLES))
    k1_age = draw(OFFSETS)
    k1 = credential(
        "K1",
        status=draw(st.sampled_from(STATUSES)),
        created_at=NOW - k1_age,
        age_days=life.key_age_days,
    )
    notified = draw(st.sets(st.sampled_from(["expiring_soon", "activated"])))
    inv = PrincipalInventory(
        principal="alpha",
        user=user(),
        credentials=(k1,),
        secret=secret(
            versions={"v1": (AWSCURRENT,)},
            lifecycle=life,
            rotation_enabled=draw(st.booleans()),
        ),
        ledger=(
            entry(
                "v1", LedgerState.CURRENT, cred=k1, activated_at=k1.created_at, notified=frozenset(notified)
            ),
        ),
    )
    if draw(st.booleans()):
        state = draw(st.sampled_from(OTHER_STATES))
        k2 = credential(
            "K2",
            status=draw(st.sampled_from(STATUSES)),
            created_at=NOW - draw(OFFSETS),
            age_days=draw(st.sampled_from([life.key_age_days, None])),
        )
        record = None
        if state is not None:
            superseded = NOW - draw(OFFSETS)
            deactivated = superseded + draw(OFFSETS) if state != LedgerState.PREVIOUS else None
            record = entry(
                "v2",
                state,
                cred=k2,
                created_at=k2.created_at,
                superseded_at=superseded
                if state not in (LedgerState.CREATING, LedgerState.PENDING)
                else None,
                deactivated_at=min(deactivated, NOW) if deactivated else None,
            )
        inv = with_key(inv, k2, record, pending=draw(st.booleans()))
    if draw(st.booleans()):
        inv = with_stage(inv, "v9", AWSPENDING)
    if draw(st.booleans()):  # the current key deleted out of band
        inv = inv.model_copy(update={"credentials": tuple(c for c in inv.credentials if c.id != "K1")})
    return life, inv


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_plan_properties(scenario: tuple[Lifecycle, PrincipalInventory]) -> None:
    life, inv = scenario
    who = principal("alpha", lifecycle=life)
    plan = build_plan(registry(who), inventory(inv), NOW, CONFIG)
    pp = principal_plan(plan, "alpha")
    found = kinds(pp)

    # The current key is never retired, deleted or abandoned.
    assert not [a for a in pp.actions if a.kind in DESTRUCTIVE and a.credential_id == "K1"], pp.actions
    # Actions come in ORDER and all belong to the principal.
    assert found == sorted(found, key=ORDER.__getitem__)
    assert {a.principal for a in pp.actions} <= {"alpha"}
    # One new key at most per run.
    assert sum(k in (ActionKind.ONBOARD, ActionKind.ROTATE, ActionKind.REPAIR) for k in found) <= 1
    # The plan is a function of its inputs.
    assert build_plan(registry(who), inventory(inv), NOW, CONFIG) == plan

    k1 = inv.credential("K1")
    k2 = inv.credential("K2")
    record = inv.entry_for_credential("K2") if k2 else None
    if (
        k2 is not None
        and k2.status == "Active"
        and record is not None
        and record.state in (LedgerState.PREVIOUS, LedgerState.RETIRED)
        and record.superseded_at is not None
        and record.superseded_at + days(life.grace_days) > NOW
    ):
        # Invariant 3: a previous key in its grace is neither retired nor pushed out by a rotation.
        assert not [a for a in pp.actions if a.kind in DESTRUCTIVE and a.credential_id == "K2"]
        if record.state == LedgerState.PREVIOUS:
            assert ActionKind.ROTATE not in found
    if k1 is not None and k1.usable(NOW):
        # Invariant 7: a usable current key near expiry is announced unless it already was.
        assert k1.expires_at is not None
        near = k1.expires_at - NOW <= days(life.expiry_alert_days)
        if near and "expiring_soon" not in inv.ledger[0].notified:
            assert ActionKind.EXPIRING_SOON in found
        if not near:
            assert ActionKind.EXPIRING_SOON not in found
    else:
        # A missing or unusable current key is reissued unless a young rotation is on its way.
        assert ActionKind.REPAIR in found or pp.note is not None
        assert ActionKind.ROTATE not in found


def test_plan_is_a_frozen_value() -> None:
    plan = build_plan(registry("alpha"), inventory(healthy()), NOW, CONFIG)
    assert isinstance(plan, Plan)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen models
        plan.principals = ()  # type: ignore[misc]  # the assignment a frozen model must refuse


@pytest.mark.parametrize(("deactivated_days_ago", "deleted"), [(3, False), (8, True)])
def test_a_revoked_key_without_a_rotation_record_is_deleted_after_the_retention(
    deactivated_days_ago: int, deleted: bool
) -> None:
    key = credential("K9", status="Inactive", created_at=NOW - days(20))
    record = entry(
        "revoke-K9",
        LedgerState.RETIRED,
        cred=key,
        deactivated_at=NOW - days(deactivated_days_ago),
        revoked_at=NOW - days(deactivated_days_ago),
    )
    plan = build_plan(registry("alpha"), inventory(with_key(healthy("alpha"), key, record)), NOW, CONFIG)
    kinds = [(a.kind, a.credential_id) for a in plan.actions]
    assert ((ActionKind.DELETE, "K9") in kinds) is deleted


def test_a_revoked_current_key_is_not_repaired_behind_the_operators_back() -> None:
    inv = healthy("alpha", status="Inactive")
    current = inv.ledger[0].model_copy(update={"revoked_at": NOW - days(1), "revoked_by": "oncall"})
    plan = build_plan(
        registry("alpha"), inventory(inv.model_copy(update={"ledger": (current,)})), NOW, CONFIG
    )
    alpha = plan.for_principal("alpha")
    assert alpha is not None and ActionKind.REPAIR not in [a.kind for a in alpha.actions]
    assert alpha.note is not None and "--reissue" in alpha.note
