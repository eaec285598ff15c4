"""Runs PromQL instant queries over the Prometheus HTTP API: CloudWatch, Amazon Managed Prometheus, or
any Prometheus-compatible server (VictoriaMetrics in the embedded stack).

``POST {base}/api/v1/query`` with a form-encoded body (``query``, optional ``time``), SigV4-signed for
service ``monitoring`` (CloudWatch) or ``aps`` (Amazon Managed Prometheus), or unsigned. Standard
library HTTP plus botocore's signer; no boto3 operation runs PromQL.

Every failure is a :class:`~tokenwarden.domain.promql.PromQLError` with a message a person can act
on: throttling and unavailability (502/503/504) are retried a bounded number of times with
exponential backoff (``Retry-After`` honoured, capped), then raised; other 4xx, timeouts, malformed
JSON and ``status: error`` answers are raised at once. Throttling is a 429, or a 422 whose error
says so: CloudWatch also answers 422 to permanent limit errors (too many series or samples, a range
over 7 days), which no retry can fix, so a 422 is retried only when its ``errorType``/``error`` (or
the ``x-amzn-ErrorType`` header) names throttling. The HTTP transport is a plain callable so tests
run without a network.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import re
import time as _time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from tokenwarden.domain.promql import (
    Dialect,
    InvalidQueryError,
    PromQLError,
    PromQLQueryError,
    PromQLResponseError,
    QueryResult,
    parse_vector,
)

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "HttpRequest",
    "HttpResponse",
    "PromQLAuthError",
    "PromQLClient",
    "PromQLConnectionError",
    "PromQLHTTPError",
    "PromQLLimitError",
    "PromQLThrottledError",
    "PromQLTimeoutError",
    "PromQLUnavailableError",
    "SigV4Signer",
    "Transport",
    "UrllibTransport",
]

DEFAULT_TIMEOUT_SECONDS = 25.0
"""CloudWatch stops a PromQL query after 20 s; the client waits a little longer for its answer."""

DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
_RETRYABLE = frozenset({429, 502, 503, 504})
_THROTTLING = re.compile(
    r"throttl|rate exceeded|too many requests|toomanyrequests|requestlimitexceeded|request limit exceeded"
    r"|slow down",
    re.IGNORECASE,
)
"""Words that mark a 422 as throttling (retried) rather than a limit of the query itself (final)."""
_SNIPPET = 300


# --- Errors raised by the transport layer (the domain defines the rest) -------------------------------


class PromQLHTTPError(PromQLError):
    """A non-2xx answer. ``error_type``/``error`` come from the Prometheus error envelope when present."""

    def __init__(self, message: str, *, status: int, error_type: str | None = None, error: str | None = None):
        self.status = status
        self.error_type = error_type
        self.error = error
        super().__init__(message)


class PromQLThrottledError(PromQLHTTPError):
    """HTTP 429, or a 422 that says throttling, on every attempt."""


class PromQLLimitError(PromQLHTTPError):
    """HTTP 422 that is not throttling: a query limit (series, samples, time range) was exceeded or the
    query could not run. Final: sent once, never retried."""


class PromQLUnavailableError(PromQLHTTPError):
    """HTTP 502/503/504 on every attempt."""


class PromQLAuthError(PromQLHTTPError):
    """HTTP 401/403, or no AWS credentials to sign with (``status`` 0)."""


class PromQLTimeoutError(PromQLError):
    """No answer within the timeout."""


class PromQLConnectionError(PromQLError):
    """The server could not be reached (DNS, refused or reset connection, TLS)."""


# --- Transport ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    timeout: float


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


Transport = Callable[[HttpRequest], HttpResponse]
"""Sends one request and returns the answer, whatever its status. Raises ``TimeoutError`` when the
server does not answer in time and ``OSError`` when it cannot be reached."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would drop the signed body (urllib turns a redirected POST into a GET): treat it as
    # the non-2xx answer it is.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class UrllibTransport:
    """The real transport: ``urllib.request``, no redirects, proxies from the environment except for
    loopback hosts, answers larger than ``max_response_bytes`` refused."""

    def __init__(self, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        self._max = max_response_bytes
        self._direct = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
        self._default = urllib.request.build_opener(_NoRedirect())

    def __call__(self, request: HttpRequest) -> HttpResponse:
        parts = urllib.parse.urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL scheme {parts.scheme!r}")
        opener = self._direct if _is_loopback(parts.hostname or "") else self._default
        outgoing = urllib.request.Request(  # noqa: S310 - scheme checked above
            request.url, data=request.body, method=request.method, headers=dict(request.headers)
        )
        try:
            with opener.open(outgoing, timeout=request.timeout) as answer:
                return HttpResponse(int(answer.status), self._read(answer), dict(answer.headers.items()))
        except urllib.error.HTTPError as exc:
            with exc:
                headers = dict(exc.headers.items()) if exc.headers is not None else {}
                return HttpResponse(int(exc.code), self._read(exc), headers)
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise TimeoutError(str(exc.reason)) from exc
            raise ConnectionError(str(exc.reason)) from exc
        except http.client.HTTPException as exc:
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc

    def _read(self, stream: Any) -> bytes:
        body = stream.read(self._max + 1)
        if not isinstance(body, bytes):
            return b""
        if len(body) > self._max:
            raise ConnectionError(f"the answer is larger than {self._max} bytes")
        return body


# --- Signing ------------------------------------------------------------------------------------------


class _CredentialSource(Protocol):
    """A botocore or boto3 session."""

    def get_credentials(self) -> Any: ...


class SigV4Signer:
    """Signs requests with the session's current credentials (refreshed ones included)."""

    def __init__(self, session: _CredentialSource, service: str, region: str) -> None:
        if not region:
            raise ValueError("a region is needed to sign PromQL requests")
        self._session = session
        self.service = service
        self.region = region

    def sign(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        credentials = self._session.get_credentials()
        if credentials is None:
            raise PromQLAuthError(
                f"no AWS credentials to sign the PromQL request for {self.service}: configure the "
                "function's role (or AWS_PROFILE / the environment when run locally)",
                status=0,
            )
        frozen = (
            credentials.get_frozen_credentials()
            if hasattr(credentials, "get_frozen_credentials")
            else credentials
        )
        aws_request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(frozen, self.service, self.region).add_auth(aws_request)
        return {name: str(value) for name, value in aws_request.headers.items()}


# --- The client ---------------------------------------------------------------------------------------


def _default_sleep(seconds: float) -> None:
    _time.sleep(seconds)


class PromQLClient:
    """``query(expr, time=...)`` → :class:`QueryResult`, or a :class:`PromQLError`.

    Build one with :meth:`cloudwatch`, :meth:`managed_prometheus` or :meth:`unsigned`; the transport,
    ``sleep`` and the retry bounds are injectable for tests.
    """

    def __init__(
        self,
        base_url: str,
        *,
        dialect: Dialect,
        signer: SigV4Signer | None = None,
        transport: Transport | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        sleep: Callable[[float], None] = _default_sleep,
    ) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the PromQL base URL must be an http(s) URL, not {base_url!r}")
        if signer is not None and parts.scheme != "https":
            raise ValueError(f"signed PromQL requests go over HTTPS only, not to {base_url!r}")
        if timeout <= 0:
            raise ValueError("the timeout must be positive")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.query_url = f"{self.base_url}/api/v1/query"
        self.dialect = Dialect(dialect)
        self._signer = signer
        self._transport: Transport = transport if transport is not None else UrllibTransport()
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep

    @classmethod
    def cloudwatch(
        cls, session: _CredentialSource, region: str, *, base_url: str | None = None, **options: Any
    ) -> PromQLClient:
        """CloudWatch's PromQL API, signed for ``monitoring``."""
        return cls(
            base_url or f"https://monitoring.{region}.amazonaws.com",
            dialect=Dialect.CLOUDWATCH,
            signer=SigV4Signer(session, "monitoring", region),
            **options,
        )

    @classmethod
    def managed_prometheus(
        cls,
        session: _CredentialSource,
        region: str,
        *,
        workspace_id: str | None = None,
        base_url: str | None = None,
        **options: Any,
    ) -> PromQLClient:
        """An Amazon Managed Prometheus workspace, signed for ``aps``."""
        if base_url is None:
            if not workspace_id:
                raise ValueError("Amazon Managed Prometheus needs a workspace id or the workspace's base URL")
            base_url = f"https://aps-workspaces.{region}.amazonaws.com/workspaces/{workspace_id}"
        return cls(
            base_url, dialect=Dialect.PROMETHEUS, signer=SigV4Signer(session, "aps", region), **options
        )

    @classmethod
    def unsigned(
        cls, base_url: str, *, dialect: Dialect = Dialect.PROMETHEUS, **options: Any
    ) -> PromQLClient:
        """A plain Prometheus-compatible server (VictoriaMetrics in the embedded stack)."""
        return cls(base_url, dialect=dialect, **options)

    # -- public API --

    def query(self, query: str, *, time: datetime | None = None) -> QueryResult:
        """Evaluate ``query`` at ``time`` (the server's now when None) and parse the grouped vector."""
        return parse_vector(self.query_json(query, time=time), self.dialect)

    def query_json(self, query: str, *, time: datetime | None = None) -> Mapping[str, Any]:
        """The decoded JSON answer of a successful request (``status`` not yet checked)."""
        if not query.strip():
            raise InvalidQueryError("the PromQL query is empty")
        form = {"query": query}
        if time is not None:
            if time.tzinfo is None or time.utcoffset() is None:
                raise InvalidQueryError(f"the evaluation time must be timezone-aware, not {time.isoformat()}")
            form["time"] = f"{time.timestamp():.3f}"
        body = urllib.parse.urlencode(form).encode("ascii")
        response = self._send(body)
        return self._decode(response)

    # -- internals --

    def _request(self, body: bytes) -> HttpRequest:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        if self._signer is not None:
            headers = self._signer.sign("POST", self.query_url, headers, body)
        return HttpRequest("POST", self.query_url, headers, body, self._timeout)

    # The retry loop is the client's own, not urllib3's ``Retry`` (which botocore ships), because:
    # - every attempt is signed anew (SigV4 covers ``X-Amz-Date``), while ``Retry`` resends the request
    #   it was given from inside urllib3's connection pool;
    # - a 422 is retried or final depending on its body (CloudWatch's throttling or a limit of the
    #   query), while ``Retry.is_retry`` sees only the method, the status and whether Retry-After came;
    # - urllib3 2's backoff waits nothing before the first retry (``get_backoff_time`` is 0 after one
    #   error), and a throttled endpoint needs that pause;
    # - the transport is a plain callable over the standard library, so tests run without a network.
    def _send(self, body: bytes) -> HttpResponse:
        host = urllib.parse.urlsplit(self.query_url).netloc
        for attempt in range(1, self._max_attempts + 1):
            last = attempt == self._max_attempts
            request = self._request(body)  # signed anew for every attempt (fresh X-Amz-Date)
            try:
                response = self._transport(request)
            except TimeoutError as exc:
                raise PromQLTimeoutError(
                    f"no answer from {host} within {self._timeout:g} s; CloudWatch stops a query at 20 s: "
                    "shorten the query window or check the network path to the endpoint"
                ) from exc
            except PromQLError:
                raise
            except Exception as exc:  # any transport failure becomes a typed error, never a crash
                if last:
                    raise PromQLConnectionError(
                        f"could not reach {host} after {attempt} attempt(s): {type(exc).__name__}: {exc}"
                    ) from exc
                self._sleep(self._backoff(attempt, None))
                continue
            if 200 <= response.status < 300:
                return response
            if _is_retryable(response) and not last:
                self._sleep(self._backoff(attempt, response.headers))
                continue
            raise self._http_error(response, attempt, host)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _backoff(self, attempt: int, headers: Mapping[str, str] | None) -> float:
        delay: float = min(self._backoff_max, self._backoff_base * 2.0 ** (attempt - 1))
        retry_after = _header(headers or {}, "Retry-After")
        if retry_after is not None:
            with contextlib.suppress(ValueError):  # an HTTP-date: keep our own backoff
                delay = max(delay, min(self._backoff_max, float(retry_after)))
        return delay

    def _http_error(self, response: HttpResponse, attempts: int, host: str) -> PromQLError:
        status = response.status
        error_type, error = _error_envelope(response.body)
        detail = f"{error_type}: {error}" if error else _snippet(response.body)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        kwargs: dict[str, Any] = {"status": status, "error_type": error_type, "error": error}
        if _is_throttling(response):
            return PromQLThrottledError(
                f"{host} throttled the PromQL query (HTTP {status}){tries}: {detail}. "
                "Run the health check less often or with fewer metrics, or ask for a higher quota",
                **kwargs,
            )
        if status == 422:
            return PromQLLimitError(
                f"{host} could not execute the PromQL query (HTTP 422): {detail}. Not retried: this is "
                "a limit of the query, not throttling, and the same query would fail again. Shorten the "
                "window or narrow the query (CloudWatch: at most 500 series, 7 days including the "
                "lookback, 20 s)",
                **kwargs,
            )
        if status in (502, 503, 504):
            return PromQLUnavailableError(
                f"{host} is unavailable (HTTP {status}){tries}: {detail}. The next run will try again",
                **kwargs,
            )
        if status in (401, 403):
            return PromQLAuthError(
                f"{host} refused the credentials (HTTP {status}): {detail}. The caller needs "
                "cloudwatch:GetMetricData and cloudwatch:ListMetrics (CloudWatch) or aps:QueryMetrics "
                "(Amazon Managed Prometheus), and a clock within 5 minutes of AWS time",
                **kwargs,
            )
        if error_type is not None and error is not None and 400 <= status < 500:
            return PromQLQueryError(error_type, error, http_status=status)
        return PromQLHTTPError(f"{host} answered HTTP {status} to the PromQL query: {detail}", **kwargs)

    def _decode(self, response: HttpResponse) -> Mapping[str, Any]:
        try:
            payload = json.loads(response.body)
        except RecursionError:  # json.loads recurses once per level: a crafted body runs out of stack
            raise PromQLResponseError(
                f"the PromQL endpoint answered HTTP {response.status} with JSON nested too deeply to read "
                f"({len(response.body)} bytes); check that the base URL points at a Prometheus-compatible API"
            ) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise PromQLResponseError(
                f"the PromQL endpoint answered HTTP {response.status} with something that is not JSON "
                f"({_snippet(response.body)}); check that the base URL points at a Prometheus-compatible API"
            ) from exc
        if not isinstance(payload, Mapping):
            raise PromQLResponseError(
                f"the PromQL endpoint answered a JSON {type(payload).__name__}, not an object; "
                "check that the base URL points at a Prometheus-compatible API"
            )
        return payload


def _is_throttling(response: HttpResponse) -> bool:
    """A 429, or a 422 whose error type, message or ``x-amzn-ErrorType`` header names throttling."""
    if response.status == 429:
        return True
    if response.status != 422:
        return False
    error_type, error = _error_envelope(response.body)
    said = " ".join(
        part for part in (error_type, error, _header(response.headers, "x-amzn-ErrorType")) if part
    )
    return bool(_THROTTLING.search(said))


def _is_retryable(response: HttpResponse) -> bool:
    return response.status in _RETRYABLE or _is_throttling(response)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _error_envelope(body: bytes) -> tuple[str | None, str | None]:
    """``errorType`` and ``error`` (or an AWS-style ``message``) of an error body, as short text."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None
    if not isinstance(payload, Mapping):
        return None, None
    error_type = payload.get("errorType")
    error = payload.get("error")
    if error is None:
        error = payload.get("message") or payload.get("Message")  # AWS-style error bodies
    return (
        _field(error_type) if error_type is not None else ("unknown" if error is not None else None),
        _field(error) if error is not None else None,
    )


def _field(value: object) -> str:
    """A field of an error body as text: strings and numbers cut to the snippet length, anything
    else (a list, an object, nested to any depth) by its JSON type."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool | float) or (isinstance(value, int) and value.bit_length() <= 64):
        text = str(value)
    else:
        return "a JSON " + (
            "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "number"
        )
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "…"


def _snippet(body: bytes) -> str:
    text = body[:_SNIPPET].decode("utf-8", errors="replace").strip()
    if not text:
        return "empty body"
    return text + ("…" if len(body) > _SNIPPET else "")
