"""AWS calls per phase and per principal on the harsh embedded world (`make bench`).

Counted with a botocore after-call hook on every call of the runs and of the rotation function
they start in the background. Faults are off here so the count is that of runs AWS never
throttled (each throttled attempt would add one call); IAM's propagation delay, the new-user
delay, keys without ExpirationDate and background rotation are on.

Phases, for N principals:
- onboarding: the first run (users, secrets, first keys, rotation configured), per principal;
- quiet night: a run with nothing due, in total (the inventory's pages and the run summary);
- rotation: the nights a rotation takes (the rotate night with the rotation function's four
  steps, the retire night, the delete night), less a quiet night each, per principal.

The bounds asserted are what the code reaches, so a regression fails `make bench`; the targets
of issue 10 are printed beside them (docs/architecture.md, "AWS calls", explains each call left
and why onboarding and rotation stay above 15 per principal).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from tests.conftest import T0, Env, open_env

from tokenwarden.domain.registry import Registry, parse_registry
from tokenwarden.local.realism import StackBehaviour

# The nights of one rotation for principals onboarded at T0 with the default lifecycle: every key
# is due by day 77 (90 days less 14 less up to 3 of jitter), retired after its 7-day grace, then
# deleted after its 7-day rollback window.
QUIET_NIGHT = 1.0
ROTATION_NIGHTS = (77.0, 84.5, 92.5)

# What the code reaches, asserted: calls shared by the whole run (the inventory's pages, read again
# after a run that changed something, and the run summary) plus calls per principal. The issue's
# targets are printed beside the counts.
ONBOARDING_BOUND = (9, 33)
ROTATION_BOUND = (13, 66)
ONBOARDING_TARGET = 15
ROTATION_TARGET = 15


def bound(shared_and_per_principal: tuple[int, int], principals: int) -> int:
    shared, per_principal = shared_and_per_principal
    return shared + per_principal * principals


def quiet_bound(principals: int) -> int:
    """A quiet night: one page of each listing per 100 principals, and the run summary."""
    return 4 + math.ceil(principals / 100)


@dataclass
class Phases:
    principals: int
    onboarding: list[str] = field(default_factory=list)
    quiet: list[str] = field(default_factory=list)
    rotation_nights: list[list[str]] = field(default_factory=list)

    def rotation(self) -> Counter[str]:
        """The rotation's own calls: its nights less what a quiet night costs anyway."""
        nights: Counter[str] = Counter()
        for night in self.rotation_nights:
            nights.update(night)
        nights.subtract({op: n * len(self.rotation_nights) for op, n in Counter(self.quiet).items()})
        return +nights


def registry_of(principals: int) -> Registry:
    ids = ", ".join(f"{{id: p{i:04d}}}" for i in range(principals))
    return parse_registry(f"principals: [{ids}]", "bench")


def _night(world: Env, registry: Registry, day: float, done: str) -> list[str]:
    """The calls of one night, which must have done `done` for every principal (fewer calls
    because less was done would be no gain)."""
    if day:
        world.clock.advance_to(T0 + timedelta(days=day))
    world.log.calls.clear()
    report = world.run(registry=registry)
    assert report.counts.get(done) == len(registry.principals), f"day {day}: {report.counts}"
    return list(world.log.calls)


def measure(monkeypatch: pytest.MonkeyPatch, principals: int) -> Phases:
    registry = registry_of(principals)
    phases = Phases(principals)
    with open_env(monkeypatch, StackBehaviour(fault_rate=0.0)) as world:
        phases.onboarding = _night(world, registry, 0, "onboard")
        phases.quiet = _night(world, registry, QUIET_NIGHT, "principals_unchanged")
        phases.rotation_nights = [
            _night(world, registry, day, done)
            for day, done in zip(ROTATION_NIGHTS, ("rotate", "retire", "delete"), strict=True)
        ]
    return phases


def by_operation(calls: Counter[str], per: int) -> str:
    """`secretsmanager:DescribeSecret x12`, one per line, most frequent first, per principal."""
    rows = sorted(calls.items(), key=lambda kv: (-kv[1], kv[0]))
    return "\n".join(f"    {op} x{_per(n, per)}" for op, n in rows)


def _per(n: int, per: int) -> str:
    value = n / per
    return f"{value:g}" if value == int(value) else f"{value:.2f}"


def table(phases: Phases) -> str:
    n = phases.principals
    rotation = phases.rotation()
    lines = [
        f"\nAWS calls, N = {n} principal(s)",
        f"  onboarding: {len(phases.onboarding)} in all, {_per(len(phases.onboarding), n)} per principal "
        f"(target {ONBOARDING_TARGET})",
        by_operation(Counter(phases.onboarding), n),
        f"  quiet night: {len(phases.quiet)} in all (target {quiet_bound(n)})",
        by_operation(Counter(phases.quiet), 1),
        f"  rotation (rotate, retire and delete nights, less a quiet night each): "
        f"{rotation.total()} in all, {_per(rotation.total(), n)} per principal (target {ROTATION_TARGET})",
        by_operation(rotation, n),
    ]
    return "\n".join(lines)


@pytest.mark.parametrize("principals", [1, 10, 100])
def test_aws_calls_per_phase(benchmark: Any, monkeypatch: pytest.MonkeyPatch, principals: int) -> None:
    measured: list[Phases] = []
    rounds = 2 if principals == 1 else 1
    benchmark.pedantic(lambda: measured.append(measure(monkeypatch, principals)), rounds=rounds, iterations=1)
    phases = measured[-1]
    print(table(phases))
    if rounds > 1:
        first = measured[0]
        assert (len(first.onboarding), len(first.quiet), first.rotation()) == (
            len(phases.onboarding),
            len(phases.quiet),
            phases.rotation(),
        ), "the same runs must cost the same calls"
    assert len(phases.quiet) <= quiet_bound(principals)
    assert len(phases.onboarding) <= bound(ONBOARDING_BOUND, principals)
    assert phases.rotation().total() <= bound(ROTATION_BOUND, principals)
