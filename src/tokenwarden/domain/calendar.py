"""Quiet time: what does not count toward a team's silence besides nights and non-working days. Pure.

Three kinds, all removed from a team's active hours (see :func:`tokenwarden.domain.health.active_hours`):

* **public holidays** of the calendar its activity profile names (``activity.holidays: DE`` or
  ``US-NY``: an ISO 3166-1 country code, optionally with a subdivision), from the ``holidays``
  library, as dates in the team's time zone;
* **quiet days** the registry lists (``activity.quiet_days``): single dates and inclusive ranges
  written ``2026-12-27..2027-01-01``, also in the team's time zone;
* **snoozes** (``tokenwarden health snooze``): spans of real time, recorded in the ledger (see
  :mod:`tokenwarden.domain.snooze`).

The ``holidays`` library is imported only when a calendar is named, so that a registry without one
(and the health check's cold start) never pays for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Annotated, NamedTuple

from pydantic import BeforeValidator, PlainSerializer

__all__ = [
    "MAX_QUIET_DAYS",
    "MAX_RANGE_DAYS",
    "DayRange",
    "QuietDay",
    "Span",
    "check_calendar",
    "covers",
    "day_range",
    "free_parts",
    "holiday_dates",
    "merged",
    "overlap",
    "quiet_dates",
]

MAX_QUIET_DAYS = 100
"""Entries in one ``quiet_days`` list: a year of shutdowns and bridge days fits many times over."""
MAX_RANGE_DAYS = 366
"""One range may cover at most a year: a longer quiet is a team to offboard, not a holiday."""
_CALENDAR = re.compile(r"(?P<country>[A-Z]{2})(?:-(?P<subdivision>[A-Z0-9]{1,5}))?")
_RANGE = re.compile(r"(?P<first>\d{4}-\d{2}-\d{2})\s*\.\.\s*(?P<last>\d{4}-\d{2}-\d{2})")
_SHOWN = 40


def _show(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


# --- Holiday calendars --------------------------------------------------------------------------------


def _split(code: str) -> tuple[str, str | None]:
    found = _CALENDAR.fullmatch(code)
    if found is None:
        raise ValueError(
            f"{_show(code)} is not a holiday calendar: write a country code, optionally with a "
            "subdivision, e.g. DE, DE-BY or US-NY"
        )
    return found["country"], found["subdivision"]


@cache
def check_calendar(code: str) -> str:
    """``code`` when the ``holidays`` library knows that country and subdivision; ValueError naming
    what it does not know (and the subdivisions it does) otherwise."""
    country, subdivision = _split(code)
    import holidays

    known = holidays.list_supported_countries()
    if country not in known:
        raise ValueError(
            f"unknown holiday calendar country {_show(country)} (use an ISO 3166-1 code the holidays "
            "library supports, such as DE, FR, GB or US)"
        )
    subdivisions = [s for s in known[country] if _CALENDAR.fullmatch(f"{country}-{s}")]
    if subdivision is not None and subdivision not in subdivisions:
        listed = ", ".join(subdivisions[:12]) + (", ..." if len(subdivisions) > 12 else "")
        has = f"it has {listed}" if subdivisions else "it has none"
        raise ValueError(f"{country} has no holiday subdivision {_show(subdivision)} ({has})")
    return code


@cache
def _holidays_of_year(code: str, year: int) -> frozenset[date]:
    import holidays

    country, subdivision = _split(code)
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))


def holiday_dates(code: str, first: date, last: date) -> frozenset[date]:
    """The public holidays (observed days included) of calendar ``code`` from ``first`` to ``last``."""
    found: set[date] = set()
    for year in range(first.year, last.year + 1):
        found |= {day for day in _holidays_of_year(code, year) if first <= day <= last}
    return frozenset(found)


# --- Quiet days ---------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class DayRange:
    """Consecutive quiet dates, ``first`` to ``last`` inclusive (one date when they are equal)."""

    first: date
    last: date

    def __str__(self) -> str:
        return self.first.isoformat() if self.first == self.last else f"{self.first}..{self.last}"

    def dates(self, first: date, last: date) -> Iterable[date]:
        """The range's dates from ``first`` to ``last``."""
        day = max(self.first, first)
        while day <= min(self.last, last):
            yield day
            day += timedelta(days=1)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{_show(text)} is not a date (write YYYY-MM-DD)") from None


def day_range(value: object) -> DayRange:
    """A ``quiet_days`` entry as the registry writes it: a date, or ``first..last`` (inclusive)."""
    if isinstance(value, DayRange):
        return value
    if isinstance(value, datetime):
        raise ValueError(f"{_show(value)} is a time: a quiet day is a date (write YYYY-MM-DD)")
    if isinstance(value, date):
        return DayRange(value, value)
    if not isinstance(value, str):
        raise ValueError(
            f"{_show(value)} is not a quiet day: write a date (2026-12-24) or a range (2026-12-27..2027-01-01)"
        )
    found = _RANGE.fullmatch(value.strip())
    if found is None:
        return DayRange(_date(value.strip()), _date(value.strip()))
    first, last = _date(found["first"]), _date(found["last"])
    if last < first:
        raise ValueError(f"the range {_show(value)} ends before it starts")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise ValueError(f"the range {_show(value)} is longer than {MAX_RANGE_DAYS} days")
    return DayRange(first, last)


QuietDay = Annotated[DayRange, BeforeValidator(day_range), PlainSerializer(str, return_type=str)]
"""A ``quiet_days`` entry of an activity profile; it reads back what it writes (``2026-12-24``,
``2026-12-27..2027-01-01``), so defaults merge with overrides as plain values do."""


def quiet_dates(
    calendar: str | None, quiet_days: Sequence[DayRange], first: date, last: date
) -> frozenset[date]:
    """Every holiday of ``calendar`` and every quiet day from ``first`` to ``last``; no import of the
    ``holidays`` library when no calendar is named."""
    found = {day for days in quiet_days for day in days.dates(first, last)}
    if calendar is not None:
        found |= holiday_dates(calendar, first, last)
    return frozenset(found)


# --- Spans of real time (snoozes) ---------------------------------------------------------------------


class Span(NamedTuple):
    """A span of real time, ``start`` included and ``end`` not (both aware)."""

    start: datetime
    end: datetime


def merged(spans: Iterable[Span]) -> list[Span]:
    """The spans sorted, overlapping and touching ones joined, empty ones dropped."""
    result: list[Span] = []
    for span in sorted(s for s in spans if s.end > s.start):
        if result and span.start <= result[-1].end:
            result[-1] = Span(result[-1].start, max(result[-1].end, span.end))
        else:
            result.append(span)
    return result


def overlap(spans: Sequence[Span], start: datetime, end: datetime) -> timedelta:
    """How much of ``[start, end)`` the (merged, non-overlapping) ``spans`` cover."""
    total = timedelta()
    for span in spans:
        lo, hi = max(span.start, start), min(span.end, end)
        if hi > lo:
            total += hi - lo
    return total


def free_parts(spans: Sequence[Span], start: datetime, end: datetime) -> list[Span]:
    """``[start, end)`` without the (merged, sorted) ``spans``: the parts they leave, in order."""
    parts: list[Span] = []
    at = start
    for span in spans:
        if span.end <= at or span.start >= end:
            continue
        if span.start > at:
            parts.append(Span(at, span.start))
        at = max(at, span.end)
    if end > at:
        parts.append(Span(at, end))
    return parts


def covers(spans: Sequence[Span], at: datetime) -> bool:
    """Whether ``at`` falls in one of ``spans``."""
    return any(span.start <= at < span.end for span in spans)
