"""Break-glass restore: undo a principal's latest revoke, once. Invoked by hand:

    aws lambda invoke --function-name <RestoreFunctionName> --cli-binary-format raw-in-base64-out \
        --payload file://events/restore.json out.json

A function of its own (not the revoke's), so that restoring can be granted more narrowly than
revoking. A revoke that issued a replacement (`reissue`) is restored only with `force` and a
`force_reason`. `requested_by` is recorded as a claim; the invoker is in CloudTrail's data event
for this invoke, found by the request id in the ledger record and the notification.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import field_validator, model_validator

from tokenwarden.domain.reason import checked_reason
from tokenwarden.observability import logger, metrics, tracer
from tokenwarden.service.breakglass_request import Actor, BreakGlassRequest
from tokenwarden.settings import Settings, load_settings
from tokenwarden.wiring import SystemClock, build_adapters, build_breakglass, registered_principal

if TYPE_CHECKING:
    from tokenwarden.ports import Clock
    from tokenwarden.service.breakglass import BreakGlass

SETTINGS: Settings = load_settings()
# The system clock; the embedded local stack runs this function on its simulated clock instead.
CLOCK: Clock = SystemClock()


@cache
def _breakglass() -> BreakGlass:
    """Built on the first invocation (not at import, so tests can mock AWS first), then reused by
    every later invocation in this container: clients are made once."""
    return build_breakglass(SETTINGS, build_adapters(SETTINGS), CLOCK)


class RestoreInput(BreakGlassRequest):
    # Older payloads name the action; only "restore" is this function's.
    action: Literal["restore"] = "restore"
    force: bool = False
    force_reason: str = ""

    @field_validator("force_reason")
    @classmethod
    def _force_reason(cls, value: str) -> str:
        """The one rule for a break-glass reason (domain/reason.py); empty: no forced restore."""
        return checked_reason(value, "force_reason") if value.strip() else ""

    @model_validator(mode="after")
    def _force_with_its_reason(self) -> RestoreInput:
        if self.force and not self.force_reason:
            raise ValueError("force needs a force_reason: it goes into the ledger and the alert")
        if self.force_reason and not self.force:
            raise ValueError("force_reason is only for a forced restore (force: true)")
        return self


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RestoreInput.model_validate(event)
    principal = registered_principal(SETTINGS, request.principal)
    actor = Actor.invoke(context.invoked_function_arn, context.aws_request_id, request.requested_by)
    force_reason = request.force_reason if request.force else None
    return _breakglass().restore(principal, actor, CLOCK.now(), force_reason).model_dump(mode="json")
