"""The health checker refuses, when it is built, settings that no PromQL query could run with.

CloudWatch reads at most 7 days for one query, lookback included: the last-sample subquery reads its
window plus the 5-minute lookback, so a 168-hour window (which the settings alone accept) must be
refused at start with the setting's name, not on every hourly run with a 422.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from tests.fakes import FakePromQL
from tokenwarden.domain.naming import Naming
from tokenwarden.domain.promql import LOOKBACK, MAX_RANGE, Dialect, PromQLError
from tokenwarden.service.health import HealthChecker, HealthSettingsError
from tokenwarden.settings import Settings
from tokenwarden.wiring import build_health_checker

NOW = datetime(2030, 3, 4, 10, 17, 42, tzinfo=UTC)
_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}


def checker(
    window: timedelta, metric_names: tuple[str, ...] = ("claude_code.session.count",)
) -> tuple[HealthChecker, FakePromQL]:
    querier = FakePromQL()  # an empty vector for every query
    unused: Any = None  # the store, ledger, IAM and notifier are not reached by these tests
    built = HealthChecker(
        querier=querier,
        dialect=Dialect.CLOUDWATCH,
        store=unused,
        ledger=unused,
        iam=unused,
        notifier=unused,
        naming=Naming(user_prefix="tw-", user_path="/tokenwarden/", secret_prefix="tokenwarden/"),
        metric_names=metric_names,
        window=window,
    )
    return built, querier


def read_span(query: str) -> timedelta:
    """How far back a last-sample query reads: its subquery range plus the lookback of its first instant."""
    span = re.search(r"\[(\d+)([smhd]):\d+[smhd]\]", query)
    assert span is not None, query
    (number, unit) = span.groups()
    return timedelta(seconds=int(number) * _UNITS[unit]) + LOOKBACK


@pytest.mark.parametrize("hours", [1, 24, 72, 167, 167.91])
def test_every_query_of_an_accepted_window_reads_at_most_seven_days(hours: float) -> None:
    built, querier = checker(timedelta(hours=hours), ("claude_code.session.count", "claude_code.token.usage"))

    built.last_samples(NOW)

    assert len(querier.queries) == 2
    for query, _ in querier.queries:
        assert read_span(query) <= MAX_RANGE, query


@pytest.mark.parametrize("hours", [168, 167.92])
def test_a_window_that_leaves_no_room_for_the_lookback_is_refused_when_built(hours: float) -> None:
    with pytest.raises(HealthSettingsError) as caught:
        checker(timedelta(hours=hours))
    message = str(caught.value)
    assert message.startswith(f"TOKENWARDEN_HEALTH_WINDOW_HOURS={hours:g} cannot be used")
    assert "lookback" in message and "at most 167.91 hours" in message


@pytest.mark.parametrize(
    ("window", "reason"),
    [(timedelta(seconds=30), "longer than the window"), (timedelta(hours=0.0001), "whole number of seconds")],
)
def test_a_window_no_query_can_use_is_refused_when_built(window: timedelta, reason: str) -> None:
    with pytest.raises(HealthSettingsError, match=f"TOKENWARDEN_HEALTH_WINDOW_HOURS=.*{reason}"):
        checker(window)


def test_metric_names_are_checked_when_built() -> None:
    with pytest.raises(
        HealthSettingsError, match=r"TOKENWARDEN_HEALTH_METRICS cannot be used: .*not a valid"
    ):
        checker(timedelta(hours=24), ("claude_code.session.count", 'x"} or vector(1)'))
    with pytest.raises(HealthSettingsError, match="TOKENWARDEN_HEALTH_METRICS names no metric"):
        checker(timedelta(hours=24), ())


def test_the_settings_error_is_a_promql_error_the_cli_reports_in_one_line() -> None:
    with pytest.raises(PromQLError):
        checker(timedelta(hours=168))


def test_the_settings_refuse_a_window_without_room_for_the_lookback() -> None:
    with pytest.raises(ValidationError, match="health_window_hours"):
        Settings(health_window_hours=168, promql_dialect="cloudwatch")


def test_the_composition_root_refuses_a_window_no_query_can_use() -> None:
    # Settings built without validation, as a caller could: the checker still refuses it when built.
    settings = Settings.model_construct(**{**Settings().model_dump(), "health_window_hours": 168.0})
    adapters: Any = SimpleNamespace(ledger=None, iam=None, notifier=None)
    with pytest.raises(HealthSettingsError, match="TOKENWARDEN_HEALTH_WINDOW_HOURS=168"):
        build_health_checker(settings, adapters, boto3.session.Session(region_name="us-east-1"))
