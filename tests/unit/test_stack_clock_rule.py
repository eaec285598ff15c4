"""When a development process may take its time from the embedded stack, and how it does.

Only the CLI and the development tools ever ask; what ships has no such code
(tests/infra/test_shipped_code.py). Even they use the stack's clock only when boto3 really talks to
that stack: a TOKENWARDEN_STACK_URL left over in a shell must never change the time a run against
a real account believes it is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer

import pytest

from tokenwarden.local.clock import RemoteStackClock, StackClock, embedded_stack_url
from tokenwarden.local.stack import stack_http_handler

STACK = "http://127.0.0.1:4999"


@pytest.mark.parametrize(
    ("endpoint", "stack"),
    [
        ("http://127.0.0.1:5000", True),
        ("http://localhost:5000", True),
        ("http://[::1]:5000", True),
        (None, False),  # AWS itself
        ("https://secretsmanager.us-east-1.amazonaws.com", False),
        ("http://10.0.0.5:4566", False),
    ],
)
def test_the_stack_clock_is_used_only_against_the_stack_itself(endpoint: str | None, stack: bool) -> None:
    env = {"TOKENWARDEN_STACK_URL": STACK} | ({"AWS_ENDPOINT_URL": endpoint} if endpoint else {})
    assert embedded_stack_url(env) == (STACK if stack else None)


@pytest.mark.parametrize("stack_url", ["https://clock.example.com", "http://10.1.2.3:4999", "", "not a url"])
def test_a_stack_url_off_loopback_is_ignored_even_with_a_loopback_endpoint(stack_url: str) -> None:
    assert (
        embedded_stack_url({"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "TOKENWARDEN_STACK_URL": stack_url})
        is None
    )


def test_no_stack_url_is_no_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKENWARDEN_STACK_URL", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    assert embedded_stack_url() is None
    monkeypatch.setenv("TOKENWARDEN_STACK_URL", STACK + "/")
    assert embedded_stack_url() == STACK


@pytest.fixture
def served() -> Iterator[tuple[StackClock, str]]:
    clock = StackClock(start=datetime(2027, 3, 1, 9, 0, tzinfo=UTC))
    server = ThreadingHTTPServer(("127.0.0.1", 0), stack_http_handler(clock, None))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield clock, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_the_remote_clock_reads_and_moves_the_stacks_time_forward_only(
    served: tuple[StackClock, str],
) -> None:
    clock, url = served
    remote = RemoteStackClock(url)
    assert abs(remote.now() - clock.now()) < timedelta(seconds=5)
    later = datetime(2027, 3, 9, 9, 0, tzinfo=UTC)
    assert remote.advance_to(later) == later
    assert clock.now() >= later
    assert remote.advance_to(datetime(2027, 3, 2, tzinfo=UTC)) >= later  # never back
    assert clock.now() >= later


def test_the_remote_clock_refuses_a_naive_time(served: tuple[StackClock, str]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RemoteStackClock(served[1]).advance_to(datetime(2027, 3, 9))
