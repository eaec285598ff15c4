"""The health check: PromQL queries for every team's newest sample, judged against the registry.

One query per metric and shard of at most 500 teams (CloudWatch answers at most 500 series per query):
metrics * ceil(teams / 500) queries a run. A shard whose answer is truncated anyway (teams missing
from the registry on top of its own) is split and asked again; one that cannot be split fails the
run with :class:`TruncatedResultError` rather than judge teams on a partial answer.

Alerts go out on state changes only (plus a reminder while a team stays silent); a silence
alert carries the likely causes that the ledger knows about.

The checker refuses settings its queries could never run with when it is built (at start), not on
its first query: see :class:`HealthSettingsError`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from tokenwarden.domain import notifications as notes
from tokenwarden.domain.calendar import Span
from tokenwarden.domain.health import (
    Evaluation,
    HealthPolicy,
    HealthState,
    TeamRecord,
    Transition,
    evaluate,
    likely_causes,
    team_profiles,
)
from tokenwarden.domain.journal import HealthRecord, threshold_crossed_at
from tokenwarden.domain.model import Credential, LedgerEntry, LedgerState
from tokenwarden.domain.naming import Naming
from tokenwarden.domain.promql import (
    DEFAULT_LAST_SAMPLE_STEP,
    Dialect,
    PromQLQuerier,
    QueryResult,
    TeamRange,
    TruncatedResultError,
    check_within,
    evaluation_time,
    last_sample_query,
    merge_results,
    split_shard,
    team_shards,
)
from tokenwarden.domain.registry import ActivityProfile, Registry
from tokenwarden.domain.snooze import Snooze, active_snoozes, snooze_spans
from tokenwarden.observability import count, logger, team_metric
from tokenwarden.ports import IamPort, LedgerPort, Notifier
from tokenwarden.service.health_settings import HealthSettingsError as HealthSettingsError
from tokenwarden.service.health_settings import check_health_settings
from tokenwarden.service.journal import Journal, write_record
from tokenwarden.service.rollback import AutomaticRollback, RollbackOutcome
from tokenwarden.service.snooze import SnoozeLog

DEFAULT_METRICS = ("claude_code.session.count", "claude_code.token.usage")

MAX_SPLITS = 64
"""How many times one metric's shards may be split after truncated answers: enough for thousands of
unregistered teams, and an end for a server that cuts every answer whatever its size."""


class HealthStore(Protocol):
    def load(self) -> dict[str, dict[str, Any]]: ...

    def save(self, records: dict[str, dict[str, Any]]) -> None: ...


class TeamHealth(BaseModel):
    model_config = ConfigDict(frozen=True)

    team: str
    state: HealthState
    since: datetime
    last_sample_at: datetime | None
    minutes_since_last_sample: float | None
    likely_causes: tuple[str, ...] = ()
    snoozed_until: datetime | None = None
    """When the team's snooze in force ends (``tokenwarden health snooze``); None: not snoozed."""
    snooze_reason: str | None = None
    snoozed_by: str | None = None


class HealthReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    evaluated_at: datetime
    teams: tuple[TeamHealth, ...]
    transitions: tuple[Transition, ...]
    unregistered_teams: tuple[str, ...]
    queries: int
    rollbacks: tuple[RollbackOutcome, ...] = ()
    """What the automatic rollback did about silent teams' retired keys (only when committing)."""


@dataclass
class HealthChecker:
    querier: PromQLQuerier
    dialect: Dialect
    store: HealthStore
    ledger: LedgerPort
    iam: IamPort
    notifier: Notifier
    naming: Naming
    metric_names: tuple[str, ...] = DEFAULT_METRICS
    window: timedelta = timedelta(hours=24)
    policy: HealthPolicy = field(default_factory=HealthPolicy)
    rollback: AutomaticRollback | None = None
    # Where each announced transition is recorded for the evidence report (the ledger's history).
    journal: Journal | None = None
    snoozes: SnoozeLog | None = None
    """Where ``tokenwarden health snooze`` records snoozes; read once per run."""

    def __post_init__(self) -> None:
        check_health_settings(self.dialect, self.metric_names, self.window)

    def last_samples(self, now: datetime, teams: Iterable[str] = ()) -> tuple[dict[str, datetime], int]:
        """Each team's newest sample of any metric, and the number of queries it took: one per metric
        and shard of ``teams`` (the registry's), more only where a shard's answer came back truncated."""
        at = evaluation_time(now, DEFAULT_LAST_SAMPLE_STEP)
        registered = frozenset(teams)
        shards = team_shards(registered)
        newest: dict[str, datetime] = {}
        queries = 0
        for metric in self.metric_names:
            query = partial(self._last_sample_query, metric)
            result, sent = query_by_shard(self.querier, query, shards, registered, at)
            queries += sent
            for team, seen in result.times_by_team().items():
                if team not in newest or seen > newest[team]:
                    newest[team] = seen
        return newest, queries

    def _last_sample_query(self, metric: str, shard: TeamRange) -> str:
        return last_sample_query(self.dialect, metric, self.window, teams=shard)

    def run(self, registry: Registry, now: datetime, commit: bool = True) -> HealthReport:
        """Evaluate every team. With `commit`, alert on transitions and record the new states."""
        samples, queries = self.last_samples(now, registry.teams)
        previous = {team: TeamRecord.model_validate(raw) for team, raw in self.store.load().items()}
        snoozes = self.snoozes.records() if self.snoozes is not None else []
        spans = snooze_spans(snoozes)
        evaluation = evaluate(registry, samples, previous, now, self.policy, spans)
        snoozed = active_snoozes(snoozes, now)
        causes = self._causes(registry, evaluation, now)
        rollbacks: tuple[RollbackOutcome, ...] = ()
        if commit:
            for transition in evaluation.transitions:
                secrets = [
                    self.naming.secret_name(p.id) for p in registry.principals if p.team == transition.team
                ]
                self.notifier.publish(
                    _notification(transition, causes.get(transition.team, ()), secrets, now)
                )
            self.store.save({team: rec.model_dump(mode="json") for team, rec in evaluation.records.items()})
            self._record(registry, evaluation.transitions, now, spans)
            self._metrics(evaluation)
            # After the records are saved, so a slow or killed rollback never costs the alerts their
            # record: the rollback visits every silent team on every run, not only the new ones, so a
            # run killed part way through leaves its rollbacks to the next run.
            if self.rollback is not None:
                newly_silent = {t.team for t in evaluation.transitions if t.current is HealthState.SILENT}
                rollbacks = self.rollback.after_evaluation(
                    registry, evaluation.records, now, spans, newly_silent
                )
        teams = tuple(
            TeamHealth(
                team=team,
                state=rec.state,
                since=rec.since,
                last_sample_at=rec.last_sample_at,
                minutes_since_last_sample=evaluation.minutes_since_last_sample.get(team),
                likely_causes=tuple(causes.get(team, ())),
                **snooze_fields(snoozed.get(team)),
            )
            for team, rec in sorted(evaluation.records.items())
        )
        logger.info(
            "health evaluated",
            extra={"teams": len(teams), "transitions": len(evaluation.transitions), "queries": queries},
        )
        return HealthReport(
            evaluated_at=now,
            teams=teams,
            transitions=evaluation.transitions,
            unregistered_teams=evaluation.unregistered_teams,
            queries=queries,
            rollbacks=rollbacks,
        )

    def _causes(self, registry: Registry, evaluation: Evaluation, now: datetime) -> dict[str, list[str]]:
        unhealthy = {
            team
            for team, rec in evaluation.records.items()
            if rec.state in (HealthState.SILENT, HealthState.NEVER_REPORTED)
        }
        if not unhealthy:
            return {}
        entries: dict[str, list[LedgerEntry]] = {}
        for entry in self.ledger.scan():
            entries.setdefault(entry.principal, []).append(entry)
        credentials = {c.id: c for c in self.iam.list_all_credentials()}
        result: dict[str, list[str]] = {}
        for team in unhealthy:
            members = [p.id for p in registry.principals if p.team == team]
            team_entries = [e for p in members for e in entries.get(p, [])]
            causes: list[str] = []
            for principal in members:
                current = _current(entries.get(principal, []), credentials)
                found = likely_causes(
                    entries.get(principal, []),
                    current,
                    evaluation.records[team].last_sample_at,
                    now,
                    self.policy,
                )
                causes += [f"{principal}: {c}" if len(members) > 1 else c for c in found]
            if not team_entries:
                causes.append("TokenWarden has never issued a key for this team")
            result[team] = causes
        return result

    def _record(
        self,
        registry: Registry,
        transitions: Iterable[Transition],
        now: datetime,
        snoozed: Mapping[str, Sequence[Span]] | None = None,
    ) -> None:
        """Each announced transition as a journal record under its team, after the state is saved."""
        profiles = team_profiles(registry)
        for transition in transitions:
            spans = (snoozed or {}).get(transition.team, ())
            write_transition(self.journal, transition, profiles[transition.team], now, spans)

    def _metrics(self, evaluation: Evaluation) -> None:
        per_state = {state: 0 for state in HealthState}
        for rec in evaluation.records.values():
            per_state[rec.state] += 1
        for state, teams in per_state.items():
            count(f"Teams_{state.value}", teams)
        for team, minutes in evaluation.minutes_since_last_sample.items():
            if minutes is not None:
                team_metric("MinutesSinceLastSample", minutes, team)


def snooze_fields(snooze: Snooze | None) -> dict[str, Any]:
    """A team's snooze in force as :class:`TeamHealth` shows it (nothing when there is none)."""
    if snooze is None:
        return {}
    return {"snoozed_until": snooze.until, "snooze_reason": snooze.reason, "snoozed_by": snooze.by}


def query_by_shard(
    querier: PromQLQuerier,
    query: Callable[[TeamRange], str],
    shards: Iterable[TeamRange],
    registered: Iterable[str],
    at: datetime,
    max_splits: int = MAX_SPLITS,
) -> tuple[QueryResult, int]:
    """One answer for every shard, merged, and the number of queries sent.

    A truncated answer is never used: its shard is split (:func:`split_shard`) and both halves asked
    again. A shard that cannot be split, or more than ``max_splits`` splits, raise
    :class:`TruncatedResultError`. An answer with a series outside its shard is refused
    (:func:`check_within`).
    """
    known = tuple(registered)
    pending = deque(shards)
    answers: list[QueryResult] = []
    sent = splits = 0
    while pending:
        shard = pending.popleft()
        result = querier.query(query(shard), time=at)
        sent += 1
        if not result.truncated:
            answers.append(check_within(result, shard))
            continue
        halves = split_shard(shard, [*known, *(sample.team for sample in result.samples)])
        if halves is None or splits == max_splits:
            raise TruncatedResultError(result.warnings)
        splits += 1
        logger.warning("truncated PromQL answer; splitting the shard", extra={"shard": str(shard)})
        pending.extendleft(reversed(halves))
    return merge_results(answers), sent


def write_transition(
    book: Journal | None,
    transition: Transition,
    profile: ActivityProfile,
    now: datetime,
    snoozed: Sequence[Span] = (),
) -> None:
    """The journal record of one transition: when it was announced and when its silence began
    (quiet time left out, as the health check leaves it out)."""
    crossed = (
        threshold_crossed_at(profile, transition.last_sample_at, profile.silent_after_hours, snoozed)
        if transition.last_sample_at is not None
        else None
    )
    record = HealthRecord(
        team=transition.team,
        event=transition.event,
        at=now,
        previous=transition.previous.value if transition.previous is not None else None,
        current=transition.current.value,
        last_sample_at=transition.last_sample_at,
        silent_active_hours=round(transition.silent_active_hours, 3),
        silent_after_hours=profile.silent_after_hours,
        threshold_crossed_at=crossed,
    )
    write_record(book, transition.team, record)


def _current(entries: Sequence[LedgerEntry], credentials: Mapping[str, Credential]) -> Credential | None:
    entry = next((e for e in entries if e.state == LedgerState.CURRENT and e.credential_id), None)
    return credentials.get(entry.credential_id or "") if entry else None


def _notification(
    transition: Transition, causes: Sequence[str], secrets: Sequence[str], now: datetime
) -> notes.Notification:
    last = (
        f"last sample {transition.last_sample_at:%Y-%m-%d %H:%M} UTC"
        if transition.last_sample_at
        else "no sample ever"
    )
    cause_text = (" Likely causes: " + "; ".join(causes) + ".") if causes else ""
    if transition.event == "team_recovered":
        return notes.Notification(
            event_type=notes.EventType.TEAM_RECOVERED,
            severity="info",
            team=transition.team,
            principal=transition.team,
            occurred_at=now,
            title=f"{transition.team}: Claude Code telemetry is arriving again",
            description=f"Samples are back ({last}).",
        )
    if transition.event == "team_never_reported":
        return notes.Notification(
            event_type=notes.EventType.TEAM_NEVER_REPORTED,
            severity="warning",
            team=transition.team,
            principal=transition.team,
            occurred_at=now,
            title=f"{transition.team}: no Claude Code telemetry has ever arrived",
            description=f"After {transition.silent_active_hours:.1f} working hours there is still no sample "
            f"from this team.{cause_text}",
            next_steps=(
                "Check the laptops' Claude Code settings: CLAUDE_CODE_ENABLE_TELEMETRY=1, the OTLP endpoint, "
                "and team.id in OTEL_RESOURCE_ATTRIBUTES.",
            ),
        )
    reminder = transition.event == "team_silent_reminder"
    return notes.Notification(
        event_type=notes.EventType.TEAM_SILENT,
        severity="warning",
        team=transition.team,
        principal=transition.team,
        occurred_at=now,
        title=f"{transition.team}: Claude Code telemetry {'is still silent' if reminder else 'stopped'}",
        description=f"No sample for {transition.silent_active_hours:.1f} working hours ({last}).{cause_text}",
        next_steps=(
            "If a key was rotated or retired, laptops must re-read the secret: "
            + " or ".join(f"`{notes.secret_recipe(name)}`" for name in secrets),
            "Otherwise check a laptop: an export with the current token must be accepted.",
        ),
        context={"reminder": "true"} if reminder else {},
    )
