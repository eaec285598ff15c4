"""A simulated, monotonic UTC clock for the embedded local stack and the tests.

The local stack's IAM extension stamps service-specific credentials with ``CreateDate`` and
``ExpirationDate`` and reports ``Expired`` once the clock passes the expiry. Tests and the demo need to
jump ahead by days without waiting, so the stack reads time from a :class:`StackClock` instead of the
wall clock: ``now()`` is a simulated base plus the real time elapsed since that base was set, and
:meth:`StackClock.advance_to` moves the base forward (never back).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

__all__ = ["StackClock", "default_clock", "set_default_clock"]


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
