"""The health check beyond 500 teams, on the in-memory PromQL fake that answers like CloudWatch (at
most 500 series per query, a warning when it cut the rest): queries per run = metrics x ceil(teams/500),
every team judged, and a truncated answer never taken as complete."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes import FakeClock, FakeHealthStore, FakePromQL, FakeWorld
from tests.unit.builders import registry
from tokenwarden.domain.health import HealthState
from tokenwarden.domain.promql import (
    MAX_SERIES,
    Dialect,
    PromQLResponseError,
    QueryResult,
    TeamRange,
    TruncatedResultError,
    last_sample_query,
    team_shards,
)
from tokenwarden.service.health import DEFAULT_METRICS, MAX_SPLITS, query_by_shard

MONDAY_4PM = datetime(2030, 5, 6, 16, 0, tzinfo=UTC)
RECENTLY = MONDAY_4PM - timedelta(minutes=5)


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld(clock=FakeClock(MONDAY_4PM))


def session_query(shard: TeamRange) -> str:
    return last_sample_query(Dialect.CLOUDWATCH, DEFAULT_METRICS[0], timedelta(hours=24), teams=shard)


def team_ids(n: int) -> list[str]:
    return [f"team-{i:05d}" for i in range(n)]


@pytest.mark.parametrize("teams", [1, 500, 501, 1200])
def test_queries_per_run_are_metrics_times_shards_and_every_team_is_seen(
    world: FakeWorld, teams: int
) -> None:
    ids = team_ids(teams)
    querier = FakePromQL(dict.fromkeys(ids, RECENTLY))

    report = world.health(querier).run(registry(*ids), MONDAY_4PM)

    assert report.queries == len(querier.queries) == len(DEFAULT_METRICS) * math.ceil(teams / MAX_SERIES)
    assert {t.team for t in report.teams if t.state is HealthState.HEALTHY} == set(ids)
    assert all(len(querier.query(q, time=at).samples) <= MAX_SERIES for q, at in list(querier.queries))


def test_up_to_500_teams_the_query_is_the_one_it_always_was(world: FakeWorld) -> None:
    querier = FakePromQL({"alpha": RECENTLY})

    world.health(querier).run(registry("alpha"), MONDAY_4PM)

    assert [q for q, _ in querier.queries] == [
        f'max by ("@resource.team.id") (max_over_time(timestamp({{"{metric}"}})[1d:1m]))'
        for metric in DEFAULT_METRICS
    ]


def test_drift_is_still_seen_and_telemetry_without_a_team_costs_no_query_beyond_500_teams(
    world: FakeWorld,
) -> None:
    ids = team_ids(501)
    querier = FakePromQL({**dict.fromkeys(ids, RECENTLY), "zeta-stray": RECENTLY}, unattributed=RECENTLY)

    report = world.health(querier).run(registry(*ids), MONDAY_4PM)

    assert report.unregistered_teams == ("zeta-stray",)
    assert report.queries == 2 * len(DEFAULT_METRICS)
    assert {t.state for t in report.teams} == {HealthState.HEALTHY} and len(report.teams) == 501


def test_a_shard_truncated_anyway_is_split_and_asked_again(world: FakeWorld) -> None:
    # 500 registered teams and telemetry without a team label: 501 series for the one shard.
    ids = team_ids(500)
    querier = FakePromQL(dict.fromkeys(ids, RECENTLY), unattributed=RECENTLY)

    report = world.health(querier).run(registry(*ids), MONDAY_4PM)

    assert report.queries == len(querier.queries) == 3 * len(DEFAULT_METRICS)  # the shard, then its halves
    assert {t.team for t in report.teams if t.state is HealthState.HEALTHY} == set(ids)


def test_drift_that_overflows_a_shard_is_split_by_the_teams_of_the_truncated_answer(world: FakeWorld) -> None:
    # One registered team, 600 unknown ones sending: only the truncated answer's teams can cut the range.
    strays = [f"stray-{i:04d}" for i in range(600)]
    querier = FakePromQL(dict.fromkeys(["alpha", *strays], RECENTLY))

    report = world.health(querier).run(registry("alpha"), MONDAY_4PM)

    assert report.unregistered_teams == tuple(strays)
    assert [t.state for t in report.teams] == [HealthState.HEALTHY]
    assert report.queries == 3 * len(DEFAULT_METRICS)


def test_a_shard_that_cannot_be_split_fails_the_run_and_nothing_is_judged(world: FakeWorld) -> None:
    store = FakeHealthStore()
    querier = FakePromQL({"alpha": RECENTLY}, max_series=0)  # every non-empty answer is cut

    with pytest.raises(TruncatedResultError, match="truncated"):
        world.health(querier, store).run(registry("alpha"), MONDAY_4PM)

    assert store.saves == 0 and world.notifier.published == []
    assert len(querier.queries) == 3  # the whole range; below 'alpha' (empty, complete); from 'alpha' on


class MatcherIgnored(FakePromQL):
    """A server that answers every team whatever the query selects."""

    def query(self, query: str, *, time: datetime | None = None) -> QueryResult:
        return super().query(query.split(", ")[0] + "})[24h:1m]))", time=time)


def test_an_answer_beyond_its_shard_is_refused(world: FakeWorld) -> None:
    ids = team_ids(501)
    querier = MatcherIgnored(dict.fromkeys(ids, RECENTLY), max_series=10_000)

    with pytest.raises(PromQLResponseError, match="did not apply the team matcher"):
        world.health(querier).run(registry(*ids), MONDAY_4PM)


class CutsEverything(FakePromQL):
    """A server that flags every answer as cut, whatever its size."""

    def query(self, query: str, *, time: datetime | None = None) -> QueryResult:
        answer = super().query(query, time=time)
        return answer.model_copy(update={"warnings": ("cut",), "truncated": True})


def test_a_server_that_cuts_every_answer_ends_the_splitting_at_the_cap() -> None:
    strays = [f"stray-{i:05d}" for i in range(5_000)]  # enough known teams to split far deeper
    querier = CutsEverything(dict.fromkeys(strays, RECENTLY), max_series=10_000)

    with pytest.raises(TruncatedResultError):
        query_by_shard(querier, session_query, team_shards(["alpha"]), ["alpha"], MONDAY_4PM, max_splits=3)

    assert len(querier.queries) == 4  # the shard and three splits; the fourth cut answer ends it


def test_a_server_that_cuts_every_answer_fails_the_run(world: FakeWorld) -> None:
    querier = CutsEverything({"alpha": RECENTLY, "beta": RECENTLY})

    with pytest.raises(TruncatedResultError):
        world.health(querier).run(registry("alpha", "beta"), MONDAY_4PM)

    assert len(querier.queries) <= MAX_SPLITS + 1
