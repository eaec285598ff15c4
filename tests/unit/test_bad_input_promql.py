"""Malformed PromQL answers: whatever a server (or something pretending to be one) sends back, the
health check gets a typed PromQLError with a message, never an unrelated exception.

Answers go through the real client with an in-memory transport (so the JSON decoding is covered
too), and straight through `parse_vector` and the per-team accessors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tokenwarden.adapters.promql import HttpRequest, HttpResponse, PromQLClient
from tokenwarden.domain.promql import (
    Dialect,
    PromQLError,
    PromQLQueryError,
    PromQLResponseError,
    QueryResult,
    TruncatedResultError,
    parse_vector,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "promql"
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def answer(body: bytes, status: int = 200) -> QueryResult:
    """One query through the real client whose transport returns `body`; no retries, no sleeping."""

    def transport(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status, body, {"Content-Type": "application/json"})

    client = PromQLClient.unsigned(
        "http://127.0.0.1:9",
        dialect=Dialect.PROMETHEUS,
        transport=transport,
        max_attempts=1,
        sleep=lambda _: None,
    )
    return client.query('sum by ("team.id") (count_over_time({__name__="m"}[1h]))')


def use(result: QueryResult) -> None:
    """What the health check does with an answer."""
    result.values_by_team()
    result.times_by_team()
    _ = result.unattributed


def typed_error_or_usable(body: bytes, status: int = 200) -> QueryResult | PromQLError:
    try:
        result = answer(body, status)
        use(result)
        return result
    except PromQLError as exc:
        assert str(exc), "an error without a message"
        return exc


def vector(*samples: object, **extra: object) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": list(samples)}, **extra}


def sample(value: object, stamp: object = 1_795_823_100, team: object = "platform-eng") -> dict[str, Any]:
    return {"metric": {"team.id": team}, "value": [stamp, value]}


# -- the CloudWatch-shaped fixtures stay readable ------------------------------------------------------------


def fixture_files() -> list[Path]:
    found = sorted(FIXTURES.glob("*.json"))
    assert found, f"no PromQL fixtures in {FIXTURES}"
    return found


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_every_fixture_is_a_result_or_a_typed_error(path: Path) -> None:
    body = path.read_bytes()
    result = typed_error_or_usable(body)
    if "error" in path.name:
        assert isinstance(result, PromQLQueryError)
    if "truncated" in path.name:
        assert isinstance(result, TruncatedResultError)


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_every_fixture_cut_short_is_a_typed_error(path: Path) -> None:
    body = path.read_bytes().rstrip()
    for end in range(0, len(body), max(1, len(body) // 25)):
        assert isinstance(typed_error_or_usable(body[:end]), PromQLResponseError), body[:end]


# -- bodies that are not the envelope ------------------------------------------------------------

NOT_JSON = [
    b"",
    b"<html><body>502 Bad Gateway</body></html>",
    b"\xff\xfe\x00",
    b'{"status": "success", "data": ',
    b"null",
    b"[]",
    b'"success"',
    b"42",
    b"NaN",
    b'{"status": "success"}{"status": "success"}',
]


@pytest.mark.parametrize("body", NOT_JSON, ids=repr)
def test_a_body_that_is_not_a_json_object_is_a_response_error(body: bytes) -> None:
    with pytest.raises(PromQLResponseError):
        answer(body)


ENVELOPES: dict[str, object] = {
    "no status": {"data": {"resultType": "vector", "result": []}},
    "status ok": {"status": "ok", "data": {"resultType": "vector", "result": []}},
    "status true": {"status": True},
    "no data": {"status": "success"},
    "data a list": {"status": "success", "data": []},
    "matrix": {"status": "success", "data": {"resultType": "matrix", "result": []}},
    "scalar": {"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}},
    "string": {"status": "success", "data": {"resultType": "string", "result": [1, "x"]}},
    "no resultType": {"status": "success", "data": {"result": []}},
    "result an object": {"status": "success", "data": {"resultType": "vector", "result": {}}},
    "result missing": {"status": "success", "data": {"resultType": "vector"}},
    "warnings a string": vector(warnings="cut at 500 series"),
    "sample a list": vector([1, 2]),
    "metric a list": vector({"metric": ["team.id"], "value": [1, "1"]}),
    "metric null": vector({"metric": None, "value": [1, "1"]}),
    "label value a number": vector(sample("1", team=7)),
    "label value null": vector(sample("1", team=None)),
    "value missing": vector({"metric": {"team.id": "a"}}),
    "value a string": vector({"metric": {"team.id": "a"}, "value": "1"}),
    "value of three": vector({"metric": {"team.id": "a"}, "value": [1, "1", "2"]}),
    "value empty": vector({"metric": {"team.id": "a"}, "value": []}),
    "stamp a word": vector(sample("1", stamp="now")),
    "stamp true": vector(sample("1", stamp=True)),
    "stamp null": vector(sample("1", stamp=None)),
    "stamp NaN": vector(sample("1", stamp="NaN")),
    "stamp +Inf": vector(sample("1", stamp="+Inf")),
    "value a word": vector(sample("many")),
    "value a list": vector(sample(["1"])),
    "value an object": vector(sample({"v": 1})),
    "value true": vector(sample(True)),
    "value NaN (a valid Prometheus sample, not a time)": vector(sample("NaN")),
    "value +Inf": vector(sample("+Inf")),
    "value -Inf": vector(sample("-Inf")),
    "two series for one team": vector(sample("1"), sample("2")),
    "two series without a team": vector(
        sample("1", team=None) | {"metric": {}}, {"metric": {}, "value": [1, "2"]}
    ),
}


@pytest.mark.parametrize("payload", list(ENVELOPES.values()), ids=list(ENVELOPES))
def test_a_malformed_envelope_is_a_typed_error(payload: object) -> None:
    result = typed_error_or_usable(json.dumps(payload).encode())
    assert isinstance(result, PromQLError), f"accepted: {payload}"


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"status": "error"}, "no error message"),
        ({"status": "error", "errorType": ["bad_data"], "error": {"detail": 1}}, "unknown"),
        ({"status": "error", "errorType": "execution", "error": "query timed out"}, "query timed out"),
    ],
)
def test_an_error_envelope_in_any_shape_is_a_query_error(payload: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PromQLQueryError, match=fragment):
        answer(json.dumps(payload).encode())


@pytest.mark.parametrize("status", [400, 404, 422, 429, 500, 503])
@pytest.mark.parametrize("body", [b"", b"oops", b"[1, 2]", b'{"errorType": 5}', b"\xff"], ids=repr)
def test_a_failed_http_answer_with_any_body_is_a_typed_error(status: int, body: bytes) -> None:
    with pytest.raises(PromQLError):
        answer(body, status)


# -- numbers outside what a time or a float can hold (domain/promql.py) -------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        vector(sample("1", stamp=1e20)),
        vector(sample("1", stamp=-1e12)),
        vector(sample("1", stamp="1e300")),
    ],
    ids=["stamp 1e20", "stamp -1e12", "stamp 1e300"],
)
def test_a_timestamp_out_of_range_is_a_response_error(payload: object) -> None:
    with pytest.raises(PromQLResponseError, match="not a Unix time between 1970 and 3000"):
        answer(json.dumps(payload).encode())


@pytest.mark.parametrize("value", ["1e20", "-1e15", "9" * 30])
def test_a_last_sample_time_out_of_range_is_a_response_error(value: str) -> None:
    result = answer(json.dumps(vector(sample(value))).encode())
    with pytest.raises(PromQLResponseError, match="'platform-eng' has no usable timestamp"):
        result.times_by_team()


@pytest.mark.parametrize("where", ["stamp", "value"])
def test_a_json_integer_too_large_for_a_float_is_a_response_error(where: str) -> None:
    huge = "1" + "0" * 400
    body = (
        f'{{"status": "success", "data": {{"resultType": "vector", "result": '
        f'[{{"metric": {{"team.id": "a"}}, "value": [{huge if where == "stamp" else 1}, '
        f"{huge if where == 'value' else 1}]}}]}}}}"
    )
    with pytest.raises(PromQLResponseError, match="too large for a 64-bit float") as raised:
        answer(body.encode())
    assert "0" * 30 not in str(raised.value) and len(str(raised.value)) < 200


@pytest.mark.parametrize("text", ["1_000", "\u0661\u0662\u0663", " 12 "])
def test_numbers_are_read_in_prometheus_format_only(text: str) -> None:
    with pytest.raises(PromQLResponseError, match="is not a number"):
        answer(json.dumps(vector(sample(text))).encode())


@pytest.mark.parametrize("status", [200, 400])
def test_deeply_nested_json_is_a_typed_error(status: int) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(PromQLError) as raised:
        answer(body, status)
    assert len(str(raised.value)) < 1000


# -- fuzzed answers --------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**12), max_value=10**12),
        st.floats(min_value=-1e9, max_value=1e11, allow_nan=False),
        st.text(max_size=10),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
in_range_number = st.one_of(
    st.integers(min_value=0, max_value=4_000_000_000),
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
    st.sampled_from(["NaN", "+Inf", "-Inf", "1795823100.5", "17", "x", ""]),
)
samples = st.fixed_dictionaries(
    {},
    optional={
        "metric": st.one_of(
            st.dictionaries(
                st.sampled_from(["team.id", "@resource.team.id", "job"]),
                st.one_of(st.text(max_size=6), json_values),
            ),
            json_values,
        ),
        "value": st.one_of(st.tuples(in_range_number, in_range_number).map(list), json_values),
    },
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "status": st.one_of(st.sampled_from(["success", "error"]), json_values),
        "data": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "resultType": st.one_of(st.sampled_from(["vector", "matrix", "scalar"]), json_values),
                    "result": st.one_of(st.lists(samples, max_size=4), json_values),
                },
            ),
            json_values,
        ),
        "warnings": st.one_of(st.lists(st.text(max_size=10), max_size=2), json_values),
        "errorType": json_values,
        "error": json_values,
    },
)


@FUZZ
@given(envelopes)
@example({"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, "1"]}]}})
def test_any_envelope_is_a_result_or_a_typed_error(payload: dict[str, Any]) -> None:
    typed_error_or_usable(json.dumps(payload).encode())


@FUZZ
@given(json_values)
def test_any_json_is_a_result_or_a_typed_error(payload: object) -> None:
    typed_error_or_usable(json.dumps(payload).encode())


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([200, 400, 422, 500]))
def test_any_bytes_are_a_result_or_a_typed_error(body: bytes, status: int) -> None:
    typed_error_or_usable(body, status)


@FUZZ
@given(envelopes, st.sampled_from([None, Dialect.CLOUDWATCH, Dialect.PROMETHEUS]))
def test_parse_vector_on_any_envelope_is_a_result_or_a_typed_error(
    payload: dict[str, Any], dialect: Dialect | None
) -> None:
    try:
        use(parse_vector(payload, dialect))
    except PromQLError as exc:
        assert str(exc)
