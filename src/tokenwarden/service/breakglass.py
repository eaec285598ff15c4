"""Break-glass: revoke a principal's keys at once (optionally reissue), and undo a mistaken revoke.

A revoke deactivates every Active key of the principal and records who, when and why. The
keys stay Inactive through the retention (so `restore` can bring the newest one back), then
the nightly run deletes them. Running the same revoke twice changes nothing more.

Both take the principal's lease, waiting as long as one rotation can take for a rotation in
flight to finish. A key is switched off first (a leaked key must stop working even if the
process dies right after), then its record says who revoked it, why, and whether a replacement
(`--reissue`) is wanted. A revoke killed in between leaves a key switched off out of band,
which the next run replaces; one killed after it leaves the wish for a replacement, which the
next run fulfils: break-glass never leaves fewer working keys than asked for.
The replacement goes through Secrets Manager's rotation, which runs in the background; the
revoke waits for it as long as a rotation can take and reports it as still in progress
(not failed) past that. The `rotated` notice comes from the rotation's own finish step.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from tokenwarden.domain import notifications as notes
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
from tokenwarden.domain.registry import Principal
from tokenwarden.observability import count, logger
from tokenwarden.ports import IamPort, LedgerPort, Notifier, SecretsPort
from tokenwarden.service.lease import Leases, PrincipalBusy, rotation_owner
from tokenwarden.service.rotation import RotationEngine

# A second revoke with the same reason within this window is the same revoke, run again.
REPEAT_WINDOW = timedelta(hours=24)


class BreakGlassError(ValueError):
    """Bad input for a revoke or restore: nothing was changed."""


class BreakGlassFailed(RuntimeError):
    """A revoke or restore did part of its work; the message says what holds and what to do next."""


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


class RestoreResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    principal: str
    actor: str
    restored: str
    # Whether the restored key is the secret's AWSCURRENT (the one laptops read).
    current: bool = False
    # Other keys the same revoke switched off, re-activated with it.
    also: tuple[str, ...] = ()


@dataclass
class BreakGlass:
    iam: IamPort
    secrets: SecretsPort
    ledger: LedgerPort
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

    def revoke(
        self, principal: Principal, reason: str, actor: str, reissue: bool, now: datetime
    ) -> RevokeResult:
        reason = reason.strip()
        if not reason:
            raise BreakGlassError("a revoke needs a reason (--reason): it goes into the ledger and the alert")
        with self._lease(principal.id) as owner:
            return self._revoke(principal, reason, actor, reissue, now, owner)

    def _revoke(
        self, principal: Principal, reason: str, actor: str, reissue: bool, now: datetime, owner: str
    ) -> RevokeResult:
        user = self.naming.user_name(principal.id)
        secret = self.secrets.describe(self.naming.secret_name(principal.id))
        entries = self.ledger.entries(principal.id)
        by_credential = {e.credential_id: e for e in entries if e.credential_id}
        current_version = secret.current_version if secret else None
        previous = max(
            (e for e in entries if e.revoked_at is not None and e.reason == reason),
            key=lambda e: e.revoked_at or now,
            default=None,
        )
        repeat_of = (
            previous.revoked_at
            if previous and previous.revoked_at and now - previous.revoked_at < REPEAT_WINDOW
            else None
        )

        revoked: list[Credential] = []
        for cred in self.iam.list_user_credentials(user):
            if cred.status != "Active":
                continue
            known = by_credential.get(cred.id)
            issued_at = known.created_at if known is not None else cred.created_at
            if repeat_of is not None and issued_at > repeat_of:
                continue  # issued by the first run's reissue: the same revoke must not take it
            self.iam.set_credential_status(user, cred.id, active=False)
            entry = by_credential.get(cred.id) or LedgerEntry(
                principal=principal.id,
                version_id=f"revoke-{cred.id}",
                state=LedgerState.RETIRED,
                created_at=now,
                credential_id=cred.id,
                alias=cred.alias,
                expires_at=cred.expires_at,
            )
            is_current = entry.version_id == current_version
            self.ledger.save(
                entry.model_copy(
                    update={
                        "state": LedgerState.CURRENT if is_current else LedgerState.RETIRED,
                        "deactivated_at": now,
                        "revoked_at": now,
                        "revoked_by": actor,
                        "reason": reason,
                        "reissue_requested": reissue and is_current,
                    }
                )
            )
            revoked.append(cred)
        if revoked:
            count("KeysRevoked", len(revoked))
            self.notifier.publish(
                notes.revoked(
                    principal.id,
                    principal.team,
                    [
                        notes.KeyRef(
                            credential_id=c.id,
                            alias=c.alias,
                            expires_at=with_known_expiry(c, by_credential.get(c.id)).expires_at,
                        )
                        for c in revoked
                    ],
                    reason,
                    actor,
                    principal.lifecycle.retention_days,
                    reissue,
                    now,
                )
            )
        logger.warning(
            "revoke",
            extra={
                "principal": principal.id,
                "actor": actor,
                "reason": reason,
                "keys": [c.id for c in revoked],
            },
        )
        reissued, in_progress = self._reissue(principal, owner, now) if reissue else (None, False)
        return RevokeResult(
            principal=principal.id,
            actor=actor,
            reason=reason,
            revoked=tuple(c.id for c in revoked),
            reissued=reissued,
            reissue_in_progress=in_progress,
            repeated=repeat_of is not None and not revoked,
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
        except ClientError as exc:
            if self.leases is not None:
                self.leases.release(principal.id, rotation_owner(token))
            code = exc.response.get("Error", {}).get("Code", "")
            raise BreakGlassFailed(
                f"the key is revoked, but Secrets Manager refused to start the replacement ({code}). "
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

    def restore(self, principal: Principal, actor: str, now: datetime) -> RestoreResult:
        with self._lease(principal.id):
            return self._restore(principal, actor, now)

    def _restore(self, principal: Principal, actor: str, now: datetime) -> RestoreResult:
        user = self.naming.user_name(principal.id)
        creds = {c.id: c for c in self.iam.list_user_credentials(user)}
        window = timedelta(days=principal.lifecycle.retention_days)
        candidates = [
            e
            for e in self.ledger.entries(principal.id)
            if e.revoked_at is not None
            and e.credential_id in creds
            and creds[e.credential_id].status == "Inactive"
            and now - e.revoked_at < window
        ]
        if not candidates:
            raise BreakGlassError(
                f"{principal.id} has no revoked key to restore (only keys revoked in the last "
                f"{principal.lifecycle.retention_days} days and not yet deleted or expired can be)"
            )
        # Undo the latest revoke as a whole: every key it switched off, the current one first.
        latest = max(e.revoked_at or now for e in candidates)
        secret = self.secrets.describe(self.naming.secret_name(principal.id))
        current_version = secret.current_version if secret is not None else None
        batch = sorted(
            (e for e in candidates if e.revoked_at == latest), key=lambda e: e.version_id != current_version
        )
        for entry in batch:
            is_current = entry.version_id == current_version
            self.iam.set_credential_status(user, entry.credential_id or "", active=True)
            self.ledger.save(
                entry.model_copy(
                    update={
                        "state": LedgerState.CURRENT if is_current else LedgerState.PREVIOUS,
                        "superseded_at": entry.superseded_at if is_current else now,
                        "deactivated_at": None,
                        "revoked_at": None,
                        "revoked_by": None,
                        "reason": f"restored by {actor}",
                    }
                )
            )
        primary = batch[0]
        is_current = primary.version_id == current_version
        key = notes.KeyRef(
            credential_id=primary.credential_id or "",
            alias=primary.alias or "",
            expires_at=primary.expires_at,
        )
        self.notifier.publish(notes.restored(principal.id, principal.team, key, actor, is_current, now))
        return RestoreResult(
            principal=principal.id,
            actor=actor,
            restored=primary.credential_id or "",
            current=is_current,
            also=tuple(e.credential_id or "" for e in batch[1:]),
        )
