"""A stand-in for the Lambda context object, for invoking handlers in-process.

Used by the local stack's rotation router, by the tests and by ``make invoke`` (SAM's ``local invoke``
needs a container runtime). It carries the attributes Powertools and the handlers read.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

__all__ = ["FakeContext"]

_DEFAULT_REGION = "us-east-1"
_DEFAULT_ACCOUNT = "123456789012"


@dataclass
class FakeContext:
    """Attributes of the AWS Lambda Python runtime's context, with local defaults."""

    function_name: str = "tokenwarden-local"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    timeout_seconds: float = 300.0
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.invoked_function_arn:
            self.invoked_function_arn = (
                f"arn:aws:lambda:{_DEFAULT_REGION}:{_DEFAULT_ACCOUNT}:function:{self.function_name}"
            )
        if not self.log_group_name:
            self.log_group_name = f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the simulated timeout (never negative)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))
