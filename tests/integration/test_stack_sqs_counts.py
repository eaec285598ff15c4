"""The embedded stack's SQS counts (`tokenwarden.local.sqs_counts`): moto's figures, worked out at
most once a second per queue, as approximate as SQS says they are and no kinder."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sqs.models import Queue

from tokenwarden.local import sqs_counts

COUNTED = "ApproximateNumberOfMessages"


@pytest.fixture
def sqs() -> Iterator[tuple[Any, str]]:
    sqs_counts.install()
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        yield client, client.create_queue(QueueName="inbox")["QueueUrl"]


def counted(client: Any, url: str) -> int:
    return int(client.get_queue_attributes(QueueUrl=url, AttributeNames=[COUNTED])["Attributes"][COUNTED])


def test_sending_many_messages_works_the_counts_out_once_within_a_second(
    sqs: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, url = sqs
    monkeypatch.setattr(sqs_counts, "MAX_AGE_SECONDS", 3600.0)
    walks = []
    for name in sqs_counts.COUNTS:
        moto_s = getattr(getattr(Queue, name).fget, sqs_counts.PATCH_MARK)  # moto's own count

        def walked(queue: Any, moto_s: Any = moto_s, name: str = name) -> int:
            walks.append(name)
            return int(moto_s(queue))

        monkeypatch.setattr(Queue, name, sqs_counts._at_most_once_a_second(walked))

    for n in range(50):
        client.send_message(QueueUrl=url, MessageBody=f"m{n}")

    assert sorted(walks) == sorted(sqs_counts.COUNTS), "each count walked the queue once, not per message"
    assert counted(client, url) == 0  # the figure of the first send's moment: approximate, never ahead


def test_the_counts_are_moto_s_once_their_second_is_over(
    sqs: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, url = sqs
    monkeypatch.setattr(sqs_counts, "MAX_AGE_SECONDS", 0.0)
    for n in range(3):
        client.send_message(QueueUrl=url, MessageBody=f"m{n}")

    assert counted(client, url) == 3
    client.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=60)
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attributes[COUNTED], attributes["ApproximateNumberOfMessagesNotVisible"]) == ("1", "2")
