"""Runs that overlap, and rotations Secrets Manager retries, on the harsh embedded world."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from typing import Any

from tests.conftest import T0, Env, check_invariants, days
from tokenwarden.domain.registry import Registry
from tokenwarden.local import iam_ssc


def _events(env: Env, kind: str) -> Counter[str]:
    return Counter(
        m["_attributes"]["principal"] for m in env.messages() if m["_attributes"]["event_type"] == kind
    )


def test_two_runs_at_once_rotate_each_key_once(env: Env) -> None:
    env.run()
    env.messages()
    due = env.clock.advance_to(T0 + days(80))  # every key within its rotation window
    second = dataclasses.replace(env.reconciler)  # a manual invoke during the nightly run
    reports: list[Any] = []
    runs = [
        threading.Thread(target=lambda r=r: reports.append(r.run(env.registry, due)))
        for r in (env.reconciler, second)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=120)
    env.settle()

    assert len(reports) == 2
    rotated = _events(env, "rotated")
    assert rotated == Counter(p.id for p in env.registry.principals), "each key rotates once, not twice"
    for principal in env.registry.principals:
        assert len(env.credentials(principal.id)) == 2  # the new key and the previous one in its grace
    assert check_invariants(env) == []
    assert not [e for e in env.log.errors if "LimitExceeded" in e]


def test_a_rotation_secrets_manager_retries_is_announced_once(env: Env) -> None:
    # The 90-day keys: day 80 is inside their rotation window (mobile's 60-day key would have expired).
    env.registry = Registry(
        source=env.registry.source,
        principals=tuple(p for p in env.registry.principals if p.lifecycle.key_age_days == 90),
    )
    env.run()
    before = {p.id: env.current_token(p.id) for p in env.registry.principals}
    env.messages()
    live = iam_ssc.consistency()
    # IAM takes a week to propagate new keys: every testSecret attempt of every retry fails.
    iam_ssc.configure(
        key_propagation_seconds=7 * 86400,
        new_user_delay_seconds=live.new_user_delay_seconds,
        omit_expiration_for=live.omit_expiration_for,
    )

    env.run(T0 + days(80))

    failed = _events(env, "rotation_failed")
    assert failed == Counter(p.id for p in env.registry.principals), "one notice per rotation, not per retry"
    # The current keys are untouched and keep working.
    assert {p.id: env.current_token(p.id) for p in env.registry.principals} == before
    # ...and Secrets Manager gave up, leaving AWSPENDING behind, as on AWS.
    assert [p for p in check_invariants(env) if "AWSPENDING" not in p] == []

    # IAM catches up; the next nights give the stuck rotations up and rotate again.
    iam_ssc.configure(
        key_propagation_seconds=live.key_propagation_seconds,
        new_user_delay_seconds=live.new_user_delay_seconds,
        omit_expiration_for=live.omit_expiration_for,
    )
    env.run(T0 + days(88))
    env.run(T0 + days(88.5))
    assert check_invariants(env) == []
    assert all(env.current_token(p.id) != before[p.id] for p in env.registry.principals)
