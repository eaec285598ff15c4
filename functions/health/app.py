"""Health check: hourly (ScheduleV2 with an explicit Input) or invoked by hand."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from tokenwarden.domain.registry import load_registry
from tokenwarden.observability import logger, metrics, tracer
from tokenwarden.settings import Settings, load_settings
from tokenwarden.wiring import build_adapters, build_clock, build_health_checker

SETTINGS: Settings = load_settings()


class HealthInput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    mode: Literal["check", "dry_run"] = "check"


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = HealthInput.model_validate({} if event is None else event)
    registry = load_registry(SETTINGS.registry_path)
    checker = build_health_checker(SETTINGS, build_adapters(SETTINGS))
    report = checker.run(registry, build_clock(SETTINGS).now(), commit=request.mode == "check")
    return report.model_dump(mode="json")
