"""SQS's approximate message counts, worked out at most once a second per queue.

moto (5.2.5) works out a queue's attributes on every ``SendMessage`` (to read
``ContentBasedDeduplication``), its three approximate message counts among them, and each count
walks every message in the queue, reading the clock for each. A queue that collects a run's
notifications (the embedded stack's inbox, the tests') then costs a run time quadratic in its
messages: a third of a 5,000-principal rotation night. SQS documents these counts as approximate
and eventually consistent (they settle a minute after the producers stop, at the earliest), so
:func:`install` has moto work each one out at most once every ``MAX_AGE_SECONDS`` per queue and
answer the last figure in between: never kinder than SQS, only cheaper. Not a switch.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Final

from moto.sqs.models import Queue

__all__ = ["COUNTS", "PATCH_MARK", "install"]

COUNTS: Final = (
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
)
MAX_AGE_SECONDS = 1.0

# Set on each patched getter: moto's own count, which it keeps.
PATCH_MARK: Final = "__tokenwarden_counted_once_a_second__"
_lock = threading.Lock()


def _at_most_once_a_second(moto_s: Callable[[Any], int]) -> property:
    """`moto_s` (one of moto's counts), kept per queue for `MAX_AGE_SECONDS`."""
    kept: weakref.WeakKeyDictionary[Any, tuple[float, int]] = weakref.WeakKeyDictionary()

    def get(queue: Any) -> int:
        now = time.monotonic()
        last = kept.get(queue)
        if last is not None and now - last[0] < MAX_AGE_SECONDS:
            return last[1]
        value = moto_s(queue)
        kept[queue] = (now, value)
        return value

    setattr(get, PATCH_MARK, moto_s)
    return property(get)


def install() -> None:
    """Patch moto's Queue (idempotent)."""
    with _lock:
        for name in COUNTS:
            getter = getattr(Queue, name).fget
            if not hasattr(getter, PATCH_MARK):
                setattr(Queue, name, _at_most_once_a_second(getter))
