"""Speed targets of the pickup helper (run with `make bench`): Claude Code waits for its answer.

- an empty cache, with an AWS CLI that takes 3 s: answered within a second (the refresh runs on
  in the background);
- a cached answer: a median under half a second over 20 runs (real runs take milliseconds).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

from pytest_benchmark.fixture import BenchmarkFixture
from tests.unit.test_pickup import Laptop, make_kit


def timed(benchmark: BenchmarkFixture, call: Callable[[], str], rounds: int) -> str:
    """`call` timed `rounds` times, once per round; its last answer."""
    answer: str = benchmark.pedantic(call, rounds=rounds, iterations=1)  # type: ignore[no-untyped-call]  # pytest-benchmark leaves pedantic unannotated
    return answer


def rounds(benchmark: BenchmarkFixture) -> list[float]:
    """The seconds each timed round took."""
    assert benchmark.stats is not None, "nothing was timed"
    return list(benchmark.stats.stats.data)


def test_an_empty_cache_is_answered_within_a_second_while_aws_is_slow(
    benchmark: BenchmarkFixture, tmp_path: Path
) -> None:
    laptop = Laptop(tmp_path, make_kit())

    out = timed(benchmark, lambda: laptop.run(FAKE_AWS_SLEEP="3"), rounds=5)

    assert out == "{}\n"
    slowest = max(rounds(benchmark))
    assert slowest < 1.0, f"the helper waited for its refresh ({slowest:.2f} s)"
    laptop.wait_settled(1)


def test_a_cached_answer_takes_milliseconds(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    laptop = Laptop(tmp_path, make_kit())
    laptop.filled()

    out = timed(benchmark, laptop.run, rounds=20)

    assert out.startswith('{"Authorization": "Bearer ')
    assert statistics.median(rounds(benchmark)) < 0.5
    laptop.wait_idle()
