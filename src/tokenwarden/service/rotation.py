"""Secrets Manager's four rotation steps for a CloudWatch metrics API key.

Every step is keyed by the ClientRequestToken (the new version id) and is safe to run
again after a crash at any point:

- createSecret records an intent in the ledger, frees a key slot if both are taken (never
  the current key), creates the key with its expiry, records it (with the age asked for, so
  the expiry is known even when IAM's answer leaves it out), checks its token is a bearer
  token, and stores it as the AWSPENDING version. A key whose token was lost in a crash (or
  was not a bearer token) is deleted and made again.
- setSecret has nothing to do: IAM already holds the key.
- testSecret proves the new token is accepted at the OTLP endpoint, waiting through IAM's
  propagation delay and the endpoint's throttling.
- finishSecret moves AWSCURRENT, clears AWSPENDING, records the change in one ledger
  transaction and notifies once.

Secrets Manager calls the steps in the background and retries the whole rotation a few
times when a step fails: each step takes the principal's lease (handed to the rotation by
whoever started it), a rotation that break-glass abandoned is never finished, and a failing
rotation is announced once, not once per retry.

The function does rotations and nothing else. Before any step, as the AWS rotation templates
do, it reads the secret (DescribeSecret) and refuses, changing nothing, an invocation whose
secret does not have rotation enabled with this very function, or whose version is not the
secret's AWSPENDING one (RotationRefused). A version already AWSCURRENT has nothing left to do.
A version that lost AWSPENDING because a newer run abandoned its rotation ends quietly
(RotationAbandoned): Secrets Manager's late retries of a rotation given up are expected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NoReturn

from tokenwarden.domain.model import (
    AWSCURRENT,
    AWSPENDING,
    Credential,
    LedgerEntry,
    LedgerState,
    MalformedToken,
    SecretState,
    check_token_syntax,
)
from tokenwarden.domain.naming import Naming
from tokenwarden.domain.notifications import KeyRef, onboarded, rotated, rotation_failed
from tokenwarden.domain.ownership import NotTokenWardens, OwnershipNotConfigured
from tokenwarden.errors import AwsError, AwsUnavailable
from tokenwarden.observability import count, logger
from tokenwarden.ports import Clock, IamPort, LedgerPort, Notifier, SecretsPort, TokenProbe
from tokenwarden.service.lease import Leases, PrincipalBusy, rotation_owner

TAG_PRINCIPAL = "tokenwarden:principal"
TAG_TEAM = "tokenwarden:team"
TAG_KEY_AGE = "tokenwarden:key-age-days"
TAG_GRACE = "tokenwarden:grace-days"
TAG_MANAGED = "tokenwarden:managed-by"


class RotationError(RuntimeError):
    """A rotation step cannot complete; the message says what to look at."""


class RotationAbandoned(RotationError):
    """The version is no longer AWSPENDING: a newer run gave this rotation up. Its retries by
    Secrets Manager end here, quietly (nothing failed that anyone has to act on)."""


class RotationRefused(RotationError):
    """The invocation is not a rotation this function may run (rotation off, another function,
    a version that is not AWSPENDING). Nothing was read beyond the secret's description and
    nothing was changed; the message says which check failed."""


def unqualified_function_arn(arn: str) -> str:
    """A Lambda function ARN without its version or alias qualifier (a name stays as it is)."""
    parts = arn.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[5] == "function":
        return ":".join(parts[:7])
    return arn


# Probe answers worth waiting through: IAM has not propagated the key yet (401/403), the
# endpoint throttles (429), or it failed (5xx, or no answer at all).
RETRIED_STATUSES = frozenset({401, 403, 429})

# The steps that change keys or labels, and so take the principal's lease.
LEASED_STEPS = frozenset({"createSecret", "finishSecret"})

# The steps other than the probe, and Secrets Manager starting the rotation, fit in this.
STEP_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class ProbePolicy:
    """How long testSecret waits for IAM to accept a fresh key."""

    attempts: int = 8
    first_delay_seconds: float = 2.0
    max_delay_seconds: float = 15.0
    timeout_seconds: float = 10.0

    def delays(self) -> list[float]:
        delays, delay = [], self.first_delay_seconds
        for _ in range(self.attempts - 1):
            delays.append(delay)
            delay = min(delay * 2, self.max_delay_seconds)
        return delays

    def worst_case_seconds(self) -> float:
        """The longest one testSecret can take: every wait, and every attempt timing out."""
        return sum(self.delays()) + self.attempts * self.timeout_seconds

    def rotation_bound_seconds(self) -> float:
        """How long one rotation attempt can really take, from RotateSecret to finishSecret."""
        return self.worst_case_seconds() + STEP_MARGIN_SECONDS


def describe_error(exc: BaseException) -> str:
    """What went wrong, in words that can never carry a token: our own messages, AWS error
    codes and exception types, never the text of a foreign exception."""
    if isinstance(exc, RotationError | PrincipalBusy | MalformedToken):
        return str(exc)
    if isinstance(exc, AwsError):
        return f"{exc.operation} answered {exc.code or 'error'}"
    if isinstance(exc, AwsUnavailable):
        return f"AWS client error ({exc.kind})"
    return type(exc).__name__


def token_free(exc: Exception) -> Exception:
    """A fresh exception to raise in place of `exc`: the same type and text when the text is
    ours (it never holds a token), a RotationError naming the operation, AWS error code or
    type otherwise. Being new, it has no traceback, cause or context that leads back to `exc`."""
    if isinstance(exc, RotationError | PrincipalBusy | MalformedToken):
        return type(exc)(str(exc))
    return RotationError(f"the rotation step failed: {describe_error(exc)}")


@dataclass(frozen=True)
class _Admitted:
    """An invocation admitted: the secret as described, its principal, and whether there is
    anything left to do (`go` is False when the version is already AWSCURRENT)."""

    secret: SecretState
    principal: str
    go: bool


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
    leases: Leases | None = None
    # How long a step Secrets Manager invoked waits for the principal's lease.
    lease_wait_seconds: float = 60.0

    # -- the four steps -------------------------------------------------------------------

    def run_step(
        self, step: str, secret_id: str, token: str, leased: bool = False, function_arn: str | None = None
    ) -> None:
        """One step, as Secrets Manager invokes it (`function_arn`: the invoked function's ARN)
        or in-process by a caller that holds the principal's lease (`leased`).

        An invocation is first admitted (see `_admit`): it is refused, with nothing changed,
        unless the secret is rotated by this function and the version is its AWSPENDING one.
        The steps that change something (createSecret, finishSecret) take the principal's
        lease as the rotation's owner, unless the caller already holds it; the rotation keeps
        it from createSecret to finishSecret. testSecret only reads and probes (Secrets
        Manager also runs it alone, to test a rotation configuration).
        """
        steps = {
            "createSecret": self.create_secret,
            "setSecret": self.set_secret,
            "testSecret": self.test_secret,
            "finishSecret": self.finish_secret,
        }
        if step not in steps:
            raise RotationRefused(f"unknown rotation step {step!r}")
        principal: str | None = None
        owner = rotation_owner(token)
        try:
            admitted = None if leased else self._admit(step, secret_id, token, function_arn)
            if admitted is not None and not admitted.go:
                if step == "finishSecret" and self.leases is not None:
                    self.leases.release(admitted.principal, owner)
                return
            kept = False
            if admitted is not None and self.leases is not None and step in LEASED_STEPS:
                principal = admitted.principal
                kept = self._take_lease(step, principal, owner)
            steps[step](secret_id, token, _current(admitted, step, kept))
        except Exception as exc:
            self._report_failure(step, secret_id, token, exc)
            if principal is not None and self.leases is not None:
                self.leases.release(principal, owner)
            raise
        if principal is not None and self.leases is not None and step == "finishSecret":
            self.leases.release(principal, owner)

    def run_invoked(self, step: str, secret_id: str, token: str, function_arn: str) -> None:
        """One step as Secrets Manager invokes the function that was invoked as `function_arn`.

        What leaves the function is what Lambda logs, returns to Secrets Manager and X-Ray
        records: a failure is raised as `token_free(exc)`, after the original is gone, so
        that neither a foreign exception's text (http.client quotes a header it refuses; AWS's own
        message may quote a request) nor its traceback can carry a token out.
        """
        failure: Exception | None = None
        try:
            self.run_step(step, secret_id, token, function_arn=function_arn)
        except Exception as exc:
            failure = token_free(exc)
        if failure is not None:
            raise failure

    def _admit(self, step: str, secret_id: str, token: str, function_arn: str | None) -> _Admitted:
        """What Secrets Manager's own rotation templates check first, reading only the secret's
        description (and the ledger, to tell an abandoned rotation from a stray version).

        Refused (RotationRefused): rotation is not enabled on the secret, or it is enabled with
        another function; the token is not a version of the secret, or a version that is neither
        AWSPENDING nor AWSCURRENT. Not `go`: the version is already AWSCURRENT, nothing to do.
        A version a newer run abandoned (it lost AWSPENDING, or was since removed, and the ledger
        knows its rotation) ends quietly (RotationAbandoned).
        """
        secret = self.secrets.describe(secret_id)
        if secret is None:
            raise RotationRefused(f"{step}: secret {secret_id} does not exist")
        principal = self._rotated_by(step, secret, function_arn)
        stages = secret.versions.get(token)
        if stages is not None and AWSCURRENT in stages:
            logger.info(f"{step}: version is already AWSCURRENT", extra={"version": token})
            return _Admitted(secret, principal, go=False)
        if stages is not None and AWSPENDING in stages:
            return _Admitted(secret, principal, go=True)
        self._refuse_stray_version(step, secret, principal, token, stages)

    def _rotated_by(self, step: str, secret: SecretState, function_arn: str | None) -> str:
        """The secret's principal, when its rotation is enabled with the invoked function."""
        if not secret.rotation_enabled:
            raise RotationRefused(
                f"{step}: rotation is not enabled on {secret.name}; this function only runs its rotations"
            )
        configured = secret.rotation_lambda_arn or ""
        if function_arn is None or unqualified_function_arn(configured) != unqualified_function_arn(
            function_arn
        ):
            raise RotationRefused(
                f"{step}: {secret.name} is rotated by {configured or 'no function'}, "
                f"not by this function ({function_arn or 'unknown'})"
            )
        principal = self.naming.principal_of_secret(secret.name)
        if principal is None:
            raise RotationRefused(
                f"{step}: {secret.name} is not under the prefix {self.naming.secret_prefix!r}"
            )
        return principal

    def _refuse_stray_version(
        self, step: str, secret: SecretState, principal: str, token: str, stages: tuple[str, ...] | None
    ) -> NoReturn:
        """A version that is not AWSPENDING: given up quietly when it was a rotation a newer run
        abandoned, refused otherwise."""
        entry = self.ledger.get(principal, token)
        if stages is None:
            if entry is None:
                raise RotationRefused(f"{step}: {token} is not a version of {secret.name}")
            raise RotationAbandoned(f"{step}: version {token} of {secret.name} no longer exists")
        abandoned = entry is not None and entry.state in (LedgerState.ABANDONED, LedgerState.DELETED)
        if abandoned or not stages:
            raise RotationAbandoned(f"{step}: version {token} of {secret.name} is no longer AWSPENDING")
        raise RotationRefused(
            f"{step}: version {token} of {secret.name} is {', '.join(stages)}, not AWSPENDING"
        )

    def _take_lease(self, step: str, principal: str, owner: str) -> bool:
        """Take the principal's lease as the rotation's owner. True when the rotation held it all
        along (handed over when the rotation was started, or kept by its last step): nobody else
        can have acted on the principal since the invocation was admitted."""
        assert self.leases is not None
        ttl = int(self.probe_policy.rotation_bound_seconds())
        if self.leases.keep(principal, owner, ttl):
            return True
        if not self.leases.acquire(principal, owner, self.lease_wait_seconds, ttl):
            raise PrincipalBusy(f"{step}: another run is working on {principal}; Secrets Manager retries")
        return False

    def run_all(self, secret_id: str, token: str) -> None:
        """The four steps in-process, by a caller that holds the principal's lease.

        As with `run_invoked`, a foreign exception (one whose text may quote a token) leaves as
        `token_free(exc)`, raised after the original is gone. AWS's own answers (AwsError: a code
        and AWS's message) and TokenWarden's refusals keep their type, since callers act on them
        (a refusal is announced, a code is reported)."""
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
            failure: Exception | None = None
            try:
                self.run_step(step, secret_id, token, leased=True)
            except (AwsError, NotTokenWardens, OwnershipNotConfigured):
                raise
            except Exception as exc:
                failure = token_free(exc)
            if failure is not None:
                raise failure

    def create_secret(self, secret_id: str, token: str, described: SecretState | None = None) -> None:
        secret, principal = self._secret(secret_id, described)
        # Before a key exists: a secret that is not TokenWarden's (re-keyed, its policy replaced)
        # gets no token, and no key is made whose token would have nowhere safe to go. Its tag
        # and key are judged as just described; its policy is read.
        self.secrets.verify_owned(secret.arn, principal, described=secret)
        # A version the secret does not list holds no value: only a listed one is read.
        if token in secret.versions and self.secrets.version_token(secret.arn, token) is not None:
            self._refuse_abandoned(principal, token)
            logger.info(
                "createSecret: version already holds a key", extra={"principal": principal, "version": token}
            )
            return
        user = self.naming.user_name(principal)
        now = self.clock.now()
        # Written only when there is no record yet; an existing one (a retry) is returned, and
        # an abandoned rotation is refused on it without a read of its own.
        entry = self.ledger.create(
            LedgerEntry(principal=principal, version_id=token, state=LedgerState.CREATING, created_at=now)
        )
        self._refuse_abandoned(principal, token, entry)
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
        age_days = self._key_age_days(secret)
        issued = self.iam.create_credential(user, age_days)
        cred = issued.credential
        expires_at = cred.expires_at or cred.created_at + timedelta(days=age_days)
        self.ledger.save(
            entry.model_copy(
                update={
                    "state": LedgerState.PENDING,
                    "credential_id": cred.id,
                    "alias": cred.alias,
                    "expires_at": expires_at,
                    "requested_age_days": age_days,
                }
            )
        )
        # Checked before it goes anywhere: a value that is not a bearer token is never stored (a
        # retry deletes this key as one whose token was lost, and makes another).
        check_token_syntax(issued.token)
        self.secrets.put_pending(secret.arn, token, issued.token)
        logger.info(
            "createSecret: new key stored as AWSPENDING",
            extra={"principal": principal, "credential_id": cred.id, "expires_at": str(expires_at)},
        )

    def set_secret(self, secret_id: str, token: str, described: SecretState | None = None) -> None:
        """IAM already holds the key; there is nothing to set."""

    def test_secret(self, secret_id: str, token: str, described: SecretState | None = None) -> None:
        secret, principal = self._secret(secret_id, described)
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
            if status not in RETRIED_STATUSES and status < 500:
                break  # a final answer (400, 404, 422...): waiting will not change it
            if attempt < self.probe_policy.attempts:
                self.sleep(delay)
                delay = min(delay * 2, self.probe_policy.max_delay_seconds)
        raise RotationError(
            f"testSecret: the OTLP endpoint refused the new key of {principal} "
            f"(HTTP {status} after {self.probe_policy.attempts} attempt(s))"
        )

    def finish_secret(self, secret_id: str, token: str, described: SecretState | None = None) -> None:
        secret, principal = self._secret(secret_id, described)
        # One Query reads the version's entry and the ones it supersedes.
        entries = self.ledger.entries(principal)
        entry = next((e for e in entries if e.version_id == token), None)
        if entry is None or entry.credential_id is None:
            raise RotationError(f"finishSecret: no recorded key for version {token} of {secret.name}")
        self._refuse_abandoned(principal, token, entry)
        current = secret.current_version
        if current != token:
            self.secrets.move_stage(secret.arn, AWSCURRENT, to_version=token, from_version=current)
        if AWSPENDING in secret.versions.get(token, ()):
            self.secrets.remove_stage(secret.arn, AWSPENDING, from_version=token)
        now = self.clock.now()
        demoted = [
            e.model_copy(update={"state": LedgerState.PREVIOUS, "superseded_at": now})
            for e in entries
            if e.state == LedgerState.CURRENT and e.version_id != token
        ]
        previous = [e for e in entries if e.state == LedgerState.PREVIOUS and e.credential_id]
        if entry.state != LedgerState.CURRENT:
            entry = entry.model_copy(update={"state": LedgerState.CURRENT, "activated_at": now})
            self.ledger.save_all([entry, *demoted])
        self._announce(principal, secret, entry, previous + [e for e in demoted if e.credential_id], now)

    # -- helpers --------------------------------------------------------------------------

    def _refuse_abandoned(self, principal: str, token: str, entry: LedgerEntry | None = None) -> None:
        """A rotation that break-glass or the reconciler gave up on is never resumed by a retry."""
        entry = entry or self.ledger.get(principal, token)
        if entry is not None and entry.state in (LedgerState.ABANDONED, LedgerState.DELETED):
            raise RotationError(
                f"rotation {token} of {principal} was abandoned ({entry.reason or 'no reason'})"
            )

    def _report_failure(self, step: str, secret_id: str, token: str, exc: Exception) -> None:
        """Count every failed step; announce a rotation's failure once, however often it is retried.
        A rotation a newer run gave up (RotationAbandoned) is neither counted nor announced."""
        error = describe_error(exc)
        if isinstance(exc, RotationAbandoned):
            logger.warning("rotation step given up", extra={"step": step, "error": error})
            return
        if isinstance(exc, RotationRefused):
            # Not a rotation: nothing was changed, nothing is announced (the function's errors
            # alarm sees it, and this line says which check failed).
            logger.error("rotation step refused", extra={"step": step, "error": error})
            return
        count("RotationFailed", 1)
        try:
            secret = self.secrets.describe(secret_id)
            name = secret.name if secret else secret_id
            principal = self.naming.principal_of_secret(name) or name
            logger.error("rotation step failed", extra={"principal": principal, "step": step, "error": error})
            entry = self.ledger.get(principal, token)
            if entry is not None and "rotation_failed" in entry.notified:
                return
            team = secret.tags.get(TAG_TEAM, principal) if secret else principal
            self.notifier.publish(
                rotation_failed(principal, team, name, f"{step}: {error}", self.clock.now())
            )
            if entry is not None:
                self.ledger.save(entry.model_copy(update={"notified": entry.notified | {"rotation_failed"}}))
        except (AwsError, AwsUnavailable) as report_error:
            # The step's own error is what matters; the report is best effort (AWS may be throttling).
            logger.error(
                "could not report a failed rotation step",
                extra={"step": step, "error": error, "report_error": describe_error(report_error)},
            )

    def _announce(
        self,
        principal: str,
        secret: SecretState,
        entry: LedgerEntry,
        replaced: list[LedgerEntry],
        now: datetime,
    ) -> None:
        """`replaced`: the keys this version replaced, now or by an earlier attempt of this
        finishSecret (entries read once, before the transaction). Team and grace come from the
        tags the step's DescribeSecret answered."""
        if "activated" in entry.notified:
            return
        tags = secret.tags
        team = tags.get(TAG_TEAM, principal)
        key = KeyRef(
            credential_id=entry.credential_id or "", alias=entry.alias or "", expires_at=entry.expires_at
        )
        if replaced:
            last = max(replaced, key=lambda e: e.superseded_at or e.created_at)
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

    def _secret(self, secret_id: str, described: SecretState | None = None) -> tuple[SecretState, str]:
        secret = described or self.secrets.describe(secret_id)
        if secret is None:
            raise RotationError(f"secret {secret_id} does not exist")
        principal = self.naming.principal_of_secret(secret.name)
        if principal is None:
            raise RotationError(f"secret {secret.name} is not under the prefix {self.naming.secret_prefix!r}")
        return secret, principal

    def _key_age_days(self, secret: SecretState) -> int:
        raw = secret.tags.get(TAG_KEY_AGE)
        age = int(raw) if raw and raw.isdigit() else self.max_key_age_days
        return max(1, min(age, self.max_key_age_days))

    def _free_slot(self, principal: str, user: str, secret: SecretState) -> None:
        """IAM allows two keys per user. Make room without ever touching the current key."""
        credentials = self.iam.list_user_credentials(user)
        if len(credentials) < 2:
            return
        recorded = self.ledger.entries(principal)  # one Query: the current version's entry and the rest
        current_id = next(
            (
                e.credential_id
                for e in recorded
                if secret.current_version and e.version_id == secret.current_version
            ),
            None,
        )
        entries = {e.credential_id: e for e in recorded if e.credential_id}
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


def _current(admitted: _Admitted | None, step: str, kept: bool) -> SecretState | None:
    """The admission's description of the secret, when it is still what the step would read:
    testSecret only reads, and a leased step whose rotation held the lease all along finds what
    was admitted. Otherwise (a lease taken anew, perhaps after waiting) the step describes it again."""
    if admitted is None or not (kept or step not in LEASED_STEPS):
        return None
    return admitted.secret


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
