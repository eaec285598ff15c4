"""The composition root: real adapters built from validated Settings, nothing hidden."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from tokenwarden.adapters.iam import IamAdapter
from tokenwarden.adapters.ledger import DynamoLedger
from tokenwarden.adapters.otlp_probe import OtlpProbe
from tokenwarden.adapters.secrets import SecretsAdapter
from tokenwarden.adapters.sns import SnsNotifier
from tokenwarden.domain.notifications import Notification
from tokenwarden.service.rotation import ProbePolicy, RotationEngine
from tokenwarden.settings import Settings

_RETRIES = Config(retries={"mode": "adaptive", "max_attempts": 8})


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class StackClock:
    """The embedded local stack's simulated time, read over loopback (development only)."""

    def __init__(self, stack_url: str) -> None:
        self._url = stack_url.rstrip("/") + "/_tokenwarden/clock"

    def now(self) -> datetime:
        with urllib.request.urlopen(self._url, timeout=10) as response:  # noqa: S310 - loopback
            return datetime.fromisoformat(json.loads(response.read())["now"])


def build_clock(settings: Settings) -> SystemClock | StackClock:
    return StackClock(settings.stack_url) if settings.stack_url else SystemClock()


class DiscardNotifier:
    """Used when no topic is configured (plan only)."""

    def publish(self, notification: Notification) -> None:
        return None


@dataclass
class Adapters:
    iam: IamAdapter
    secrets: SecretsAdapter
    ledger: DynamoLedger
    notifier: SnsNotifier | DiscardNotifier
    probe: OtlpProbe


def build_adapters(settings: Settings, session: Any | None = None) -> Adapters:
    session = session or boto3.session.Session(region_name=settings.region)
    notifier: SnsNotifier | DiscardNotifier = (
        SnsNotifier(session.client("sns", config=_RETRIES), settings.topic_arn)
        if settings.topic_arn
        else DiscardNotifier()
    )
    return Adapters(
        iam=IamAdapter(session.client("iam", config=_RETRIES), partition=settings.partition),
        secrets=SecretsAdapter(session.client("secretsmanager", config=_RETRIES)),
        ledger=DynamoLedger(session.client("dynamodb", config=_RETRIES), settings.ledger_table),
        notifier=notifier,
        probe=OtlpProbe(settings.otlp_metrics_endpoint),
    )


def build_engine(settings: Settings, adapters: Adapters, clock: Any) -> RotationEngine:
    return RotationEngine(
        iam=adapters.iam,
        secrets=adapters.secrets,
        ledger=adapters.ledger,
        notifier=adapters.notifier,
        probe=adapters.probe,
        naming=settings.naming,
        clock=clock,
        max_key_age_days=settings.max_key_age_days,
        probe_policy=ProbePolicy(attempts=settings.probe_attempts),
    )
