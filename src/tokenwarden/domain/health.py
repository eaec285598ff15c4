"""Health of each team's Claude Code telemetry: who should be reporting, who went quiet, and why. Pure.

The health check knows which teams *should* report (the registry) and when each one last did (the
newest sample per team from the PromQL queries). A team is judged only over its **active hours**: the
working days and hours of its activity profile, in its own time zone. Nights and non-working days do
not count toward silence, so a team that stops on Friday evening is not silent on Sunday.

States and transitions (one evaluation per run, e.g. hourly; ``previous`` is what the last run saved):

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
every hour on the same data alerts once, not every hour. ``since`` moves only when the state changes;
``last_alert_at`` moves only when a transition is emitted. A team removed from the registry loses its
record; if it keeps sending, it shows up in ``unregistered_teams`` (drift).

:func:`likely_causes` reads the team's ledger entries to say *why* it may have gone quiet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

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


def active_hours(profile: ActivityProfile, start: datetime, end: datetime) -> float:
    """Working hours of ``profile`` between two aware datetimes, in the profile's time zone.

    Each working day contributes the elapsed time between its local ``start`` and ``end`` that falls
    inside ``[start, end]``; nights and non-working days count 0. Elapsed time is real time, so a
    09:00-18:00 day is 9 h even on a daylight-saving change day, and a window that spans the change
    itself (say 00:00-06:00) is an hour shorter or longer that day. A local time that does not exist
    (skipped by the change) is read with the offset before the change. ``end <= start`` gives 0.
    """
    start_utc = _aware(start, "start")
    end_utc = _aware(end, "end")
    if end_utc <= start_utc:
        return 0.0
    zone = ZoneInfo(profile.timezone)
    working = {WEEKDAYS.index(day) for day in profile.working_days}
    day = start_utc.astimezone(zone).date()
    last_day = end_utc.astimezone(zone).date()
    total = timedelta()
    while day <= last_day:
        if day.weekday() in working:
            opens = datetime.combine(day, profile.start.replace(tzinfo=None), tzinfo=zone).astimezone(UTC)
            closes = datetime.combine(day, profile.end.replace(tzinfo=None), tzinfo=zone).astimezone(UTC)
            lo = max(opens, start_utc)
            hi = min(closes, end_utc)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total.total_seconds() / 3600


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


def evaluate(
    registry: Registry,
    last_samples: Mapping[str, datetime],
    previous: Mapping[str, TeamRecord],
    now: datetime,
    policy: HealthPolicy = DEFAULT_POLICY,
) -> Evaluation:
    """Judge every registered team at ``now``.

    ``last_samples`` maps a team id to the time of its newest sample in the query window (a team
    missing from it had none there); ``previous`` holds the records the last run saved. The record
    keeps the newer of its saved last sample and the observed one, so a query window shorter than a
    silence does not forget when the team last reported. See the module docstring for the rules.
    """
    now_utc = _aware(now, "now")
    observed = {team: _aware(at, f"the last sample of {team!r}") for team, at in last_samples.items()}
    profiles = team_profiles(registry)
    records: dict[str, TeamRecord] = {}
    transitions: list[Transition] = []
    minutes: dict[str, float | None] = {}
    for team in sorted(profiles):
        profile = profiles[team]
        before = previous.get(team)
        if before is not None:
            for what, value in (("since", before.since), ("first_seen_at", before.first_seen_at)):
                _aware(value, f"the saved {what} of {team!r}")
        saved_sample = before.last_sample_at if before is not None else None
        last_sample = _newest(
            _aware(saved_sample, f"the saved last sample of {team!r}") if saved_sample else None,
            observed.get(team),
        )
        first_seen_at = before.first_seen_at if before is not None else now_utc
        quiet_hours = active_hours(profile, last_sample or first_seen_at, now_utc)
        state, event = _judge(
            before,
            has_sample=last_sample is not None,
            over_threshold=quiet_hours >= profile.silent_after_hours,
            now=now_utc,
            policy=policy,
        )
        if event is not None:
            transitions.append(
                Transition(
                    team=team,
                    event=event,
                    previous=before.state if before is not None else None,
                    current=state,
                    last_sample_at=last_sample,
                    silent_active_hours=quiet_hours,
                )
            )
        keep_since = before is not None and before.state is state
        records[team] = TeamRecord(
            team=team,
            state=state,
            since=before.since if before is not None and keep_since else now_utc,
            first_seen_at=first_seen_at,
            last_sample_at=last_sample,
            last_alert_at=now_utc if event is not None else (before.last_alert_at if before else None),
        )
        minutes[team] = (
            max(0.0, (now_utc - last_sample).total_seconds() / 60) if last_sample is not None else None
        )
    unregistered = sorted(set(observed) - set(profiles) - {UNATTRIBUTED})
    return Evaluation(
        records=records,
        transitions=tuple(transitions),
        unregistered_teams=tuple(unregistered),
        minutes_since_last_sample=minutes,
    )


# --- Likely causes ------------------------------------------------------------------------------------


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
    reference = _aware(last_sample_at, "last_sample_at") if last_sample_at is not None else None
    window = timedelta(hours=policy.cause_window_hours)

    def relevant(at: datetime | None) -> datetime | None:
        if at is None or reference is None:
            return None
        at_utc = _aware(at, "a ledger time")
        return at_utc if at_utc >= reference - window else None

    revokes: list[tuple[datetime, str]] = []
    retirements: list[tuple[datetime, str]] = []
    rotations: list[tuple[datetime, str]] = []
    revoked_current = False
    first_activation = {
        principal: min(e.activated_at for e in entries if e.principal == principal and e.activated_at)
        for principal in {e.principal for e in entries if e.activated_at is not None}
    }
    for entry in entries:
        is_current = current is not None and entry.credential_id == current.id
        if _is_revoke(entry):
            at = relevant(entry.revoked_at or entry.deactivated_at or entry.deleted_at)
            if at is not None and reference is not None:
                by = f" by {entry.revoked_by}" if entry.revoked_by else ""
                why = f" ({entry.reason})" if entry.reason else ""
                revokes.append(
                    (
                        at,
                        f"key {_name(entry)} was revoked{by}{why} at {_when(at)}, {_relative(at, reference)}: "
                        "every export with it is refused",
                    )
                )
                revoked_current = revoked_current or is_current
        elif not is_current and entry.activated_at is not None:
            deactivated = relevant(entry.deactivated_at)
            deleted = relevant(entry.deleted_at) if entry.deactivated_at is None else None
            if deactivated is not None and reference is not None:
                retirements.append(
                    (
                        deactivated,
                        f"previous key {_name(entry)} was deactivated at {_when(deactivated)} "
                        f"({_relative(deactivated, reference)}): laptops that never picked up the new key "
                        "are now refused",
                    )
                )
            elif deleted is not None and reference is not None:
                retirements.append(
                    (
                        deleted,
                        f"key {_name(entry)} was deleted while still active at {_when(deleted)} "
                        f"({_relative(deleted, reference)}): laptops still using it are refused",
                    )
                )
        activated = entry.activated_at
        if activated is not None and activated != first_activation.get(entry.principal):
            rotated = relevant(activated)
            if rotated is not None and reference is not None:
                old = _previous_key(entry, activated, entries)
                was = (
                    f"key {_name(old)} was rotated to {_name(entry)}"
                    if old is not None
                    else f"key {_name(entry)} was rotated in"
                )
                rotations.append(
                    (
                        rotated,
                        f"{was} at {_when(rotated)}, {_relative(rotated, reference)}: "
                        "laptops may still use the old key",
                    )
                )

    unusable: list[str] = []
    expiring: list[str] = []
    if current is None:
        unusable.append("no current key: nothing the team sends can be accepted")
    else:
        expires_at = _aware(current.expires_at, "the key's expiry") if current.expires_at else None
        if current.status == "Expired" or (expires_at is not None and expires_at <= now_utc):
            when = f" at {_when(expires_at)}" if expires_at is not None else ""
            unusable.append(f"current key {current.alias} expired{when}: every export with it is refused")
        elif current.status == "Inactive" and not revoked_current:
            unusable.append(f"current key {current.alias} is Inactive: every export with it is refused")
        elif expires_at is not None and expires_at - now_utc <= window:
            hours = (expires_at - now_utc).total_seconds() / 3600
            expiring.append(
                f"current key {current.alias} expires at {_when(expires_at)} (in {hours:.1f} h): "
                "it needs a rotation now"
            )

    def newest_first(found: list[tuple[datetime, str]]) -> list[str]:
        return [text for _, text in sorted(found, key=lambda item: item[0], reverse=True)]

    return [
        *newest_first(revokes),
        *unusable,
        *newest_first(retirements),
        *newest_first(rotations),
        *expiring,
    ]
