"""Per-team routing end to end on moto's SNS: the platform's subscription (no filter policy) gets
every message, and a team channel's subscription with the filter policy `tokenwarden channels`
prints gets exactly its team's, from the reconciler, the rotation function and break-glass alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT, Env, days, open_env
from tokenwarden.domain.routing import channel_table


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    with open_env(monkeypatch, settings_overrides={"registry_path": ROOT / "teams.yaml"}) as env:
        yield env


def subscribe(env: Env, name: str, policy: dict[str, list[str]] | None) -> str:
    """A queue subscribed to the topic (with `policy` on its message attributes, if any)."""
    sqs = env.client("sqs")
    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"RawMessageDelivery": "true"}
    if policy is not None:
        attributes |= {"FilterPolicy": json.dumps(policy), "FilterPolicyScope": "MessageAttributes"}
    env.client("sns").subscribe(
        TopicArn=env.settings.topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes
    )
    return url


def received(env: Env, url: str) -> list[dict[str, str]]:
    """The attributes of every message in the queue, emptying it."""
    sqs = env.client("sqs")
    out: list[dict[str, str]] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        for message in batch:
            out.append({k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return out


def kinds(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((m["event_type"], m["principal"]) for m in messages)


def test_a_team_channel_gets_exactly_its_team_and_the_platform_everything(world: Env) -> None:
    policies = {route.channel: route.filter_policy for route in channel_table(world.registry).channels}
    platform_eng = subscribe(world, "platform-eng", policies["#platform-eng"])
    data_science = subscribe(world, "data-science", policies["#data-science"])
    platform = subscribe(world, "platform", None)

    world.run()  # onboards every principal
    world.run(world.clock.now() + days(80))  # rotates every key (mobile's twice as often)
    glass = world.glass
    glass.revoke(world.registry.require("data-science"), "leak drill", "oncall", False, world.clock.now())

    everything = received(world, platform)
    team = received(world, platform_eng)
    science = received(world, data_science)
    assert {m["event_type"] for m in everything} >= {"onboarded", "rotated", "run_summary", "revoked"}
    assert team and all(m["channel"] == "#platform-eng" for m in team)
    assert {m["principal"] for m in team} == {"platform-eng", "jdoe"}, (
        "a developer hears on its team's channel"
    )
    assert kinds(team) == kinds([m for m in everything if m.get("channel") == "#platform-eng"])
    assert ("revoked", "data-science") in kinds(science) and ("revoked", "data-science") not in kinds(team)
    unrouted = [m for m in everything if "channel" not in m]
    assert {m["principal"] for m in unrouted} == {"-", "mobile"}, (
        "run-wide and mobile (no notify): platform only"
    )
    assert len(everything) == len(team) + len(science) + len(unrouted)
