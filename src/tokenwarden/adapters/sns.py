"""SNS: one topic; Chatbot-formatted bodies with attributes for filter policies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenwarden.adapters.aws import translating
from tokenwarden.domain.notifications import Notification

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


class SnsNotifier:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._sns = translating(client)
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
