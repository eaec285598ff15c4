"""The composition root: real adapters built from validated Settings, nothing hidden.

Each builder imports the adapters or the service it builds: a Lambda handler imports this module
at cold start, and loads the code its own builders need with the objects they build, on its first
invocation (the clients are made then too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from tokenwarden.adapters.iam import IamAdapter
    from tokenwarden.adapters.ledger import DynamoLedger
    from tokenwarden.adapters.otlp_probe import OtlpProbe
    from tokenwarden.adapters.secrets import SecretsAdapter
    from tokenwarden.adapters.stepfunctions import NightlyStateMachine
    from tokenwarden.domain.notifications import Notification
    from tokenwarden.domain.registry import Principal
    from tokenwarden.ports import Clock
    from tokenwarden.service.breakglass import BreakGlass
    from tokenwarden.service.health import HealthChecker
    from tokenwarden.service.ownership import Custody
    from tokenwarden.service.reconciler import Reconciler
    from tokenwarden.service.rotation import RotationEngine
    from tokenwarden.service.routing import RoutedNotifier
    from tokenwarden.service.snooze import Snoozes
    from tokenwarden.settings import Settings

# Throttling (IAM's limits are unpublished, Secrets Manager allows 50 writes a second) and 5xx
# answers are retried with botocore's standard mode: jittered exponential back-off, up to 8
# attempts. Not "adaptive": its client-side rate limiter (documented as experimental) can fall
# to half a request a second after a burst and then stall every later call of the run.
_RETRIES = Config(retries={"mode": "standard", "max_attempts": 8})


class SystemClock:
    """The time everywhere TokenWarden runs for real. The only other clock is the embedded stack's
    simulated one, which the development tools pass in its place."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class DiscardNotifier:
    """Used when no topic is configured (plan only)."""

    def publish(self, notification: Notification) -> None:
        return None


@dataclass
class Adapters:
    iam: IamAdapter
    secrets: SecretsAdapter
    ledger: DynamoLedger
    notifier: RoutedNotifier
    probe: OtlpProbe


def build_adapters(settings: Settings, session: Any | None = None) -> Adapters:
    from tokenwarden.adapters.iam import IamAdapter
    from tokenwarden.adapters.ledger import DynamoLedger
    from tokenwarden.adapters.otlp_probe import OtlpProbe
    from tokenwarden.adapters.secrets import SecretsAdapter
    from tokenwarden.adapters.sns import SnsNotifier
    from tokenwarden.service.routing import RegistryRoutes, RoutedNotifier

    session = session or boto3.session.Session(region_name=settings.region)
    topic: SnsNotifier | DiscardNotifier = (
        SnsNotifier(session.client("sns", config=_RETRIES), settings.topic_arn)
        if settings.topic_arn
        else DiscardNotifier()
    )
    # Each message carries its team's channel, from the registry shipped with the function.
    notifier = RoutedNotifier(topic, RegistryRoutes(settings.registry_path))
    return Adapters(
        iam=IamAdapter(
            session.client("iam", config=_RETRIES), partition=settings.partition, sts=session.client("sts")
        ),
        secrets=SecretsAdapter(session.client("secretsmanager", config=_RETRIES), rules=settings.ownership),
        ledger=DynamoLedger(session.client("dynamodb", config=_RETRIES), settings.ledger_table),
        notifier=notifier,
        probe=OtlpProbe(settings.otlp_metrics_endpoint),
    )


def build_engine(settings: Settings, adapters: Adapters, clock: Clock) -> RotationEngine:
    """The rotation steps; they take the principal's lease in the same ledger table."""
    from tokenwarden.service.lease import Leases
    from tokenwarden.service.rotation import ProbePolicy, RotationEngine

    return RotationEngine(
        iam=adapters.iam,
        secrets=adapters.secrets,
        ledger=adapters.ledger,
        notifier=adapters.notifier,
        probe=adapters.probe,
        naming=settings.naming,
        clock=clock,
        max_key_age_days=settings.max_key_age_days,
        probe_policy=ProbePolicy(
            attempts=settings.probe_attempts, timeout_seconds=adapters.probe.timeout_seconds
        ),
        leases=Leases(adapters.ledger, clock),
    )


def build_health_checker(
    settings: Settings, adapters: Adapters, session: Any | None = None, clock: Clock | None = None
) -> HealthChecker:
    from tokenwarden.adapters.ledger import DynamoHealthStore
    from tokenwarden.adapters.promql import PromQLClient
    from tokenwarden.adapters.snooze_log import DynamoSnoozeLog
    from tokenwarden.domain.health import HealthPolicy
    from tokenwarden.domain.promql import Dialect
    from tokenwarden.domain.rollback import RollbackPolicy
    from tokenwarden.service.health import HealthChecker
    from tokenwarden.service.rollback import AutomaticRollback

    session = session or boto3.session.Session(region_name=settings.region)
    dialect = Dialect(settings.promql_dialect)
    signing = settings.signing
    querier: PromQLClient
    if signing == "monitoring":
        querier = PromQLClient.cloudwatch(session, settings.region, base_url=settings.promql_url)
    elif signing == "aps":
        querier = PromQLClient.managed_prometheus(session, settings.region, base_url=settings.promql_url)
    else:
        if not settings.promql_url:
            raise ValueError(
                "TOKENWARDEN_PROMQL_URL is required for an unsigned Prometheus-compatible server"
            )
        querier = PromQLClient.unsigned(settings.promql_url, dialect=dialect)
    dynamodb = session.client("dynamodb", config=_RETRIES)
    store = DynamoHealthStore(dynamodb, settings.ledger_table)
    return HealthChecker(
        querier=querier,
        dialect=dialect,
        store=store,
        ledger=adapters.ledger,
        iam=adapters.iam,
        notifier=adapters.notifier,
        naming=settings.naming,
        metric_names=settings.metric_names,
        window=timedelta(hours=settings.health_window_hours),
        policy=HealthPolicy(reminder_hours=settings.health_reminder_hours),
        rollback=AutomaticRollback(
            iam=adapters.iam,
            ledger=adapters.ledger,
            notifier=adapters.notifier,
            naming=settings.naming,
            clock=clock or SystemClock(),
            policy=RollbackPolicy(grace_days=settings.rollback_grace_days),
        ),
        journal=store,
        snoozes=DynamoSnoozeLog(dynamodb, settings.ledger_table),
    )


def build_nightly_state_machine(settings: Settings, session: Any | None = None) -> NightlyStateMachine:
    """The deployed nightly state machine (TOKENWARDEN_STATE_MACHINE_ARN), to start a night by hand."""
    from tokenwarden.adapters.stepfunctions import NightlyStateMachine

    if not settings.state_machine_arn:
        raise ValueError(
            "TOKENWARDEN_STATE_MACHINE_ARN is not set: it is the stack's NightlyStateMachineArn output"
        )
    session = session or boto3.session.Session(region_name=settings.region)
    return NightlyStateMachine(session.client("stepfunctions", config=_RETRIES), settings.state_machine_arn)


def build_custody(settings: Settings, adapters: Adapters) -> Custody:
    """Verifies (and makes) principals' users and secrets: never adopts one by its name."""
    from tokenwarden.service.ownership import Custody

    return Custody(
        iam=adapters.iam, secrets=adapters.secrets, naming=settings.naming, rules=settings.ownership
    )


def build_reconciler(settings: Settings, adapters: Adapters, clock: Clock) -> Reconciler:
    from tokenwarden.service.reconciler import Reconciler

    engine = build_engine(settings, adapters, clock)
    return Reconciler(
        iam=adapters.iam,
        secrets=adapters.secrets,
        ledger=adapters.ledger,
        notifier=adapters.notifier,
        engine=engine,
        leases=engine.leases,
        naming=settings.naming,
        rotation_lambda_arn=settings.rotation_lambda_arn,
        custody=build_custody(settings, adapters),
        health=adapters.ledger.health_store(),
        journal=adapters.ledger,
        principal_metrics=settings.principal_metrics,
    )


def registered_principal(settings: Settings, principal_id: str) -> Principal:
    """The principal a break-glass request names, read from the registry shipped with the
    function; RegistryError when the registry does not name it."""
    from tokenwarden.domain.registry import load_registry

    return load_registry(settings.registry_path).require(principal_id)


def build_breakglass(settings: Settings, adapters: Adapters, clock: Clock) -> BreakGlass:
    from tokenwarden.service.breakglass import BreakGlass

    engine = build_engine(settings, adapters, clock)
    return BreakGlass(
        iam=adapters.iam,
        secrets=adapters.secrets,
        ledger=adapters.ledger,
        notifier=adapters.notifier,
        engine=engine,
        leases=engine.leases,
        naming=settings.naming,
        rotation_lambda_arn=settings.rotation_lambda_arn,
        sleep=engine.sleep,
    )


def build_snoozes(settings: Settings, session: Any | None = None) -> Snoozes:
    """Health snoozes in the ledger table (`tokenwarden health snooze`), with the caller's credentials."""
    from tokenwarden.adapters.snooze_log import DynamoSnoozeLog
    from tokenwarden.service.snooze import Snoozes

    session = session or boto3.session.Session(region_name=settings.region)
    return Snoozes(DynamoSnoozeLog(session.client("dynamodb", config=_RETRIES), settings.ledger_table))
