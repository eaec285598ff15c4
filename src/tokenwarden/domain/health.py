"""Health of each team's Claude Code telemetry: who should be reporting, who went quiet, and why. Pure.

The health check knows which teams *should* report (the registry) and when each one last did (the
newest sample per team from the PromQL queries). A team is judged only over its **active hours**: the
working days and hours of its activity profile, in its own time zone. Nights and non-working days do
not count toward silence, so a team that stops on Friday evening is not silent on Sunday. Neither do
its public holidays, its quiet days and its snoozes (:mod:`tokenwarden.domain.calendar`).

States and transitions (one evaluation per run, every 15 minutes; ``previous`` is what the last run saved):

* A team the health check has not known before starts ``never_reported`` (``first_seen_at`` = now)
  *without* an alert. Once the active hours since ``first_seen_at`` reach the profile's
  ``silent_after_hours``, ``team_never_reported`` fires — exactly once; there is no reminder for it.
* A team with a sample is ``healthy`` while the active hours since its newest sample stay below
  ``silent_after_hours``, and ``silent`` from then on.
* ``healthy``/``recovered`` → ``silent`` emits ``team_silent`` (so does a team first seen, or first
  reporting, when it is already silent).
* Still ``silent`` and at least ``reminder_hours`` (wall-clock) since the last alert →
  ``team_silent_reminder``; the state does not change.
* ``silent``, or ``never_reported`` after its alert went out → ``recovered`` with ``team_recovered``
  as soon as a sample makes the team healthy. A ``never_reported`` team that reports before its alert
  becomes ``healthy`` without one.
* ``recovered`` becomes ``healthy`` on the next evaluation without a transition.

At most one transition per team per evaluation, and none when nothing changed: running the check
every 15 minutes on the same data alerts once, not every run. ``since`` moves only when the state changes;
``last_alert_at`` moves only when a transition is emitted. A team removed from the registry loses its
record; if it keeps sending, it shows up in ``unregistered_teams`` (drift).

:func:`likely_causes` reads the team's ledger entries to say *why* it may have gone quiet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from tokenwarden.domain.calendar import Span, covers, merged, overlap, quiet_dates
from tokenwarden.domain.model import Credential, LedgerEntry
from tokenwarden.domain.registry import WEEKDAYS, ActivityProfile, Registry

__all__ = [
    "DEFAULT_POLICY",
    "UNATTRIBUTED",
    "Evaluation",
    "HealthInputError",
    "HealthPolicy",
    "HealthState",
    "TeamRecord",
    "Transition",
    "active_hours",
    "evaluate",
    "in_quiet_time",
    "likely_causes",
    "team_profiles",
]

UNATTRIBUTED = "unattributed"
"""The key under which telemetry without a ``team.id`` may appear in ``last_samples``; never drift."""

TransitionEvent = Literal["team_silent", "team_recovered", "team_never_reported", "team_silent_reminder"]


class HealthInputError(ValueError):
    """An input the health evaluation cannot judge (a time without a time zone)."""


class HealthState(StrEnum):
    NEVER_REPORTED = "never_reported"
    HEALTHY = "healthy"
    SILENT = "silent"
    RECOVERED = "recovered"


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True)


class HealthPolicy(_Value):
    """Thresholds shared by every team (the silence threshold itself is per team, in its profile)."""

    reminder_hours: float = Field(default=24.0, gt=0)
    """Re-alert this often (wall-clock hours since the last alert) while a team stays silent."""
    cause_window_hours: float = Field(default=48.0, ge=0)
    """A key event this close before the last sample (or any time after it) is a likely cause."""


DEFAULT_POLICY = HealthPolicy()


class TeamRecord(_Value):
    """What the health check remembers about one team between runs (kept in the ledger table)."""

    team: str
    state: HealthState
    since: datetime
    """When the current state began."""
    first_seen_at: datetime
    """The first evaluation that knew this team (a proxy for when it was registered)."""
    last_sample_at: datetime | None = None
    last_alert_at: datetime | None = None


class Transition(_Value):
    """A change worth a notification."""

    team: str
    event: TransitionEvent
    previous: HealthState | None
    current: HealthState
    last_sample_at: datetime | None
    silent_active_hours: float
    """Active hours since the last sample (since ``first_seen_at`` for a team that never reported)."""


class Evaluation(_Value):
    records: dict[str, TeamRecord]
    """The new record of every registered team, to save for the next run."""
    transitions: tuple[Transition, ...]
    unregistered_teams: tuple[str, ...]
    """Teams seen in telemetry that the registry does not know (drift), sorted."""
    minutes_since_last_sample: dict[str, float | None]
    """Per registered team; None when it never reported."""


# --- Active hours -------------------------------------------------------------------------------------


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise HealthInputError(f"{what} must be timezone-aware, not {value.isoformat()}")
    return value.astimezone(UTC)


def active_hours(
    profile: ActivityProfile, start: datetime, end: datetime, snoozed: Sequence[Span] = ()
) -> float:
    """Working hours of ``profile`` between two aware datetimes, in the profile's time zone.

    Each working day contributes the elapsed time between its local ``start`` and ``end`` that falls
    inside ``[start, end]``; nights and non-working days count 0. Elapsed time is real time, so a
    09:00-18:00 day is 9 h even on a daylight-saving change day, and a window that spans the change
    itself (say 00:00-06:00) is an hour shorter or longer that day. A local time that does not exist
    (skipped by the change) is read with the offset before the change. ``end <= start`` gives 0.

    Quiet time counts 0 as well (:mod:`tokenwarden.domain.calendar`): the public holidays of the
    profile's calendar and its quiet days (whole local dates), and the ``snoozed`` spans.
    """
    start_utc = _aware(start, "start")
    end_utc = _aware(end, "end")
    if end_utc <= start_utc:
        return 0.0
    zone = ZoneInfo(profile.timezone)
    working = {WEEKDAYS.index(day) for day in profile.working_days}
    day = start_utc.astimezone(zone).date()
    last_day = end_utc.astimezone(zone).date()
    quiet = quiet_dates(profile.holidays, profile.quiet_days, day, last_day)
    spans = merged(snoozed)
    total = timedelta()
    while day <= last_day:
        if day.weekday() in working and day not in quiet:
            opens = datetime.combine(day, profile.start.replace(tzinfo=None), tzinfo=zone).astimezone(UTC)
            closes = datetime.combine(day, profile.end.replace(tzinfo=None), tzinfo=zone).astimezone(UTC)
            lo = max(opens, start_utc)
            hi = min(closes, end_utc)
            if hi > lo:
                total += hi - lo - overlap(spans, lo, hi)
        day += timedelta(days=1)
    return total.total_seconds() / 3600


def in_quiet_time(profile: ActivityProfile, snoozed: Sequence[Span], at: datetime) -> bool:
    """Whether ``at`` falls in a snooze, or on a holiday or quiet day of the profile (its local date)."""
    at_utc = _aware(at, "at")
    today = at_utc.astimezone(ZoneInfo(profile.timezone)).date()
    return covers(snoozed, at_utc) or today in quiet_dates(profile.holidays, profile.quiet_days, today, today)


def team_profiles(registry: Registry) -> dict[str, ActivityProfile]:
    """One activity profile per team: the team principal's own.

    Developer principals roll up to their team and never get a profile (or a health record) of their
    own. A parsed registry always has the team principal a developer names; a team known only through
    developers (possible only in a registry built by hand) gets the registry's default profile.
    """
    profiles = {p.team: p.activity for p in registry.principals if p.kind == "team"}
    for p in registry.principals:
        profiles.setdefault(p.team, registry.defaults.activity)
    return profiles


# --- Evaluation ---------------------------------------------------------------------------------------


def _newest(*values: datetime | None) -> datetime | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _alerted_in_state(record: TeamRecord) -> bool:
    return record.last_alert_at is not None and record.last_alert_at >= record.since


def _judge(
    previous: TeamRecord | None,
    has_sample: bool,
    over_threshold: bool,
    now: datetime,
    policy: HealthPolicy,
) -> tuple[HealthState, TransitionEvent | None]:
    """The new state and the transition to emit (if any), from the previous record and what is known now."""
    before = previous.state if previous is not None else None
    if not has_sample:
        alerted = (
            previous is not None and before is HealthState.NEVER_REPORTED and _alerted_in_state(previous)
        )
        if over_threshold and not alerted:
            return HealthState.NEVER_REPORTED, "team_never_reported"
        return HealthState.NEVER_REPORTED, None
    if over_threshold:
        if previous is None or before is not HealthState.SILENT:
            return HealthState.SILENT, "team_silent"
        if previous.last_alert_at is None:
            return HealthState.SILENT, "team_silent"  # a silent record that never alerted: alert now
        if now - previous.last_alert_at >= timedelta(hours=policy.reminder_hours):
            return HealthState.SILENT, "team_silent_reminder"
        return HealthState.SILENT, None
    if before is HealthState.SILENT or (
        previous is not None and before is HealthState.NEVER_REPORTED and _alerted_in_state(previous)
    ):
        return HealthState.RECOVERED, "team_recovered"
    return HealthState.HEALTHY, None


def _checked_record(team: str, before: TeamRecord | None) -> TeamRecord | None:
    """The saved record, refused when a time in it is naive (it would be read in the wrong zone)."""
    if before is not None:
        for what, value in (("since", before.since), ("first_seen_at", before.first_seen_at)):
            _aware(value, f"the saved {what} of {team!r}")
    return before


def last_sample(team: str, before: TeamRecord | None, observed: datetime | None) -> datetime | None:
    """The newer of the saved and the observed last sample: a query window shorter than a silence
    must not make the team forget when it last reported."""
    saved = before.last_sample_at if before is not None else None
    return _newest(_aware(saved, f"the saved last sample of {team!r}") if saved else None, observed)


def next_record(
    team: str,
    before: TeamRecord | None,
    state: HealthState,
    event: TransitionEvent | None,
    last_sample_at: datetime | None,
    now: datetime,
) -> TeamRecord:
    """The record to save: ``since`` moves only with the state, ``last_alert_at`` only with an alert."""
    if before is None:
        return TeamRecord(
            team=team,
            state=state,
            since=now,
            first_seen_at=now,
            last_sample_at=last_sample_at,
            last_alert_at=now if event is not None else None,
        )
    return TeamRecord(
        team=team,
        state=state,
        since=before.since if before.state is state else now,
        first_seen_at=before.first_seen_at,
        last_sample_at=last_sample_at,
        last_alert_at=now if event is not None else before.last_alert_at,
    )


def minutes_since(last_sample_at: datetime | None, now: datetime) -> float | None:
    """Minutes since the newest sample (never negative); None for a team that never reported."""
    if last_sample_at is None:
        return None
    return max(0.0, (now - last_sample_at).total_seconds() / 60)


def judge_team(
    team: str,
    profile: ActivityProfile,
    before: TeamRecord | None,
    observed: datetime | None,
    now: datetime,
    policy: HealthPolicy = DEFAULT_POLICY,
    snoozed: Sequence[Span] = (),
) -> tuple[TeamRecord, Transition | None]:
    """One team's new record, and the transition to announce (if any), at ``now`` (aware, UTC).

    ``snoozed`` are the team's snoozes: like its holidays and quiet days they do not count toward
    silence, and no reminder goes out while one of them lasts (it goes out after, if still silent).
    """
    before = _checked_record(team, before)
    newest = last_sample(team, before, observed)
    first_seen_at = before.first_seen_at if before is not None else now
    quiet_hours = active_hours(profile, newest or first_seen_at, now, snoozed)
    state, event = _judge(
        before,
        has_sample=newest is not None,
        over_threshold=quiet_hours >= profile.silent_after_hours,
        now=now,
        policy=policy,
    )
    if event == "team_silent_reminder" and in_quiet_time(profile, snoozed, now):
        event = None
    transition = None
    if event is not None:
        transition = Transition(
            team=team,
            event=event,
            previous=before.state if before is not None else None,
            current=state,
            last_sample_at=newest,
            silent_active_hours=quiet_hours,
        )
    return next_record(team, before, state, event, newest, now), transition


def evaluate(
    registry: Registry,
    last_samples: Mapping[str, datetime],
    previous: Mapping[str, TeamRecord],
    now: datetime,
    policy: HealthPolicy = DEFAULT_POLICY,
    snoozes: Mapping[str, Sequence[Span]] | None = None,
) -> Evaluation:
    """Judge every registered team at ``now``.

    ``last_samples`` maps a team id to the time of its newest sample in the query window (a team
    missing from it had none there); ``previous`` holds the records the last run saved. The record
    keeps the newer of its saved last sample and the observed one, so a query window shorter than a
    silence does not forget when the team last reported. ``snoozes`` maps a team to its snoozes
    (:func:`judge_team`). See the module docstring for the rules.
    """
    now_utc = _aware(now, "now")
    observed = {team: _aware(at, f"the last sample of {team!r}") for team, at in last_samples.items()}
    profiles = team_profiles(registry)
    snoozed = snoozes or {}
    judged = [
        judge_team(
            team,
            profiles[team],
            previous.get(team),
            observed.get(team),
            now_utc,
            policy,
            snoozed.get(team, ()),
        )
        for team in sorted(profiles)
    ]
    return Evaluation(
        records={record.team: record for record, _ in judged},
        transitions=tuple(transition for _, transition in judged if transition is not None),
        unregistered_teams=tuple(sorted(set(observed) - set(profiles) - {UNATTRIBUTED})),
        minutes_since_last_sample={
            record.team: minutes_since(record.last_sample_at, now_utc) for record, _ in judged
        },
    )


# --- Likely causes ------------------------------------------------------------------------------------

Cause = tuple[datetime, str]
"""A key event that may explain a silence: when it happened, and what to tell the team."""


@dataclass(frozen=True)
class CauseWindow:
    """Which key events count as causes: those after the last sample or at most ``window`` before it."""

    last_sample_at: datetime
    window: timedelta

    def relevant(self, at: datetime | None) -> datetime | None:
        """``at`` in UTC when it falls in the window, else None."""
        if at is None:
            return None
        at_utc = _aware(at, "a ledger time")
        return at_utc if at_utc >= self.last_sample_at - self.window else None

    def relative(self, at: datetime) -> str:
        return _relative(at, self.last_sample_at)


def _when(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _name(entry: LedgerEntry) -> str:
    return entry.alias or entry.credential_id or f"version {entry.version_id}"


def _relative(at: datetime, last_sample_at: datetime) -> str:
    if at > last_sample_at:
        return "after the last sample"
    return f"{(last_sample_at - at).total_seconds() / 3600:.1f} h before the last sample"


def _is_revoke(entry: LedgerEntry) -> bool:
    return entry.revoked_at is not None or (entry.reason is not None and "revoke" in entry.reason.lower())


def _is_current(entry: LedgerEntry, current: Credential | None) -> bool:
    return current is not None and entry.credential_id == current.id


def _previous_key(
    entry: LedgerEntry, activated_at: datetime, entries: Iterable[LedgerEntry]
) -> LedgerEntry | None:
    """The key of the same principal that was current just before ``entry`` became current."""
    earlier = [
        (e.activated_at, e)
        for e in entries
        if e.principal == entry.principal and e.activated_at is not None and e.activated_at < activated_at
    ]
    return max(earlier, key=lambda item: item[0])[1] if earlier else None


def revoke_cause(entry: LedgerEntry, window: CauseWindow) -> Cause | None:
    """A person cut this key off (``tokenwarden revoke``) in the window."""
    at = window.relevant(entry.revoked_at or entry.deactivated_at or entry.deleted_at)
    if at is None:
        return None
    by = f" by {entry.revoked_by}" if entry.revoked_by else ""
    why = f" ({entry.reason})" if entry.reason else ""
    return (
        at,
        f"key {_name(entry)} was revoked{by}{why} at {_when(at)}, {window.relative(at)}: "
        "every export with it is refused",
    )


def revoke_causes(entries: Iterable[LedgerEntry], window: CauseWindow | None) -> list[Cause]:
    if window is None:
        return []
    return [cause for e in entries if _is_revoke(e) and (cause := revoke_cause(e, window)) is not None]


def current_revoked(
    entries: Iterable[LedgerEntry], current: Credential | None, window: CauseWindow | None
) -> bool:
    """The current key's own revoke is a cause: its being Inactive says nothing more."""
    if window is None:
        return False
    return any(_is_revoke(e) and _is_current(e, current) and revoke_cause(e, window) for e in entries)


def retirement_cause(entry: LedgerEntry, window: CauseWindow) -> Cause | None:
    """A key that is not current was deactivated, or deleted while still active, in the window."""
    deactivated = window.relevant(entry.deactivated_at)
    if deactivated is not None:
        return (
            deactivated,
            f"previous key {_name(entry)} was deactivated at {_when(deactivated)} "
            f"({window.relative(deactivated)}): laptops that never picked up the new key "
            "are now refused",
        )
    deleted = window.relevant(entry.deleted_at) if entry.deactivated_at is None else None
    if deleted is not None:
        return (
            deleted,
            f"key {_name(entry)} was deleted while still active at {_when(deleted)} "
            f"({window.relative(deleted)}): laptops still using it are refused",
        )
    return None


def retirement_causes(
    entries: Iterable[LedgerEntry], current: Credential | None, window: CauseWindow | None
) -> list[Cause]:
    """Retired or deleted keys other than the current one (revokes are their own cause)."""
    if window is None:
        return []
    return [
        cause
        for e in entries
        if not _is_revoke(e) and not _is_current(e, current) and e.activated_at is not None
        if (cause := retirement_cause(e, window)) is not None
    ]


def rotation_cause(
    entry: LedgerEntry, activated: datetime, entries: Iterable[LedgerEntry], window: CauseWindow
) -> Cause | None:
    """``entry``'s key became current in the window, replacing its principal's key before it."""
    rotated = window.relevant(activated)
    if rotated is None:
        return None
    old = _previous_key(entry, activated, entries)
    was = (
        f"key {_name(old)} was rotated to {_name(entry)}"
        if old is not None
        else f"key {_name(entry)} was rotated in"
    )
    return (
        rotated,
        f"{was} at {_when(rotated)}, {window.relative(rotated)}: laptops may still use the old key",
    )


def rotation_causes(entries: Sequence[LedgerEntry], window: CauseWindow | None) -> list[Cause]:
    """Keys that became current in the window, each principal's first key excepted."""
    if window is None:
        return []
    first_activation = {
        principal: min(e.activated_at for e in entries if e.principal == principal and e.activated_at)
        for principal in {e.principal for e in entries if e.activated_at is not None}
    }
    causes: list[Cause] = []
    for entry in entries:
        activated = entry.activated_at
        if activated is None or activated == first_activation.get(entry.principal):
            continue
        cause = rotation_cause(entry, activated, entries, window)
        if cause is not None:
            causes.append(cause)
    return causes


def unusable_key_cause(current: Credential | None, revoked: bool, now: datetime) -> str | None:
    """The current key cannot be used: missing, expired, or Inactive (unless a revoke already said so)."""
    if current is None:
        return "no current key: nothing the team sends can be accepted"
    expires_at = _aware(current.expires_at, "the key's expiry") if current.expires_at else None
    if current.status == "Expired" or (expires_at is not None and expires_at <= now):
        when = f" at {_when(expires_at)}" if expires_at is not None else ""
        return f"current key {current.alias} expired{when}: every export with it is refused"
    if current.status == "Inactive" and not revoked:
        return f"current key {current.alias} is Inactive: every export with it is refused"
    return None


def expiring_key_cause(current: Credential | None, now: datetime, window: timedelta) -> str | None:
    """The current key still works, but expires within ``window``."""
    if current is None or current.status == "Expired" or current.expires_at is None:
        return None
    expires_at = _aware(current.expires_at, "the key's expiry")
    if expires_at <= now or expires_at - now > window:
        return None
    hours = (expires_at - now).total_seconds() / 3600
    return (
        f"current key {current.alias} expires at {_when(expires_at)} (in {hours:.1f} h): "
        "it needs a rotation now"
    )


def current_key_causes(
    current: Credential | None, revoked: bool, now: datetime, window: timedelta
) -> tuple[list[str], list[str]]:
    """What the current key's own state explains: (unusable, expiring), at most one of them."""
    unusable = unusable_key_cause(current, revoked, now)
    if unusable is not None:
        return [unusable], []
    expiring = expiring_key_cause(current, now, window)
    return [], [expiring] if expiring is not None else []


def _newest_first(found: list[Cause]) -> list[str]:
    return [text for _, text in sorted(found, key=lambda item: item[0], reverse=True)]


def likely_causes(
    entries: Sequence[LedgerEntry],
    current: Credential | None,
    last_sample_at: datetime | None,
    now: datetime,
    policy: HealthPolicy = DEFAULT_POLICY,
) -> list[str]:
    """Why a team may have gone quiet, most specific first; [] when nothing in the ledger fits.

    ``entries`` are the ledger entries of all the team's principals; ``current`` is the team
    principal's current key as IAM lists it. A key event counts when it happened after
    ``last_sample_at`` or at most ``cause_window_hours`` before it. A team that never reported has no
    last sample to relate events to, so only the state of its current key is considered.

    Order: revokes (a person cut the key off), an unusable current key (missing, Inactive, expired),
    retired or deleted keys (laptops still on them are refused), rotations (laptops may still use the
    old key), then a current key about to expire. Within a kind, the newest event first.
    """
    now_utc = _aware(now, "now")
    span = timedelta(hours=policy.cause_window_hours)
    window = (
        CauseWindow(last_sample_at=_aware(last_sample_at, "last_sample_at"), window=span)
        if last_sample_at is not None
        else None
    )
    revokes = revoke_causes(entries, window)
    retirements = retirement_causes(entries, current, window)
    rotations = rotation_causes(entries, window)
    revoked = current_revoked(entries, current, window)
    unusable, expiring = current_key_causes(current, revoked, now_utc, span)
    return [
        *_newest_first(revokes),
        *unusable,
        *_newest_first(retirements),
        *_newest_first(rotations),
        *expiring,
    ]
