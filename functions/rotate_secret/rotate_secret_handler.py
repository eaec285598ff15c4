"""Rotation function: Secrets Manager calls it four times per rotation (create/set/test/finish).

It runs rotations of secrets whose rotation is enabled with this very function, and refuses
anything else without changing anything (see RotationEngine.run_step): the ARN it was invoked
as, qualifier aside, must be the secret's RotationLambdaARN. Its errors never carry a token
(RotationEngine.run_invoked).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from tokenwarden.observability import logger, metrics, tracer
from tokenwarden.settings import Settings, load_settings
from tokenwarden.wiring import SystemClock, build_adapters, build_engine

if TYPE_CHECKING:
    from tokenwarden.ports import Clock
    from tokenwarden.service.rotation import RotationEngine

SETTINGS: Settings = load_settings()
# The system clock; the embedded local stack runs this function on its simulated clock instead.
CLOCK: Clock = SystemClock()


@cache
def _engine() -> RotationEngine:
    """Built on the first invocation (not at import, so tests can mock AWS first), then reused."""
    return build_engine(SETTINGS, build_adapters(SETTINGS), CLOCK)


class RotationEvent(BaseModel):
    """What Secrets Manager sends. Fields it may add later (e.g. RotationToken) are ignored."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", strict=True)

    step: Literal["createSecret", "setSecret", "testSecret", "finishSecret"] = Field(alias="Step")
    secret_id: str = Field(alias="SecretId", min_length=1, max_length=2048, pattern=r"^[\x21-\x7e]+$")
    token: str = Field(alias="ClientRequestToken", min_length=32, max_length=64, pattern=r"^[\x21-\x7e]+$")


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    request = RotationEvent.model_validate(event)
    logger.append_keys(step=request.step, version=request.token)
    _engine().run_invoked(request.step, request.secret_id, request.token, context.invoked_function_arn)
    return {"step": request.step, "version": request.token, "status": "done"}
