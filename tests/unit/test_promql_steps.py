"""Reading a PromQL answer one step at a time: the envelope, its warnings, the vector, one series."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tokenwarden.domain.promql import (
    Dialect,
    PromQLQueryError,
    PromQLResponseError,
    answer_data,
    answer_warnings,
    check_one_series_per_team,
    query_error,
    series_labels,
    series_sample,
    vector_items,
)

WHERE = "data.result[0]"


def series(value: Any = (1700000000, "3"), **labels: Any) -> dict[str, Any]:
    return {"metric": labels, "value": list(value)}


# -- the envelope ------------------------------------------------------------------------------------


def test_a_success_answer_gives_its_data_and_warnings() -> None:
    data = {"resultType": "vector", "result": []}
    assert answer_data({"status": "success", "data": data}) == (data, ())
    assert answer_data({"status": "success", "data": data, "warnings": ["cut"]}) == (data, ("cut",))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "expected a JSON object, got list"),
        ({"status": "partial"}, "status is 'partial', not 'success' or 'error'"),
        ({"status": "success"}, "data is missing or not an object"),
        ({"status": "success", "data": [], "warnings": "cut"}, "warnings is not a list"),  # warnings first
    ],
)
def test_anything_but_a_success_or_error_envelope_is_malformed(payload: object, message: str) -> None:
    with pytest.raises(PromQLResponseError, match=message):
        answer_data(payload)


def test_an_error_answer_is_the_servers_refusal() -> None:
    with pytest.raises(PromQLQueryError) as caught:
        answer_data({"status": "error", "errorType": "timeout", "error": "query timed out"})
    assert (caught.value.error_type, caught.value.error) == ("timeout", "query timed out")


def test_a_refusal_missing_its_type_or_message_says_so() -> None:
    refusal = query_error({"status": "error", "errorType": "", "error": 42})
    assert (refusal.error_type, refusal.error) == ("unknown", "no error message in the answer")


def test_warnings_are_clipped_and_odd_ones_shown_by_type() -> None:
    long = "x" * 1200
    clipped, shown = answer_warnings({"warnings": [long, {"a": 1}]})
    assert clipped == f"{'x' * 1000}… (1200 characters)"
    assert shown == "a dict"
    assert answer_warnings({"warnings": None}) == ()


# -- the vector --------------------------------------------------------------------------------------


def test_only_a_vector_of_series_is_read() -> None:
    assert vector_items({"resultType": "vector", "result": [{"x": 1}]}) == [{"x": 1}]
    with pytest.raises(PromQLResponseError, match="resultType is 'matrix'"):
        vector_items({"resultType": "matrix", "result": []})
    with pytest.raises(PromQLResponseError, match=r"data\.result is not a list"):
        vector_items({"resultType": "vector", "result": {}})


# -- one series --------------------------------------------------------------------------------------


def test_a_series_without_metric_has_no_labels() -> None:
    assert series_labels({}, WHERE) == {}
    with pytest.raises(PromQLResponseError, match=r"data\.result\[0\]\.metric is not an object"):
        series_labels({"metric": []}, WHERE)
    with pytest.raises(PromQLResponseError, match=r"label 'team\.id' in data\.result"):
        series_labels({"metric": {"team.id": 7}}, WHERE)


@pytest.mark.parametrize(
    ("dialect", "team"),
    [(Dialect.CLOUDWATCH, "cw"), (Dialect.PROMETHEUS, "prom"), (None, "cw")],
)
def test_a_series_is_a_teams_sample_by_the_dialects_label(dialect: Dialect | None, team: str) -> None:
    item = series(**{"@resource.team.id": "cw", "team.id": "prom"})
    sample = series_sample(item, WHERE, dialect)
    assert (sample.team, sample.value) == (team, 3.0)
    assert sample.timestamp == datetime.fromtimestamp(1700000000, tz=UTC)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("x", r"data\.result\[0\] is not an object"),
        ({"metric": {}, "value": [1]}, r"\.value is not a \[time, value\] pair"),
        ({"metric": {}, "value": [-1, "1"]}, "has timestamp -1, not a Unix time between 1970 and 3000"),
        ({"metric": {}, "value": [1, "one"]}, r"data\.result\[0\]\.value\[1\] 'one' is not a number"),
    ],
)
def test_a_malformed_series_is_refused_where_it_is(item: object, message: str) -> None:
    with pytest.raises(PromQLResponseError, match=message):
        series_sample(item, WHERE, None)


def test_a_second_series_for_a_team_is_refused_before_its_value_is_read() -> None:
    bad_value = series(value=(1700000000, "not a number"), **{"team.id": "alpha"})
    with pytest.raises(PromQLResponseError, match="two series for team 'alpha'"):
        series_sample(bad_value, WHERE, Dialect.PROMETHEUS, seen={"alpha"})


def test_one_series_per_team_and_at_most_one_without() -> None:
    check_one_series_per_team("beta", {"alpha", None}, None)
    with pytest.raises(PromQLResponseError, match="two series for team 'alpha'"):
        check_one_series_per_team("alpha", {"alpha"}, None)
    with pytest.raises(PromQLResponseError, match=r"several series of the PromQL answer lack 'team\.id'"):
        check_one_series_per_team(None, {None}, Dialect.PROMETHEUS)
    with pytest.raises(PromQLResponseError, match="lack 'a team label'"):
        check_one_series_per_team(None, {None}, None)
