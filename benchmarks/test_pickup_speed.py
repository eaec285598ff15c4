"""Speed targets of the pickup helper (run with `make bench`): Claude Code waits for its answer.

- an empty cache, with an AWS CLI that takes 3 s: answered within a second (the refresh runs on
  in the background);
- a cached answer: a median under half a second over 20 runs (real runs take milliseconds).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from tests.unit.test_pickup import Laptop, make_kit


def test_an_empty_cache_is_answered_within_a_second_while_aws_is_slow(benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    laptop = Laptop(tmp_path, make_kit())

    out = benchmark.pedantic(laptop.run, kwargs={"FAKE_AWS_SLEEP": "3"}, rounds=5, iterations=1)

    assert out == "{}\n"
    assert benchmark.stats.stats.max < 1.0, (
        f"the helper waited for its refresh ({benchmark.stats.stats.max:.2f} s)"
    )
    laptop.wait_settled(1)


def test_a_cached_answer_takes_milliseconds(benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    laptop = Laptop(tmp_path, make_kit())
    laptop.filled()

    out = benchmark.pedantic(laptop.run, rounds=20, iterations=1)

    assert out.startswith('{"Authorization": "Bearer ')
    assert statistics.median(benchmark.stats.stats.data) < 0.5
    laptop.wait_idle()
