"""What a principal's ledger says happened last, in the words an operator uses."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from tokenwarden.domain.model import LedgerEntry


@dataclass(frozen=True)
class LedgerEvent:
    """One thing that happened to a key: `kind` is onboarded, rotated, retired, offboarded,
    revoked or deleted."""

    kind: str
    at: datetime


def last_event(entries: Sequence[LedgerEntry]) -> LedgerEvent | None:
    """The newest thing that happened to any of a principal's keys, or None for an empty ledger.

    The first key ever activated is the onboarding; every later activation is a rotation."""
    events = [event for entry in entries for event in _events(entry, _first_activation(entries))]
    return max(events, key=lambda e: (e.at, e.kind)) if events else None


def _first_activation(entries: Iterable[LedgerEntry]) -> datetime | None:
    return min((e.activated_at for e in entries if e.activated_at is not None), default=None)


def _events(entry: LedgerEntry, first: datetime | None) -> list[LedgerEvent]:
    candidates = (
        (entry.activated_at, "onboarded" if entry.activated_at == first else "rotated"),
        (entry.deactivated_at, "offboarded" if entry.reason == "offboarded" else "retired"),
        (entry.revoked_at, "revoked"),
        (entry.deleted_at, "deleted"),
    )
    return [LedgerEvent(kind, at) for at, kind in candidates if at is not None]
