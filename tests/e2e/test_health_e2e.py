"""Health, end to end: real OpenTelemetry exports through the embedded OTLP endpoint into
VictoriaMetrics, then `tokenwarden health` judging three teams against the registry."""

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
  - {id: gamma}
"""


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, str]]:
    with in_process_stack(victoriametrics=True) as exports:
        yield exports


def test_valid_retired_and_never_configured_teams(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = Telemetry.of(stack, REGISTRY, tmp_path, capsys, monkeypatch)
    endpoint, queue, start, at = world.endpoint, world.queue, world.start, world.at

    at(start, "apply", "--quiet")
    laptops = {"alpha": token("alpha"), "beta": token("beta")}
    assert send_session(endpoint, laptops["alpha"], "alpha") and send_session(
        endpoint, laptops["beta"], "beta"
    )
    at(start + timedelta(minutes=30), "health", "--json")

    rotation = weekday(start + timedelta(days=80)).replace(hour=2, minute=15)
    at(rotation, "apply", "--quiet")
    assert token("beta") != laptops["beta"], "beta's key should have rotated"
    laptops["alpha"] = token("alpha")  # alpha's laptops pick up the new key; beta's never do
    in_grace = weekday(rotation + timedelta(days=1)).replace(hour=10)
    at(in_grace, "status")
    assert send_session(endpoint, laptops["alpha"], "alpha") and send_session(
        endpoint, laptops["beta"], "beta"
    )

    retired = weekday(rotation + timedelta(days=8)).replace(hour=2, minute=15)
    at(retired, "apply", "--quiet")
    drain(queue)
    for hour in range(9, 15):
        at(retired.replace(hour=hour), "status")
        assert send_session(endpoint, laptops["alpha"], "alpha")
        assert not send_session(endpoint, laptops["beta"], "beta"), "a retired key must be refused"
    report = json.loads(at(retired.replace(hour=15), "health", "--json"))

    states = {t["team"]: t for t in report["teams"]}
    assert {team: t["state"] for team, t in states.items()} == {
        "alpha": "healthy",
        "beta": "silent",
        "gamma": "never_reported",
    }
    assert any("deactivated" in cause for cause in states["beta"]["likely_causes"]), states["beta"]
    assert report["queries"] == 2
    alerts = [m for m in drain(queue) if m["_attributes"]["event_type"].startswith("team_")]
    assert sorted((m["_attributes"]["event_type"], m["_attributes"]["team"]) for m in alerts) == [
        ("team_never_reported", "gamma"),
        ("team_silent", "beta"),
    ]
    silent = next(m for m in alerts if m["_attributes"]["team"] == "beta")
    assert "deactivated" in silent["content"]["description"]

    # An hour later nothing changed: no new alert.
    at(retired.replace(hour=16), "health", "--json")
    assert [m for m in drain(queue) if m["_attributes"]["event_type"].startswith("team_")] == []

    # beta's laptops re-read the secret, as the alert says; the next check sees them again.
    laptops["beta"] = token("beta")
    assert send_session(endpoint, laptops["beta"], "beta")
    report = json.loads(at(retired.replace(hour=17), "health", "--json"))
    assert {t["team"]: t["state"] for t in report["teams"]}["beta"] == "recovered"
    recovered = [m for m in drain(queue) if m["_attributes"]["event_type"] == "team_recovered"]
    assert [m["_attributes"]["team"] for m in recovered] == ["beta"]
