"""The automatic rollback, end to end: laptops that never pick up a new key export real OpenTelemetry
metrics through the embedded OTLP endpoint into VictoriaMetrics; the nightly run retires their key,
`tokenwarden health` finds the team silent and re-activates the key, the team recovers, the nightly
run retires the key again when the extended grace ends, and the second silence escalates. Another
team's leaked key, revoked during the grace, never comes back this way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import in_process_stack
from tests.e2e.telemetry import Telemetry, drain, token, weekday
from tokenwarden.local.laptop import send_session

pytestmark = pytest.mark.e2e

# Rotated 30 days before expiry (no jitter), so the retired key has weeks left when it is rolled back.
REGISTRY = """
defaults:
  lifecycle: {rotate_before_days: 30, rotation_jitter_days: 0}
principals:
  - {id: alpha}
  - {id: beta}
"""
EVENTS = ("team_silent", "team_recovered", "rolled_back", "rollback_escalated", "retired", "revoked")


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, str]]:
    with in_process_stack(victoriametrics=True) as exports:
        yield exports


def key_status(principal: str, credential_id: str) -> str:
    keys = boto3.client("iam").list_service_specific_credentials(UserName=f"tw-{principal}")
    found = {k["ServiceSpecificCredentialId"]: k["Status"] for k in keys["ServiceSpecificCredentials"]}
    return str(found.get(credential_id, "deleted"))


def previous_key(principal: str) -> str:
    """The credential id of the key the principal's laptops read at onboarding (the ledger says)."""
    items = boto3.client("dynamodb").query(
        TableName="tokenwarden-ledger",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
        ExpressionAttributeValues={":pk": {"S": f"P#{principal}"}, ":v": {"S": "V#"}},
    )["Items"]
    first = min(items, key=lambda i: i["created_at"]["S"])
    return str(first["credential_id"]["S"])


def test_a_team_cut_off_by_a_retirement_gets_its_key_back_once_and_a_revoked_key_never(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = Telemetry.of(stack, REGISTRY, tmp_path, capsys, monkeypatch)
    endpoint, queue, start, at = world.endpoint, world.queue, world.start, world.at

    def health(moment: datetime) -> dict[str, Any]:
        import json

        report: dict[str, Any] = json.loads(at(moment, "health", "--json"))
        return report

    seen: list[tuple[str, str]] = []

    def told(team: str = "alpha") -> list[tuple[str, str]]:
        """(event, team) of the team's notifications since the last call, in the order they were sent."""
        new = [
            (m["_attributes"]["event_type"], m["_attributes"]["team"])
            for m in drain(queue)
            if m["_attributes"]["event_type"] in EVENTS
        ]
        seen.extend(new)
        return [(event, who) for event, who in new if who == team]

    def laptops_send(moment: datetime, team: str) -> bool:
        at(moment, "status")
        return send_session(endpoint, laptops[team], team)

    at(start, "apply", "--quiet")
    laptops = {"alpha": token("alpha"), "beta": token("beta")}  # read once, never again
    old = {team: previous_key(team) for team in laptops}
    assert laptops_send(start + timedelta(minutes=20), "alpha") and laptops_send(
        start + timedelta(minutes=25), "beta"
    )
    health(start + timedelta(minutes=30))

    rotation = weekday(start + timedelta(days=61)).replace(hour=2, minute=15)
    at(rotation, "apply", "--quiet")
    assert token("alpha") != laptops["alpha"] and token("beta") != laptops["beta"]

    # beta's token leaks during the grace: revoked with a replacement; its laptops are cut off.
    leak = weekday(rotation + timedelta(days=1)).replace(hour=10)
    assert laptops_send(leak, "beta") and laptops_send(leak, "alpha")
    at(leak + timedelta(minutes=5), "status")
    world.at(None, "revoke", "beta", "--reason", "pasted in #general", "--reissue")
    assert not laptops_send(leak + timedelta(hours=2), "beta")
    assert laptops_send(leak.replace(hour=15, minute=30), "alpha")
    refused = health(leak.replace(hour=16))
    beta = [r for r in refused["rollbacks"] if r["team"] == "beta"]
    assert beta and all(r["verdict"] == "refuse" and "revoked" in r["reason"] for r in beta), refused
    assert key_status("beta", old["beta"]) != "Active"
    told()

    # alpha's laptops keep sending with the previous key through its grace, until the night it is retired.
    retirement = weekday(rotation + timedelta(days=8)).replace(hour=2, minute=15)
    assert laptops_send(retirement - timedelta(hours=9), "alpha")
    at(retirement, "apply", "--quiet")
    assert key_status("alpha", old["alpha"]) == "Inactive"
    assert told() == [("retired", "alpha")]
    for hour in (9, 11, 13):
        assert not laptops_send(retirement.replace(hour=hour), "alpha"), "a retired key must be refused"

    rolled = health(retirement.replace(hour=15))
    assert [(r["team"], r["verdict"]) for r in rolled["rollbacks"] if r["team"] == "alpha"] == [
        ("alpha", "rollback")
    ], rolled["rollbacks"]
    assert key_status("alpha", old["alpha"]) == "Active"
    assert told() == [("team_silent", "alpha"), ("rolled_back", "alpha")]

    assert laptops_send(retirement.replace(hour=15, minute=30), "alpha"), "the rolled-back key works again"
    health(retirement.replace(hour=16))
    assert told() == [("team_recovered", "alpha")]

    # The extended grace (3 days) ends; the nightly run after it retires the key again.
    again = weekday(retirement + timedelta(days=4)).replace(hour=2, minute=15)
    assert laptops_send(again - timedelta(hours=9), "alpha")
    at(again, "apply", "--quiet")
    assert key_status("alpha", old["alpha"]) == "Inactive"
    assert ("retired", "alpha") in told()
    assert not laptops_send(again.replace(hour=10), "alpha")

    escalated = health(again.replace(hour=15))
    assert [(r["team"], r["verdict"]) for r in escalated["rollbacks"] if r["team"] == "alpha"] == [
        ("alpha", "escalate")
    ], escalated["rollbacks"]
    assert key_status("alpha", old["alpha"]) == "Inactive"
    assert told() == [("team_silent", "alpha"), ("rollback_escalated", "alpha")]
    health(again.replace(hour=16))
    assert told() == []
    assert key_status("beta", old["beta"]) != "Active"
    assert [event for event, team in seen if team == "beta" and event.startswith("roll")] == []
