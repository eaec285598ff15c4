"""TokenWarden's own errors for what AWS answers, so that the services never see botocore.

The adapters translate every botocore exception at the boundary: AWS's refusal
(`ClientError`) becomes an `AwsError` carrying the operation, AWS's error code and AWS's message,
a failure to reach AWS at all (no credentials, no region, no connection) becomes `AwsUnavailable`.
Neither ever carries a request's parameters: botocore quotes them in some of its errors, and a
request may hold a token.
"""

from __future__ import annotations

# AWS's codes for "slow down", across the services TokenWarden calls.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)

ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


class AwsError(Exception):
    """AWS answered a call with an error: `operation` (e.g. "UpdateSecret"), AWS's `code` and
    `message`. The message is AWS's own text about the request, never the request itself."""

    def __init__(self, operation: str, code: str, message: str = "", http_status: int | None = None) -> None:
        super().__init__(f"{operation}: {code}: {message}".rstrip(": "))
        self.operation = operation
        self.code = code
        self.message = message
        self.http_status = http_status

    @property
    def throttled(self) -> bool:
        return self.code in THROTTLING_CODES

    @property
    def access_denied(self) -> bool:
        return self.code in ACCESS_DENIED_CODES


class AwsUnavailable(Exception):
    """AWS could not be asked at all: `reason` is one of "no-credentials", "no-region",
    "unreachable" (with the `endpoint` that did not answer) or "client" (another client-side
    failure, named by `kind`, the botocore exception's type)."""

    def __init__(self, reason: str, kind: str, endpoint: str | None = None) -> None:
        super().__init__(f"{reason} ({kind})" + (f" at {endpoint}" if endpoint else ""))
        self.reason = reason
        self.kind = kind
        self.endpoint = endpoint
