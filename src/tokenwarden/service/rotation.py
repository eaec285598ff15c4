"""Secrets Manager's four rotation steps for a CloudWatch metrics API key.

Every step is keyed by the ClientRequestToken (the new version id) and is safe to run
again after a crash at any point:

- createSecret records an intent in the ledger, frees a key slot if both are taken (never
  the current key), creates the key with its expiry, records it, and stores its token as
  the AWSPENDING version. A key whose token was lost in a crash is deleted and made again.
- setSecret has nothing to do: IAM already holds the key.
- testSecret proves the new token is accepted at the OTLP endpoint, waiting through IAM's
  propagation delay.
- finishSecret moves AWSCURRENT, clears AWSPENDING, records the change in one ledger
  transaction and notifies once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from tokenwarden.domain.model import (
    AWSCURRENT,
    AWSPENDING,
    Credential,
    LedgerEntry,
    LedgerState,
    SecretState,
)
from tokenwarden.domain.naming import Naming
from tokenwarden.domain.notifications import KeyRef, onboarded, rotated, rotation_failed
from tokenwarden.observability import count, logger
from tokenwarden.ports import Clock, IamPort, LedgerPort, Notifier, SecretsPort, TokenProbe

TAG_PRINCIPAL = "tokenwarden:principal"
TAG_TEAM = "tokenwarden:team"
TAG_KEY_AGE = "tokenwarden:key-age-days"
TAG_GRACE = "tokenwarden:grace-days"
TAG_MANAGED = "tokenwarden:managed-by"


class RotationError(RuntimeError):
    """A rotation step cannot complete; the message says what to look at."""


@dataclass(frozen=True)
class ProbePolicy:
    """How long testSecret waits for IAM to accept a fresh key."""

    attempts: int = 8
    first_delay_seconds: float = 2.0
    max_delay_seconds: float = 15.0


@dataclass
class RotationEngine:
    iam: IamPort
    secrets: SecretsPort
    ledger: LedgerPort
    notifier: Notifier
    probe: TokenProbe
    naming: Naming
    clock: Clock
    max_key_age_days: int = 90
    probe_policy: ProbePolicy = field(default_factory=ProbePolicy)
    sleep: Callable[[float], None] = time.sleep

    # -- the four steps -------------------------------------------------------------------

    def run_step(self, step: str, secret_id: str, token: str) -> None:
        steps = {
            "createSecret": self.create_secret,
            "setSecret": self.set_secret,
            "testSecret": self.test_secret,
            "finishSecret": self.finish_secret,
        }
        if step not in steps:
            raise RotationError(f"unknown rotation step {step!r}")
        try:
            steps[step](secret_id, token)
        except Exception as exc:
            self._report_failure(step, secret_id, exc)
            raise

    def run_all(self, secret_id: str, token: str) -> None:
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
            self.run_step(step, secret_id, token)

    def create_secret(self, secret_id: str, token: str) -> None:
        secret, principal = self._secret(secret_id)
        if self.secrets.version_token(secret.arn, token) is not None:
            logger.info(
                "createSecret: version already holds a key", extra={"principal": principal, "version": token}
            )
            return
        user = self.naming.user_name(principal)
        now = self.clock.now()
        entry = self.ledger.create(
            LedgerEntry(principal=principal, version_id=token, state=LedgerState.CREATING, created_at=now)
        )
        if entry.credential_id is not None:
            # The key was created but its token never reached the secret: it is lost. Delete it.
            self.iam.delete_credential(user, entry.credential_id)
            logger.warning(
                "createSecret: deleted a key whose token was lost in an earlier attempt",
                extra={"principal": principal, "credential_id": entry.credential_id},
            )
            entry = entry.model_copy(update={"credential_id": None, "alias": None, "expires_at": None})
            self.ledger.save(entry)
        self._free_slot(principal, user, secret)
        age_days = self._key_age_days(secret.arn)
        issued = self.iam.create_credential(user, age_days)
        cred = issued.credential
        self.ledger.save(
            entry.model_copy(
                update={
                    "state": LedgerState.PENDING,
                    "credential_id": cred.id,
                    "alias": cred.alias,
                    "expires_at": cred.expires_at,
                }
            )
        )
        self.secrets.put_pending(secret.arn, token, issued.token)
        logger.info(
            "createSecret: new key stored as AWSPENDING",
            extra={"principal": principal, "credential_id": cred.id, "expires_at": str(cred.expires_at)},
        )

    def set_secret(self, secret_id: str, token: str) -> None:
        """IAM already holds the key; there is nothing to set."""

    def test_secret(self, secret_id: str, token: str) -> None:
        secret, principal = self._secret(secret_id)
        value = self.secrets.version_token(secret.arn, token)
        if value is None and self.ledger.get(principal, token) is None and secret.current_version:
            # Enabling rotation without rotating makes Secrets Manager run testSecret alone on a
            # version it made itself: prove the current key instead.
            value = self.secrets.version_token(secret.arn, secret.current_version)
        if value is None:
            raise RotationError(f"testSecret: version {token} of {secret.name} holds no key")
        delay = self.probe_policy.first_delay_seconds
        status = 0
        for attempt in range(1, self.probe_policy.attempts + 1):
            status = self.probe.check(value)
            if 200 <= status < 300:
                logger.info(
                    "testSecret: the OTLP endpoint accepts the new key", extra={"principal": principal}
                )
                return
            if status not in (401, 403) and status < 500:
                break
            if attempt < self.probe_policy.attempts:
                self.sleep(delay)
                delay = min(delay * 2, self.probe_policy.max_delay_seconds)
        raise RotationError(
            f"testSecret: the OTLP endpoint refused the new key of {principal} "
            f"(HTTP {status} after {self.probe_policy.attempts} attempt(s))"
        )

    def finish_secret(self, secret_id: str, token: str) -> None:
        secret, principal = self._secret(secret_id)
        entry = self.ledger.get(principal, token)
        if entry is None or entry.credential_id is None:
            raise RotationError(f"finishSecret: no recorded key for version {token} of {secret.name}")
        current = secret.current_version
        if current != token:
            self.secrets.move_stage(secret.arn, AWSCURRENT, to_version=token, from_version=current)
        if AWSPENDING in secret.versions.get(token, ()):
            self.secrets.remove_stage(secret.arn, AWSPENDING, from_version=token)
        now = self.clock.now()
        superseded = [
            e
            for e in self.ledger.entries(principal)
            if e.state == LedgerState.CURRENT and e.version_id != token
        ]
        if entry.state != LedgerState.CURRENT:
            entry = entry.model_copy(update={"state": LedgerState.CURRENT, "activated_at": now})
            self.ledger.save_all(
                [entry]
                + [
                    e.model_copy(update={"state": LedgerState.PREVIOUS, "superseded_at": now})
                    for e in superseded
                ]
            )
        self._announce(principal, secret, entry, superseded, now)

    # -- helpers --------------------------------------------------------------------------

    def _report_failure(self, step: str, secret_id: str, exc: Exception) -> None:
        count("RotationFailed", 1)
        secret = self.secrets.describe(secret_id)
        name = secret.name if secret else secret_id
        principal = self.naming.principal_of_secret(name) or name
        team = self.secrets.tags(secret.arn).get(TAG_TEAM, principal) if secret else principal
        logger.error("rotation step failed", extra={"principal": principal, "step": step, "error": str(exc)})
        self.notifier.publish(rotation_failed(principal, team, name, f"{step}: {exc}", self.clock.now()))

    def _announce(
        self,
        principal: str,
        secret: SecretState,
        entry: LedgerEntry,
        superseded: list[LedgerEntry],
        now: datetime,
    ) -> None:
        if "activated" in entry.notified:
            return
        tags = self.secrets.tags(secret.arn)
        team = tags.get(TAG_TEAM, principal)
        key = KeyRef(
            credential_id=entry.credential_id or "", alias=entry.alias or "", expires_at=entry.expires_at
        )
        previous = [
            e for e in self.ledger.entries(principal) if e.state == LedgerState.PREVIOUS and e.credential_id
        ]
        if previous or superseded:
            last = max(previous or superseded, key=lambda e: e.superseded_at or e.created_at)
            previous_key = KeyRef(
                credential_id=last.credential_id or "", alias=last.alias or "", expires_at=last.expires_at
            )
            grace = int(tags.get(TAG_GRACE, "7"))
            message = rotated(
                principal, team, secret.name, key, previous_key, grace, now, last.revoked_at is not None
            )
        else:
            message = onboarded(principal, team, secret.name, key, now)
        self.notifier.publish(message)
        self.ledger.save(entry.model_copy(update={"notified": entry.notified | {"activated"}}))

    def _secret(self, secret_id: str) -> tuple[SecretState, str]:
        secret = self.secrets.describe(secret_id)
        if secret is None:
            raise RotationError(f"secret {secret_id} does not exist")
        principal = self.naming.principal_of_secret(secret.name)
        if principal is None:
            raise RotationError(f"secret {secret.name} is not under the prefix {self.naming.secret_prefix!r}")
        return secret, principal

    def _key_age_days(self, secret_arn: str) -> int:
        raw = self.secrets.tags(secret_arn).get(TAG_KEY_AGE)
        age = int(raw) if raw and raw.isdigit() else self.max_key_age_days
        return max(1, min(age, self.max_key_age_days))

    def _free_slot(self, principal: str, user: str, secret: SecretState) -> None:
        """IAM allows two keys per user. Make room without ever touching the current key."""
        credentials = self.iam.list_user_credentials(user)
        if len(credentials) < 2:
            return
        current_entry = self.ledger.get(principal, secret.current_version) if secret.current_version else None
        current_id = current_entry.credential_id if current_entry else None
        entries = {e.credential_id: e for e in self.ledger.entries(principal) if e.credential_id}
        candidates = [c for c in credentials if c.id != current_id]
        if not candidates:
            raise RotationError(f"{user} has two keys and both look current; refusing to delete either")
        victim = min(candidates, key=lambda c: _eviction_rank(c, entries.get(c.id)))
        self.iam.delete_credential(user, victim.id)
        tracked = entries.get(victim.id)
        if tracked is not None:
            self.ledger.save(
                tracked.model_copy(update={"state": LedgerState.DELETED, "deleted_at": self.clock.now()})
            )
        logger.warning(
            "createSecret: deleted a non-current key to make room",
            extra={"principal": principal, "credential_id": victim.id, "status": victim.status},
        )


def _eviction_rank(cred: Credential, entry: LedgerEntry | None) -> tuple[int, datetime]:
    """Lower goes first: unusable keys, then keys nobody holds, then the oldest previous key."""
    if cred.status != "Active":
        rank = 0
    elif entry is None or entry.state in (LedgerState.ABANDONED, LedgerState.DELETED, LedgerState.CREATING):
        rank = 1
    elif entry.state in (LedgerState.RETIRED, LedgerState.PENDING):
        rank = 2
    else:
        rank = 3
    return rank, cred.created_at
