"""Throttling and server errors for the embedded stack, injected where every moto request passes.

Real AWS answers a share of calls with a throttling error or a 5xx, and SDKs retry them. moto never
does. :func:`install` wraps ``moto.core.responses.BaseResponse.call_action``: the one method that
every service response class runs for an API action, in ``mock_aws`` (through moto's botocore
stubber) and in server mode (through the werkzeug app) alike; DynamoDB's own ``call_action`` ends in
it too. For the services in :data:`FAULTED_SERVICES` a seeded draw decides, *before* the action
runs, whether to answer with an error instead, so a faulted call has changed nothing. STS, SQS, KMS,
Lambda and moto's own ``/moto-api`` endpoints are never faulted.

The errors are the ones each service documents or is known to send, all of which botocore's retry
logic (legacy, standard and adaptive modes) treats as retryable:

- IAM: ``Throttling`` (400, "Rate exceeded"); ``ServiceFailure`` (500, in IAM's API model);
- Secrets Manager: ``ThrottlingException`` (400, "Rate exceeded"); ``InternalServiceError`` (500);
- DynamoDB: ``ThrottlingException`` and ``ProvisionedThroughputExceededException`` (400);
  ``InternalServerError`` (500);
- SNS: ``ThrottlingException`` (400, "Rate exceeded": what SNS sends according to
  https://repost.aws/knowledge-center/sns-throttling-exception-errors; the model's ``Throttled``/429
  is left out because botocore's standard and adaptive modes do not retry that code);
- any of them: ``ServiceUnavailable`` (503).

Four faults in five are throttling, one is a server error. Counters per service say how many faults
were injected; :class:`HttpThrottle` does the same for the stack's own HTTP endpoints (OTLP, PromQL).
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final
from xml.sax.saxutils import escape

from moto.core.common_types import TYPE_RESPONSE
from moto.core.responses import BaseResponse
from moto.core.utils import get_service_model

__all__ = [
    "FAULTED_SERVICES",
    "Fault",
    "FaultInjector",
    "HttpThrottle",
    "install",
    "installed_injector",
    "suspended",
    "uninstall",
]

FAULTED_SERVICES: Final = frozenset({"iam", "secretsmanager", "dynamodb", "sns"})
SERVER_ERROR_SHARE: Final = 0.2
_PATCH_MARK: Final = "__tokenwarden_faults__"


@dataclass(frozen=True)
class Fault:
    """One error answer: the service's error code, HTTP status and message."""

    code: str
    status: int
    message: str


_UNAVAILABLE: Final = Fault("ServiceUnavailable", 503, "Service is unavailable. Please try again later.")
_RATE_EXCEEDED: Final = "Rate exceeded"

THROTTLES: Final[dict[str, tuple[Fault, ...]]] = {
    "iam": (Fault("Throttling", 400, _RATE_EXCEEDED),),
    "secretsmanager": (Fault("ThrottlingException", 400, _RATE_EXCEEDED),),
    "dynamodb": (
        Fault("ThrottlingException", 400, "Rate of requests exceeds the allowed throughput."),
        Fault(
            "ProvisionedThroughputExceededException",
            400,
            "The level of configured provisioned throughput for the table was exceeded. "
            "Consider increasing your provisioning level with the UpdateTable API.",
        ),
    ),
    "sns": (Fault("ThrottlingException", 400, _RATE_EXCEEDED),),
}
SERVER_ERRORS: Final[dict[str, tuple[Fault, ...]]] = {
    "iam": (
        Fault("ServiceFailure", 500, "The request processing has failed because of an unknown error."),
        _UNAVAILABLE,
    ),
    "secretsmanager": (
        Fault("InternalServiceError", 500, "An error occurred on the server side."),
        _UNAVAILABLE,
    ),
    "dynamodb": (Fault("InternalServerError", 500, "Internal server error"), _UNAVAILABLE),
    "sns": (Fault("InternalError", 500, "Internal server error"), _UNAVAILABLE),
}


class FaultInjector:
    """Decides, with a seeded generator, which API calls fail; counts what it injected.

    ``rate`` may be changed at any time (a burst of throttling, then calm): every draw reads it.
    """

    def __init__(self, rate: float, seed: int, services: frozenset[str] = FAULTED_SERVICES) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("the fault rate is a share between 0 and 1")
        unknown = services - FAULTED_SERVICES
        if unknown:
            raise ValueError(f"no faults are defined for {sorted(unknown)}")
        self.rate = rate
        self.services = services
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._suspended = 0

    def draw(self, service: str) -> Fault | None:
        """The error to answer this call of ``service`` with, or None to let it run."""
        if service not in self.services or self.rate <= 0.0:
            return None
        with self._lock:
            if self._suspended or self._random.random() >= self.rate:
                return None
            kinds = SERVER_ERRORS if self._random.random() < SERVER_ERROR_SHARE else THROTTLES
            fault = self._random.choice(kinds[service])
            self._counts[service] += 1
            return fault

    def counts(self) -> dict[str, int]:
        """Faults injected so far, per service (every faulted service listed, zero included)."""
        with self._lock:
            return {service: self._counts[service] for service in sorted(self.services)}

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """No faults while inside (for the stack's own set-up calls)."""
        with self._lock:
            self._suspended += 1
        try:
            yield
        finally:
            with self._lock:
                self._suspended -= 1


class HttpThrottle:
    """Answers a seeded share of requests to an HTTP endpoint with 429; counts per endpoint."""

    def __init__(self, rate: float, seed: int) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("the 429 rate is a share between 0 and 1")
        self.rate = rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def throttle(self, endpoint: str) -> bool:
        if self.rate <= 0.0:
            return False
        with self._lock:
            if self._random.random() >= self.rate:
                return False
            self._counts[endpoint] += 1
            return True

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def _error_response(response: BaseResponse, fault: Fault) -> TYPE_RESPONSE:
    """The fault on the wire, in the service's protocol (JSON for Secrets Manager and DynamoDB,
    query XML for IAM and SNS), as botocore parses it."""
    model = get_service_model(response.boto3_service_name)
    request_id = str(uuid.uuid4())
    headers: dict[str, str] = {"x-amzn-RequestId": request_id}
    if model.protocol == "json":
        version = model.metadata.get("jsonVersion", "1.1")
        headers["Content-Type"] = f"application/x-amz-json-{version}"
        headers["x-amzn-ErrorType"] = fault.code
        body = json.dumps({"__type": fault.code, "message": fault.message})
    else:
        namespace = model.metadata.get("xmlNamespace", "")
        side = "Receiver" if fault.status >= 500 else "Sender"
        headers["Content-Type"] = "text/xml"
        body = (
            f'<ErrorResponse xmlns="{escape(namespace)}"><Error><Type>{side}</Type>'
            f"<Code>{escape(fault.code)}</Code><Message>{escape(fault.message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    return fault.status, headers, body


_lock = threading.Lock()
_injector: FaultInjector | None = None
_original_call_action: Callable[[BaseResponse], TYPE_RESPONSE] | None = None


def _call_action(self: BaseResponse) -> TYPE_RESPONSE:
    injector = _injector
    fault = injector.draw(str(self.service_name)) if injector is not None else None
    if fault is not None:
        return _error_response(self, fault)
    assert _original_call_action is not None
    return _original_call_action(self)


setattr(_call_action, _PATCH_MARK, True)


def install(injector: FaultInjector) -> None:
    """Route every moto action through ``injector`` (replaces a previously installed one)."""
    global _injector, _original_call_action
    with _lock:
        current: Any = BaseResponse.call_action
        if not getattr(current, _PATCH_MARK, False):
            _original_call_action = current
            BaseResponse.call_action = _call_action  # type: ignore[method-assign]
        _injector = injector


def uninstall() -> None:
    """Give moto its own ``call_action`` back; no faults from here on."""
    global _injector
    with _lock:
        _injector = None
        # The original stays known: a request that already looked up the wrapper still runs it.
        if _original_call_action is not None:
            BaseResponse.call_action = _original_call_action  # type: ignore[method-assign,assignment]


def installed_injector() -> FaultInjector | None:
    return _injector


@contextmanager
def suspended() -> Iterator[None]:
    """No faults while inside, whatever injector is installed (the stack's own set-up calls)."""
    injector = _injector
    if injector is None:
        yield
        return
    with injector.suspended():
        yield
