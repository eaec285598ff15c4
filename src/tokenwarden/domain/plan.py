"""Where every lifecycle decision is made: registry x inventory x now -> actions with reasons.

The planner is pure. It never calls AWS and never reads the clock; `tokenwarden plan` prints
its output and the reconciler applies it, principal by principal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from tokenwarden.domain.model import (
    Credential,
    Inventory,
    LedgerEntry,
    LedgerState,
    PrincipalInventory,
)
from tokenwarden.domain.outcomes import Finding
from tokenwarden.domain.registry import Lifecycle, Principal, Registry

# A rotation whose pending version is younger than this is left alone: Secrets Manager may
# still be running it. Older ones are abandoned and started again.
ROTATION_TIMEOUT = timedelta(hours=1)
MAX_KEYS_PER_USER = 2


class ActionKind(StrEnum):
    ONBOARD = "onboard"
    CONFIGURE_ROTATION = "configure_rotation"
    ABANDON_PENDING = "abandon_pending"
    RESUME_FINISH = "resume_finish"
    ROTATE = "rotate"
    REPAIR = "repair"
    RETIRE = "retire"
    DELETE = "delete"
    DELETE_UNTRACKED = "delete_untracked"
    EXPIRING_SOON = "expiring_soon"
    OFFBOARD = "offboard"
    DELETE_SECRET = "delete_secret"
    DELETE_USER = "delete_user"


# Actions that take a working key away from laptops outside the normal rotation, or delete a
# principal's user or secret: the blast-radius guard counts the principals that would get one
# in a run (a registry that lost most of its entries deletes as much as it deactivates).
DEACTIVATING = frozenset({ActionKind.OFFBOARD, ActionKind.DELETE_USER, ActionKind.DELETE_SECRET})
MIN_GUARD = 2
GUARD_SHARE = 0.20


# The order a principal's actions are applied in. Stale rotations are cleared before rotation
# is (re)configured, since Secrets Manager refuses RotateSecret while AWSPENDING sits on an
# unfinished version. Starting a rotation comes last: from then on the rotation, running in
# the background, holds the principal's lease.
ORDER = {
    kind: index
    for index, kind in enumerate(
        (
            ActionKind.ONBOARD,
            ActionKind.ABANDON_PENDING,
            ActionKind.RESUME_FINISH,
            ActionKind.CONFIGURE_ROTATION,
            ActionKind.RETIRE,
            ActionKind.DELETE,
            ActionKind.DELETE_UNTRACKED,
            ActionKind.EXPIRING_SOON,
            ActionKind.OFFBOARD,
            ActionKind.DELETE_SECRET,
            ActionKind.DELETE_USER,
            ActionKind.REPAIR,
            ActionKind.ROTATE,
        )
    )
}
STARTS_ROTATION = frozenset({ActionKind.ROTATE, ActionKind.REPAIR})


class Action(BaseModel):
    model_config = ConfigDict(frozen=True)

    principal: str
    kind: ActionKind
    reason: str
    credential_id: str | None = None
    version_id: str | None = None

    def describe(self) -> str:
        target = f" {self.credential_id}" if self.credential_id else ""
        return f"{self.kind.value}{target}: {self.reason}"


class Upcoming(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: ActionKind
    at: datetime
    credential_id: str | None = None


class PrincipalPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    principal: str
    actions: tuple[Action, ...] = ()
    findings: tuple[Finding, ...] = ()
    upcoming: Upcoming | None = None
    note: str | None = None


class PlanConfig(BaseModel):
    """Deployment facts the plan compares against (from Settings)."""

    model_config = ConfigDict(frozen=True)

    rotation_lambda_arn: str | None = None
    allow_mass_revoke: bool = False


class Guard(BaseModel):
    """The blast-radius guard's verdict for one run."""

    model_config = ConfigDict(frozen=True)

    managed: int
    limit: int
    would_deactivate: tuple[str, ...]
    tripped: bool
    overridden: bool = False


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    generated_at: datetime
    principals: tuple[PrincipalPlan, ...]
    findings: tuple[Finding, ...] = Field(default_factory=tuple)
    guard: Guard | None = None
    config: PlanConfig = Field(default_factory=PlanConfig)

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(a for p in self.principals for a in p.actions)

    def for_principal(self, principal: str) -> PrincipalPlan | None:
        return next((p for p in self.principals if p.principal == principal), None)


def rotation_jitter(principal: str, lifecycle: Lifecycle) -> timedelta:
    """A stable per-principal offset so a cohort onboarded together does not rotate on one night."""
    span_hours = lifecycle.rotation_jitter_days * 24
    if span_hours == 0:
        return timedelta(0)
    digest = hashlib.sha256(principal.encode()).digest()
    return timedelta(hours=int.from_bytes(digest[:4], "big") % (span_hours + 1))


def rotation_due_at(principal: str, lifecycle: Lifecycle, expires_at: datetime) -> datetime:
    return expires_at - timedelta(days=lifecycle.rotate_before_days) - rotation_jitter(principal, lifecycle)


def rotation_days(lifecycle: Lifecycle) -> int:
    """Secrets Manager's own schedule: a backstop that fires only if the reconciler stops."""
    return lifecycle.key_age_days - lifecycle.rotate_before_days // 2


def plan_principal(
    registry: Registry, principal_id: str, inv: PrincipalInventory, now: datetime, config: PlanConfig
) -> PrincipalPlan:
    """One principal's plan from a fresh read of its resources (the reconciler plans again
    under the principal's lease, so an overlapping run never acts on a stale picture)."""
    principal = registry.get(principal_id)
    if principal is None:
        return _plan_offboard(registry.former(principal_id), inv, now)
    return _plan_principal(principal, inv, now, config)


def build_plan(registry: Registry, inventory: Inventory, now: datetime, config: PlanConfig) -> Plan:
    plans = [_plan_principal(p, inventory.of(p.id), now, config) for p in registry.principals]
    former = sorted(set(inventory.principals) - registry.ids)
    plans += [_plan_offboard(registry.former(name), inventory.of(name), now) for name in former]
    plans = [p for p in plans if p.actions or p.principal in registry.ids or p.upcoming]

    managed = len(registry.ids | {name for name, inv in inventory.principals.items() if _is_managed(inv)})
    limit = max(MIN_GUARD, int(managed * GUARD_SHARE))
    deactivating = tuple(sorted(p.principal for p in plans if any(a.kind in DEACTIVATING for a in p.actions)))
    tripped = len(deactivating) > limit
    guard = Guard(
        managed=managed,
        limit=limit,
        would_deactivate=deactivating,
        tripped=tripped and not config.allow_mass_revoke,
        overridden=tripped and config.allow_mass_revoke,
    )
    findings: list[Finding] = []
    if guard.tripped:
        held = set(deactivating)
        plans = [_hold(p) if p.principal in held else p for p in plans]
        findings.append(
            Finding(
                principal=None,
                kind="guard_tripped",
                detail=f"this run would take keys from (or delete the user or secret of) {len(deactivating)} "
                f"of {managed} managed principals "
                f"(limit {limit}): {', '.join(deactivating)}; none of them was touched",
            )
        )
    return Plan(
        generated_at=now, principals=tuple(plans), findings=tuple(findings), guard=guard, config=config
    )


def _is_managed(inv: PrincipalInventory) -> bool:
    return inv.user is not None or (inv.secret is not None and inv.secret.deleted_at is None)


def _hold(plan: PrincipalPlan) -> PrincipalPlan:
    """The guard keeps every destructive step of an offboarding for a later, explicit run."""
    return plan.model_copy(
        update={
            "actions": (),
            "note": "held by the blast-radius guard: re-run with --allow-mass-revoke if this is intended",
        }
    )


def _plan_offboard(principal: Principal, inv: PrincipalInventory, now: datetime) -> PrincipalPlan:
    """A principal removed from the registry: deactivate at once, delete after the retention."""
    p = principal.id
    life = principal.lifecycle
    actions: list[Action] = []
    upcoming: list[Upcoming] = []
    for cred in inv.credentials:
        entry = inv.entry_for_credential(cred.id)
        if cred.status == "Active":
            actions.append(
                Action(
                    principal=p,
                    kind=ActionKind.OFFBOARD,
                    credential_id=cred.id,
                    reason=f"{p} is no longer in the registry; key {cred.alias} is deactivated "
                    f"(deleted after {life.retention_days} days)",
                )
            )
            continue
        deactivated = entry.deactivated_at if entry and entry.deactivated_at else None
        delete_at = deactivated + timedelta(days=life.retention_days) if deactivated else now
        if now >= delete_at:
            actions.append(
                Action(
                    principal=p,
                    kind=ActionKind.DELETE,
                    credential_id=cred.id,
                    reason=f"{p} was offboarded; key {cred.alias}'s rollback window is over",
                )
            )
        else:
            upcoming.append(Upcoming(kind=ActionKind.DELETE, at=delete_at, credential_id=cred.id))
    if inv.secret is not None and inv.secret.deleted_at is None:
        actions.append(
            Action(
                principal=p,
                kind=ActionKind.DELETE_SECRET,
                reason=f"secret {inv.secret.name} is scheduled for deletion (restorable by re-adding {p})",
            )
        )
    if inv.user is not None and not inv.credentials:
        actions.append(
            Action(principal=p, kind=ActionKind.DELETE_USER, reason=f"IAM user {inv.user.name} holds no key")
        )
    actions.sort(key=lambda a: ORDER[a.kind])
    first = min(upcoming, key=lambda u: u.at) if upcoming else None
    return PrincipalPlan(principal=p, actions=tuple(actions), upcoming=first, note="offboarding")


@dataclass(frozen=True)
class Step:
    """What one step of a principal's plan decided: its actions, the next thing it waits for,
    and a note for the operator."""

    actions: tuple[Action, ...] = ()
    upcoming: tuple[Upcoming, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class Unfinished(Step):
    """The unfinished-rotations step, plus what the later steps need to know about it."""

    resume: LedgerEntry | None = None  # the key issue onboarding picks up again
    in_progress: bool = False  # a young rotation may still be running in Secrets Manager


def _plan_principal(
    principal: Principal, inv: PrincipalInventory, now: datetime, config: PlanConfig
) -> PrincipalPlan:
    """A registered principal's plan, step by step; each step reads the same inventory."""
    p = principal.id
    unfinished = unfinished_rotations(p, inv, now)
    current = current_key(principal, inv, now, unfinished)
    setup = rotation_setup(principal, inv, config, in_progress=unfinished.in_progress)
    others = other_keys(principal, inv, now)

    actions = [*unfinished.actions, *current.actions, *(() if setup is None else (setup,)), *others.actions]
    actions.sort(key=lambda a: ORDER[a.kind])
    upcoming = [*current.upcoming, *others.upcoming]
    first = min(upcoming, key=lambda u: u.at) if upcoming else None
    # What holds the current key back (a revocation, a previous key's grace) outranks the
    # rotation in progress.
    note = current.note if current.note is not None else unfinished.note
    return PrincipalPlan(
        principal=p, actions=tuple(actions), findings=key_findings(p, inv), upcoming=first, note=note
    )


def unfinished_rotations(p: str, inv: PrincipalInventory, now: datetime) -> Unfinished:
    """Step 1: rotations that never finished.

    Without a current key the newest one is resumed by onboarding (only the reconciler starts
    those, under its lock); otherwise a young one may still be running in Secrets Manager and
    an old one is abandoned. AWSPENDING on a version the ledger never saw is abandoned too.
    """
    current_version = inv.secret.current_version if inv.secret else None
    unfinished = sorted(
        (
            e
            for e in inv.ledger
            if e.state in (LedgerState.CREATING, LedgerState.PENDING) and e.version_id != current_version
        ),
        key=lambda e: e.created_at,
    )
    resume = unfinished[-1] if unfinished and current_version is None else None
    actions: list[Action] = []
    in_progress = False
    note: str | None = None
    for entry in unfinished:
        if entry is resume:
            continue
        if current_version is not None and now - entry.created_at < ROTATION_TIMEOUT:
            in_progress = True
            note = f"rotation {entry.version_id} in progress since {entry.created_at:%Y-%m-%d %H:%M}"
            continue
        actions.append(
            Action(
                principal=p,
                kind=ActionKind.ABANDON_PENDING,
                version_id=entry.version_id,
                credential_id=entry.credential_id,
                reason=f"rotation started {entry.created_at:%Y-%m-%d %H:%M} never completed",
            )
        )
    stray = _unrecorded_pending(p, inv)
    if stray is not None:
        actions.append(stray)
    return Unfinished(actions=tuple(actions), note=note, resume=resume, in_progress=in_progress)


def _unrecorded_pending(p: str, inv: PrincipalInventory) -> Action | None:
    """AWSPENDING left on a version TokenWarden never recorded, beside a current key."""
    secret = inv.secret
    if secret is None:
        return None
    pending = secret.pending_version
    current_version = secret.current_version
    if pending and pending != current_version and inv.entry(pending) is None and current_version is not None:
        return Action(
            principal=p,
            kind=ActionKind.ABANDON_PENDING,
            version_id=pending,
            reason="AWSPENDING is on a version TokenWarden never recorded",
        )
    return None


def current_key(principal: Principal, inv: PrincipalInventory, now: datetime, unfinished: Unfinished) -> Step:
    """Step 2: the current key.

    A principal missing its user, its secret or a current version is onboarded; a current
    version the ledger does not know is repaired; a recorded one is finished, repaired,
    rotated or scheduled by `_recorded_key`.
    """
    p = principal.id
    missing = _missing(inv)
    if missing:
        return Step(actions=(_onboard(p, missing, unfinished.resume),))
    entry = inv.current_entry
    if entry is None:
        return Step(
            actions=(
                Action(
                    principal=p,
                    kind=ActionKind.REPAIR,
                    reason="the AWSCURRENT version has no ledger record, so its key is unknown",
                ),
            )
        )
    return _recorded_key(principal, inv, entry, now, in_progress=unfinished.in_progress)


def _missing(inv: PrincipalInventory) -> list[str]:
    """What a principal lacks before it has a usable current key; empty once it has one."""
    secret = inv.secret
    return [
        what
        for what, absent in (
            ("IAM user", inv.user is None),
            ("secret", secret is None),
            ("secret scheduled for deletion", secret is not None and secret.deleted_at is not None),
            ("current key", secret is not None and secret.current_version is None),
        )
        if absent
    ]


def _onboard(p: str, missing: list[str], resume: LedgerEntry | None) -> Action:
    reason = "no " + ", no ".join(missing)
    if resume is not None:
        reason += f"; resuming the unfinished key issue {resume.version_id}"
    return Action(
        principal=p,
        kind=ActionKind.ONBOARD,
        version_id=resume.version_id if resume else None,
        reason=reason,
    )


def _recorded_key(
    principal: Principal, inv: PrincipalInventory, entry: LedgerEntry, now: datetime, *, in_progress: bool
) -> Step:
    """A current version the ledger knows.

    Only a rotation whose finish was interrupted is resumed, and only with a key that can pass
    testSecret. A current version recorded retired (offboarded, then added back before its
    secret was deleted), or whose key broke, is repaired instead, unless it was revoked
    without --reissue or a rotation is still running. A working key is rotated when due.
    """
    p = principal.id
    current = inv.credential(entry.credential_id)
    broken = _broken(current, now)
    if broken and entry.revoked_at is not None and not entry.reissue_requested:
        return Step(
            note=f"revoked {entry.revoked_at:%Y-%m-%d %H:%M} by {entry.revoked_by or 'unknown'}: "
            f"no new key until `tokenwarden revoke {p} --reason '...' --reissue` or `tokenwarden restore {p}`"
        )
    if broken:
        return Step() if in_progress else Step(actions=(_repair(p, entry, broken),))
    finish: tuple[Action, ...] = ()
    if entry.state in (LedgerState.CREATING, LedgerState.PENDING):
        finish = (
            Action(
                principal=p,
                kind=ActionKind.RESUME_FINISH,
                version_id=entry.version_id,
                reason="AWSCURRENT moved but the ledger was not updated",
            ),
        )
    if current is None or current.expires_at is None:  # never: `_broken` reports both
        return Step(actions=finish)
    schedule = _rotation_schedule(principal, inv, current, current.expires_at, now, in_progress=in_progress)
    alert = _expiry_alert(principal, current, current.expires_at, entry, now)
    return Step(
        actions=(*finish, *schedule.actions, *(() if alert is None else (alert,))),
        upcoming=schedule.upcoming,
        note=schedule.note,
    )


def _repair(p: str, entry: LedgerEntry, broken: str) -> Action:
    reason = broken
    if entry.revoked_at is not None:
        reason = f"revoked {entry.revoked_at:%Y-%m-%d %H:%M} with --reissue, and the replacement was not issued yet"
    return Action(principal=p, kind=ActionKind.REPAIR, credential_id=entry.credential_id, reason=reason)


def _rotation_schedule(
    principal: Principal,
    inv: PrincipalInventory,
    current: Credential,
    expires_at: datetime,
    now: datetime,
    *,
    in_progress: bool,
) -> Step:
    """A working key is rotated once due, unless a rotation runs or the previous key's grace
    would be cut short (then the note says why); before that, its rotation is upcoming."""
    p = principal.id
    life = principal.lifecycle
    due = rotation_due_at(p, life, expires_at)
    if now < due or in_progress:
        return Step(upcoming=(Upcoming(kind=ActionKind.ROTATE, at=due, credential_id=current.id),))
    blocker = _rotation_blocker(inv, current, life, now)
    if blocker:
        return Step(note=blocker)
    return Step(
        actions=(
            Action(
                principal=p,
                kind=ActionKind.ROTATE,
                credential_id=current.id,
                reason=f"key {current.alias} expires {expires_at:%Y-%m-%d} "
                f"(in {_days(expires_at - now)}); rotation was due {due:%Y-%m-%d}",
            ),
        )
    )


def _expiry_alert(
    principal: Principal, current: Credential, expires_at: datetime, entry: LedgerEntry, now: datetime
) -> Action | None:
    """The owners hear once that their current key expires within the alert window."""
    remaining = expires_at - now
    if remaining > timedelta(days=principal.lifecycle.expiry_alert_days) or "expiring_soon" in entry.notified:
        return None
    return Action(
        principal=principal.id,
        kind=ActionKind.EXPIRING_SOON,
        credential_id=current.id,
        reason=f"key {current.alias} expires {expires_at:%Y-%m-%d} (in {_days(remaining)})",
    )


def rotation_setup(
    principal: Principal, inv: PrincipalInventory, config: PlanConfig, *, in_progress: bool
) -> Action | None:
    """Step 3: Secrets Manager's rotation schedule and function, as the lifecycle wants them.

    Checked only for a principal whose current version is recorded (onboarding and the repair
    of an unknown current version come first) and never while a rotation may still be running.
    """
    secret = inv.secret
    if secret is None or in_progress or _missing(inv) or inv.current_entry is None:
        return None
    wanted_days = rotation_days(principal.lifecycle)
    lambda_arn = config.rotation_lambda_arn
    if (
        secret.rotation_enabled
        and secret.rotation_days == wanted_days
        and (lambda_arn is None or secret.rotation_lambda_arn == lambda_arn)
    ):
        return None
    return Action(
        principal=principal.id,
        kind=ActionKind.CONFIGURE_ROTATION,
        reason=f"rotation should be enabled every {wanted_days} days with the rotation function",
    )


def other_keys(principal: Principal, inv: PrincipalInventory, now: datetime) -> Step:
    """Step 4: every key on the user but the current one is retired, deleted or waited for."""
    current_entry = inv.current_entry
    current_id = current_entry.credential_id if current_entry else None
    current_version = inv.secret.current_version if inv.secret else None
    actions: list[Action] = []
    upcoming: list[Upcoming] = []
    for cred in inv.credentials:
        if cred.id == current_id:
            continue
        action, when = _other_key(
            principal.id, cred, inv.entry_for_credential(cred.id), principal.lifecycle, now, current_version
        )
        if action is not None:
            actions.append(action)
        if when is not None:
            upcoming.append(when)
    return Step(actions=tuple(actions), upcoming=tuple(upcoming))


def key_findings(p: str, inv: PrincipalInventory) -> tuple[Finding, ...]:
    """Step 5: what a person should look at: a user at IAM's key limit, keys without an expiry."""
    findings: list[Finding] = []
    if len(inv.credentials) >= MAX_KEYS_PER_USER:
        findings.append(
            Finding(principal=p, kind="user_at_key_limit", detail=f"{len(inv.credentials)} of 2 keys in use")
        )
    findings += [
        Finding(
            principal=p,
            kind="key_without_expiry",
            detail=f"key {cred.alias} has no expiry IAM reports or TokenWarden recorded",
        )
        for cred in inv.credentials
        if cred.expires_at is None
    ]
    return tuple(findings)


def _broken(current: Credential | None, now: datetime) -> str | None:
    if current is None:
        return "the current key no longer exists (deleted out of band)"
    if current.status == "Inactive":
        return f"the current key {current.alias} was deactivated out of band"
    if current.status == "Expired" or (current.expires_at is not None and current.expires_at <= now):
        return f"the current key {current.alias} has expired"
    if current.expires_at is None:
        return f"the current key {current.alias} has no expiry date"
    return None


def _rotation_blocker(
    inv: PrincipalInventory, current: Credential, life: Lifecycle, now: datetime
) -> str | None:
    """A routine rotation never cuts a previous key's grace short."""
    for cred in inv.credentials:
        if cred.id == current.id or cred.status != "Active":
            continue
        entry = inv.entry_for_credential(cred.id)
        if entry is not None and entry.state == LedgerState.PREVIOUS and entry.superseded_at is not None:
            grace_end = grace_ends_at(entry, life, now)
            if grace_end > now:
                return f"rotation waits until the previous key's grace ends {grace_end:%Y-%m-%d %H:%M}"
    return None


KeyDecision = tuple[Action | None, Upcoming | None]
"""What becomes of one key that is not the current one: the action now, or when it comes."""


def _when_due(
    p: str, kind: ActionKind, cred: Credential, at: datetime, now: datetime, reason: str
) -> KeyDecision:
    """The action once ``at`` has come, until then the upcoming one."""
    if now >= at:
        return Action(principal=p, kind=kind, credential_id=cred.id, reason=reason), None
    return None, Upcoming(kind=kind, at=at, credential_id=cred.id)


def untracked_key(p: str, cred: Credential, life: Lifecycle, now: datetime) -> KeyDecision:
    """A key no ledger record knows (a crash leftover) is deleted once no rotation can still record it."""
    safe_at = cred.created_at + timedelta(hours=life.untracked_safety_hours)
    reason = (
        f"key {cred.alias} is in no ledger record (a crash leftover) and is older than "
        f"{life.untracked_safety_hours} h"
    )
    return _when_due(p, ActionKind.DELETE_UNTRACKED, cred, safe_at, now, reason)


def grace_ends_at(entry: LedgerEntry, life: Lifecycle, now: datetime) -> datetime:
    """When a replaced key's grace ends: ``grace_days`` after it was superseded (or switched off),
    or later when an automatic rollback extended it (``grace_until``)."""
    superseded = entry.superseded_at or entry.deactivated_at or now
    planned = superseded + timedelta(days=life.grace_days)
    return max(planned, entry.grace_until) if entry.grace_until is not None else planned


def retire_after_grace(
    p: str, cred: Credential, entry: LedgerEntry, life: Lifecycle, now: datetime
) -> KeyDecision:
    """A replaced key that still works is switched off when its grace is over."""
    superseded = entry.superseded_at or entry.deactivated_at or now
    reason = f"key {cred.alias} was replaced {superseded:%Y-%m-%d}; its {life.grace_days}-day grace is over"
    if entry.grace_until is not None:
        reason = (
            f"key {cred.alias} was rolled back after its retirement; its grace, extended until "
            f"{entry.grace_until:%Y-%m-%d %H:%M} UTC, is over"
        )
    return _when_due(p, ActionKind.RETIRE, cred, grace_ends_at(entry, life, now), now, reason)


def delete_after_retention(
    p: str, cred: Credential, entry: LedgerEntry, life: Lifecycle, now: datetime
) -> KeyDecision:
    """A key switched off (or expired) is deleted when its rollback window is over."""
    deactivated = entry.deactivated_at or grace_ends_at(entry, life, now)
    reason = (
        f"key {cred.alias} has been {cred.status.lower()} since {deactivated:%Y-%m-%d}; "
        f"its {life.retention_days}-day rollback window is over"
    )
    return _when_due(
        p, ActionKind.DELETE, cred, deactivated + timedelta(days=life.retention_days), now, reason
    )


def _other_key(
    p: str,
    cred: Credential,
    entry: LedgerEntry | None,
    life: Lifecycle,
    now: datetime,
    current_version: str | None,
) -> KeyDecision:
    if entry is None:
        return untracked_key(p, cred, life, now)
    if entry.state in (LedgerState.CREATING, LedgerState.PENDING):
        return None, None  # an unfinished rotation: abandoned above once it times out
    if entry.state in (LedgerState.DELETED, LedgerState.ABANDONED):
        gone = Action(
            principal=p,
            kind=ActionKind.DELETE,
            credential_id=cred.id,
            reason=f"key {cred.alias} should be gone",
        )
        return gone, None
    if entry.superseded_at is None and entry.deactivated_at is None:
        # Still recorded as current: a rotation's finish step has not updated the ledger yet.
        # Its grace starts when RESUME_FINISH records the hand-over, never earlier.
        return None, None
    if cred.status == "Active":
        return retire_after_grace(p, cred, entry, life, now)
    return delete_after_retention(p, cred, entry, life, now)


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.1f} days" if days < 2 else f"{int(days)} days"
