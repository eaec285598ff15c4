"""Per-team routing on the embedded stack, driven as an operator would: `tokenwarden channels` gives
the filter policy, the AWS CLI subscribes a queue with it, and a night through the state machine
(the reconcile function onboards, the rotation function announces rotations, each with the
registry deployed with it) sends that queue exactly the team's messages."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tests.e2e.conftest import Stack, World


def sqs(stack: Stack, *args: str) -> Any:
    """An SQS call with the AWS CLI (named with the stack's endpoint: the CLI sends SQS calls to its
    legacy endpoint otherwise)."""
    printed = stack.aws("sqs", *args, "--endpoint-url", stack.env["AWS_ENDPOINT_URL"]).stdout
    return json.loads(printed) if printed.strip() else {}  # some calls print nothing


def test_a_team_channel_subscription_gets_exactly_its_teams_messages(stack: Stack, world: World) -> None:
    registry = world.add(
        {"id": "rt-web", "kind": "team", "notify": "#rt-web"},
        {"id": "rt-ana", "kind": "developer", "team": "rt-web"},
        {"id": "rt-ops", "kind": "team"},
    )
    channels = stack.tw("channels", "--registry", str(registry), "--format", "json", check=True).json()
    (route,) = [c for c in channels["channels"] if c["channel"] == "#rt-web"]
    assert route["teams"] == ["rt-web"] and route["principals"] == ["rt-ana", "rt-web"]

    queue_url = sqs(stack, "create-queue", "--queue-name", "rt-web-channel")["QueueUrl"]
    queue_arn = sqs(stack, "get-queue-attributes", "--queue-url", queue_url, "--attribute-names", "QueueArn")[
        "Attributes"
    ]["QueueArn"]
    topic = next(
        t["TopicArn"]
        for t in stack.aws("sns", "list-topics").json()["Topics"]
        if "tokenwarden" in t["TopicArn"]
    )
    attributes = {
        "RawMessageDelivery": "true",
        "FilterPolicyScope": "MessageAttributes",
        "FilterPolicy": json.dumps(route["filter_policy"]),
    }
    stack.aws(
        "sns", "subscribe", "--topic-arn", topic, "--protocol", "sqs", "--notification-endpoint", queue_arn,
        "--attributes", json.dumps(attributes),
    )  # fmt: skip

    night = ("apply", "--via-state-machine", "--registry", str(registry), "--json")
    stack.tw(*night, check=True)
    assert received(stack, queue_url) == {
        ("onboarded", "rt-web", "#rt-web"),
        ("onboarded", "rt-ana", "#rt-web"),
    }

    # 90-day keys rotate 14 (+ up to 3) days before they expire: the rotation function announces it.
    at = stack.advance(timedelta(0)) + timedelta(days=80)
    stack.tw(*night, "--at", at.isoformat(), check=True)
    assert received(stack, queue_url) == {("rotated", "rt-web", "#rt-web"), ("rotated", "rt-ana", "#rt-web")}


def received(stack: Stack, queue_url: str) -> set[tuple[str, str, str]]:
    """(event_type, principal, channel) of every message in the queue, emptying it."""
    out: set[tuple[str, str, str]] = set()
    while batch := sqs(
        stack, "receive-message", "--queue-url", queue_url, "--max-number-of-messages", "10",
        "--message-attribute-names", "All",
    ).get("Messages", []):  # fmt: skip
        for message in batch:
            values = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
            out.add((values["event_type"], values["principal"], values["channel"]))
            sqs(
                stack,
                "delete-message",
                "--queue-url",
                queue_url,
                "--receipt-handle",
                message["ReceiptHandle"],
            )
    return out
