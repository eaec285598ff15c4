"""Break-glass revoke (and restore), invoked by hand:

    aws lambda invoke --function-name <RevokeFunctionName> --cli-binary-format raw-in-base64-out \
        --payload file://events/revoke.json out.json
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from tokenwarden.domain.registry import SLUG, load_registry
from tokenwarden.observability import logger, metrics, tracer
from tokenwarden.service.breakglass import BreakGlassError
from tokenwarden.settings import Settings, load_settings
from tokenwarden.wiring import build_adapters, build_breakglass, build_clock

SETTINGS: Settings = load_settings()


class RevokeInput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

    action: Literal["revoke", "restore"] = "revoke"
    principal: str = Field(min_length=1, max_length=48)
    reason: str = Field(default="", max_length=500, validate_default=True)
    reissue: bool = False
    requested_by: str = Field(
        min_length=1, max_length=200, description="the person asking (recorded with the Lambda's identity)"
    )

    @field_validator("principal")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.fullmatch(value):
            raise ValueError("not a principal id (lowercase letters, digits and '-')")
        return value

    @field_validator("reason", "requested_by")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if not value.isprintable():
            raise ValueError("must be one line of printable text")
        return value

    @field_validator("reason")
    @classmethod
    def _reason_fits_the_action(cls, value: str, info: ValidationInfo) -> str:
        action = info.data.get("action")
        if action == "revoke" and not value:
            raise ValueError("a revoke needs a reason: it goes into the ledger and the alert")
        if action == "restore" and value:
            raise ValueError("restore takes no reason (it is for revoke)")
        return value

    @field_validator("reissue")
    @classmethod
    def _reissue_fits_the_action(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("action") == "restore":
            raise ValueError("reissue is for revoke; restore re-activates the revoked key")
        return value


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RevokeInput.model_validate(event)
    registry = load_registry(SETTINGS.registry_path)
    principal = registry.get(request.principal)
    if principal is None:
        raise BreakGlassError(f"unknown principal {request.principal!r}: not in {SETTINGS.registry_path}")
    adapters = build_adapters(SETTINGS)
    clock = build_clock(SETTINGS)
    glass = build_breakglass(SETTINGS, adapters, clock)
    actor = f"{request.requested_by} via {adapters.iam.caller()}"
    if request.action == "restore":
        return glass.restore(principal, actor, clock.now()).model_dump(mode="json")
    return glass.revoke(principal, request.reason, actor, request.reissue, clock.now()).model_dump(
        mode="json"
    )
