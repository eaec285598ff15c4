"""A simulated, monotonic UTC clock for the embedded local stack and the tests.

The local stack's IAM extension stamps service-specific credentials with ``CreateDate`` and
``ExpirationDate`` and reports ``Expired`` once the clock passes the expiry. Tests and the demo need to
jump ahead by days without waiting, so the stack reads time from a :class:`StackClock` instead of the
wall clock: ``now()`` is a simulated base plus the real time elapsed since that base was set, and
:meth:`StackClock.advance_to` moves the base forward (never back).
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
import time
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

__all__ = [
    "CLOCK_PATH",
    "RemoteStackClock",
    "StackClock",
    "default_clock",
    "embedded_stack_url",
    "set_default_clock",
]

CLOCK_PATH = "/_tokenwarden/clock"  # the embedded stack's clock, served on its control URL
# Loopback, but the stack may be busy with a night of background rotations.
CLOCK_TIMEOUT_SECONDS = 30


def _require_aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got a naive datetime {value.isoformat()})")
    return value.astimezone(UTC)


class StackClock:
    """Monotonic simulated UTC time: real elapsed time added to a base that only moves forward."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._base = _require_aware(start, "start") if start is not None else datetime.now(UTC)
        self._base_monotonic = time.monotonic()

    def _now_locked(self) -> datetime:
        return self._base + timedelta(seconds=time.monotonic() - self._base_monotonic)

    def now(self) -> datetime:
        """The simulated current time, timezone-aware UTC."""
        with self._lock:
            return self._now_locked()

    def advance_to(self, at: datetime) -> datetime:
        """Jump forward so that ``now() == at``; a target in the past leaves the clock where it is.

        Returns the clock's time right after the call (``at``, or the current time when ``at`` is
        earlier than it).
        """
        target = _require_aware(at, "at")
        with self._lock:
            current = self._now_locked()
            if target <= current:
                return current
            self._base = target
            self._base_monotonic = time.monotonic()
            return target

    def advance(self, delta: timedelta) -> datetime:
        """Jump forward by ``delta`` (a negative delta is ignored); returns the new time."""
        with self._lock:
            current = self._now_locked()
            if delta <= timedelta(0):
                return current
            self._base = current + delta
            self._base_monotonic = time.monotonic()
            return self._base

    def __repr__(self) -> str:
        return f"StackClock(now={self.now().isoformat()})"


_default_lock = threading.Lock()
_default: StackClock | None = None


def default_clock() -> StackClock:
    """The process-wide clock of the local stack (created on first use, starting at real time)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = StackClock()
        return _default


def set_default_clock(clock: StackClock | None) -> None:
    """Replace the process-wide clock (tests); ``None`` makes the next ``default_clock()`` start fresh."""
    global _default
    with _default_lock:
        _default = clock


class RemoteStackClock:
    """The embedded stack's clock, read (and moved) over its loopback control URL: what a process
    other than the stack's own (the CLI, a handler run by hand) uses as its time."""

    def __init__(self, stack_url: str) -> None:
        self._url = stack_url.rstrip("/") + CLOCK_PATH

    def now(self) -> datetime:
        with urllib.request.urlopen(self._url, timeout=CLOCK_TIMEOUT_SECONDS) as response:  # noqa: S310 - loopback only
            return datetime.fromisoformat(json.loads(response.read())["now"])

    def advance_to(self, at: datetime) -> datetime:
        """Move the stack's clock forward to `at` (never back); its time after the call."""
        request = urllib.request.Request(  # noqa: S310 - loopback only
            self._url,
            data=json.dumps({"at": _require_aware(at, "at").isoformat()}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=CLOCK_TIMEOUT_SECONDS) as response:  # noqa: S310
            return datetime.fromisoformat(json.loads(response.read())["now"])


def embedded_stack_url(env: Mapping[str, str] | None = None) -> str | None:
    """TOKENWARDEN_STACK_URL, only when boto3 really talks to the embedded stack: it and
    AWS_ENDPOINT_URL both on loopback. A stack URL left over in a shell must never change the time
    a run against a real account believes it is; such a run gets None."""
    env = os.environ if env is None else env
    stack_url = env.get("TOKENWARDEN_STACK_URL", "")
    endpoint = env.get("AWS_ENDPOINT_URL", "")
    if stack_url and endpoint and loopback(stack_url) and loopback(endpoint):
        return stack_url.rstrip("/")
    return None


def loopback(url: str) -> bool:
    """Whether `url`'s host is this machine (localhost or a loopback address)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
