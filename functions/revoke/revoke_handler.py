"""Break-glass revoke, invoked by hand:

    aws lambda invoke --function-name <RevokeFunctionName> --cli-binary-format raw-in-base64-out \
        --payload file://events/revoke.json out.json

Revoke only: restoring is RestoreFunction's (functions/restore), so that invoking this function
can be granted widely and restoring narrowly. `requested_by` is recorded as a claim; the invoker
is in CloudTrail's data event for this invoke, found by the request id in the ledger record.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import field_validator

from tokenwarden.domain.reason import Reason
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


class RevokeInput(BreakGlassRequest):
    # Older payloads name the action. Restoring is the restore function's: refused here, so that
    # whoever may invoke this function cannot restore through it.
    action: Literal["revoke", "restore"] = "revoke"
    reason: Reason
    reissue: bool = False

    @field_validator("action")
    @classmethod
    def _revoke_only(cls, value: str) -> str:
        if value != "revoke":
            raise ValueError(
                "this function only revokes: invoke the restore function (RestoreFunction) "
                "with events/restore.json to restore"
            )
        return value


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RevokeInput.model_validate(event)
    principal = registered_principal(SETTINGS, request.principal)
    actor = Actor.invoke(context.invoked_function_arn, context.aws_request_id, request.requested_by)
    return (
        _breakglass()
        .revoke(principal, request.reason, actor, request.reissue, CLOCK.now())
        .model_dump(mode="json")
    )
