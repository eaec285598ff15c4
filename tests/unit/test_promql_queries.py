"""PromQL query building for the health check: both dialects, the 7-day window limit, time alignment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tokenwarden.domain.promql import (
    DEFAULT_LAST_SAMPLE_STEP,
    LOOKBACK,
    MAX_LAST_SAMPLE_WINDOW,
    Dialect,
    InvalidQueryError,
    PromQLError,
    activity_query,
    check_last_sample_window,
    evaluation_time,
    format_duration,
    last_sample_query,
    metric_selector,
    team_label,
)

SESSIONS = "claude_code.session.count"
TOKENS = "claude_code.token.usage"


def test_team_label_per_dialect() -> None:
    assert team_label(Dialect.CLOUDWATCH) == "@resource.team.id"
    assert team_label(Dialect.PROMETHEUS) == "team.id"
    assert team_label("prometheus") == "team.id"  # type: ignore[arg-type]  # settings pass plain strings


def test_dotted_metric_selectors() -> None:
    assert metric_selector(Dialect.CLOUDWATCH, SESSIONS) == '{"claude_code.session.count"}'
    assert metric_selector(Dialect.PROMETHEUS, SESSIONS) == '{__name__="claude_code.session.count"}'


def test_cloudwatch_activity_query() -> None:
    assert activity_query(Dialect.CLOUDWATCH, SESSIONS, timedelta(hours=1)) == (
        'sum by ("@resource.team.id") (count_over_time({"claude_code.session.count"}[1h]))'
    )


def test_prometheus_activity_query() -> None:
    assert activity_query(Dialect.PROMETHEUS, TOKENS, timedelta(days=7)) == (
        'sum by ("team.id") (count_over_time({__name__="claude_code.token.usage"}[7d]))'
    )


def test_last_sample_queries() -> None:
    assert last_sample_query(Dialect.CLOUDWATCH, SESSIONS, timedelta(hours=6)) == (
        'max by ("@resource.team.id") (max_over_time(timestamp({"claude_code.session.count"})[6h:1m]))'
    )
    assert last_sample_query(Dialect.PROMETHEUS, SESSIONS, timedelta(days=2), step=timedelta(seconds=30)) == (
        'max by ("team.id") (max_over_time(timestamp({__name__="claude_code.session.count"})[2d:30s]))'
    )


@pytest.mark.parametrize("dialect", list(Dialect))
def test_delta_counters_are_never_rated(dialect: Dialect) -> None:
    for query in (
        activity_query(dialect, TOKENS, timedelta(hours=3)),
        last_sample_query(dialect, TOKENS, timedelta(hours=3)),
    ):
        assert "rate(" not in query and "increase(" not in query


@pytest.mark.parametrize("dialect", list(Dialect))
def test_a_range_selector_of_exactly_seven_days_is_allowed(dialect: Dialect) -> None:
    # A range selector reads exactly its range: no lookback.
    assert "[7d]" in activity_query(dialect, SESSIONS, timedelta(days=7))


@pytest.mark.parametrize("dialect", list(Dialect))
def test_the_last_sample_window_leaves_room_for_the_lookback(dialect: Dialect) -> None:
    # The subquery's first instant looks back 5 minutes from the start of the window: CloudWatch
    # counts that in its 7 days, so a 7-day subquery would be refused.
    assert timedelta(minutes=5) == LOOKBACK
    assert timedelta(days=7) == MAX_LAST_SAMPLE_WINDOW + LOOKBACK
    assert "[10075m:1m]" in last_sample_query(dialect, SESSIONS, MAX_LAST_SAMPLE_WINDOW)
    for window in (timedelta(days=7), MAX_LAST_SAMPLE_WINDOW + timedelta(seconds=1)):
        with pytest.raises(InvalidQueryError, match=r"lookback.*at most 167\.91 hours"):
            last_sample_query(dialect, SESSIONS, window)


def test_check_last_sample_window_says_what_the_query_builder_would() -> None:
    check_last_sample_window(timedelta(hours=24))
    check_last_sample_window(MAX_LAST_SAMPLE_WINDOW)
    for window, step, message in (
        (timedelta(days=7), DEFAULT_LAST_SAMPLE_STEP, "7 days"),
        (timedelta(seconds=30), DEFAULT_LAST_SAMPLE_STEP, "longer than the window"),
        (timedelta(hours=1), timedelta(minutes=10), "samples could be missed"),
        (timedelta(seconds=90.5), DEFAULT_LAST_SAMPLE_STEP, "whole number of seconds"),
        (timedelta(0), DEFAULT_LAST_SAMPLE_STEP, "positive"),
    ):
        with pytest.raises(InvalidQueryError, match=message):
            check_last_sample_window(window, step)
        with pytest.raises(InvalidQueryError, match=message):
            last_sample_query(Dialect.CLOUDWATCH, SESSIONS, window, step)


@pytest.mark.parametrize("dialect", list(Dialect))
@pytest.mark.parametrize("window", [timedelta(days=7, seconds=1), timedelta(days=8), timedelta(days=30)])
def test_window_longer_than_seven_days_is_refused(dialect: Dialect, window: timedelta) -> None:
    with pytest.raises(InvalidQueryError, match="7 days"):
        activity_query(dialect, SESSIONS, window)
    with pytest.raises(InvalidQueryError, match="7 days"):
        last_sample_query(dialect, SESSIONS, window)


@pytest.mark.parametrize("window", [timedelta(0), timedelta(seconds=-60), timedelta(milliseconds=1500)])
def test_window_must_be_positive_whole_seconds(window: timedelta) -> None:
    with pytest.raises(InvalidQueryError):
        activity_query(Dialect.PROMETHEUS, SESSIONS, window)


def test_invalid_query_error_is_a_promql_error_and_a_value_error() -> None:
    with pytest.raises(PromQLError):
        activity_query(Dialect.CLOUDWATCH, SESSIONS, timedelta(days=8))
    with pytest.raises(ValueError):
        activity_query(Dialect.CLOUDWATCH, SESSIONS, timedelta(days=8))


@pytest.mark.parametrize(
    "metric",
    ["", "1abc", 'claude"} or vector(1) #', "claude_code session", "a\nb", "x" * 256, "{claude}"],
)
def test_metric_names_that_could_break_out_of_the_selector_are_refused(metric: str) -> None:
    with pytest.raises(InvalidQueryError):
        metric_selector(Dialect.CLOUDWATCH, metric)
    with pytest.raises(InvalidQueryError):
        activity_query(Dialect.PROMETHEUS, metric, timedelta(hours=1))


def test_subquery_step_is_bounded_by_the_lookback_and_the_window() -> None:
    with pytest.raises(InvalidQueryError, match="samples could be missed"):
        last_sample_query(Dialect.PROMETHEUS, SESSIONS, timedelta(hours=1), step=timedelta(minutes=6))
    with pytest.raises(InvalidQueryError, match="longer than the window"):
        last_sample_query(Dialect.PROMETHEUS, SESSIONS, timedelta(minutes=2), step=timedelta(minutes=5))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(days=7), "7d"),
        (timedelta(hours=36), "36h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=3601), "3601s"),
    ],
)
def test_format_duration(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


def test_evaluation_time_rounds_down_to_the_step() -> None:
    now = datetime(2030, 3, 4, 10, 17, 42, 500_000, tzinfo=UTC)
    assert evaluation_time(now) == datetime(2030, 3, 4, 10, 17, tzinfo=UTC)
    assert evaluation_time(now, timedelta(minutes=5)) == datetime(2030, 3, 4, 10, 15, tzinfo=UTC)
    already = datetime(2030, 3, 4, 10, 17, tzinfo=UTC)
    assert evaluation_time(already) == already


def test_evaluation_time_is_utc_whatever_the_input_zone() -> None:
    local = datetime(2030, 3, 4, 11, 17, 42, tzinfo=timezone(timedelta(hours=1)))
    assert evaluation_time(local) == datetime(2030, 3, 4, 10, 17, tzinfo=UTC)


def test_evaluation_time_refuses_naive_datetimes() -> None:
    with pytest.raises(InvalidQueryError, match="timezone-aware"):
        evaluation_time(datetime(2030, 3, 4, 10, 17))  # a naive time is the point
