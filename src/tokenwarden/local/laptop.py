"""A simulated developer laptop: Claude Code's OpenTelemetry metrics export, for real.

Uses the OpenTelemetry SDK and its OTLP/HTTP protobuf exporter with delta temporality and
the resource attributes Claude Code sends, so the embedded endpoint sees what a laptop sends.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricExportResult,
)
from opentelemetry.sdk.resources import Resource

DELTA: dict[type, AggregationTemporality] = {Counter: AggregationTemporality.DELTA}


def send_session(
    endpoint: str,
    token: str,
    team: str,
    user: str = "dev",
    sessions: int = 1,
    tokens_used: int = 1200,
    extra_resource: Mapping[str, str] | None = None,
) -> bool:
    """Export one burst of Claude Code metrics with the bearer token; True when accepted."""
    resource = Resource.create(
        {
            "service.name": "claude-code",
            "team.id": team,
            "user.id": user,
            "cost_center": "CC-0000",
            **(extra_resource or {}),
        }
    )
    reader = InMemoryMetricReader(preferred_temporality=DELTA)
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("com.anthropic.claude_code")
    meter.create_counter("claude_code.session.count", unit="count").add(sessions)
    meter.create_counter("claude_code.token.usage", unit="tokens").add(tokens_used, {"type": "input"})
    data = reader.get_metrics_data()
    provider.shutdown()
    exporter = OTLPMetricExporter(
        endpoint=endpoint,
        headers={"Authorization": f"Bearer {token}"},
        preferred_temporality=DELTA,
        timeout=10,
    )
    exporter_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.http.metric_exporter")
    level = exporter_logger.level
    exporter_logger.setLevel(logging.CRITICAL)  # a refused export is the expected answer here
    try:
        result = exporter.export(data) if data is not None else MetricExportResult.FAILURE
    finally:
        exporter_logger.setLevel(level)
        exporter.shutdown()
    return result == MetricExportResult.SUCCESS
