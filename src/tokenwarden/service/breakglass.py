"""Break-glass: revoke a principal's keys at once (optionally reissue), and undo a mistaken revoke.

A revoke deactivates every Active key of the principal and records who, when and why. The
keys stay Inactive through the retention (so `restore` can bring them back), then the nightly
run deletes them. Running the same revoke twice changes nothing more.

History is append-only. Each revoke and each restore is one record of its own in the ledger
(`RevokeRecord`, `RestoreRecord`), written once with a conditional put and never rewritten: a
restore adds a record naming the revoke it undoes, so the revoke's who, when and why stay as
written. The key records (`LedgerEntry`) hold each key's present state, which a restore puts
back as it was before the revoke: the same grace, never a fresh one.

Who asked is recorded as far as it is known (`Actor`): the caller's identity as AWS
authenticated it when an operator runs the CLI with their own credentials; for a Lambda invoke,
which the handler cannot attribute, the function and the invoke's request id (the CloudTrail
data event of that Invoke names the invoker), with the name the payload gives recorded as a claim.

A revoke whose replacement was issued (`--reissue`) treats its key as leaked: it is restored
only when forced, with a reason of its own, and only until the grace the key had when the
replacement superseded it ends. Keys an earlier revoke still holds off are taken into such a
revoke's record too: a reissue after a revoke makes them leaked as well.

Both take the principal's lease, waiting as long as one rotation can take for a rotation in
flight to finish. A revoke switches the keys off first (a leaked key must stop working even if
the process dies right after), then writes its record, then marks the key records. Run again,
it finishes what an interrupted run left: keys switched off but not recorded are taken into a
record, a record whose key records were not marked yet is finished. A restore writes its record
first (a key is never re-activated without a record saying who asked), then re-activates the
keys; run again, it finishes a restore whose keys are not all back. Whether a replacement
(`--reissue`) is wanted is in the key record, so break-glass never leaves fewer working keys
than asked for. The replacement goes through Secrets Manager's rotation, which runs in the
background; the revoke waits for it as long as a rotation can take and reports it as still in
progress (not failed) past that. The `rotated` notice comes from the rotation's own finish step.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tokenwarden.domain import notifications as notes
from tokenwarden.domain.breakglass import EarlierRevoke, RepeatDecision, decide_key, decide_repeat, is_marked
from tokenwarden.domain.model import (
    AWSPENDING,
    Credential,
    LedgerEntry,
    LedgerState,
    SecretState,
    with_known_expiry,
)
from tokenwarden.domain.naming import Naming
from tokenwarden.domain.plan import rotation_days
from tokenwarden.domain.reason import ReasonError, checked_reason
from tokenwarden.domain.registry import Principal
from tokenwarden.errors import AwsError
from tokenwarden.observability import count, logger
from tokenwarden.ports import IamPort, LedgerPort, Notifier, SecretsPort
from tokenwarden.service.breakglass_request import Actor as Actor
from tokenwarden.service.breakglass_request import BreakGlassError as BreakGlassError
from tokenwarden.service.breakglass_request import BreakGlassRequest as BreakGlassRequest
from tokenwarden.service.breakglass_request import free_text as free_text
from tokenwarden.service.lease import Leases, PrincipalBusy, rotation_owner
from tokenwarden.service.rotation import RotationEngine


class BreakGlassFailed(RuntimeError):
    """A revoke or restore did part of its work; the message says what holds and what to do next."""


def _reason(value: str, what: str) -> str:
    """The domain's rule for a reason, refused as bad input for a revoke or restore."""
    try:
        return checked_reason(value, what)
    except ReasonError as exc:
        raise BreakGlassError(str(exc)) from None


# -- the append-only history ------------------------------------------------------------------


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RevokedKey(_Record):
    """One key a revoke switched off, and its key record as it was before (what a restore puts back)."""

    credential_id: str
    alias: str
    version_id: str
    expires_at: datetime | None = None
    was_current: bool = False
    state_before: LedgerState | None = None
    superseded_at: datetime | None = None
    reason_before: str | None = None

    def record_or_new(self, principal: str, found: LedgerEntry | None, revoked_at: datetime) -> LedgerEntry:
        """The key's record as found, or (lost, or never written) one rebuilt from the revoke."""
        return found or LedgerEntry(
            principal=principal,
            version_id=self.version_id,
            state=LedgerState.RETIRED,
            created_at=revoked_at,
            credential_id=self.credential_id,
            alias=self.alias,
            expires_at=self.expires_at,
        )


class RevokeRecord(_Record):
    kind: Literal["revoke"] = "revoke"
    principal: str
    number: int = Field(ge=1)
    revoked_at: datetime
    actor: Actor
    reason: str
    reissue: bool
    keys: tuple[RevokedKey, ...]

    @property
    def key(self) -> str:
        return revoke_key(self.number)

    def earlier(self, restored: bool = False) -> EarlierRevoke:
        """This revoke as the decisions about a later one read it."""
        return EarlierRevoke(
            number=self.number,
            reason=self.reason,
            revoked_at=self.revoked_at,
            restored=restored,
            credential_ids=frozenset(k.credential_id for k in self.keys),
        )


class RestoredKey(_Record):
    credential_id: str
    alias: str
    version_id: str
    current: bool
    # When it stops working: its expiry if it is current again, else the end of the grace it had.
    active_until: datetime | None = None


class RestoreRecord(_Record):
    kind: Literal["restore"] = "restore"
    principal: str
    revoke: int = Field(ge=1)
    restored_at: datetime
    actor: Actor
    forced: bool = False
    force_reason: str | None = None
    keys: tuple[RestoredKey, ...]

    @property
    def key(self) -> str:
        return revoke_key(self.revoke) + "#restore"


def revoke_key(number: int) -> str:
    return f"revoke#{number:06d}"


class HistoryPort(Protocol):
    def append_history(self, principal: str, key: str, record: Mapping[str, Any]) -> bool:
        """Write a history record unless one exists under `key`; False when it does (never overwritten)."""
        ...

    def history(self, principal: str) -> list[dict[str, Any]]:
        """Every history record of the principal, in key order."""
        ...


class BreakGlassLedger(LedgerPort, HistoryPort, Protocol):
    """The ledger's key records and leases, and its append-only history."""


@dataclass(frozen=True)
class History:
    """A principal's revokes and restores, as recorded."""

    revokes: tuple[RevokeRecord, ...] = ()
    restores: Mapping[int, RestoreRecord] = field(default_factory=dict)

    @classmethod
    def parse(cls, principal: str, items: Iterable[Mapping[str, Any]]) -> History:
        revokes: list[RevokeRecord] = []
        restores: dict[int, RestoreRecord] = {}
        for item in items:
            try:
                if item.get("kind") == "revoke":
                    revokes.append(RevokeRecord.model_validate(item))
                elif item.get("kind") == "restore":
                    restore = RestoreRecord.model_validate(item)
                    restores[restore.revoke] = restore
            except ValidationError:
                raise BreakGlassFailed(
                    f"a break-glass record of {principal} in the ledger is unreadable; nothing was changed. "
                    "Records are never edited by TokenWarden: look for a change made by hand"
                ) from None
        return cls(tuple(sorted(revokes, key=lambda r: r.number)), restores)

    @property
    def latest(self) -> RevokeRecord | None:
        return self.revokes[-1] if self.revokes else None

    @property
    def next_number(self) -> int:
        return self.revokes[-1].number + 1 if self.revokes else 1

    def restore_of(self, revoke: RevokeRecord) -> RestoreRecord | None:
        return self.restores.get(revoke.number)

    def earlier(self) -> list[EarlierRevoke]:
        """The revokes as the repeat decision reads them, in number order."""
        return [r.earlier(restored=r.number in self.restores) for r in self.revokes]

    def repeat_decision(self, reason: str, now: datetime) -> RepeatDecision:
        return decide_repeat(self.earlier(), reason, now)

    def repeat_of(self, reason: str, now: datetime) -> RevokeRecord | None:
        """The revoke this one repeats: the latest with the same reason, recent and not restored."""
        return self.numbered(self.repeat_decision(reason, now).repeats)

    def numbered(self, number: int | None) -> RevokeRecord | None:
        return next((r for r in self.revokes if r.number == number), None)

    def next_revoke(
        self,
        principal: str,
        now: datetime,
        actor: Actor,
        reason: str,
        reissue: bool,
        keys: Iterable[RevokedKey],
    ) -> RevokeRecord:
        """The record of a new revoke, numbered after the latest."""
        return RevokeRecord(
            principal=principal,
            number=self.next_number,
            revoked_at=now,
            actor=actor,
            reason=reason,
            reissue=reissue,
            keys=tuple(keys),
        )


# -- results ----------------------------------------------------------------------------------


class RevokeResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    principal: str
    actor: str
    reason: str
    revoked: tuple[str, ...]
    reissued: str | None = None
    # The replacement's rotation was started but had not finished when the revoke stopped waiting.
    reissue_in_progress: bool = False
    repeated: bool = False
    # The revoke's record (its number in the principal's history) and who asked.
    revoke: int | None = None
    provenance: Actor | None = None


class RestoreResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    principal: str
    actor: str
    restored: str
    # Whether the restored key is the secret's AWSCURRENT (the one laptops read).
    current: bool = False
    # Other keys the same revoke switched off, re-activated with it.
    also: tuple[str, ...] = ()
    # The revoke undone, and until when the restored key works (its expiry, or the end of its grace).
    revoke: int = 0
    active_until: datetime | None = None
    forced: bool = False
    force_reason: str | None = None
    provenance: Actor | None = None


@dataclass
class BreakGlass:
    iam: IamPort
    secrets: SecretsPort
    ledger: BreakGlassLedger
    notifier: Notifier
    engine: RotationEngine
    naming: Naming
    rotation_lambda_arn: str | None = None
    leases: Leases | None = None
    sleep: Callable[[float], None] = time.sleep
    poll_seconds: float = 2.0

    @property
    def wait_seconds(self) -> float:
        """As long as one rotation can really take (derived from the probe's bounds)."""
        return self.engine.probe_policy.rotation_bound_seconds()

    @contextmanager
    def _lease(self, principal: str) -> Iterator[str]:
        owner = f"breakglass:{uuid.uuid4().hex}"
        if self.leases is None:
            yield owner
            return
        if not self.leases.acquire(principal, owner, wait_seconds=self.wait_seconds):
            raise PrincipalBusy(
                f"another run (a rotation or a nightly run) kept {principal} busy for {self.wait_seconds:.0f} s; "
                "nothing was changed. Run the same command again: its lease expires by itself"
            )
        try:
            yield owner
        finally:
            self.leases.release(principal, owner)

    def _history(self, principal: str) -> History:
        return History.parse(principal, self.ledger.history(principal))

    def _append(self, principal: str, record: RevokeRecord | RestoreRecord) -> bool:
        return self.ledger.append_history(principal, record.key, record.model_dump(mode="json"))

    # -- revoke -----------------------------------------------------------------------------

    def revoke(
        self, principal: Principal, reason: str, actor: Actor | str, reissue: bool, now: datetime
    ) -> RevokeResult:
        reason = _reason(reason, "the reason")
        who = Actor.of(actor)
        with self._lease(principal.id) as owner:
            return self._revoke(principal, reason, who, reissue, now, owner)

    def _revoke(
        self, principal: Principal, reason: str, actor: Actor, reissue: bool, now: datetime, owner: str
    ) -> RevokeResult:
        user = self.naming.user_name(principal.id)
        secret = self.secrets.describe(self.naming.secret_name(principal.id))
        current_version = secret.current_version if secret else None
        by_credential = {e.credential_id: e for e in self.ledger.entries(principal.id) if e.credential_id}
        history = self._history(principal.id)
        decision = history.repeat_decision(reason, now)
        repeat = history.numbered(decision.repeats)
        creds = self.iam.list_user_credentials(user)
        targets = self._targets(creds, by_credential, repeat)
        self._switch_off(user, targets)
        keys = [_revoked_key(c, by_credential.get(c.id), current_version) for c in targets]
        if decision.takes_held_off(reissue):
            keys += _held_off(history, creds, by_credential, current_version, {c.id for c in targets})
        record = history.next_revoke(principal.id, now, actor, reason, reissue, keys) if keys else None
        if record is not None:
            self._append_revoke(record)
        if targets:
            count("KeysRevoked", len(targets))
        for rec in (r for r in (record, repeat) if r is not None):
            self._finish_revoke(principal, rec, by_credential)
        done = record or repeat
        _log_revoke(principal, actor, reason, done, targets)
        reissued, in_progress = self._reissue(principal, owner, now) if reissue else (None, False)
        return RevokeResult(
            principal=principal.id,
            actor=actor.describe(),
            reason=reason,
            revoked=tuple(c.id for c in targets),
            reissued=reissued,
            reissue_in_progress=in_progress,
            repeated=decision.reports_repeated(len(targets)),
            revoke=done.number if done else None,
            provenance=actor,
        )

    def _switch_off(self, user: str, targets: Iterable[Credential]) -> None:
        """Switch the keys off first: a leaked key must stop working even if the process dies next."""
        for cred in targets:
            if cred.status == "Active":
                self.iam.set_credential_status(user, cred.id, active=False)

    def _append_revoke(self, record: RevokeRecord) -> None:
        if not self._append(record.principal, record):
            raise BreakGlassFailed(
                f"the keys of {record.principal} are switched off, but another run recorded a revoke at the "
                "same moment. Run this revoke again: it records what is missing"
            )

    @staticmethod
    def _targets(
        creds: list[Credential], by_credential: Mapping[str, LedgerEntry], repeat: RevokeRecord | None
    ) -> list[Credential]:
        """The keys this revoke takes: every Active key, and every key a run killed after switching
        it off left unrecorded. A repeat leaves alone the keys it already took and the replacement
        its first run issued (domain/breakglass.py decides each key)."""
        earlier = repeat.earlier() if repeat is not None else None
        return [cred for cred in creds if decide_key(cred, by_credential.get(cred.id), earlier).taken]

    def _finish_revoke(
        self, principal: Principal, record: RevokeRecord, by_credential: Mapping[str, LedgerEntry]
    ) -> None:
        """Announce the revoke and mark its key records, unless an earlier run already did."""
        unmarked = [
            k for k in record.keys if not is_marked(by_credential.get(k.credential_id), record.revoked_at)
        ]
        if not unmarked:
            return
        # Announced before the key records are marked: a run killed in between announces it again
        # when run again, rather than never.
        self.notifier.publish(_revoked_notice(principal, record))
        for key in unmarked:
            entry = key.record_or_new(principal.id, by_credential.get(key.credential_id), record.revoked_at)
            self.ledger.save(
                entry.model_copy(
                    update={
                        "state": LedgerState.CURRENT if key.was_current else LedgerState.RETIRED,
                        "deactivated_at": record.revoked_at,
                        "revoked_at": record.revoked_at,
                        "revoked_by": record.actor.describe(),
                        "reason": record.reason,
                        "reissue_requested": record.reissue and key.was_current,
                    }
                )
            )

    def _reissue(self, principal: Principal, owner: str, now: datetime) -> tuple[str | None, bool]:
        """A new key through the normal rotation path, unless the current one already works.
        Returns the new key's id (when it is current) and whether its rotation is still running."""
        secret = self.secrets.describe(self.naming.secret_name(principal.id))
        if secret is None:
            raise BreakGlassError(f"{principal.id} has no secret yet: run `tokenwarden apply` to onboard it")
        if secret.current_version is None:
            raise BreakGlassFailed(
                f"{principal.id}'s secret has no current version yet (its onboarding was interrupted): "
                "run `tokenwarden apply`, which issues its key"
            )
        current = self.ledger.get(principal.id, secret.current_version)
        creds = {c.id: c for c in self.iam.list_user_credentials(self.naming.user_name(principal.id))}
        live = creds.get(current.credential_id or "") if current else None
        if live is not None and live.status == "Active":
            return None, False
        self._abandon_unfinished(principal, secret, now)
        token = str(uuid.uuid4())
        if not self.rotation_lambda_arn:
            self.engine.run_all(secret.arn, token)
            return self._issued(principal, token), False
        bound = int(self.wait_seconds)
        if self.leases is not None and not self.leases.hand_over(
            principal.id, owner, rotation_owner(token), bound
        ):
            raise PrincipalBusy(f"lost the lease of {principal.id} before the replacement's rotation started")
        try:
            self.secrets.rotate(
                secret.arn, token, self.rotation_lambda_arn, rotation_days(principal.lifecycle)
            )
        except AwsError as exc:
            if self.leases is not None:
                self.leases.release(principal.id, rotation_owner(token))
            raise BreakGlassFailed(
                f"the key is revoked, but Secrets Manager refused to start the replacement ({exc.code}). "
                f"The nightly run issues it; to do it now, run `tokenwarden apply` or this revoke again"
            ) from None
        if self._wait_until_current(secret.arn, token):
            return self._issued(principal, token), False
        return None, True

    def _issued(self, principal: Principal, token: str) -> str | None:
        entry = self.ledger.get(principal.id, token)
        return entry.credential_id if entry else None

    def _abandon_unfinished(self, principal: Principal, secret: SecretState, now: datetime) -> None:
        """A rotation left unfinished (it failed, or its process died) blocks RotateSecret: give it up."""
        pending = secret.pending_version
        if pending is None or pending == secret.current_version:
            return
        self.secrets.remove_stage(secret.arn, AWSPENDING, from_version=pending)
        entry = self.ledger.get(principal.id, pending)
        if entry is None:
            return
        if entry.credential_id:
            self.iam.delete_credential(self.naming.user_name(principal.id), entry.credential_id)
        self.ledger.save(
            entry.model_copy(
                update={"state": LedgerState.ABANDONED, "deleted_at": now, "reason": "abandoned by a revoke"}
            )
        )

    def _wait_until_current(self, secret_arn: str, token: str) -> bool:
        """Secrets Manager rotates in the background: wait for the new version to become current."""
        waited = 0.0
        while True:
            state = self.secrets.describe(secret_arn)
            if state is not None and state.current_version == token:
                return True
            if waited >= self.wait_seconds:
                return False
            self.sleep(self.poll_seconds)
            waited += self.poll_seconds

    # -- restore ----------------------------------------------------------------------------

    def restore(
        self, principal: Principal, actor: Actor | str, now: datetime, force_reason: str | None = None
    ) -> RestoreResult:
        """Undo the principal's latest revoke, once. A revoke that issued a replacement is undone
        only with `force_reason` (its key is treated as leaked)."""
        if force_reason is not None:
            force_reason = _reason(force_reason, "the reason for --force")
        who = Actor.of(actor)
        with self._lease(principal.id):
            return self._restore(principal, who, now, force_reason)

    def _restore(
        self, principal: Principal, actor: Actor, now: datetime, force_reason: str | None
    ) -> RestoreResult:
        user = self.naming.user_name(principal.id)
        history = self._history(principal.id)
        revoke = history.latest
        if revoke is None:
            raise BreakGlassError(f"{principal.id} has no recorded revoke to restore; nothing was changed")
        creds = {c.id: c for c in self.iam.list_user_credentials(user)}
        secret = self.secrets.describe(self.naming.secret_name(principal.id))
        current_version = secret.current_version if secret is not None else None
        earlier = history.restore_of(revoke)
        if earlier is not None:
            if not self._unfinished(principal, revoke, earlier, creds):
                raise BreakGlassError(
                    f"{_revoke_name(principal.id, revoke)} was already restored "
                    f"{earlier.restored_at:%Y-%m-%d %H:%M} UTC by {earlier.actor.describe()}; a revoke is "
                    "restored once. Nothing was changed"
                )
            record = earlier  # a restore killed before its keys were all back: finish it as recorded
        else:
            record = self._plan_restore(principal, revoke, creds, current_version, actor, now, force_reason)
            if not self._append(principal.id, record):
                raise BreakGlassError(
                    f"another run restored {_revoke_name(principal.id, revoke)} at the same moment; "
                    "nothing more was changed (`tokenwarden status` shows the keys)"
                )
        for key in record.keys:
            self._reactivate(principal, revoke, key, creds)
        primary = record.keys[0]
        self.notifier.publish(_restored_notice(principal, revoke, record))
        logger.warning(
            "restore",
            extra={
                "principal": principal.id,
                "actor": record.actor.model_dump(exclude_none=True),
                "revoke": revoke.number,
                "forced": record.forced,
                "keys": [k.credential_id for k in record.keys],
            },
        )
        count("KeysRestored", len(record.keys))
        return RestoreResult(
            principal=principal.id,
            actor=record.actor.describe(),
            restored=primary.credential_id,
            current=primary.current,
            also=tuple(k.credential_id for k in record.keys[1:]),
            revoke=revoke.number,
            active_until=primary.active_until,
            forced=record.forced,
            force_reason=record.force_reason,
            provenance=record.actor,
        )

    def _plan_restore(
        self,
        principal: Principal,
        revoke: RevokeRecord,
        creds: Mapping[str, Credential],
        current_version: str | None,
        actor: Actor,
        now: datetime,
        force_reason: str | None,
    ) -> RestoreRecord:
        """Which of the revoke's keys come back, and until when; refused when nothing may."""
        _check_restorable(principal, revoke, now, force_reason)
        found = (
            self._restorable(principal, revoke, key, creds.get(key.credential_id), current_version, now)
            for key in revoke.keys
        )
        keys = [key for key in found if key is not None]
        if not keys:
            raise BreakGlassError(
                f"{_revoke_name(principal.id, revoke)} has no key left to restore (deleted, expired, or past "
                "the grace it had); nothing was changed"
            )
        keys.sort(key=lambda k: not k.current)  # the current key first
        return RestoreRecord(
            principal=principal.id,
            revoke=revoke.number,
            restored_at=now,
            actor=actor,
            forced=force_reason is not None,
            force_reason=force_reason,
            keys=tuple(keys),
        )

    def _restorable(
        self,
        principal: Principal,
        revoke: RevokeRecord,
        key: RevokedKey,
        cred: Credential | None,
        current_version: str | None,
        now: datetime,
    ) -> RestoredKey | None:
        """The key as it comes back, or None: deleted or expired since, or (not current) past its grace."""
        if cred is None or cred.status == "Expired":
            return None  # deleted or expired since: nothing to bring back
        current = key.version_id == current_version
        until = cred.expires_at
        if not current:
            grace_end = self._grace_end(principal, revoke, key)
            if grace_end <= now:
                return None  # its grace, as recorded, is over: it stays off
            until = min(grace_end, until) if until is not None else grace_end
        return RestoredKey(
            credential_id=key.credential_id,
            alias=key.alias,
            version_id=key.version_id,
            current=current,
            active_until=until,
        )

    def _grace_end(self, principal: Principal, revoke: RevokeRecord, key: RevokedKey) -> datetime:
        """A key that is not current works through the grace it had when it was superseded (by a
        rotation, or by the revoke's replacement), or else from the revoke: never a fresh one."""
        return self._superseded_at(principal.id, revoke, key) + timedelta(days=principal.lifecycle.grace_days)

    def _superseded_at(self, principal: str, revoke: RevokeRecord, key: RevokedKey) -> datetime:
        entry = self.ledger.get(principal, key.version_id)
        return (entry.superseded_at if entry else None) or key.superseded_at or revoke.revoked_at

    def _unfinished(
        self,
        principal: Principal,
        revoke: RevokeRecord,
        restore: RestoreRecord,
        creds: Mapping[str, Credential],
    ) -> bool:
        """A recorded restore some of whose keys (still there) were not put back yet."""
        for key in restore.keys:
            if key.credential_id not in creds or creds[key.credential_id].status == "Expired":
                continue
            entry = self.ledger.get(principal.id, key.version_id)
            if entry is None or entry.revoked_at == revoke.revoked_at:
                return True
        return False

    def _reactivate(
        self, principal: Principal, revoke: RevokeRecord, key: RestoredKey, creds: Mapping[str, Credential]
    ) -> None:
        cred = creds.get(key.credential_id)
        if cred is None or cred.status == "Expired":
            return
        entry = self.ledger.get(principal.id, key.version_id)
        if entry is not None and entry.revoked_at != revoke.revoked_at and cred.status == "Active":
            return  # already put back by the run this one finishes
        if cred.status != "Active":
            self.iam.set_credential_status(
                self.naming.user_name(principal.id), key.credential_id, active=True
            )
        revoked = next(k for k in revoke.keys if k.credential_id == key.credential_id)
        entry = revoked.record_or_new(principal.id, entry, revoke.revoked_at)
        self.ledger.save(
            entry.model_copy(
                update={
                    "state": LedgerState.CURRENT if key.current else LedgerState.PREVIOUS,
                    "superseded_at": entry.superseded_at
                    if key.current
                    else self._superseded_at(principal.id, revoke, revoked),
                    "deactivated_at": None,
                    "revoked_at": None,
                    "revoked_by": None,
                    "reissue_requested": False,
                    "reason": revoked.reason_before,
                }
            )
        )


def _check_restorable(
    principal: Principal, revoke: RevokeRecord, now: datetime, force_reason: str | None
) -> None:
    """Refuse a restore the revoke does not allow: a leaked key without --force, --force without a
    leaked key, or a revoke past the retention (its keys are deleted)."""
    name = _revoke_name(principal.id, revoke)
    if revoke.reissue and force_reason is None:
        raise BreakGlassError(
            f"{name} issued a replacement (--reissue), so its key is treated as leaked and stays off; "
            "nothing was changed. To re-activate it anyway, until the grace it had ends: "
            f"`tokenwarden restore {principal.id} --force --reason '...'`"
        )
    if force_reason is not None and not revoke.reissue:
        raise BreakGlassError(
            f"--force is for a revoke that issued a replacement, and {name} did not; "
            "nothing was changed. Run the restore without --force"
        )
    if now - revoke.revoked_at >= timedelta(days=principal.lifecycle.retention_days):
        raise BreakGlassError(
            f"{name} is older than the {principal.lifecycle.retention_days}-day retention: its keys "
            "are deleted (or about to be); nothing was changed"
        )


def _revoke_name(principal: str, revoke: RevokeRecord) -> str:
    return (
        f"revoke #{revoke.number} of {principal} ({revoke.revoked_at:%Y-%m-%d %H:%M} UTC by "
        f"{revoke.actor.describe()})"
    )


def _held_off(
    history: History,
    creds: Iterable[Credential],
    by_credential: Mapping[str, LedgerEntry],
    current_version: str | None,
    taken: set[str],
) -> list[RevokedKey]:
    """The keys the latest revoke still holds off, for a revoke that replaces them (`--reissue`):
    they are then treated as leaked, as the keys it switches off itself are."""
    latest = history.latest
    if latest is None or history.restore_of(latest) is not None:
        return []
    inactive = {c.id for c in creds if c.status == "Inactive"}
    return [
        key.model_copy(update={"was_current": key.version_id == current_version})
        for key in latest.keys
        if key.credential_id in inactive
        and key.credential_id not in taken
        and (entry := by_credential.get(key.credential_id)) is not None
        and entry.revoked_at == latest.revoked_at
    ]


def _log_revoke(
    principal: Principal, actor: Actor, reason: str, done: RevokeRecord | None, targets: Iterable[Credential]
) -> None:
    logger.warning(
        "revoke",
        extra={
            "principal": principal.id,
            "actor": actor.model_dump(exclude_none=True),
            "reason": reason,
            "revoke": done.number if done else None,
            "keys": [c.id for c in targets],
        },
    )


def _revoked_key(cred: Credential, entry: LedgerEntry | None, current_version: str | None) -> RevokedKey:
    return RevokedKey(
        credential_id=cred.id,
        alias=cred.alias,
        version_id=entry.version_id if entry else f"revoke-{cred.id}",
        expires_at=with_known_expiry(cred, entry).expires_at,
        was_current=entry is not None and entry.version_id == current_version,
        state_before=entry.state if entry else None,
        superseded_at=entry.superseded_at if entry else None,
        reason_before=entry.reason if entry else None,
    )


def _revoked_notice(principal: Principal, record: RevokeRecord) -> notes.Notification:
    notice = notes.revoked(
        principal.id,
        principal.team,
        [
            notes.KeyRef(credential_id=k.credential_id, alias=k.alias, expires_at=k.expires_at)
            for k in record.keys
        ],
        record.reason,
        record.actor.describe(),
        principal.lifecycle.retention_days,
        record.reissue,
        record.revoked_at,
    )
    return notice.model_copy(
        update={"context": {**notice.context, **record.actor.context(), "revoke": str(record.number)}}
    )


def _restored_notice(principal: Principal, revoke: RevokeRecord, record: RestoreRecord) -> notes.Notification:
    primary = record.keys[0]
    key = notes.KeyRef(
        credential_id=primary.credential_id,
        alias=primary.alias,
        expires_at=next(k.expires_at for k in revoke.keys if k.credential_id == primary.credential_id),
    )
    notice = notes.restored(
        principal.id, principal.team, key, record.actor.describe(), primary.current, record.restored_at
    )
    until = f"{primary.active_until:%Y-%m-%d %H:%M} UTC" if primary.active_until else "it expires"
    role = (
        "it is the current key again"
        if primary.current
        else f"it is not the current key and works until {until}, the end of the grace it had (not a new one)"
    )
    forced = (
        f" Forced although a replacement had been issued for it (treated as leaked): {record.force_reason}."
        if record.forced
        else ""
    )
    description = (
        f"{record.actor.describe()} re-activated key {key.describe()}; {role}. This undoes revoke "
        f"#{revoke.number} of {revoke.revoked_at:%Y-%m-%d %H:%M} UTC by {revoke.actor.describe()} "
        f"(reason: {revoke.reason}), which stays on record.{forced}"
    )
    context = {
        **notice.context,
        **record.actor.context(),
        "restored_by": record.actor.describe(),
        "revoke": str(revoke.number),
        "revoke_reason": revoke.reason,
    }
    if primary.active_until is not None:
        context["active_until"] = primary.active_until.isoformat()
    if record.forced and record.force_reason:
        context["force_reason"] = record.force_reason
    return notice.model_copy(
        update={
            "description": description,
            "severity": "critical" if record.forced else notice.severity,
            "context": context,
        }
    )
