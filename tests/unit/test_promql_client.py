"""The PromQL HTTP client with a fake transport: retries, errors, timeouts, malformed answers, SigV4."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import botocore.auth
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tokenwarden.adapters.promql import (
    HttpRequest,
    HttpResponse,
    PromQLAuthError,
    PromQLClient,
    PromQLConnectionError,
    PromQLHTTPError,
    PromQLLimitError,
    PromQLThrottledError,
    PromQLTimeoutError,
    PromQLUnavailableError,
    UrllibTransport,
)
from tokenwarden.domain.promql import (
    Dialect,
    InvalidQueryError,
    PromQLError,
    PromQLQuerier,
    PromQLQueryError,
    PromQLResponseError,
    TruncatedResultError,
    activity_query,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "promql"
REGION = "eu-west-1"
QUERY = activity_query(Dialect.CLOUDWATCH, "claude_code.session.count", timedelta(hours=1))
FROZEN = datetime(2030, 1, 2, 3, 4, 5)  # botocore works in naive UTC
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

OK_BODY = json.dumps(
    {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"@resource.team.id": "platform-eng"}, "value": [1795823100, "17"]},
                {"metric": {"@resource.team.id": "data-science"}, "value": [1795823100, "3"]},
            ],
        },
    }
).encode()


def answer(status: int, body: bytes | str | dict[str, Any] = b"", **headers: str) -> HttpResponse:
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return HttpResponse(status, body, headers)


class FakeTransport:
    """Replays scripted answers (or raises scripted exceptions) and records every request."""

    def __init__(self, *script: HttpResponse | BaseException) -> None:
        self.script = list(script)
        self.requests: list[HttpRequest] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        return step


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def unsigned(transport: FakeTransport, sleeps: Sleeps, **options: Any) -> PromQLClient:
    return PromQLClient.unsigned(
        "http://127.0.0.1:8428", dialect=Dialect.CLOUDWATCH, transport=transport, sleep=sleeps, **options
    )


def form(request: HttpRequest) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(request.body.decode("ascii"), strict_parsing=True))


# --- Requests and answers -------------------------------------------------------------------------------


def test_unsigned_query_posts_a_form_and_parses_the_vector(sleeps: Sleeps) -> None:
    transport = FakeTransport(answer(200, OK_BODY))
    at = datetime(2030, 1, 2, 3, 4, 0, tzinfo=UTC)

    result = unsigned(transport, sleeps).query(QUERY, time=at)

    assert result.values_by_team() == {"platform-eng": 17.0, "data-science": 3.0}
    (request,) = transport.requests
    assert request.method == "POST"
    assert request.url == "http://127.0.0.1:8428/api/v1/query"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Authorization" not in request.headers
    assert form(request) == {"query": QUERY, "time": f"{at.timestamp():.3f}"}
    assert request.timeout == 25.0
    assert sleeps == []


def test_client_implements_the_domain_port(sleeps: Sleeps) -> None:
    querier: PromQLQuerier = unsigned(FakeTransport(answer(200, OK_BODY)), sleeps)  # checked by mypy
    assert querier.query(QUERY).values_by_team()["platform-eng"] == 17.0


def test_time_is_optional_and_the_base_url_may_end_with_a_slash(sleeps: Sleeps) -> None:
    transport = FakeTransport(answer(200, OK_BODY))
    client = PromQLClient.unsigned("http://127.0.0.1:8428/", transport=transport, sleep=sleeps)
    client.query_json(QUERY)
    assert transport.requests[0].url == "http://127.0.0.1:8428/api/v1/query"
    assert form(transport.requests[0]) == {"query": QUERY}


def test_timeout_is_configurable(sleeps: Sleeps) -> None:
    transport = FakeTransport(answer(200, OK_BODY))
    unsigned(transport, sleeps, timeout=40).query(QUERY)
    assert transport.requests[0].timeout == 40


def test_truncated_answer_is_exposed_and_refuses_to_act_complete(sleeps: Sleeps) -> None:
    body = {
        "status": "success",
        "warnings": ["result truncated to the maximum of 500 series"],
        "data": {
            "resultType": "vector",
            "result": [{"metric": {"@resource.team.id": "a"}, "value": [1, "1"]}],
        },
    }
    result = unsigned(FakeTransport(answer(200, body)), sleeps).query(QUERY)
    assert result.truncated
    with pytest.raises(TruncatedResultError):
        result.values_by_team()


# --- Retries --------------------------------------------------------------------------------------------


def test_throttling_is_retried_with_backoff_then_succeeds(sleeps: Sleeps) -> None:
    transport = FakeTransport(answer(429, "slow down"), answer(429, "slow down"), answer(200, OK_BODY))

    result = unsigned(transport, sleeps).query(QUERY)

    assert result.values_by_team()["platform-eng"] == 17.0
    assert len(transport.requests) == 3
    assert sleeps == [0.5, 1.0]


def test_retry_after_is_honoured_but_capped(sleeps: Sleeps) -> None:
    transport = FakeTransport(
        answer(503, "", **{"Retry-After": "3"}),
        answer(503, "", **{"retry-after": "3600"}),
        answer(503, "", **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
        answer(200, OK_BODY),
    )
    unsigned(transport, sleeps).query(QUERY)
    assert sleeps == [3.0, 8.0, 2.0]


def test_throttling_on_every_attempt_gives_up_after_the_bound(sleeps: Sleeps) -> None:
    transport = FakeTransport(answer(429, {"status": "error", "errorType": "throttled", "error": "rate"}))

    with pytest.raises(PromQLThrottledError, match="HTTP 429") as caught:
        unsigned(transport, sleeps, max_attempts=3).query(QUERY)

    assert len(transport.requests) == 3
    assert sleeps == [0.5, 1.0]
    assert caught.value.status == 429
    assert caught.value.error_type == "throttled"
    assert "after 3 attempts" in str(caught.value)


LIMIT_422 = [
    {"status": "error", "errorType": "execution", "error": "query exceeded the 500 series limit"},
    {"status": "error", "errorType": "execution", "error": "query processing would load too many samples"},
    {"status": "error", "errorType": "bad_data", "error": "query time range exceeds the maximum of 7 days"},
    json.loads((FIXTURES / "cloudwatch-promql-error.json").read_text(encoding="utf-8")),
    "",
    "<html>unprocessable</html>",
]
THROTTLING_422 = [
    answer(422, {"status": "error", "errorType": "throttled", "error": "too many queries"}),
    answer(422, {"status": "error", "errorType": "execution", "error": "Rate exceeded"}),
    answer(422, {"message": "Too Many Requests"}),
    answer(422, {"__type": "x"}, **{"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/"}),
]


@pytest.mark.parametrize("body", LIMIT_422)
def test_a_422_limit_error_is_final_and_sent_once(sleeps: Sleeps, body: Any) -> None:
    transport = FakeTransport(answer(422, body), answer(200, OK_BODY))

    with pytest.raises(PromQLLimitError) as caught:
        unsigned(transport, sleeps).query(QUERY)

    assert len(transport.requests) == 1
    assert sleeps == []
    assert caught.value.status == 422
    message = str(caught.value)
    assert "HTTP 422" in message and "Not retried" in message and "Shorten the window" in message
    assert "attempts" not in message
    if isinstance(body, dict):
        assert caught.value.error == body["error"]
        assert body["error"] in message


@pytest.mark.parametrize("throttled", THROTTLING_422)
def test_a_422_that_says_throttling_is_retried_with_backoff(sleeps: Sleeps, throttled: HttpResponse) -> None:
    transport = FakeTransport(throttled, throttled, answer(200, OK_BODY))

    result = unsigned(transport, sleeps).query(QUERY)

    assert result.values_by_team()["platform-eng"] == 17.0
    assert len(transport.requests) == 3
    assert sleeps == [0.5, 1.0]


def test_a_422_throttling_on_every_attempt_is_a_throttling_error(sleeps: Sleeps) -> None:
    transport = FakeTransport(THROTTLING_422[1])

    with pytest.raises(PromQLThrottledError, match="HTTP 422") as caught:
        unsigned(transport, sleeps).query(QUERY)

    assert len(transport.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert caught.value.status == 422
    assert "after 4 attempts" in str(caught.value)


def test_unavailable_on_every_attempt(sleeps: Sleeps) -> None:
    with pytest.raises(PromQLUnavailableError, match="HTTP 503"):
        unsigned(FakeTransport(answer(503, "<html>busy</html>")), sleeps, max_attempts=2).query(QUERY)
    assert sleeps == [0.5]


def test_backoff_is_capped(sleeps: Sleeps) -> None:
    transport = FakeTransport(answer(429))
    with pytest.raises(PromQLThrottledError):
        unsigned(transport, sleeps, max_attempts=7, backoff_base=1.0, backoff_max=5.0).query(QUERY)
    assert sleeps == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_connection_failures_are_retried_then_reported(sleeps: Sleeps) -> None:
    flaky = FakeTransport(ConnectionResetError("reset by peer"), answer(200, OK_BODY))
    assert unsigned(flaky, sleeps).query(QUERY).values_by_team()["data-science"] == 3.0

    down = FakeTransport(ConnectionRefusedError("connection refused"))
    with pytest.raises(PromQLConnectionError, match=r"could not reach 127\.0\.0\.1:8428 after 4 attempt"):
        unsigned(down, sleeps).query(QUERY)
    assert len(down.requests) == 4


# --- Errors that are not retried ------------------------------------------------------------------------


def test_bad_query_is_reported_at_once_with_the_servers_reason(sleeps: Sleeps) -> None:
    bad = {"status": "error", "errorType": "bad_data", "error": "query must select a metric by name"}
    transport = FakeTransport(answer(400, bad))

    with pytest.raises(PromQLQueryError) as caught:
        unsigned(transport, sleeps).query(QUERY)

    assert caught.value.error_type == "bad_data"
    assert caught.value.http_status == 400
    assert len(transport.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_say_which_permissions_are_needed(sleeps: Sleeps, status: int) -> None:
    transport = FakeTransport(answer(status, {"message": "User is not authorized"}))
    with pytest.raises(PromQLAuthError, match="cloudwatch:GetMetricData") as caught:
        unsigned(transport, sleeps).query(QUERY)
    assert caught.value.status == status
    assert "User is not authorized" in str(caught.value)
    assert len(transport.requests) == 1


@pytest.mark.parametrize("status", [404, 405, 500])
def test_other_statuses_are_http_errors(sleeps: Sleeps, status: int) -> None:
    transport = FakeTransport(answer(status, "<html>" + "x" * 1000 + "</html>"))
    with pytest.raises(PromQLHTTPError, match=f"HTTP {status}") as caught:
        unsigned(transport, sleeps).query(QUERY)
    assert len(str(caught.value)) < 600  # a bounded snippet of the body, not all of it
    assert len(transport.requests) == 1


def test_timeout_is_a_typed_error_and_not_retried(sleeps: Sleeps) -> None:
    transport = FakeTransport(TimeoutError("timed out"))
    with pytest.raises(PromQLTimeoutError, match="within 25 s"):
        unsigned(transport, sleeps).query(QUERY)
    assert len(transport.requests) == 1


@pytest.mark.parametrize(
    "body",
    [b"<html>gateway</html>", b"", b'{"status": "success", "data":', b"\xff\xfe", b"[1, 2]", b'"success"'],
)
def test_malformed_json_is_a_response_error(sleeps: Sleeps, body: bytes) -> None:
    with pytest.raises(PromQLResponseError, match="Prometheus-compatible API"):
        unsigned(FakeTransport(answer(200, body)), sleeps).query(QUERY)


def test_status_error_in_a_200_answer(sleeps: Sleeps) -> None:
    body = {"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"}
    with pytest.raises(PromQLQueryError, match="timeout"):
        unsigned(FakeTransport(answer(200, body)), sleeps).query(QUERY)


def test_unexpected_transport_exception_never_escapes_untyped(sleeps: Sleeps) -> None:
    transport = FakeTransport(RuntimeError("boom"))
    with pytest.raises(PromQLConnectionError, match="RuntimeError: boom"):
        unsigned(transport, sleeps, max_attempts=2).query(QUERY)


def test_every_failure_is_a_promql_error(sleeps: Sleeps) -> None:
    for script in (answer(429), answer(422), answer(400, "x"), answer(200, "x"), TimeoutError(), OSError()):
        with pytest.raises(PromQLError):
            unsigned(FakeTransport(script), sleeps, max_attempts=2).query(QUERY)


def test_invalid_arguments_are_refused_before_sending(sleeps: Sleeps) -> None:
    transport = FakeTransport(answer(200, OK_BODY))
    client = unsigned(transport, sleeps)
    with pytest.raises(InvalidQueryError, match="timezone-aware"):
        client.query(QUERY, time=datetime(2030, 1, 1))  # a naive time is the point
    with pytest.raises(InvalidQueryError, match="empty"):
        client.query("  ")
    assert transport.requests == []


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: PromQLClient.unsigned("ftp://example.test"), "http"),
        (lambda: PromQLClient.unsigned("not a url"), "http"),
        (lambda: PromQLClient.unsigned("http://127.0.0.1:1", max_attempts=0), "max_attempts"),
        (lambda: PromQLClient.unsigned("http://127.0.0.1:1", timeout=0), "timeout"),
        (
            lambda: PromQLClient.cloudwatch(
                botocore.session.Session(), REGION, base_url="http://127.0.0.1:1"
            ),
            "HTTPS",
        ),
        (lambda: PromQLClient.managed_prometheus(botocore.session.Session(), REGION), "workspace"),
    ],
)
def test_bad_configuration_is_refused(factory: Callable[[], PromQLClient], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()


# --- SigV4 ----------------------------------------------------------------------------------------------


class FixedSession:
    """Stands in for a boto3/botocore session."""

    def __init__(self, credentials: Credentials | None) -> None:
        self.credentials = credentials

    def get_credentials(self) -> Credentials | None:
        return self.credentials


@pytest.fixture
def frozen_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    clock = [FROZEN]

    def now(remove_tzinfo: bool = True) -> datetime:
        return clock[0]

    monkeypatch.setattr(botocore.auth, "get_current_datetime", now)
    yield clock


def parse_authorization(value: str) -> dict[str, str]:
    algorithm, _, rest = value.partition(" ")
    assert algorithm == "AWS4-HMAC-SHA256"
    return dict(part.strip().split("=", 1) for part in rest.split(","))


def reference_signature(request: HttpRequest, secret_key: str) -> str:
    """SigV4 as AWS documents it, computed from the request as it goes on the wire — what the service does
    to verify it. Independent of botocore."""
    auth = parse_authorization(request.headers["Authorization"])
    _, date, region, service, terminal = auth["Credential"].split("/")
    assert terminal == "aws4_request"
    url = urllib.parse.urlsplit(request.url)
    wire = {name.lower(): value for name, value in request.headers.items()}
    wire.setdefault("host", url.netloc)  # added by the HTTP library from the URL
    signed = auth["SignedHeaders"].split(";")
    canonical_request = "\n".join(
        [
            request.method,
            url.path,
            url.query,
            "".join(f"{name}:{' '.join(wire[name].split())}\n" for name in signed),
            auth["SignedHeaders"],
            hashlib.sha256(request.body).hexdigest(),
        ]
    )
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            wire["x-amz-date"],
            f"{date}/{region}/{service}/aws4_request",
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def test_cloudwatch_request_is_signed_for_monitoring(frozen_time: list[datetime], sleeps: Sleeps) -> None:
    transport = FakeTransport(answer(200, OK_BODY))
    client = PromQLClient.cloudwatch(
        FixedSession(Credentials(ACCESS_KEY, SECRET_KEY)), REGION, transport=transport, sleep=sleeps
    )
    assert client.query_url == f"https://monitoring.{REGION}.amazonaws.com/api/v1/query"
    assert client.dialect is Dialect.CLOUDWATCH

    client.query(QUERY, time=datetime(2030, 1, 2, 3, 0, tzinfo=UTC))

    (request,) = transport.requests
    auth = parse_authorization(request.headers["Authorization"])
    assert auth["Credential"] == f"{ACCESS_KEY}/20300102/{REGION}/monitoring/aws4_request"
    assert request.headers["X-Amz-Date"] == "20300102T030405Z"
    assert {"host", "content-type", "x-amz-date"} <= set(auth["SignedHeaders"].split(";"))

    # botocore's own SigV4 computation over the same request gives the same Authorization header.
    expected = AWSRequest(
        method="POST",
        url=request.url,
        data=request.body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
    )
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "monitoring", REGION).add_auth(expected)
    assert request.headers["Authorization"] == expected.headers["Authorization"]

    # And the signature verifies the way the service checks it: from the request as sent.
    assert auth["Signature"] == reference_signature(request, SECRET_KEY)
    assert reference_signature(request, "another-secret") != auth["Signature"]


def test_tampered_body_no_longer_verifies(frozen_time: list[datetime], sleeps: Sleeps) -> None:
    transport = FakeTransport(answer(200, OK_BODY))
    PromQLClient.cloudwatch(
        FixedSession(Credentials(ACCESS_KEY, SECRET_KEY)), REGION, transport=transport, sleep=sleeps
    ).query(QUERY)
    request = transport.requests[0]
    signature = parse_authorization(request.headers["Authorization"])["Signature"]
    tampered = HttpRequest(request.method, request.url, request.headers, request.body + b"x", request.timeout)
    assert reference_signature(tampered, SECRET_KEY) != signature


def test_session_token_is_sent_and_signed(frozen_time: list[datetime], sleeps: Sleeps) -> None:
    transport = FakeTransport(answer(200, OK_BODY))
    credentials = Credentials(ACCESS_KEY, SECRET_KEY, token="session-token-value")
    PromQLClient.cloudwatch(FixedSession(credentials), REGION, transport=transport, sleep=sleeps).query(QUERY)

    request = transport.requests[0]
    assert request.headers["X-Amz-Security-Token"] == "session-token-value"
    auth = parse_authorization(request.headers["Authorization"])
    assert "x-amz-security-token" in auth["SignedHeaders"].split(";")
    assert auth["Signature"] == reference_signature(request, SECRET_KEY)


def test_managed_prometheus_is_signed_for_aps_on_the_workspace_path(
    frozen_time: list[datetime], sleeps: Sleeps
) -> None:
    transport = FakeTransport(
        answer(200, {"status": "success", "data": {"resultType": "vector", "result": []}})
    )
    client = PromQLClient.managed_prometheus(
        FixedSession(Credentials(ACCESS_KEY, SECRET_KEY)),
        REGION,
        workspace_id="ws-1234",
        transport=transport,
        sleep=sleeps,
    )
    assert client.dialect is Dialect.PROMETHEUS

    client.query('sum by ("team.id") (count_over_time({__name__="claude_code.session.count"}[1h]))')

    request = transport.requests[0]
    assert request.url == f"https://aps-workspaces.{REGION}.amazonaws.com/workspaces/ws-1234/api/v1/query"
    auth = parse_authorization(request.headers["Authorization"])
    assert auth["Credential"].endswith(f"/{REGION}/aps/aws4_request")
    assert auth["Signature"] == reference_signature(request, SECRET_KEY)


def test_every_retry_is_signed_anew(frozen_time: list[datetime], sleeps: Sleeps) -> None:
    def advancing_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        frozen_time[0] += timedelta(seconds=seconds + 60)

    transport = FakeTransport(answer(429), answer(200, OK_BODY))
    PromQLClient.cloudwatch(
        FixedSession(Credentials(ACCESS_KEY, SECRET_KEY)), REGION, transport=transport, sleep=advancing_sleep
    ).query(QUERY)

    first, second = transport.requests
    assert first.headers["X-Amz-Date"] != second.headers["X-Amz-Date"]
    for request in (first, second):
        signature = parse_authorization(request.headers["Authorization"])["Signature"]
        assert signature == reference_signature(request, SECRET_KEY)


def test_missing_credentials_fail_before_sending(sleeps: Sleeps) -> None:
    transport = FakeTransport(answer(200, OK_BODY))
    client = PromQLClient.cloudwatch(FixedSession(None), REGION, transport=transport, sleep=sleeps)
    with pytest.raises(PromQLAuthError, match="no AWS credentials"):
        client.query(QUERY)
    assert transport.requests == []


def test_errors_never_carry_the_signing_secret(frozen_time: list[datetime], sleeps: Sleeps) -> None:
    credentials = Credentials(ACCESS_KEY, SECRET_KEY, token="session-token-value")
    for script in (answer(403, "denied"), answer(422), answer(200, "not json"), TimeoutError()):
        transport = FakeTransport(script)
        client = PromQLClient.cloudwatch(FixedSession(credentials), REGION, transport=transport, sleep=sleeps)
        with pytest.raises(PromQLError) as caught:
            client.query(QUERY)
        text = f"{caught.value!s} {caught.value!r}"
        assert SECRET_KEY not in text and "session-token-value" not in text


# --- Over real HTTP on loopback ---------------------------------------------------------------------


class ScriptedServer:
    """A loopback HTTP server that answers POSTs with scripted (status, body, headers) and counts them."""

    def __init__(self, *script: tuple[int, bytes, dict[str, str]]) -> None:
        self.script = list(script)
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.requests += 1
                status, body, headers = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def over_http(server: ScriptedServer, sleeps: Sleeps) -> PromQLClient:
    return PromQLClient.unsigned(
        server.url, dialect=Dialect.CLOUDWATCH, transport=UrllibTransport(), sleep=sleeps, timeout=5
    )


def test_over_http_throttling_is_retried_and_a_limit_is_not(sleeps: Sleeps) -> None:
    throttled = json.dumps({"status": "error", "errorType": "throttled", "error": "Rate exceeded"}).encode()
    with ScriptedServer(
        (429, b'{"message": "Too Many Requests"}', {"Retry-After": "1"}),
        (422, throttled, {}),
        (200, OK_BODY, {}),
    ) as server:
        assert over_http(server, sleeps).query(QUERY).values_by_team()["data-science"] == 3.0
    assert server.requests == 3
    assert sleeps == [1.0, 1.0]

    limit = json.dumps(LIMIT_422[0]).encode()
    with (
        ScriptedServer((422, limit, {}), (200, OK_BODY, {})) as server,
        pytest.raises(PromQLLimitError, match="500 series limit"),
    ):
        over_http(server, sleeps).query(QUERY)
    assert server.requests == 1
