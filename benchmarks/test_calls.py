"""AWS calls of one onboarding and one rotation on the harsh embedded world (`make bench`).

Counted with a botocore after-call hook on every call of the run and of the rotation function
it starts in the background. Faults are off here so the count is that of a run AWS never
throttled (each throttled attempt would add one call); IAM's propagation delay, the new-user
delay, keys without ExpirationDate and background rotation are on.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from tests.conftest import T0, open_env

from tokenwarden.domain.registry import parse_registry
from tokenwarden.local.realism import StackBehaviour

SOLO = "principals: [{id: solo}]"


def _count(calls: list[str]) -> str:
    by_service = Counter(call.split(":")[0] for call in calls)
    return f"{len(calls)} calls (" + ", ".join(f"{s} {n}" for s, n in sorted(by_service.items())) + ")"


@pytest.mark.parametrize("flow", ["onboarding", "rotation"])
def test_aws_calls_of_one_principal(benchmark: Any, monkeypatch: pytest.MonkeyPatch, flow: str) -> None:
    registry = parse_registry(SOLO, "bench")
    counted: list[list[str]] = []

    def once() -> None:
        with open_env(monkeypatch, StackBehaviour(fault_rate=0.0)) as world:
            if flow == "rotation":
                world.run(registry=registry)
                world.clock.advance_to(T0 + timedelta(days=77))
            world.log.calls.clear()
            world.run(registry=registry)
            counted.append(list(world.log.calls))

    benchmark.pedantic(once, rounds=3, iterations=1)
    print(f"\n{flow} of one principal: {_count(counted[-1])}")
    assert len({len(c) for c in counted}) == 1, "the same run must cost the same calls"
