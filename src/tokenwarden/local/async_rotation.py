"""Secrets Manager's RotateSecret as AWS runs it: in the background, retried, able to be left unfinished.

moto 5.2.5 runs the four rotation steps inside the ``RotateSecret`` call (see
:mod:`tokenwarden.local.lambda_router`): the caller sees the rotation done, or a failure, before the
call returns. AWS instead "starts the asynchronous process of rotating the secret"
(https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html): the call
returns with the new version id and the rotation function runs later; "If any rotation step fails,
Secrets Manager retries the entire rotation process multiple times"
(https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda.html), and when it
gives up "the AWSPENDING staging label might be attached to an empty secret version".

:func:`install` replaces ``SecretsManagerBackend.rotate_secret`` with :func:`rotate_secret`, which:

1. validates as AWS does: the secret exists and is not deleted; if a version other than the
   ``AWSCURRENT`` one carries ``AWSPENDING`` it answers ``InvalidRequestException`` ("A previous
   rotation isn't complete. That rotation will be reattempted."); the rotation function must exist;
2. stores the rotation configuration (function ARN, ``AutomaticallyAfterDays``);
3. attaches ``AWSPENDING`` to a new, empty version whose id is the ``ClientRequestToken`` (a uuid4
   when none is given), exactly what the rotation function finds before ``createSecret``; a token that
   already names a version starts nothing (AWS: the token keeps a version from being made twice);
4. returns ARN, name and the new version id at once, and runs ``createSecret``, ``setSecret``,
   ``testSecret``, ``finishSecret`` on a daemon thread after ``start_delay`` seconds, invoking the
   function through moto's Lambda backend (routed in-process by ``lambda_router``) with the event
   ``{"Step", "SecretId" (the secret's ARN, as AWS sends it), "ClientRequestToken"}``. When a step
   raises, the whole rotation runs again from ``createSecret`` with the same token, up to
   ``attempts`` times in all; then it gives up and leaves ``AWSPENDING`` where it is.

``RotateImmediately=False`` stores the configuration and runs only ``testSecret`` in the background
on a fresh ``AWSPENDING`` version, then removes that version (AWS: "The test creates an AWSPENDING
version of the secret and then removes it").

Between attempts the runner waits ``retry_delay`` real seconds and moves the stack clock forward by
``retry_clock_seconds`` (AWS spaces its retries; their spacing is not documented).

Every background rotation is recorded (:class:`RotationRecord`); :meth:`BackgroundRotations.wait_idle`
waits until none is scheduled or running; :func:`uninstall` cancels the waiting ones, waits (bounded)
for running ones and gives moto its own ``rotate_secret`` back.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any, Final

from moto.secretsmanager.exceptions import (
    InvalidParameterException,
    InvalidRequestException,
    OperationNotPermittedOnReplica,
    ResourceNotFoundException,
    SecretNotFoundException,
)
from moto.secretsmanager.models import FakeSecret, ReplicaSecret, SecretsManagerBackend

from tokenwarden.local.clock import StackClock

__all__ = [
    "BackgroundRotations",
    "RotationKind",
    "RotationOutcome",
    "RotationRecord",
    "install",
    "installed",
    "rotate_secret",
    "uninstall",
]

AWSCURRENT: Final = "AWSCURRENT"
AWSPENDING: Final = "AWSPENDING"
STEPS: Final = ("createSecret", "setSecret", "testSecret", "finishSecret")
PREVIOUS_ROTATION_MESSAGE: Final = "A previous rotation isn't complete. That rotation will be reattempted."
_PATCH_MARK: Final = "__tokenwarden_async_rotation__"


class RotationKind(StrEnum):
    ROTATION = "rotation"  # RotateImmediately=True: the four steps
    CONFIGURATION_TEST = "configuration-test"  # RotateImmediately=False: testSecret only


class RotationOutcome(StrEnum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # every attempt failed; AWSPENDING left behind (rotations)
    ABANDONED = "abandoned"  # the secret disappeared or was deleted meanwhile
    CANCELLED = "cancelled"  # the stack stopped first


@dataclass
class RotationRecord:
    """One background rotation as Secrets Manager ran it. ``failures`` name step and error type only."""

    secret: str
    token: str
    kind: RotationKind
    attempts: int = 0
    outcome: RotationOutcome = RotationOutcome.SCHEDULED
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "secret": self.secret,
            "token": self.token,
            "kind": self.kind.value,
            "attempts": self.attempts,
            "outcome": self.outcome.value,
            "failures": list(self.failures),
        }


@dataclass(frozen=True)
class _Job:
    backend: SecretsManagerBackend
    secret_name: str
    function_arn: str
    token: str
    kind: RotationKind
    record: RotationRecord


class BackgroundRotations:
    """Runs rotations on daemon threads, as Secrets Manager's rotation service would."""

    def __init__(
        self,
        clock: StackClock,
        *,
        start_delay: float = 0.2,
        attempts: int = 3,
        retry_delay: float = 0.2,
        retry_clock_seconds: float = 0.0,
    ) -> None:
        if attempts < 1:
            raise ValueError("a rotation is attempted at least once")
        self.clock = clock
        self.start_delay = start_delay
        self.attempts = attempts
        self.retry_delay = retry_delay
        self.retry_clock_seconds = retry_clock_seconds
        self._cond = threading.Condition()
        self._active = 0
        self._records: list[RotationRecord] = []
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()

    # -- what tests and the stack read ----------------------------------------------------------

    def records(self) -> list[RotationRecord]:
        """A snapshot of every background rotation so far, oldest first."""
        with self._cond:
            return [replace(r, failures=list(r.failures)) for r in self._records]

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no rotation is scheduled or running; False when ``timeout`` ran out first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._active == 0, timeout=max(0.0, timeout))

    def close(self, timeout: float = 10.0) -> None:
        """Cancel rotations still waiting to start; wait up to ``timeout`` for running ones."""
        self._closed.set()
        deadline = time.monotonic() + timeout
        with self._cond:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    # -- scheduling ------------------------------------------------------------------------------

    def schedule(
        self,
        backend: SecretsManagerBackend,
        secret_name: str,
        function_arn: str,
        token: str,
        kind: RotationKind,
    ) -> RotationRecord:
        record = RotationRecord(secret=secret_name, token=token, kind=kind)
        job = _Job(backend, secret_name, function_arn, token, kind, record)
        thread = threading.Thread(
            target=self._run, args=(job,), name=f"secretsmanager-rotation-{token[:8]}", daemon=True
        )
        with self._cond:
            if self._closed.is_set():
                record.outcome = RotationOutcome.CANCELLED
                self._records.append(record)
                return record
            self._active += 1
            self._records.append(record)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return record

    def _set(self, record: RotationRecord, **changes: Any) -> None:
        with self._cond:
            for name, value in changes.items():
                setattr(record, name, value)

    def _run(self, job: _Job) -> None:
        try:
            self._set(job.record, outcome=self._attempt_all(job))
        except Exception as exc:  # the runner itself must never die silently with a count held
            with self._cond:
                job.record.outcome = RotationOutcome.FAILED
                job.record.failures.append(f"runner: {type(exc).__name__}")
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def _attempt_all(self, job: _Job) -> RotationOutcome:
        if self._closed.wait(self.start_delay):
            return RotationOutcome.CANCELLED
        steps = STEPS if job.kind is RotationKind.ROTATION else ("testSecret",)
        for attempt in range(1, self.attempts + 1):
            secret = _live_secret(job.backend, job.secret_name)
            if secret is None:
                return RotationOutcome.ABANDONED
            self._set(job.record, attempts=attempt, outcome=RotationOutcome.RUNNING)
            failure = self._run_steps(job, secret, steps)
            if failure is None:
                self._succeeded(job)
                return RotationOutcome.SUCCEEDED
            with self._cond:
                job.record.failures.append(f"attempt {attempt}: {failure}")
            if self._closed.is_set():
                return RotationOutcome.CANCELLED
            if attempt < self.attempts:
                if self._closed.wait(self.retry_delay):
                    return RotationOutcome.CANCELLED
                if self.retry_clock_seconds > 0:
                    self.clock.advance(timedelta(seconds=self.retry_clock_seconds))
        self._gave_up(job)
        return RotationOutcome.FAILED

    def _run_steps(self, job: _Job, secret: FakeSecret, steps: tuple[str, ...]) -> str | None:
        """Invoke each step; the first failure as ``"<step>: <error type>"``, or None."""
        from moto.awslambda.utils import get_backend

        lambda_backend = get_backend(job.backend.account_id, job.backend.region_name)
        for step in steps:
            if self._closed.is_set():
                return f"{step}: cancelled"
            event = {"Step": step, "SecretId": secret.arn, "ClientRequestToken": job.token}
            try:
                lambda_backend.invoke(
                    job.function_arn,
                    qualifier=None,
                    body=json.dumps(event),
                    headers={},
                    response_headers={},
                )
            except Exception as exc:
                return f"{step}: {type(exc).__name__}"
        return None

    def _succeeded(self, job: _Job) -> None:
        secret = _live_secret(job.backend, job.secret_name)
        if secret is None:
            return
        if job.kind is RotationKind.CONFIGURATION_TEST:
            _remove_test_version(secret, job.token)
            return
        current = next((v for v, d in secret.versions.items() if AWSCURRENT in d["version_stages"]), None)
        if current is not None:
            secret.set_default_version_id(current)
        rotated = int(self.clock.now().timestamp())
        secret.last_rotation_date = rotated
        if secret.auto_rotate_after_days:
            secret.next_rotation_date = rotated + int(secret.auto_rotate_after_days) * 86400

    def _gave_up(self, job: _Job) -> None:
        if job.kind is RotationKind.CONFIGURATION_TEST:
            secret = _live_secret(job.backend, job.secret_name)
            if secret is not None:
                _remove_test_version(secret, job.token)
        # A rotation that failed every attempt leaves AWSPENDING where it is, as on AWS.


def _live_secret(backend: SecretsManagerBackend, name: str) -> FakeSecret | None:
    try:
        secret = backend.secrets.get(name)
    except (KeyError, AttributeError):
        return None
    if not isinstance(secret, FakeSecret) or secret.is_deleted():
        return None
    return secret


def _remove_test_version(secret: FakeSecret, token: str) -> None:
    version = secret.versions.get(token)
    if version is None:
        return
    stages = version["version_stages"]
    if AWSPENDING in stages:
        stages.remove(AWSPENDING)
    if not stages:
        del secret.versions[token]


# --------------------------------------------------------------------------------------------------
# The RotateSecret that replaces moto's


def _validate_rules(rotation_rules: dict[str, Any] | None) -> int | None:
    if not rotation_rules or "AutomaticallyAfterDays" not in rotation_rules:
        return None
    days = int(rotation_rules["AutomaticallyAfterDays"])
    if days < 1 or days > 1000:
        raise InvalidParameterException("RotationRules.AutomaticallyAfterDays must be within 1-1000.")
    return days


def _require_no_pending(secret: FakeSecret) -> None:
    for stages in (version["version_stages"] for version in secret.versions.values()):
        if AWSPENDING in stages and AWSCURRENT not in stages:
            raise InvalidRequestException(PREVIOUS_ROTATION_MESSAGE)


def _require_function(backend: SecretsManagerBackend, function_arn: str) -> None:
    from moto.awslambda.utils import get_backend

    try:
        get_backend(backend.account_id, backend.region_name).get_function(function_arn)
    except Exception:
        raise ResourceNotFoundException(f"Resource not found for ARN '{function_arn}'.") from None


def _new_token(backend: SecretsManagerBackend, client_request_token: str | None) -> str:
    if client_request_token:
        backend._client_request_token_validator(client_request_token)
        return client_request_token
    return str(uuid.uuid4())


_runner: BackgroundRotations | None = None
_original_rotate_secret: Callable[..., str] | None = None
_lock = threading.Lock()


def rotate_secret(
    self: SecretsManagerBackend,
    secret_id: str,
    client_request_token: str | None = None,
    rotation_lambda_arn: str | None = None,
    rotation_rules: dict[str, Any] | None = None,
    rotate_immediately: bool = True,
) -> str:
    """``SecretsManagerBackend.rotate_secret`` as AWS behaves (see the module docstring)."""
    runner = _runner
    if runner is None:  # uninstalled while a request was in flight: moto's own behaviour
        assert _original_rotate_secret is not None
        return _original_rotate_secret(
            self, secret_id, client_request_token, rotation_lambda_arn, rotation_rules, rotate_immediately
        )
    if not self._is_valid_identifier(secret_id):
        raise SecretNotFoundException()
    secret = self.secrets[secret_id]
    if isinstance(secret, ReplicaSecret):
        raise OperationNotPermittedOnReplica
    if secret.is_deleted():
        raise InvalidRequestException(
            "You tried to perform the operation on a secret that's currently marked deleted."
        )
    if rotation_lambda_arn and len(rotation_lambda_arn) > 2048:
        raise InvalidParameterException("RotationLambdaARN must <= 2048 characters long.")
    days = _validate_rules(rotation_rules)
    token = _new_token(self, client_request_token)
    if token in secret.versions:
        return secret.to_short_dict(version_id=token)  # that version was made already: nothing to start
    _require_no_pending(secret)
    function_arn = rotation_lambda_arn or secret.rotation_lambda_arn
    if not function_arn:
        raise InvalidRequestException("No Lambda rotation function ARN is associated with this secret.")
    _require_function(self, function_arn)

    secret.rotation_requested = True
    secret.rotation_lambda_arn = function_arn
    if days is not None:
        secret.auto_rotate_after_days = days
        secret.next_rotation_date = int(runner.clock.now().timestamp()) + days * 86400
    if secret.auto_rotate_after_days > 0:
        secret.rotation_enabled = True
    secret.remove_version_stages_from_old_versions([AWSPENDING])
    secret.versions[token] = {
        "createdate": int(runner.clock.now().timestamp()),
        "version_id": token,
        "version_stages": [AWSPENDING],
    }
    kind = RotationKind.ROTATION if rotate_immediately else RotationKind.CONFIGURATION_TEST
    runner.schedule(self, secret.name, function_arn, token, kind)
    return secret.to_short_dict(version_id=token)


setattr(rotate_secret, _PATCH_MARK, True)


def install(runner: BackgroundRotations) -> None:
    """RotateSecret runs in the background on ``runner`` from now on (replaces a previous runner)."""
    global _runner, _original_rotate_secret
    with _lock:
        current: Any = SecretsManagerBackend.rotate_secret
        if not getattr(current, _PATCH_MARK, False):
            _original_rotate_secret = current
            SecretsManagerBackend.rotate_secret = rotate_secret  # type: ignore[method-assign]
        previous, _runner = _runner, runner
    if previous is not None and previous is not runner:
        previous.close()


def uninstall(timeout: float = 10.0) -> None:
    """Cancel what has not started, wait (bounded) for what runs, and restore moto's RotateSecret."""
    global _runner
    with _lock:
        runner, _runner = _runner, None
        # The original stays known: a request that already looked up the replacement still runs it.
        if _original_rotate_secret is not None:
            SecretsManagerBackend.rotate_secret = _original_rotate_secret  # type: ignore[method-assign]
    if runner is not None:
        runner.close(timeout)


def installed() -> BackgroundRotations | None:
    return _runner
