"""Health check: every 15 minutes (ScheduleV2 with an explicit Input) or invoked by hand.

A window or metric list no query could run with stops the function at cold start (a failed
initialisation, named in the log), not each scheduled run once it has started.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from tokenwarden.domain.promql import Dialect
from tokenwarden.observability import logger, metrics, tracer
from tokenwarden.service.health_settings import check_health_settings
from tokenwarden.settings import Settings, load_settings
from tokenwarden.wiring import SystemClock, build_adapters, build_health_checker

if TYPE_CHECKING:
    from tokenwarden.ports import Clock
    from tokenwarden.service.health import HealthChecker


SETTINGS: Settings = load_settings()
# The system clock; the embedded local stack runs this function on its simulated clock instead.
CLOCK: Clock = SystemClock()
# The settings HealthChecker would refuse stop the function here, before any AWS client exists.
check_health_settings(
    Dialect(SETTINGS.promql_dialect), SETTINGS.metric_names, timedelta(hours=SETTINGS.health_window_hours)
)


@cache
def _checker() -> HealthChecker:
    """Built on the first invocation (not at import, so tests can mock AWS first), then reused."""
    return build_health_checker(SETTINGS, build_adapters(SETTINGS), clock=CLOCK)


class HealthInput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    mode: Literal["check", "dry_run"] = "check"


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from tokenwarden.domain.registry import load_registry

    request = HealthInput.model_validate({} if event is None else event)
    registry = load_registry(SETTINGS.registry_path)
    report = _checker().run(registry, CLOCK.now(), commit=request.mode == "check")
    return report.model_dump(mode="json")
