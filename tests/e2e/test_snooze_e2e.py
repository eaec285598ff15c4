"""A snooze, end to end on the embedded stack: real exports into VictoriaMetrics, `tokenwarden health
snooze` while a team's laptops are off, no alert for it, `status` showing it, then `unsnooze` and its
silence counting again, announced by the next check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.e2e.conftest import in_process_stack
from tests.e2e.telemetry import Telemetry, drain, token, weekday
from tokenwarden.local.laptop import send_session

pytestmark = pytest.mark.e2e

REGISTRY = """
principals:
  - {id: alpha}
  - {id: beta}
"""


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, str]]:
    with in_process_stack(victoriametrics=True) as exports:
        yield exports


def test_a_snoozed_team_is_not_paged_and_unsnoozed_its_silence_counts_again(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = Telemetry.of(stack, REGISTRY, tmp_path, capsys, monkeypatch)
    endpoint, queue, clock, at = world.endpoint, world.queue, world.clock, world.at
    monday = weekday(clock.now() + timedelta(days=7 - clock.now().weekday())).replace(hour=10, minute=0)

    def now(*argv: str) -> str:
        return world.at(None, *argv)

    def alerts() -> list[tuple[str, str]]:
        return sorted(
            (m["_attributes"]["event_type"], m["_attributes"]["team"])
            for m in drain(queue)
            if m["_attributes"]["event_type"].startswith("team_")
        )

    at(monday, "apply", "--quiet")
    assert send_session(endpoint, token("alpha"), "alpha") and send_session(endpoint, token("beta"), "beta")
    at(monday + timedelta(minutes=15), "health", "--json")
    now(
        "health", "snooze", "beta", "--until", f"{monday + timedelta(days=2):%Y-%m-%d}", "--reason", "offsite"
    )

    # Monday evening: alpha kept sending, beta's laptops stayed off; beta is not silent, and not paged.
    for hour in (12, 14, 16):
        at(monday.replace(hour=hour), "status")
        assert send_session(endpoint, token("alpha"), "alpha")
    report = json.loads(at(monday.replace(hour=17), "health", "--json"))
    teams = {t["team"]: t for t in report["teams"]}
    assert teams["beta"]["state"] == "healthy" and teams["beta"]["snooze_reason"] == "offsite"
    assert teams["beta"]["snoozed_until"].startswith(f"{monday + timedelta(days=2):%Y-%m-%d}T00:00:00")
    assert alerts() == []
    rows = json.loads(at(monday.replace(hour=17, minute=30), "status", "--json"))
    assert {r["principal"]: r["snooze_reason"] for r in rows} == {"alpha": None, "beta": "offsite"}

    # Back on Tuesday morning: the snooze ends; four working hours later beta is silent, and said so.
    tuesday = monday + timedelta(days=1)
    at(tuesday.replace(hour=9), "health", "--json")
    out = now("health", "unsnooze", "beta")
    assert "its silence counts again" in out
    report = json.loads(at(tuesday.replace(hour=13, minute=15), "health", "--json"))
    assert {t["team"]: t["state"] for t in report["teams"]}["beta"] == "silent"
    assert ("team_silent", "beta") in alerts()
