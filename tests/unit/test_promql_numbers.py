"""How an answer's numbers and times are read: as a Prometheus server writes them, within the range a
time of telemetry can have, and every refusal a PromQLResponseError that quotes at most a short prefix
of what the server sent."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from tokenwarden.adapters.promql import HttpRequest, HttpResponse, PromQLClient
from tokenwarden.domain.promql import (
    LATEST_TIME,
    Dialect,
    PromQLQueryError,
    PromQLResponseError,
    QueryResult,
    TruncatedResultError,
    parse_vector,
)


def vector(*samples: object, **extra: object) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": list(samples)}, **extra}


def sample(value: object, stamp: object = 1_795_823_100, team: object = "alpha") -> dict[str, Any]:
    return {"metric": {"team.id": team}, "value": [stamp, value]}


def parse(payload: object) -> QueryResult:
    return parse_vector(payload, Dialect.PROMETHEUS)


def client(status: int, body: bytes) -> PromQLClient:
    def transport(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status, body, {})

    return PromQLClient.unsigned(
        "http://127.0.0.1:9", transport=transport, max_attempts=1, sleep=lambda _: None
    )


# -- sample values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("17", 17.0),
        ("-3", -3.0),
        ("+3", 3.0),
        ("1795823100.5", 1795823100.5),
        ("0.25", 0.25),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e+06", 1e6),
        ("2.5E-3", 0.0025),
        ("+Inf", math.inf),
        ("-Inf", -math.inf),
        ("Inf", math.inf),
        ("1" + "0" * 300, 1e300),  # FormatFloat('f', -1) writes large values out in full
    ],
)
def test_a_value_as_a_prometheus_server_writes_it_is_read(text: str, expected: float) -> None:
    assert parse(vector(sample(text))).values_by_team() == {"alpha": expected}


def test_nan_is_a_value() -> None:
    assert math.isnan(parse(vector(sample("NaN"))).values_by_team()["alpha"])


@pytest.mark.parametrize(
    "text",
    [
        "1_000",
        " 12",
        "12 ",
        "12\n",
        "\u0661\u0662\u0663",  # Arabic-Indic digits, which float() reads
        "\uff11\uff12",  # fullwidth digits
        "0x10",
        "1e",
        "e5",
        ".",
        "+-1",
        "",
        "Inf ",
        "nan(1)",
    ],
)
def test_a_value_float_would_read_but_prometheus_never_writes_is_refused(text: str) -> None:
    with pytest.raises(PromQLResponseError, match="is not a number"):
        parse(vector(sample(text)))


@pytest.mark.parametrize("text", ["1e400", "-1e309", "9" * 400])
def test_a_value_beyond_a_64_bit_float_is_refused_not_read_as_infinity(text: str) -> None:
    with pytest.raises(PromQLResponseError, match="out of the range of a 64-bit float") as raised:
        parse(vector(sample(text)))
    assert "9" * 60 not in str(raised.value)


def test_a_huge_text_value_is_not_quoted_whole() -> None:
    text = "1" * 1_000_000
    with pytest.raises(PromQLResponseError, match="is not a number") as raised:
        parse(vector(sample(text)))
    assert len(str(raised.value)) < 200
    assert "1000000 characters" in str(raised.value)


@pytest.mark.parametrize("where", [0, 1])
def test_a_python_integer_beyond_a_float_is_refused_without_printing_it(where: int) -> None:
    huge = 10**5000  # more digits than int's str() conversion allows
    value: list[object] = [1_795_823_100, "1"]
    value[where] = huge
    with pytest.raises(PromQLResponseError, match="too large for a 64-bit float") as raised:
        parse(vector({"metric": {"team.id": "alpha"}, "value": value}))
    assert "bits" in str(raised.value) and len(str(raised.value)) < 200


# -- times -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stamp",
    [0, 1_795_823_100, 1_795_823_100.25, "1795823100.25", LATEST_TIME.timestamp() - 1],
)
def test_an_evaluation_time_in_range_is_read(stamp: float | str) -> None:
    (read,) = parse(vector(sample("1", stamp=stamp))).samples
    assert read.timestamp == datetime.fromtimestamp(float(stamp), tz=UTC)


@pytest.mark.parametrize(
    "stamp", [-1, -1e12, LATEST_TIME.timestamp(), 1e20, 1e300, "1e300", 2**63, "NaN", "+Inf", "-Inf"]
)
def test_an_evaluation_time_out_of_range_is_a_response_error(stamp: object) -> None:
    with pytest.raises(PromQLResponseError, match=r"data\.result\[0\] has timestamp .*not a Unix time"):
        parse(vector(sample("1", stamp=stamp)))


@pytest.mark.parametrize("value", ["1795823040", "0", "32503679999"])
def test_a_last_sample_time_in_range_is_read(value: str) -> None:
    times = parse(vector(sample(value))).times_by_team()
    assert times == {"alpha": datetime.fromtimestamp(float(value), tz=UTC)}


@pytest.mark.parametrize("value", ["-1", "32503680000", "1e20", "-1e15", "9" * 30, "+Inf", "NaN"])
def test_a_last_sample_time_out_of_range_names_the_team(value: str) -> None:
    result = parse(vector(sample(value, team="t" * 500)))
    with pytest.raises(PromQLResponseError, match="has no usable timestamp") as raised:
        result.times_by_team()
    assert "t" * 41 not in str(raised.value) and "500 characters" in str(raised.value)


# -- what messages quote ---------------------------------------------------------------------------


def test_a_huge_status_is_not_quoted_whole() -> None:
    with pytest.raises(PromQLResponseError, match="status is 'xxxx") as raised:
        parse({"status": "x" * 100_000})
    assert len(str(raised.value)) < 200


@pytest.mark.parametrize("status", [["success"] * 10_000, {"a": 1}])
def test_a_status_that_is_not_text_is_named_by_its_type(status: object) -> None:
    with pytest.raises(PromQLResponseError, match=r"status is a (list|dict)"):
        parse({"status": status})


def test_two_series_of_a_team_with_a_huge_name_are_refused_briefly() -> None:
    team = "t" * 100_000
    with pytest.raises(PromQLResponseError, match="two series for team") as raised:
        parse(vector(sample("1", team=team), sample("2", team=team)))
    assert len(str(raised.value)) < 300


def test_a_huge_error_message_is_cut_in_the_query_error() -> None:
    with pytest.raises(PromQLQueryError) as raised:
        parse({"status": "error", "errorType": "execution", "error": "e" * 100_000})
    assert raised.value.error == "e" * 100_000  # kept whole for a caller that wants it
    assert len(str(raised.value)) < 1000


def test_huge_or_many_warnings_are_cut_in_the_truncation_error() -> None:
    result = parse(vector(sample("1"), warnings=["w" * 100_000, *[f"warning {i}" for i in range(20)]]))
    assert result.truncated
    with pytest.raises(TruncatedResultError, match="and 16 more") as raised:
        result.values_by_team()
    assert len(str(raised.value)) < 1000


def test_a_warning_that_is_not_text_is_kept_by_its_type() -> None:
    result = parse(vector(warnings=[{"deep": [[[1]]]}, 7]))
    assert result.warnings == ("a dict", "7")


# -- JSON the decoder cannot hold --------------------------------------------------------------------


def test_json_nested_too_deeply_is_a_response_error_naming_the_nesting() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(PromQLResponseError, match="nested too deeply") as raised:
        client(200, body).query("up")
    assert "[[[[" not in str(raised.value)


@pytest.mark.parametrize("status", [400, 422, 503])
def test_an_error_body_nested_too_deeply_is_still_a_typed_http_error(status: int) -> None:
    from tokenwarden.adapters.promql import PromQLHTTPError

    body = b'{"error": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(PromQLHTTPError) as raised:
        client(status, body).query("up")
    assert raised.value.status == status
    assert len(str(raised.value)) < 1500


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        ("x" * 100_000, "x" * 300 + "…"),
        (["not", "text"], "a JSON array"),
        ({"detail": "nested"}, "a JSON object"),
        (42, "42"),
    ],
)
def test_an_error_body_field_is_quoted_briefly(error: object, shown: str) -> None:
    from tokenwarden.adapters.promql import PromQLHTTPError

    body = json.dumps({"errorType": "bad_data", "error": error}).encode()
    with pytest.raises(PromQLHTTPError) as raised:
        client(500, body).query("up")
    assert raised.value.error == shown
