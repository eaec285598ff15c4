"""The OTLP probe never lets a token out: not in an error's text, its repr, its traceback, the
exceptions chained to it, nor what X-Ray records of it. Every failure of the HTTP stack is either
an answer (NO_ANSWER, retried) or a ProbeError naming a type."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aws_xray_sdk.core.models.throwable import Throwable

from tokenwarden.adapters import otlp_probe
from tokenwarden.adapters.otlp_probe import NO_ANSWER, OtlpProbe, ProbeError
from tokenwarden.domain.model import MalformedToken

MARK = "Zq7LeakMark"
TOKEN = f"{MARK}-0123456789abcdefghijklmnopqrstuvwxyzABCDEF"

# Values no bearer token can be, each carrying the mark so that any part of it can be found.
HOSTILE = {
    "crlf": f"{MARK}\r\nX-Injected: 1",
    "lf": f"{MARK}\nsecond-line",
    "double quote": f'{MARK}"}}, "x": "',
    "single quote": f"{MARK}'quoted'",
    "backslash": f"{MARK}\\u0000\\",
    "space": f"{MARK} {MARK}",
    "unicode": f"{MARK}tök€n\u2028",
    "nul": f"{MARK}\x00tail",
    "json": f'{{"token": "{MARK}", "nested": {{"a": [1, 2]}}}}',
    "100 KB": (MARK + "A" * 1013) * 100,
}


def leaks(error: BaseException, secret: str) -> list[str]:
    """Where `secret` (or its mark) shows in what logs, traces and dead letters could keep of `error`."""
    places: dict[str, str] = {
        "str": str(error),
        "repr": repr(error),
        "args": repr(error.args),
        "traceback": "".join(traceback.format_exception(error)),
        "traceback (chain forced)": "".join(
            traceback.format_exception(type(error), error, error.__traceback__, chain=True)
        ),
        "x-ray": repr(Throwable(error, traceback.extract_tb(error.__traceback__)).to_dict()),
    }
    linked = error.__cause__ or error.__context__
    while linked is not None:
        places[f"chained {type(linked).__name__}"] = f"{linked!s} {linked!r} {linked.args!r}"
        linked = linked.__cause__ or linked.__context__
    return [name for name, text in places.items() if secret in text or MARK in text]


def raised(call: Callable[[], object]) -> BaseException:
    with pytest.raises(Exception) as caught:
        call()
    return caught.value


class Recorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Recorder.seen.append(self.headers.get("Authorization", ""))
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def endpoint() -> Iterator[str]:
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/metrics"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_value_is_refused_before_any_request_and_never_quoted(endpoint: str, value: str) -> None:
    error = raised(lambda: OtlpProbe(endpoint).check(value))

    assert isinstance(error, MalformedToken)
    assert Recorder.seen == []
    assert leaks(error, value) == []
    assert error.__cause__ is None and error.__context__ is None


def test_the_http_librarys_own_error_on_a_crlf_header_is_redacted(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were the syntax check ever bypassed, http.client's ValueError quotes the header: it must
    not get out, nor hang on to the ProbeError that replaces it."""
    monkeypatch.setattr(otlp_probe, "check_token_syntax", lambda token: None)
    value = HOSTILE["crlf"]

    error = raised(lambda: OtlpProbe(endpoint).check(value))

    assert isinstance(error, ProbeError)
    assert str(error) == "the OTLP probe failed (ValueError)"
    assert error.__cause__ is None and error.__context__ is None and not error.__suppress_context__
    assert leaks(error, value) == []
    assert Recorder.seen == []


def _quoting(kind: type[BaseException]) -> Callable[..., Any]:
    def urlopen(request: Any, timeout: float) -> Any:
        header = request.get_header("Authorization")
        if kind is UnicodeEncodeError:
            raise UnicodeEncodeError("latin-1", header, 0, 1, f"cannot encode {header}")
        raise kind(f"refused {header!r} sent to {request.full_url}")

    return urlopen


@pytest.mark.parametrize(
    "kind",
    [ValueError, TypeError, UnicodeEncodeError, http.client.InvalidURL, LookupError, RuntimeError],
    ids=lambda kind: kind.__name__,
)
def test_any_other_failure_becomes_a_probe_error_naming_its_type_only(
    kind: type[BaseException], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", _quoting(kind))

    error = raised(lambda: OtlpProbe("https://monitoring.us-east-1.amazonaws.com/v1/metrics").check(TOKEN))

    assert isinstance(error, ProbeError)
    assert kind.__name__ in str(error)
    assert error.__cause__ is None and error.__context__ is None
    assert leaks(error, TOKEN) == []


@pytest.mark.parametrize(
    "kind",
    [
        ConnectionRefusedError,
        ConnectionResetError,
        TimeoutError,
        socket.timeout,
        socket.gaierror,
        ssl.SSLError,
        ssl.SSLCertVerificationError,
        urllib.error.URLError,
        http.client.RemoteDisconnected,
        http.client.BadStatusLine,
        http.client.IncompleteRead,
        http.client.LineTooLong,
        OSError,
    ],
    ids=lambda kind: kind.__name__,
)
def test_no_usable_answer_is_reported_as_no_answer(
    kind: type[BaseException], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Network, TLS and protocol failures are worth retrying; what they say goes nowhere."""

    def urlopen(request: Any, timeout: float) -> Any:
        header = request.get_header("Authorization")
        if kind is http.client.IncompleteRead:
            raise http.client.IncompleteRead(header.encode())
        raise kind(header)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)

    assert OtlpProbe("https://monitoring.us-east-1.amazonaws.com/v1/metrics").check(TOKEN) == NO_ANSWER


def test_an_http_refusal_is_its_status(endpoint: str) -> None:
    assert OtlpProbe(endpoint).check(TOKEN) == 401
    assert Recorder.seen == [f"Bearer {TOKEN}"]


def test_an_endpoint_that_does_not_speak_http_is_no_answer() -> None:
    """A garbled status line (http.client.BadStatusLine) from a real socket."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer_garbage() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"NOT-HTTP " + TOKEN.encode() + b"\r\n\r\n")

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.getsockname()[1]}/v1/metrics"
        assert OtlpProbe(url, timeout_seconds=5).check(TOKEN) == NO_ANSWER
    finally:
        thread.join(timeout=5)
        server.close()


def test_an_unreachable_endpoint_is_no_answer() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    assert OtlpProbe(f"http://127.0.0.1:{port}/v1/metrics", timeout_seconds=2).check(TOKEN) == NO_ANSWER
