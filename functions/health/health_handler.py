"""Health check: every 15 minutes (ScheduleV2 with an explicit Input) or invoked by hand.

A window or metric list no query could run with stops the function at cold start (a failed
initialisation, named in the log), not each scheduled run once it has started.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from tokenwarden.domain.promql import Dialect, InvalidQueryError, check_last_sample_window, last_sample_query
from tokenwarden.domain.registry import load_registry
from tokenwarden.observability import logger, metrics, tracer
from tokenwarden.ports import Clock
from tokenwarden.service.health import METRICS_SETTING, WINDOW_SETTING, HealthChecker, HealthSettingsError
from tokenwarden.settings import Settings, load_settings
from tokenwarden.wiring import SystemClock, build_adapters, build_health_checker


def check_health_settings(settings: Settings) -> None:
    """Raise :class:`HealthSettingsError` for the settings :class:`HealthChecker` would refuse; pure
    (no AWS client), so it runs at import."""
    window = timedelta(hours=settings.health_window_hours)
    try:
        check_last_sample_window(window)
    except InvalidQueryError as exc:
        raise HealthSettingsError(
            f"{WINDOW_SETTING}={settings.health_window_hours:g} cannot be used: {exc}"
        ) from None
    if not settings.metric_names:
        raise HealthSettingsError(f"{METRICS_SETTING} names no metric: name at least one, comma-separated")
    for metric in settings.metric_names:
        try:
            last_sample_query(Dialect(settings.promql_dialect), metric, window)
        except InvalidQueryError as exc:
            raise HealthSettingsError(f"{METRICS_SETTING} cannot be used: {exc}") from None


SETTINGS: Settings = load_settings()
# The system clock; the embedded local stack runs this function on its simulated clock instead.
CLOCK: Clock = SystemClock()
check_health_settings(SETTINGS)


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
    request = HealthInput.model_validate({} if event is None else event)
    registry = load_registry(SETTINGS.registry_path)
    report = _checker().run(registry, CLOCK.now(), commit=request.mode == "check")
    return report.model_dump(mode="json")
