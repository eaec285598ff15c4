"""Speed targets (run with `make bench`): planning and health evaluation stay fast at scale.

- build_plan for 500 principals: well under a second (one nightly Lambda plans them all).
- evaluate for 500 teams: well under a second (the hourly health check).
"""

from __future__ import annotations

from datetime import timedelta

from pytest_benchmark.fixture import BenchmarkFixture
from tests.unit.builders import NOW, healthy, inventory, registry, rotated

from tokenwarden.domain.health import evaluate
from tokenwarden.domain.plan import PlanConfig, build_plan
from tokenwarden.domain.registry import parse_registry

N = 500


def test_plan_500_principals(benchmark: BenchmarkFixture) -> None:
    names = [f"team-{i:03d}" for i in range(N)]
    world = inventory(
        *(healthy(n) if i % 3 else rotated(n, superseded=timedelta(days=8)) for i, n in enumerate(names))
    )
    reg = registry(*names)
    plan = benchmark(
        build_plan, reg, world, NOW, PlanConfig(rotation_lambda_arn="arn:aws:lambda:::function:x")
    )
    assert len(plan.principals) == N


def test_health_evaluate_500_teams(benchmark: BenchmarkFixture) -> None:
    text = "principals:\n" + "".join(f"  - {{id: team-{i:03d}}}\n" for i in range(N))
    reg = parse_registry(text, "bench")
    samples = {f"team-{i:03d}": NOW - timedelta(minutes=i % 300) for i in range(N) if i % 7}
    result = benchmark(evaluate, reg, samples, {}, NOW)
    assert len(result.records) == N
