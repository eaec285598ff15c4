"""How harsh the embedded stack is: the AWS behaviours moto leaves out, each a switch, on by default.

moto answers every call at once, never throttles, runs a rotation inside ``RotateSecret`` and knows a
new IAM key the moment it exists. AWS does none of that, and TokenWarden has to survive AWS. The
embedded stack (``tokenwarden local up``, and the tests' in-process world when they call
:func:`install`) reproduces these behaviours; every value below comes from the environment
(``TOKENWARDEN_STACK_<FIELD>``), defaults in brackets:

Secrets Manager rotation
    ``ASYNC_ROTATION`` [on]: ``RotateSecret`` returns at once with the new version id; the four steps
    run later in the background ("Configures and starts the asynchronous process of rotating the
    secret", https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html).
    ``ROTATION_DELAY_SECONDS`` [0.2]: real seconds before the background rotation starts.
    ``ROTATION_ATTEMPTS`` [3]: how many times the whole rotation is tried ("If any rotation step
    fails, Secrets Manager retries the entire rotation process multiple times",
    https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda.html; the count
    is not documented). After the last failure ``AWSPENDING`` stays behind and the next
    ``RotateSecret`` answers "A previous rotation isn't complete. That rotation will be reattempted."
    ``ROTATION_RETRY_DELAY_SECONDS`` [0.2]: real seconds between attempts;
    ``ROTATION_RETRY_CLOCK_SECONDS`` [60]: how far the stack clock moves between attempts (AWS
    spaces its retries; the spacing is not documented).
    ``RotateImmediately=False`` runs only ``testSecret``, on an ``AWSPENDING`` version that is then
    removed (RotateSecret's ``RotateImmediately`` in the same API reference).

IAM eventual consistency
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency;
    AWS gives no durations, these are the project's)
    ``IAM_PROPAGATION_SECONDS`` [3.0]: a new (or reset) key is refused with 401 by the OTLP endpoint
    until the stack clock is that far past its creation.
    ``NEW_USER_DELAY_SECONDS`` [2.0]: ``CreateServiceSpecificCredential`` for a user created less than
    that ago (stack clock) answers ``NoSuchEntity``.

Service-specific credential answers
    ``OMIT_EXPIRATION`` [on]: CloudWatch keys come without ``ExpirationDate`` from Create and List
    (documented only for Bedrock and CloudWatch Logs keys:
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_ServiceSpecificCredential.html). IAM still
    expires them: ``Status`` turns ``Expired`` and the OTLP endpoint refuses them.

Throttling and server errors
    ``FAULT_RATE`` [0.02] and ``FAULT_SEED`` [7]: that share of IAM, Secrets Manager, DynamoDB and SNS
    calls (never STS, SQS, KMS, Lambda or moto's own endpoints) answers a throttling error or a 5xx
    before the action runs (see :mod:`tokenwarden.local.faults` for the codes). Secrets Manager's
    documented quotas (e.g. 50 write TPS,
    https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html) and IAM's
    unpublished ones throttle real callers the same way; every SDK retries these codes.
    ``HTTP_429_RATE`` [0.05]: that share of POSTs to the OTLP endpoint's ``/v1/metrics`` and of
    PromQL queries through the stack (``$TOKENWARDEN_STACK_URL/promql/api/v1/query``) answer 429 with
    ``Retry-After`` of ``HTTP_429_RETRY_AFTER_SECONDS`` [1] (OTLP/HTTP:
    https://opentelemetry.io/docs/specs/otlp/#failures-1; CloudWatch PromQL answers 429/422 on its
    limits).

Master switch
    ``GENTLE`` [off]: ``TOKENWARDEN_STACK_GENTLE=1`` turns every behaviour above off (synchronous
    rotation as moto does it, instant IAM, expiry present, no faults, no 429).

The same table, with how to use the stack, is in ``docs/embedded-stack.md``.

Without :func:`install` nothing here is active: moto and the IAM extension behave as before.
:func:`install` applies a :class:`StackBehaviour` in this process (``LocalStack.start`` calls it;
``tokenwarden local up`` reads the variables from its environment); :func:`uninstall` undoes it.
:func:`wait_idle` waits for background rotations; the stack serves it as
``POST /_tokenwarden/settle``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tokenwarden.local import (
    async_rotation,
    dynamodb_pages,
    dynamodb_transactions,
    faults,
    iam_ssc,
    listings,
    secrets_labels,
    secrets_lookup,
    sqs_counts,
)
from tokenwarden.local.async_rotation import BackgroundRotations, RotationRecord
from tokenwarden.local.clock import StackClock
from tokenwarden.local.faults import FaultInjector, HttpThrottle

__all__ = [
    "ENV_PREFIX",
    "StackBehaviour",
    "behaviour",
    "http_throttled",
    "injected_faults",
    "install",
    "rotation_records",
    "setup_calls",
    "simulated_client_waits",
    "uninstall",
    "wait_idle",
]

ENV_PREFIX = "TOKENWARDEN_STACK_"


class StackBehaviour(BaseSettings):
    """The embedded stack's AWS behaviours (see the module docstring for sources and defaults)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    gentle: bool = False

    async_rotation: bool = True
    rotation_delay_seconds: float = Field(default=0.2, ge=0)
    rotation_attempts: int = Field(default=3, ge=1, le=20)
    rotation_retry_delay_seconds: float = Field(default=0.2, ge=0)
    rotation_retry_clock_seconds: float = Field(default=60.0, ge=0)

    iam_propagation_seconds: float = Field(default=3.0, ge=0)
    new_user_delay_seconds: float = Field(default=2.0, ge=0)

    omit_expiration: bool = True

    fault_rate: float = Field(default=0.02, ge=0, le=1)
    fault_seed: int = 7
    http_429_rate: float = Field(default=0.05, ge=0, le=1)
    http_429_retry_after_seconds: int = Field(default=1, ge=0)

    def effective(self) -> StackBehaviour:
        """The behaviour in force: with ``gentle``, every harsh switch off."""
        if not self.gentle:
            return self
        return self.model_copy(
            update={
                "async_rotation": False,
                "iam_propagation_seconds": 0.0,
                "new_user_delay_seconds": 0.0,
                "omit_expiration": False,
                "fault_rate": 0.0,
                "http_429_rate": 0.0,
            }
        )

    def summary(self) -> str:
        """One shell-safe word list of what is on, for the stack's start-up printout."""
        live = self.effective()
        parts = []
        if live.async_rotation:
            parts.append(f"async-rotation:{live.rotation_attempts}x")
        if live.iam_propagation_seconds:
            parts.append(f"iam-propagation:{live.iam_propagation_seconds:g}s")
        if live.new_user_delay_seconds:
            parts.append(f"new-user-delay:{live.new_user_delay_seconds:g}s")
        if live.omit_expiration:
            parts.append("no-expiration-date")
        if live.fault_rate:
            parts.append(f"faults:{live.fault_rate:g}@seed{live.fault_seed}")
        if live.http_429_rate:
            parts.append(f"http-429:{live.http_429_rate:g}")
        return ",".join(parts) or "gentle"

    def describe(self) -> dict[str, Any]:
        """The behaviour in force, as JSON-ready data (``gentle`` says whether the master switch is on)."""
        return {**self.effective().model_dump(), "gentle": self.gentle}


_lock = threading.RLock()
_behaviour: StackBehaviour | None = None
_rotations: BackgroundRotations | None = None
_injector: FaultInjector | None = None
_throttle: HttpThrottle | None = None


def install(behaviour: StackBehaviour, clock: StackClock) -> None:
    """Apply ``behaviour`` in this process (moto patches, IAM consistency), replacing any previous one.

    Idempotent per behaviour; counters and rotation records start from zero. ``clock`` is the stack
    clock the IAM delays are measured on and the rotation retries move forward.
    """
    global _behaviour, _rotations, _injector, _throttle
    live = behaviour.effective()
    with _lock:
        uninstall()
        secrets_labels.install()  # AWS's GetSecretValue default, whatever the switches say
        dynamodb_transactions.install()  # all-or-nothing at the cost of the items, not of the table
        listings.install()  # ListSecrets describes only the page it returns
        sqs_counts.install()  # SQS's approximate counts worked out once a second, not every send
        secrets_lookup.install()  # a secret named by its name found in one lookup, not a walk
        dynamodb_pages.install()  # Scan and Query pages written as JSON, not item by item
        iam_ssc.install(clock)
        iam_ssc.configure(
            key_propagation_seconds=live.iam_propagation_seconds,
            new_user_delay_seconds=live.new_user_delay_seconds,
            omit_expiration_for={iam_ssc.CLOUDWATCH_SERVICE} if live.omit_expiration else set(),
        )
        if live.async_rotation:
            _rotations = BackgroundRotations(
                clock,
                start_delay=live.rotation_delay_seconds,
                attempts=live.rotation_attempts,
                retry_delay=live.rotation_retry_delay_seconds,
                retry_clock_seconds=live.rotation_retry_clock_seconds,
            )
            async_rotation.install(_rotations)
        if live.fault_rate > 0:
            _injector = FaultInjector(live.fault_rate, live.fault_seed)
            faults.install(_injector)
        if live.http_429_rate > 0:
            _throttle = HttpThrottle(live.http_429_rate, live.fault_seed)
        _behaviour = behaviour


def uninstall(timeout: float = 10.0) -> None:
    """Undo :func:`install`: moto's own behaviour, read-after-write IAM, no background threads left.

    Background rotations not started yet are cancelled; running ones get up to ``timeout`` seconds.
    """
    global _behaviour, _rotations, _injector, _throttle
    with _lock:
        async_rotation.uninstall(timeout)
        faults.uninstall()
        iam_ssc.configure()
        _behaviour = _rotations = _injector = _throttle = None


def behaviour() -> StackBehaviour | None:
    """The behaviour installed in this process, if any."""
    return _behaviour


def wait_idle(timeout: float) -> bool:
    """Wait until no background rotation is scheduled or running (True), or ``timeout`` runs out."""
    rotations = _rotations
    return True if rotations is None else rotations.wait_idle(timeout)


def rotation_records() -> list[RotationRecord]:
    """Every background rotation since :func:`install` (secret, token, attempts, outcome), oldest first."""
    rotations = _rotations
    return [] if rotations is None else rotations.records()


def injected_faults() -> dict[str, int]:
    """Faults injected since :func:`install`: per AWS service, and ``otlp``/``promql`` for the 429s."""
    counts: dict[str, int] = {}
    if _injector is not None:
        counts.update(_injector.counts())
    if _throttle is not None:
        counts.update({"otlp": 0, "promql": 0, **_throttle.counts()})
    return counts


def http_throttled(endpoint: str) -> bool:
    """Whether this request to the stack's ``endpoint`` (``otlp`` or ``promql``) gets a 429."""
    throttle = _throttle
    return throttle is not None and throttle.throttle(endpoint)


def retry_after_seconds() -> int:
    current = _behaviour
    return current.http_429_retry_after_seconds if current is not None else 1


@contextmanager
def simulated_client_waits(clock: StackClock) -> Iterator[None]:
    """Inside, botocore's retry back-off (after a throttle or a 5xx) moves ``clock`` instead of
    sleeping: every retry still happens, in the same order; only the waiting is simulated, as
    the rotation function's own waits are on the stack. For a process that drives the stack
    (the demo), never for one that talks to AWS."""
    import botocore.endpoint

    real = botocore.endpoint.time

    class _Waits:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def sleep(self, seconds: float) -> None:
            clock.advance(timedelta(seconds=max(0.0, seconds)))

    botocore.endpoint.time = _Waits()  # type: ignore[assignment]
    try:
        yield
    finally:
        botocore.endpoint.time = real


@contextmanager
def setup_calls() -> Iterator[None]:
    """No injected faults while inside: for the stack's (or a test's) own set-up calls."""
    with faults.suspended():
        yield
