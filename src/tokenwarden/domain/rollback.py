"""When a routinely retired key comes back by itself: the automatic rollback rule. Pure.

A rotation is safe only if the team's laptops picked up the new key before the previous one was
switched off, and CloudWatch cannot tell which key a sample came with. What TokenWarden does know is
when the previous key was retired and when the team last reported. When a team that was still
reporting at the retirement goes silent right after it, the retirement is the likely cause:

* the retired key is re-activated, its grace extended by ``RollbackPolicy.grace_days``, and the team
  is told to run the pickup kit (``rolled_back``); the nightly run retires it again when that grace
  ends;
* only a routine retirement (the end of a rotation's grace), never a revoked key (break-glass) or an
  offboarded principal's, and only while the key still exists, has not expired and is within its
  retention;
* only while the silence is young: at most ``act_within_hours`` working hours after the silence
  threshold, counted from the retirement (the team's next working hours; holidays, quiet days and
  the team's snoozes count no working hours, as for the silence itself);
* once per key: a second silence after the key's second retirement escalates (``rollback_escalated``,
  critical) and re-activates nothing, so a team whose laptops never pick up a key is not rolled back
  night after night.

A retirement is the likely cause of a silence when the team's newest sample is no later than the
retirement (plus ``sample_slack`` for ingestion delays) and the team was not silent yet when the key
was retired (fewer working hours than its ``silent_after_hours`` between the newest sample and the
retirement). A team already silent, or that never reported, is not made worse by a retirement: the
reconciler retires on schedule and says so (:func:`retirement_note`).

Every rollback is recorded in the ledger's append-only history, with its key record in the same
transaction, before the key is touched (:class:`RollbackRecord`), so a run killed at any instant is
finished by the next one (:attr:`Verdict.FINISH`), whatever the team's health by then, and never
counted as a second rollback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tokenwarden.domain.calendar import Span
from tokenwarden.domain.health import HealthState, TeamRecord, active_hours
from tokenwarden.domain.model import Credential, LedgerEntry, LedgerState
from tokenwarden.domain.registry import ActivityProfile, Lifecycle

ROLLED_BACK = "rolled_back"
"""The mark in a key record's ``notified`` once its rollback was announced."""

OFFBOARDED = "offboarded"


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True)


class RollbackPolicy(_Value):
    """How the automatic rollback acts (from Settings: TOKENWARDEN_ROLLBACK_GRACE_DAYS)."""

    grace_days: int = Field(default=3, ge=0, le=14)
    """How long a rolled-back key stays active; 0 turns the automatic rollback off."""
    act_within_hours: float = Field(default=8.0, ge=0)
    """Working hours after the team's silence threshold (counted from the retirement) during which
    a rollback is still made: the team's next working hours."""
    sample_slack: timedelta = timedelta(minutes=15)
    """A sample this long after the retirement still counts as sent before it (ingestion delay)."""

    @property
    def enabled(self) -> bool:
        return self.grace_days > 0


DEFAULT_ROLLBACK_POLICY = RollbackPolicy()


# -- the ledger's history records ---------------------------------------------------------------


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RollbackRecord(_Record):
    """One automatic re-activation of a retired key, written with its key record before the key is
    touched."""

    kind: Literal["rolled_back"] = "rolled_back"
    principal: str
    team: str
    credential_id: str
    alias: str
    version_id: str
    retired_at: datetime
    """The retirement this rollback undoes (the key record's ``deactivated_at`` then)."""
    rolled_back_at: datetime
    grace_until: datetime
    last_sample_at: datetime
    reason: str

    @property
    def key(self) -> str:
        return history_key(self.credential_id, self.retired_at)


class EscalationRecord(_Record):
    """A second silence after a rollback of the same key: announced, nothing re-activated."""

    kind: Literal["rollback_escalated"] = "rollback_escalated"
    principal: str
    team: str
    credential_id: str
    alias: str
    retired_at: datetime
    escalated_at: datetime
    reason: str

    @property
    def key(self) -> str:
        return history_key(self.credential_id, self.retired_at) + "#escalated"


class _RevokedKey(BaseModel):
    credential_id: str


class _Revoke(BaseModel):
    """What this rule reads of a break-glass revoke record (service/breakglass.py writes it)."""

    revoked_at: datetime
    keys: tuple[_RevokedKey, ...] = ()


def history_key(credential_id: str, retired_at: datetime) -> str:
    """One history key per key and retirement: a retry writes the same one, a later retirement another."""
    return f"rollback#{credential_id}#{retired_at:%Y%m%dT%H%M%S}"


@dataclass(frozen=True)
class KeyHistory:
    """What the ledger's history says about the principal's keys: rollbacks, escalations, revokes."""

    rollbacks: tuple[RollbackRecord, ...] = ()
    escalations: tuple[EscalationRecord, ...] = ()
    revoked: frozenset[str] = frozenset()
    """Credential ids any revoke ever named (restored or not)."""
    revokes_at: tuple[datetime, ...] = ()
    """When the principal's revokes were made (restored or not)."""
    unreadable_revoke: bool = False
    """A revoke record that cannot be read: which keys it named is unknown, so none comes back."""

    @classmethod
    def parse(cls, items: Iterable[Mapping[str, Any]]) -> KeyHistory:
        """The records this rule reads. A rollback or escalation record it cannot read is left to
        break-glass to report; a revoke it cannot read refuses every rollback of the principal
        (fail closed: it may name the very key a rollback would re-activate)."""
        rollbacks: list[RollbackRecord] = []
        escalations: list[EscalationRecord] = []
        revoked: set[str] = set()
        revokes_at: list[datetime] = []
        unreadable_revoke = False
        for item in items:
            kind = item.get("kind")
            try:
                if kind == "rolled_back":
                    rollbacks.append(RollbackRecord.model_validate(item))
                elif kind == "rollback_escalated":
                    escalations.append(EscalationRecord.model_validate(item))
                elif kind == "revoke":
                    revoke = _Revoke.model_validate(item)
                    revoked |= {k.credential_id for k in revoke.keys}
                    revokes_at.append(revoke.revoked_at)
            except ValidationError:
                unreadable_revoke = unreadable_revoke or kind == "revoke"
        return cls(
            tuple(rollbacks), tuple(escalations), frozenset(revoked), tuple(revokes_at), unreadable_revoke
        )

    def revoked_since(self, at: datetime) -> datetime | None:
        """The first revoke of the principal at or after ``at``, if any."""
        return min((r for r in self.revokes_at if r >= at), default=None)

    def of(self, credential_id: str) -> tuple[RollbackRecord, ...]:
        return tuple(r for r in self.rollbacks if r.credential_id == credential_id)

    def escalated(self, credential_id: str, retired_at: datetime) -> bool:
        return any(e.credential_id == credential_id and e.retired_at == retired_at for e in self.escalations)


# -- the decision ----------------------------------------------------------------------------------


class Verdict(StrEnum):
    ROLLBACK = "rollback"  # re-activate the key now, its grace extended
    FINISH = "finish"  # a recorded rollback whose key is not back, or not announced, yet
    ESCALATE = "escalate"  # silent again after this key's rollback: a person must act
    REFUSE = "refuse"  # the retirement fits the silence, but this key never comes back by itself


@dataclass(frozen=True)
class Silence:
    """The team as the health check judged it this run."""

    team: str
    state: HealthState
    last_sample_at: datetime | None
    profile: ActivityProfile
    snoozed: Sequence[Span] = ()
    """The team's snoozes: like its holidays, quiet time that counts toward no working hours."""


@dataclass(frozen=True)
class KeyFacts:
    """One key of a principal of the silent team, as read under the principal's lease."""

    entry: LedgerEntry
    credential: Credential | None
    """As IAM lists it now; None when it was deleted."""
    lifecycle: Lifecycle
    registered: bool
    history: KeyHistory


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    grace_until: datetime | None = None
    record: RollbackRecord | None = None
    """FINISH: the recorded rollback to finish."""


def decide_rollback(
    key: KeyFacts, silence: Silence, now: datetime, policy: RollbackPolicy = DEFAULT_ROLLBACK_POLICY
) -> Decision | None:
    """What becomes of one key of a silent team: None when its retirement has nothing to do with
    the silence (or nothing is left to do), else the verdict and why (see the module docstring)."""
    if not policy.enabled:
        return None
    unfinished = unfinished_rollback(key)
    retired_at = switched_off_at(key.entry)
    if unfinished is None and (retired_at is None or not is_likely_cause(silence, retired_at, policy)):
        return None
    never = never_rolled_back(key)
    if never is not None:
        return Decision(Verdict.REFUSE, never)
    if unfinished is not None:
        gone = unusable(key, now)
        if gone is not None:
            return Decision(Verdict.REFUSE, gone)
        return Decision(Verdict.FINISH, "a recorded rollback is finished", unfinished.grace_until, unfinished)
    assert retired_at is not None  # narrowed above: no unfinished rollback, so a switched-off key
    return _decide_retired(key, silence, retired_at, now, policy)


def _decide_retired(
    key: KeyFacts, silence: Silence, retired_at: datetime, now: datetime, policy: RollbackPolicy
) -> Decision | None:
    """A key whose switch-off (retirement, revoke, offboarding) is the likely cause of the silence,
    and that may come back by itself as far as its history and record go."""
    earlier = [r for r in key.history.of(key.entry.credential_id or "") if r.retired_at != retired_at]
    if earlier:
        if key.history.escalated(key.entry.credential_id or "", retired_at):
            return None  # announced already
        first = earlier[0]
        return Decision(
            Verdict.ESCALATE,
            f"key {_name(key.entry)} was rolled back once already ({first.rolled_back_at:%Y-%m-%d %H:%M} UTC); "
            "it is not re-activated a second time",
        )
    late = too_late(silence, retired_at, now, policy)
    if late is not None:
        return Decision(Verdict.REFUSE, late)
    gone = unusable(key, now)
    if gone is not None:
        return Decision(Verdict.REFUSE, gone)
    if key.entry.state is not LedgerState.RETIRED:
        return Decision(Verdict.REFUSE, f"key {_name(key.entry)} was not retired by the nightly run")
    until = rollback_until(key.credential, now, policy)
    return Decision(
        Verdict.ROLLBACK,
        f"team {silence.team} went silent right after key {_name(key.entry)} was retired "
        f"{retired_at:%Y-%m-%d %H:%M} UTC",
        until,
    )


SWITCHED_OFF = frozenset({LedgerState.RETIRED, LedgerState.PREVIOUS, LedgerState.DELETED})


def switched_off_at(entry: LedgerEntry) -> datetime | None:
    """When a key that is not current was switched off (retired, revoked or offboarded; deleted
    since, or not); None for a key record that was never switched off, or the current key's."""
    if entry.state not in SWITCHED_OFF or entry.deactivated_at is None or entry.credential_id is None:
        return None
    return entry.deactivated_at


def is_likely_cause(silence: Silence, retired_at: datetime, policy: RollbackPolicy) -> bool:
    """The team was reporting when the key was retired, and has not reported since."""
    last = silence.last_sample_at
    if silence.state is not HealthState.SILENT or last is None:
        return False
    if last > retired_at + policy.sample_slack:
        return False  # the team reported after the retirement: something else silenced it
    return (
        active_hours(silence.profile, last, retired_at, silence.snoozed) < silence.profile.silent_after_hours
    )


def never_rolled_back(key: KeyFacts) -> str | None:
    """Why this key never comes back by itself, whatever the silence: revoked, or offboarded."""
    entry = key.entry
    name = _name(entry)
    if key.history.unreadable_revoke:
        return (
            f"a revoke of {entry.principal} cannot be read: key {name} may be one it named, so it is "
            "not re-activated automatically"
        )
    if entry.revoked_at is not None or (entry.credential_id or "") in key.history.revoked:
        return (
            f"key {name} was revoked (break-glass): it is never re-activated automatically; "
            "`tokenwarden restore` decides about revoked keys"
        )
    since = key.history.revoked_since(entry.superseded_at or entry.deactivated_at or entry.created_at)
    if since is not None:
        return (
            f"{entry.principal} was revoked {since:%Y-%m-%d %H:%M} UTC, after key {name} was replaced: "
            "its keys are never re-activated automatically"
        )
    if entry.reason == OFFBOARDED or not key.registered:
        return f"key {name} was retired by an offboarding: it is not re-activated"
    if entry.superseded_at is None:
        return f"key {name} was not retired by a rotation: it is not re-activated"
    return None


def unusable(key: KeyFacts, now: datetime) -> str | None:
    """Why the key cannot work again: deleted, expired, or at the end of its retention."""
    cred = key.credential
    name = _name(key.entry)
    if cred is None or key.entry.state is LedgerState.DELETED:
        return f"key {name} was deleted: nothing to re-activate"
    if cred.status == "Expired" or (cred.expires_at is not None and cred.expires_at <= now):
        return f"key {name} has expired: it cannot be re-activated"
    retired = key.entry.deactivated_at
    if retired is not None and now >= retired + timedelta(days=key.lifecycle.retention_days):
        return f"key {name} is past its {key.lifecycle.retention_days}-day retention: it is deleted next"
    return None


def too_late(silence: Silence, retired_at: datetime, now: datetime, policy: RollbackPolicy) -> str | None:
    """Past the team's next working hours after the retirement, a rollback would come too late to help."""
    since = active_hours(silence.profile, retired_at, now, silence.snoozed)
    limit = silence.profile.silent_after_hours + policy.act_within_hours
    if since <= limit:
        return None
    return (
        f"the silence was found {since:.1f} working hours after the retirement (more than {limit:g}): "
        "too late for an automatic rollback"
    )


def rollback_until(cred: Credential | None, now: datetime, policy: RollbackPolicy) -> datetime:
    """The extended grace: ``grace_days`` from now, never past the key's expiry."""
    until = now + timedelta(days=policy.grace_days)
    if cred is not None and cred.expires_at is not None:
        return min(until, cred.expires_at)
    return until


def unfinished_rollback(key: KeyFacts) -> RollbackRecord | None:
    """A recorded rollback of this key whose re-activation or announcement a killed run left undone."""
    entry = key.entry
    for record in key.history.of(entry.credential_id or ""):
        if entry.state is LedgerState.RETIRED and entry.deactivated_at == record.retired_at:
            return record  # recorded, key record not rewritten yet
        if entry.state is LedgerState.PREVIOUS and entry.grace_until == record.grace_until:
            back = key.credential is not None and key.credential.status == "Active"
            if not back or ROLLED_BACK not in entry.notified:
                return record
    return None


def is_candidate(
    entry: LedgerEntry, silence: Silence, policy: RollbackPolicy = DEFAULT_ROLLBACK_POLICY
) -> bool:
    """Whether a key record is worth reading the principal again under its lease for: a retirement
    that fits the silence, or a rollback not finished yet. Cheap, from the record alone."""
    if not policy.enabled:
        return False
    if entry.state is LedgerState.PREVIOUS and entry.grace_until is not None:
        return ROLLED_BACK not in entry.notified
    retired_at = switched_off_at(entry)
    return retired_at is not None and is_likely_cause(silence, retired_at, policy)


def settled_refusal(
    entry: LedgerEntry, silence: Silence, lifecycle: Lifecycle, now: datetime, policy: RollbackPolicy
) -> bool:
    """Whether the key record alone shows a refusal no later check can turn: revoked, offboarded,
    deleted, expired, past its retention, or found too late (working hours only grow). Such a key is
    decided (and its refusal logged and counted) when its team turns silent, and left alone after
    that. A key rolled back before (whose second silence escalates) or whose rollback is not finished
    is never settled this way."""
    if ROLLED_BACK in entry.notified or (entry.state is LedgerState.PREVIOUS and entry.grace_until):
        return False
    retired_at = switched_off_at(entry)
    if retired_at is None:
        return False
    return (
        entry.revoked_at is not None
        or entry.reason == OFFBOARDED
        or entry.state is LedgerState.DELETED
        or (entry.expires_at is not None and entry.expires_at <= now)
        or now >= retired_at + timedelta(days=lifecycle.retention_days)
        or too_late(silence, retired_at, now, policy) is not None
    )


def rollback_record(key: KeyFacts, silence: Silence, decision: Decision, now: datetime) -> RollbackRecord:
    """The history record of a ROLLBACK decision, written before the key is touched."""
    entry = key.entry
    assert decision.grace_until is not None and entry.deactivated_at is not None
    assert silence.last_sample_at is not None
    return RollbackRecord(
        principal=entry.principal,
        team=silence.team,
        credential_id=entry.credential_id or "",
        alias=entry.alias or entry.credential_id or "",
        version_id=entry.version_id,
        retired_at=entry.deactivated_at,
        rolled_back_at=now,
        grace_until=decision.grace_until,
        last_sample_at=silence.last_sample_at,
        reason=decision.reason,
    )


def rolled_back_entry(entry: LedgerEntry, record: RollbackRecord) -> LedgerEntry:
    """The key record of a rolled-back key: a previous key again, in a grace that ends at ``grace_until``."""
    return entry.model_copy(
        update={"state": LedgerState.PREVIOUS, "deactivated_at": None, "grace_until": record.grace_until}
    )


# -- what the reconciler says before it retires ----------------------------------------------------


def retirement_note(team: str, alias: str, record: TeamRecord | None) -> str | None:
    """What the run report says about a retirement, from the team's health record: a team already
    silent, or that never reported, is not made worse by it. None for a reporting team (the
    automatic rollback protects it) and for a team the health check has not judged yet."""
    if record is None:
        return None
    if record.state is HealthState.SILENT:
        last = f" (last sample {record.last_sample_at:%Y-%m-%d %H:%M} UTC)" if record.last_sample_at else ""
        return (
            f"team {team} was already silent{last} when key {alias} was retired: the retirement "
            "cuts off no laptop that still sends"
        )
    if record.state is HealthState.NEVER_REPORTED:
        return f"team {team} has never reported telemetry: retiring key {alias} cuts off no laptop that sends"
    return None


def team_record(records: Mapping[str, Mapping[str, Any]], team: str) -> TeamRecord | None:
    """The team's saved health record, or None when there is none (or it cannot be read)."""
    raw = records.get(team)
    if raw is None:
        return None
    try:
        return TeamRecord.model_validate(raw)
    except ValidationError:
        return None


def _name(entry: LedgerEntry) -> str:
    return entry.alias or entry.credential_id or f"version {entry.version_id}"


def candidates(entries: Sequence[LedgerEntry], silence: Silence, policy: RollbackPolicy) -> list[LedgerEntry]:
    return [e for e in entries if is_candidate(e, silence, policy)]
