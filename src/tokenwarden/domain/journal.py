"""What the runs write down for the evidence report, beside the key records: health transitions,
repairs and refused takeovers.

Each is one append-only history record of the ledger (written once under its own key, never
rewritten, like the break-glass records), under the principal it is about (a health transition
under its team's principal). The key names the record's kind and time, so a retried write finds
its own record instead of writing a second one. Readers that do not know a kind skip it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from tokenwarden.domain.calendar import Span, free_parts, merged, quiet_dates
from tokenwarden.domain.registry import WEEKDAYS, ActivityProfile

# A silence threshold is at most a few weeks of working hours; a search past this finds none.
MAX_CROSSING_SEARCH_DAYS = 400


@dataclass(frozen=True)
class HistoryItem:
    """One history record as stored: its table keys (what a citation names) and its content."""

    pk: str
    sk: str
    record: dict[str, Any]

    @property
    def citation(self) -> str:
        return f"{self.pk}/{self.sk}"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class HealthRecord(_Record):
    """A health transition as the check announced it."""

    kind: Literal["health"] = "health"
    team: str
    event: str
    at: datetime
    previous: str | None = None
    current: str
    last_sample_at: datetime | None = None
    silent_active_hours: float | None = None
    silent_after_hours: float | None = None
    # When the working hours since the last sample reached the team's threshold (a silence's
    # start as the rules define it): the detection delay is `at` minus this.
    threshold_crossed_at: datetime | None = None

    @property
    def key(self) -> str:
        return f"health#{stamp(self.at)}#{self.event}"


class RepairRecord(_Record):
    """A principal's current key was found broken (deleted, expired or switched off out of band)
    and a replacement was started."""

    kind: Literal["repair"] = "repair"
    principal: str
    at: datetime
    reason: str
    credential_id: str | None = None
    alias: str | None = None

    @property
    def key(self) -> str:
        return f"repair#{stamp(self.at)}"


class TakeoverRefusedRecord(_Record):
    """A run refused to act on a principal whose user or secret is not TokenWarden's own. One a
    day at most: the refusal repeats every run until a person resolves it."""

    kind: Literal["takeover_refused"] = "takeover_refused"
    principal: str
    at: datetime
    finding: str

    @property
    def key(self) -> str:
        return f"takeover_refused#{self.at.astimezone(UTC):%Y%m%d}"


JournalRecord = HealthRecord | RepairRecord | TakeoverRefusedRecord


def stamp(at: datetime) -> str:
    """A time as it appears in a record's key: UTC, to the second, sortable."""
    return f"{at.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def threshold_crossed_at(
    profile: ActivityProfile, start: datetime, hours: float, snoozed: Sequence[Span] = ()
) -> datetime | None:
    """The instant when `hours` working hours of `profile` have passed since `start` (the inverse of
    :func:`tokenwarden.domain.health.active_hours`: holidays, quiet days and the `snoozed` spans do
    not count either), or None past the search horizon."""
    zone = ZoneInfo(profile.timezone)
    working = {WEEKDAYS.index(day) for day in profile.working_days}
    left = timedelta(hours=hours)
    start_utc = start.astimezone(UTC)
    day = start_utc.astimezone(zone).date()
    spans = merged(snoozed)
    for _ in range(MAX_CROSSING_SEARCH_DAYS):
        if day.weekday() in working and not quiet_dates(profile.holidays, profile.quiet_days, day, day):
            opens = datetime.combine(day, profile.start.replace(tzinfo=None), tzinfo=zone).astimezone(UTC)
            closes = datetime.combine(day, profile.end.replace(tzinfo=None), tzinfo=zone).astimezone(UTC)
            for lo, hi in free_parts(spans, max(opens, start_utc), closes):
                if hi - lo >= left:
                    return lo + left
                left -= hi - lo
        day += timedelta(days=1)
    return None
