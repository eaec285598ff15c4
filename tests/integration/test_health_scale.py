"""The health check beyond 500 teams against a real PromQL engine: VictoriaMetrics fed over OTLP with one
resource per team (as each team's laptops export), queried by the health checker through PromQLClient.

VictoriaMetrics answers any number of series, so the querier here cuts answers the way CloudWatch does
(at most 500 series, with a warning). The shards' regular expressions are evaluated by the real engine:
every team must come back exactly once, in metrics x ceil(teams/500) queries.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.export import Metric as OtlpMetric
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from tests.fakes import FakeHealthStore, FakeNotifier
from tests.integration.test_victoriametrics import victoriametrics_binary
from tests.unit.builders import registry
from tokenwarden.adapters.promql import PromQLClient
from tokenwarden.domain.health import HealthState
from tokenwarden.domain.naming import Naming
from tokenwarden.domain.promql import (
    MAX_SERIES,
    Dialect,
    PromQLQuerier,
    QueryResult,
    TruncatedResultError,
    evaluation_time,
    last_sample_query,
)
from tokenwarden.local.victoriametrics import VictoriaMetrics
from tokenwarden.service.health import DEFAULT_METRICS, HealthChecker

TEAMS = [f"team-{i:04d}" for i in range(620)]
STRAY = "zz-stray"
"""A team that sends telemetry but is not in the registry (drift); it sorts into the last shard."""


@dataclass(frozen=True)
class Pushed:
    sent_at: datetime
    at: datetime
    """An evaluation time (a minute boundary) after every pushed sample."""


@dataclass
class SeriesLimit:
    """A querier that answers like CloudWatch: at most `limit` series, cut with a warning beyond that."""

    inner: PromQLQuerier
    limit: int = MAX_SERIES
    answered: list[int] = field(default_factory=list)
    """How many series the engine returned for each query, in order."""

    def query(self, query: str, *, time: datetime | None = None) -> QueryResult:
        result = self.inner.query(query, time=time)
        self.answered.append(len(result.samples))
        if len(result.samples) <= self.limit:
            return result
        warning = f"the answer was limited to {self.limit} series"
        return QueryResult(samples=result.samples[: self.limit], warnings=(warning,), truncated=True)


def laptop_export(team: str | None, at: datetime) -> ResourceMetrics:
    """One export of a laptop of ``team`` (None: without team.id): a session and some tokens, as deltas."""
    attributes: dict[str, Any] = {"service.name": "claude-code", "user.id": f"dev-{team}"}
    if team is not None:
        attributes["team.id"] = team
    nanos = int(at.timestamp() * 1e9)

    def counter(name: str, value: int) -> OtlpMetric:
        point = NumberDataPoint(
            attributes={"session.id": f"s-{team}"},
            start_time_unix_nano=nanos - 60_000_000_000,
            time_unix_nano=nanos,
            value=value,
        )
        delta = Sum(
            data_points=[point], aggregation_temporality=AggregationTemporality.DELTA, is_monotonic=True
        )
        return OtlpMetric(name=name, description=None, unit=None, data=delta)

    scope = InstrumentationScope("com.anthropic.claude_code", "2.0.0")
    metrics = [counter(DEFAULT_METRICS[0], 1), counter(DEFAULT_METRICS[1], 1000)]
    return ResourceMetrics(
        resource=Resource.create(attributes),
        scope_metrics=[ScopeMetrics(scope=scope, metrics=metrics, schema_url="")],
        schema_url="",
    )


@pytest.fixture(scope="module")
def vm() -> Iterator[VictoriaMetrics]:
    with VictoriaMetrics(victoriametrics_binary()) as server:
        yield server


@pytest.fixture(scope="module")
def pushed(vm: VictoriaMetrics) -> Pushed:
    sent_at = datetime.now(UTC)
    laptops = [laptop_export(team, sent_at) for team in [*TEAMS, STRAY, None]]
    exporter = OTLPMetricExporter(endpoint=vm.otlp_url, timeout=30)
    try:
        assert exporter.export(MetricsData(resource_metrics=laptops)) is MetricExportResult.SUCCESS
    finally:
        exporter.shutdown()
    vm.force_flush()
    return Pushed(sent_at, evaluation_time(sent_at + timedelta(minutes=1)))


def checker(querier: PromQLQuerier) -> HealthChecker:
    unused: Any = None  # every team reports, so the ledger and IAM are never asked for causes
    return HealthChecker(
        querier=querier,
        dialect=Dialect.PROMETHEUS,
        store=FakeHealthStore(),
        ledger=unused,
        iam=unused,
        notifier=FakeNotifier(),
        naming=Naming(user_prefix="tw-", user_path="/tokenwarden/", secret_prefix="tokenwarden/"),
        window=timedelta(hours=1),
    )


def test_one_query_for_all_teams_would_be_cut_and_is_not_taken_as_complete(
    vm: VictoriaMetrics, pushed: Pushed
) -> None:
    querier = SeriesLimit(PromQLClient.unsigned(vm.base_url))

    result = querier.query(
        last_sample_query(Dialect.PROMETHEUS, DEFAULT_METRICS[0], timedelta(hours=1)), time=pushed.at
    )

    assert querier.answered == [len(TEAMS) + 2]  # every team, the stray, and the laptop without team.id
    with pytest.raises(TruncatedResultError):
        result.times_by_team()


def test_every_team_beyond_500_is_seen_in_metrics_times_shards_queries(
    vm: VictoriaMetrics, pushed: Pushed
) -> None:
    querier = SeriesLimit(PromQLClient.unsigned(vm.base_url))

    report = checker(querier).run(registry(*TEAMS), pushed.at)

    shards = math.ceil(len(TEAMS) / MAX_SERIES)
    assert report.queries == len(querier.answered) == len(DEFAULT_METRICS) * shards == 4
    assert querier.answered == [500, 121] * len(DEFAULT_METRICS)  # the last shard holds the stray too
    assert {t.team for t in report.teams if t.state is HealthState.HEALTHY} == set(TEAMS)
    margin = timedelta(seconds=1)
    assert all(
        pushed.sent_at - margin <= (t.last_sample_at or pushed.at) <= pushed.sent_at + margin
        for t in report.teams
    )
    assert report.unregistered_teams == (STRAY,)


def test_shards_cut_anyway_are_split_and_asked_again_on_the_real_engine(
    vm: VictoriaMetrics, pushed: Pushed
) -> None:
    querier = SeriesLimit(PromQLClient.unsigned(vm.base_url), limit=200)

    report = checker(querier).run(registry(*TEAMS), pushed.at)

    # Per metric: the first shard (500) is cut, its halves (250, 250) too, then four quarters of 125;
    # the last shard (121) fits.
    assert querier.answered == [500, 250, 125, 125, 250, 125, 125, 121] * len(DEFAULT_METRICS)
    assert report.queries == 16
    assert {t.team for t in report.teams if t.state is HealthState.HEALTHY} == set(TEAMS)
    assert report.unregistered_teams == (STRAY,)
