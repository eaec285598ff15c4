"""Crash safety: a process killed between any two AWS calls (onboarding, a rotation, a revoke with
reissue), then clean runs, restores DESIGN §3 invariants 1-4 (its own module so the suite spreads
over two workers)."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest

from tests.conftest import T0, Crash, check_invariants, days, open_env
from tokenwarden.domain.registry import parse_registry
from tokenwarden.local import iam_ssc

READS = ("List", "Get", "Describe", "Scan", "Query")


def _distinct_crash_points(calls: list[str]) -> list[int]:
    """A crash right after a read leaves the world exactly as a crash right after the write (or
    the start) before it, so one crash point per write, plus one before any write, covers every
    distinct state a crash between two calls can leave."""
    points = [1]
    points += [k for k, call in enumerate(calls, start=1) if not call.split(":")[1].startswith(READS)]
    return sorted(set(points))


@pytest.mark.parametrize(
    ("flow", "prepare"),
    [("onboarding", None), ("rotation", 77.0)],
)
def test_a_crash_between_any_two_aws_calls_converges(
    monkeypatch: pytest.MonkeyPatch, flow: str, prepare: float | None
) -> None:
    """Kill the run after call k, for every distinct k; clean runs must restore invariants 1-4."""
    registry = parse_registry("principals: [{id: solo}]", "crash-test")
    calls: list[str] = []
    with open_env(monkeypatch) as world:
        world.run(registry=registry)
        if prepare is not None:
            world.log.calls.clear()
            world.run(T0 + days(prepare), registry=registry)
        calls = list(world.log.calls)
    points = _distinct_crash_points(calls)
    assert len(calls) > 10 and len(points) > 8
    failures: list[str] = []
    for k in points:
        with open_env(monkeypatch) as world:
            start = T0
            old_key = None
            if prepare is not None:
                world.run(registry=registry)
                (old,) = world.credentials("solo")
                old_key = old["ServiceSpecificCredentialId"]
                start = T0 + days(prepare)
            world.log.crash_after = len(world.log.calls) + k
            with contextlib.suppress(Crash):
                world.run(start, registry=registry)
            world.log.crash_after = None  # the count includes background calls: it may not have come
            world.settle()  # the rotation it started runs on in the background, as on AWS
            world.run(start + timedelta(hours=2), registry=registry)
            problems = check_invariants(world, registry)
            if old_key is not None:
                status = {c["ServiceSpecificCredentialId"]: c["Status"] for c in world.credentials("solo")}
                if status.get(old_key) != "Active":
                    problems.append("previous key not Active during its grace")
            world.run(start + timedelta(hours=27), registry=registry)
            world.run(start + timedelta(hours=28), registry=registry)
            problems += check_invariants(world, registry)
            creds = world.credentials("solo")
            if prepare is None and len(creds) != 1:
                problems.append(f"{len(creds)} keys after the safety age (untracked leftover survived)")
            if "LimitExceeded" in " ".join(world.log.errors):
                problems.append("a third key was requested")
            if problems:
                failures.append(f"crash after call {k} {calls[k - 1]} ({flow}): {sorted(set(problems))}")
    assert failures == [], "\n".join(failures)


def test_a_crash_anywhere_in_a_revoke_with_reissue_never_leaves_fewer_working_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Break-glass killed between any two AWS calls: the next run leaves a working key (the one the
    operator asked for), and once the leaked key was switched off it stays off."""
    registry = parse_registry("principals: [{id: solo}]", "crash-test")
    solo = registry.get("solo")
    assert solo is not None
    with open_env(monkeypatch) as world:
        world.run(registry=registry)
        world.log.calls.clear()
        world.glass.revoke(solo, "leaked", "crash-test", True, world.clock.now())
        world.settle()
        calls = list(world.log.calls)
    points = _distinct_crash_points(calls)
    assert "iam:UpdateServiceSpecificCredential" in calls and len(points) > 5
    failures: list[str] = []
    for k in points:
        with open_env(monkeypatch) as world:
            world.run(registry=registry)
            leaked = world.current_token("solo")
            before = len(world.log.calls)
            world.log.crash_after = before + k
            with contextlib.suppress(Crash):
                world.glass.revoke(solo, "leaked", "crash-test", True, world.clock.now())
            world.log.crash_after = None
            done = world.log.calls[before:]
            world.settle()
            world.run(world.clock.now() + timedelta(hours=1), registry=registry)
            problems = check_invariants(world, registry)
            if "iam:UpdateServiceSpecificCredential" in done and iam_ssc.authenticate(leaked).accepted:
                problems.append("the leaked key works again")
            if "LimitExceeded" in " ".join(world.log.errors):
                problems.append("a third key was requested")
            if problems:
                failures.append(f"crash after call {k} {calls[k - 1]} (revoke): {sorted(set(problems))}")
    assert failures == [], "\n".join(failures)
