"""Snoozes: planned quiet for one team, said with ``tokenwarden health snooze`` and kept in the ledger.

Each snooze and each unsnooze is a record written once and never rewritten: who, when, until when
and why. A team's snooze lasts from its record until its ``until``, or until the team's next record
(a new snooze replaces it, an unsnooze ends it). Snoozed time does not count toward the team's
silence (:func:`tokenwarden.domain.health.active_hours`), past snoozes included: a silence that
began before a week of snooze is judged without that week. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tokenwarden.domain.calendar import Span
from tokenwarden.domain.reason import MAX_REASON_LENGTH, checked_reason

__all__ = [
    "MAX_SNOOZE_DAYS",
    "MAX_SNOOZE_REASON",
    "Snooze",
    "SnoozeError",
    "SnoozeRecord",
    "active_snoozes",
    "checked_snooze_reason",
    "snooze_end",
    "snooze_spans",
]

MAX_SNOOZE_DAYS = 90
"""A snooze ends within a key's lifetime: longer quiet is the registry's (``quiet_days``), reviewed in git."""
MAX_SNOOZE_REASON = 200
"""A reason is shown in every ``status`` and ``health`` line of the team: short, like a commit subject."""
MAX_ACTOR = 2048


class SnoozeError(ValueError):
    """A snooze that cannot be recorded (its end in the past or too far ahead); the message says why."""


def checked_snooze_reason(raw: str, what: str = "the reason") -> str:
    """``raw`` stripped, when it is one printable line of at most :data:`MAX_SNOOZE_REASON` characters."""
    reason = checked_reason(
        raw, what, needed="a snooze needs a reason, recorded in the ledger and shown by status"
    )
    if len(reason) > MAX_SNOOZE_REASON:
        raise SnoozeError(f"{what} is {len(reason)} characters; keep it to {MAX_SNOOZE_REASON} or fewer")
    return reason


def _one_line(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must be one line of printable text")
    return value


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SnoozeRecord(_Value):
    """One snooze or unsnooze as the ledger keeps it."""

    team: str = Field(min_length=1, max_length=64)
    action: Literal["snooze", "unsnooze"]
    at: datetime
    """When it was recorded: a snooze starts here."""
    by: Annotated[str, AfterValidator(_one_line)] = Field(min_length=1, max_length=MAX_ACTOR)
    """The identity AWS authenticated for the request (the operator's ARN)."""
    until: datetime | None = None
    """A snooze's end (excluded); None for an unsnooze."""
    reason: Annotated[str, AfterValidator(_one_line)] | None = Field(
        default=None, max_length=MAX_REASON_LENGTH
    )


class Snooze(_Value):
    """A team's snooze in force: what ``status`` and ``health`` show."""

    team: str
    since: datetime
    until: datetime
    reason: str | None
    by: str


def _by_team(records: Iterable[SnoozeRecord]) -> dict[str, list[SnoozeRecord]]:
    teams: dict[str, list[SnoozeRecord]] = {}
    for record in sorted(records, key=lambda r: r.at):
        teams.setdefault(record.team, []).append(record)
    return teams


def _spans_of(records: Sequence[SnoozeRecord]) -> list[tuple[Span, SnoozeRecord]]:
    """Each snooze of one team (records in time order) as the span it lasted, cut by the next record."""
    spans = []
    for index, record in enumerate(records):
        if record.action != "snooze" or record.until is None:
            continue
        end = record.until
        if index + 1 < len(records):
            end = min(end, records[index + 1].at)
        if end > record.at:
            spans.append((Span(record.at, end), record))
    return spans


def snooze_spans(records: Iterable[SnoozeRecord]) -> dict[str, list[Span]]:
    """Every team's snoozes as spans of real time, past ones included."""
    return {
        team: [span for span, _ in _spans_of(team_records)]
        for team, team_records in _by_team(records).items()
    }


def active_snoozes(records: Iterable[SnoozeRecord], now: datetime) -> dict[str, Snooze]:
    """The snooze in force at ``now`` for each team that has one."""
    found: dict[str, Snooze] = {}
    for team, team_records in _by_team(records).items():
        for span, record in _spans_of(team_records):
            if span.start <= now < span.end:
                found[team] = Snooze(
                    team=team, since=span.start, until=span.end, reason=record.reason, by=record.by
                )
    return found


def snooze_end(raw: str, timezone: str, now: datetime) -> datetime:
    """``--until`` as an instant (UTC): a date alone is the start of that day in the team's time zone
    (the team counts again from that morning), a time without an offset is the team's local time.
    It must be after ``now`` and at most :data:`MAX_SNOOZE_DAYS` days ahead."""
    text = raw.strip()
    try:
        parsed: date | datetime = (
            date.fromisoformat(text)
            if len(text) == 10
            else datetime.fromisoformat(text.replace("Z", "+00:00"))
        )
    except ValueError:
        raise SnoozeError(
            f"--until {text[:40]!r} is not a date or time (e.g. 2027-01-04, or 2027-01-04T09:00 in the "
            "team's time zone, or 2027-01-04T08:00Z)"
        ) from None
    zone = ZoneInfo(timezone)
    if not isinstance(parsed, datetime):
        parsed = datetime.combine(parsed, time(0, 0), tzinfo=zone)
    elif parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    until = parsed.astimezone(UTC)
    if until <= now:
        raise SnoozeError(f"--until {text!r} is not in the future (it is {now:%Y-%m-%d %H:%M} UTC now)")
    if until - now > timedelta(days=MAX_SNOOZE_DAYS):
        raise SnoozeError(
            f"--until {text!r} is more than {MAX_SNOOZE_DAYS} days ahead; a longer quiet belongs in the "
            "registry (activity.quiet_days), reviewed in git"
        )
    return until
