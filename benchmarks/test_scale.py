"""How TokenWarden's nightly work grows with the registry (`make bench-scale`).

For each N in TOKENWARDEN_SCALE (default 10,100,1000,5000) principals, on the harsh embedded world
with its faults off (so that a count is that of a run AWS never throttled; background rotation, IAM's
propagation and new-user delays on), one phase after the other:

- onboarding: the first night, users, keys and secrets made, the rotation test run by Secrets Manager;
- a quiet night: the next night, nothing due;
- status: the inventory, the plan and every principal's status row, the day after;
- health: one health check of every team (PromQL answered in memory, CloudWatch's 500-series cut on);
- a night where every key rotates (77 days later), the rotations run to their end.

The rotation night comes last: it is the longest phase, so a run cut short at a large N still has
the figures of the phases with targets (a quiet night, status).

Each phase's wall time and AWS calls (every botocore call of the run and of the rotation function it
starts) are printed as a table at the end, and written as JSON to TOKENWARDEN_SCALE_FIGURES when it
is set (`make bench-scale` then draws docs/scale.svg from them with benchmarks/plot_scale.py).
Numbers, not assertions: the targets live in benchmarks/test_calls.py.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import T0, Env, open_env
from tests.fakes import FakeNotifier, FakePromQL
from tests.unit.builders import registry

from tokenwarden.adapters.ledger import DynamoHealthStore
from tokenwarden.cli.views import status_rows
from tokenwarden.domain.outcomes import RunReport
from tokenwarden.domain.promql import Dialect
from tokenwarden.domain.registry import Registry
from tokenwarden.local.realism import StackBehaviour
from tokenwarden.service.health import HealthChecker

pytestmark = pytest.mark.scale

SIZES = [int(n) for n in os.environ.get("TOKENWARDEN_SCALE", "10,100,1000,5000").split(",") if n.strip()]
PHASES = ("onboarding", "quiet night", "status", "health", "rotation night")


@dataclass(frozen=True)
class Measured:
    principals: int
    phase: str
    seconds: float
    calls: int
    queries: int = 0

    def row(self) -> str:
        per = self.calls / self.principals
        queries = f"{self.queries:>8}" if self.phase == "health" else f"{'':>8}"
        return (
            f"| {self.principals:>6} | {self.phase:<14} | {self.seconds:>8.1f} | {self.calls:>7} "
            f"| {per:>9.1f} | {queries} |"
        )


RESULTS: list[Measured] = []


HEADER = (
    "| N      | phase          | wall (s) | calls   | per prin. | queries  |\n"
    "|--------|----------------|----------|---------|-----------|----------|"
)


@pytest.fixture(scope="module", autouse=True)
def table() -> Iterator[None]:
    print("\n\n" + HEADER, flush=True)
    yield
    print("\n\n" + HEADER)
    for measured in RESULTS:
        print(measured.row())


def record(measured: Measured) -> None:
    """Keep a phase's figures, print its row at once (a long run shows its progress) and write
    every figure so far to TOKENWARDEN_SCALE_FIGURES, so an interrupted run keeps what it measured."""
    RESULTS.append(measured)
    print(measured.row(), flush=True)
    figures = os.environ.get("TOKENWARDEN_SCALE_FIGURES")
    if figures:
        Path(figures).parent.mkdir(parents=True, exist_ok=True)
        Path(figures).write_text(json.dumps([asdict(m) for m in RESULTS], indent=1), encoding="utf-8")


def measure(
    world: Env, size: int, phase: str, work: Callable[[], Any], queries: Callable[[Any], int] | None = None
) -> Any:
    world.log.calls.clear()
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    record(Measured(size, phase, seconds, len(world.log.calls), queries(result) if queries else 0))
    busiest = Counter(world.log.calls).most_common(6)
    print("    " + ", ".join(f"{operation} {count}" for operation, count in busiest), flush=True)
    if isinstance(result, RunReport):
        # What the night did: a quiet night that is not quiet shows here, not only in its calls.
        done = Counter(o.status for o in result.outcomes)
        print(f"    outcomes {dict(done)}; counts {result.counts}", flush=True)
    return result


def health(world: Env, reg: Registry) -> int:
    """One health check of every team, every team seen an hour ago; the PromQL queries it sent."""
    now = world.clock.now()
    querier = FakePromQL({p.team: now - timedelta(hours=1) for p in reg.principals})
    checker = HealthChecker(
        querier=querier,
        dialect=Dialect.CLOUDWATCH,
        store=DynamoHealthStore(world.client("dynamodb"), world.settings.ledger_table),
        ledger=world.adapters.ledger,
        iam=world.adapters.iam,
        notifier=FakeNotifier(),
        naming=world.settings.naming,
        window=timedelta(hours=24),
    )
    checker.run(reg, now)
    return len(querier.queries)


@pytest.mark.parametrize("size", SIZES)
def test_a_registry_of_n_principals(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    reg = registry(*(f"p-{i:05d}" for i in range(size)))
    with open_env(monkeypatch, StackBehaviour(fault_rate=0.0)) as world:
        measure(world, size, "onboarding", lambda: world.run(registry=reg))
        measure(world, size, "quiet night", lambda: world.run(T0 + timedelta(days=1), registry=reg))

        def status() -> int:
            inventory = world.reconciler.inventory()
            plan = world.reconciler.plan(reg, world.clock.now(), inventory)
            return len(status_rows(reg, inventory, plan, world.settings.naming))

        assert measure(world, size, "status", status) == size
        measure(world, size, "health", lambda: health(world, reg), queries=int)
        measure(world, size, "rotation night", lambda: world.run(T0 + timedelta(days=77), registry=reg))
