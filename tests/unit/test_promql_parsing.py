"""Reading PromQL answers: CloudWatch-shaped fixtures (grouped, truncated, error) and malformed shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tokenwarden.domain.promql import (
    Dialect,
    PromQLError,
    PromQLQueryError,
    PromQLResponseError,
    TruncatedResultError,
    parse_vector,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "promql"
FIXTURE_TIME = datetime.fromtimestamp(1795823100, tz=UTC)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def vector(*items: object, warnings: list[str] | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"status": "success", "data": {"resultType": "vector", "result": list(items)}}
    if warnings is not None:
        payload["warnings"] = warnings
    return payload


# --- Fixtures shaped like CloudWatch's answers --------------------------------------------------------


@pytest.mark.parametrize("dialect", [Dialect.CLOUDWATCH, None])
def test_grouped_vector_maps_teams_from_resource_labels(dialect: Dialect | None) -> None:
    result = parse_vector(fixture("cloudwatch-promql-vector.json"), dialect)

    assert not result.truncated
    assert result.values_by_team() == {"platform-eng": 17.0, "data-science": 3.0}
    assert {sample.timestamp for sample in result.samples} == {FIXTURE_TIME}
    assert result.samples[0].labels == {"@resource.team.id": "platform-eng"}
    assert result.unattributed is None


def test_wrong_dialect_is_detected() -> None:
    # CloudWatch's labels read with the prometheus dialect: no series carries "team.id".
    with pytest.raises(PromQLResponseError, match="is the dialect right"):
        parse_vector(fixture("cloudwatch-promql-vector.json"), Dialect.PROMETHEUS)


def test_truncated_answer_is_marked_and_never_used_as_complete() -> None:
    result = parse_vector(fixture("cloudwatch-promql-truncated.json"), Dialect.CLOUDWATCH)

    assert result.truncated
    assert "truncated" in result.warnings[0]
    with pytest.raises(TruncatedResultError, match="truncated") as caught:
        result.values_by_team()
    assert caught.value.warnings == result.warnings
    with pytest.raises(TruncatedResultError):
        result.times_by_team()
    assert result.values_by_team(allow_partial=True) == {"team-000": 1.0}


def test_error_answer_raises_with_type_and_message() -> None:
    with pytest.raises(PromQLQueryError) as caught:
        parse_vector(fixture("cloudwatch-promql-error.json"), Dialect.CLOUDWATCH)

    assert caught.value.error_type == "bad_data"
    assert caught.value.error == "query must select a metric by name"
    assert "bad_data" in str(caught.value) and "select a metric" in str(caught.value)
    assert isinstance(caught.value, PromQLError)


# --- Answers from the prometheus dialect (VictoriaMetrics, Amazon Managed Prometheus) -----------------


def test_prometheus_labels_and_last_sample_times() -> None:
    payload = vector(
        {"metric": {"team.id": "alpha"}, "value": [1795830240, "1795830173.051"]},
        {"metric": {"team.id": "beta"}, "value": [1795830240, "1795830100"]},
    )
    result = parse_vector(payload, Dialect.PROMETHEUS)

    assert result.times_by_team() == {
        "alpha": datetime(2026, 11, 28, 1, 42, 53, 51_000, tzinfo=UTC),
        "beta": datetime(2026, 11, 28, 1, 41, 40, tzinfo=UTC),
    }
    assert result.samples[0].timestamp == datetime.fromtimestamp(1795830240, tz=UTC)


def test_series_without_a_team_label_are_kept_apart() -> None:
    payload = vector(
        {"metric": {"team.id": "alpha"}, "value": [1, "4"]},
        {"metric": {}, "value": [1, "2"]},
    )
    result = parse_vector(payload, Dialect.PROMETHEUS)

    assert result.values_by_team() == {"alpha": 4.0}
    assert result.unattributed == 2.0


def test_empty_answer_is_complete_and_empty() -> None:
    result = parse_vector(vector(), Dialect.PROMETHEUS)
    assert result.samples == ()
    assert result.values_by_team() == {}
    assert not result.truncated


def test_empty_warnings_list_is_not_truncation() -> None:
    assert not parse_vector(vector(warnings=[]), Dialect.PROMETHEUS).truncated


def test_special_float_values() -> None:
    payload = vector({"metric": {"team.id": "alpha"}, "value": [1, "+Inf"]})
    result = parse_vector(payload, Dialect.PROMETHEUS)
    assert result.values_by_team() == {"alpha": float("inf")}
    with pytest.raises(PromQLResponseError, match="no usable timestamp"):
        result.times_by_team()


def test_error_answer_without_details_still_raises_typed_error() -> None:
    with pytest.raises(PromQLQueryError) as caught:
        parse_vector({"status": "error"})
    assert caught.value.error_type == "unknown"


# --- Malformed shapes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ([], "expected a JSON object"),
        ("success", "expected a JSON object"),
        ({}, "status is None"),
        ({"status": "ok", "data": {}}, "status is 'ok'"),
        ({"status": "success"}, "data is missing"),
        ({"status": "success", "data": []}, "data is missing"),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "resultType is 'matrix'"),
        (
            {"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}},
            "resultType is 'scalar'",
        ),
        ({"status": "success", "data": {"resultType": "vector"}}, "not a list"),
        ({"status": "success", "data": {"resultType": "vector", "result": {}}}, "not a list"),
        (
            {"status": "success", "warnings": "cut", "data": {"resultType": "vector", "result": []}},
            "warnings",
        ),
        (vector("nope"), r"result\[0\] is not an object"),
        (vector({"metric": [], "value": [1, "1"]}), "metric is not an object"),
        (vector({"metric": {"team.id": 7}, "value": [1, "1"]}), "label 'team.id'"),
        (vector({"metric": {"team.id": "a"}}), "not a \\[time, value\\] pair"),
        (vector({"metric": {"team.id": "a"}, "value": [1]}), "not a \\[time, value\\] pair"),
        (vector({"metric": {"team.id": "a"}, "value": "1"}), "not a \\[time, value\\] pair"),
        (vector({"metric": {"team.id": "a"}, "value": [1, "many"]}), "'many' is not a number"),
        (vector({"metric": {"team.id": "a"}, "value": [1, None]}), "NoneType, not a number"),
        (vector({"metric": {"team.id": "a"}, "value": [True, "1"]}), "bool, not a number"),
        (vector({"metric": {"team.id": "a"}, "value": ["NaN", "1"]}), "timestamp nan"),
    ],
)
def test_malformed_answers_raise_response_errors(payload: Any, match: str) -> None:
    with pytest.raises(PromQLResponseError, match=match):
        parse_vector(payload, Dialect.PROMETHEUS)


def test_ungrouped_answer_is_refused() -> None:
    payload = vector(
        {"metric": {"team.id": "a", "user.id": "u1"}, "value": [1, "1"]},
        {"metric": {"team.id": "a", "user.id": "u2"}, "value": [1, "1"]},
    )
    with pytest.raises(PromQLResponseError, match="not grouped by the team label"):
        parse_vector(payload, Dialect.PROMETHEUS)
