"""One Logger, Metrics and Tracer for every entry point.

botocore and urllib3 are pinned at INFO or above: at DEBUG they log request and response
bodies, which carry tokens (CreateServiceSpecificCredential, PutSecretValue).
"""

from __future__ import annotations

import logging
import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE = "tokenwarden"
NAMESPACE = "TokenWarden"

for _noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
    logging.getLogger(_noisy).setLevel(max(logging.INFO, logging.getLogger(_noisy).level))

logger = Logger(service=SERVICE, log_uncaught_exceptions=False)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)


def team_metric(name: str, value: float, team: str) -> None:
    """One EMF document with a `team` dimension (the shared `metrics` carries no per-team dimension)."""
    _single(name, value, "team", team)


def principal_metric(name: str, value: float, principal: str) -> None:
    """One EMF document with a `principal` dimension: one custom metric per principal, so only
    where the deployment asked for them (service/expiry_metrics.py)."""
    _single(name, value, "principal", principal)


def _single(name: str, value: float, dimension: str, dimension_value: str) -> None:
    if _disabled():
        return
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension(name=dimension, value=dimension_value)


def _disabled() -> bool:
    return os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true"


def count(name: str, value: float = 1) -> None:
    """One business-outcome metric. Skipped where metrics are off (the CLI), so nothing piles up."""
    if not _disabled():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
