"""The health check's settings that no query could run with: refused when the checker is built,
and by the health function at cold start, before it loads the checker and makes any AWS client."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from tokenwarden.domain.promql import (
    DEFAULT_LAST_SAMPLE_STEP,
    Dialect,
    InvalidQueryError,
    check_last_sample_window,
    last_sample_query,
)

WINDOW_SETTING = "TOKENWARDEN_HEALTH_WINDOW_HOURS"
METRICS_SETTING = "TOKENWARDEN_HEALTH_METRICS"


class HealthSettingsError(InvalidQueryError):
    """A health-check setting that no query could run with. The message names the setting."""


def check_health_settings(dialect: Dialect, metric_names: Sequence[str], window: timedelta) -> None:
    """Raise :class:`HealthSettingsError` naming the setting when the window or a metric could never
    be queried; pure (no AWS client)."""
    try:
        check_last_sample_window(window, DEFAULT_LAST_SAMPLE_STEP)
    except InvalidQueryError as exc:
        hours = window / timedelta(hours=1)
        raise HealthSettingsError(f"{WINDOW_SETTING}={hours:g} cannot be used: {exc}") from None
    if not metric_names:
        raise HealthSettingsError(f"{METRICS_SETTING} names no metric: name at least one, comma-separated")
    for metric in metric_names:
        try:
            last_sample_query(dialect, metric, window)
        except InvalidQueryError as exc:
            raise HealthSettingsError(f"{METRICS_SETTING} cannot be used: {exc}") from None
