"""SNS: one topic; Chatbot-formatted bodies with attributes for filter policies."""

from __future__ import annotations

from typing import Any

from tokenwarden.adapters.aws import AwsClient
from tokenwarden.domain.notifications import Notification


class SnsNotifier:
    def __init__(self, client: Any, topic_arn: str) -> None:
        self._sns = AwsClient(client)
        self._topic = topic_arn

    def publish(self, notification: Notification) -> None:
        self._sns.publish(
            TopicArn=self._topic,
            Subject=f"TokenWarden: {notification.event_type.value}"[:100],
            Message=notification.body(),
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in notification.attributes().items()
            },
        )
