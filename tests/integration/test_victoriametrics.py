"""The prometheus dialect against a real PromQL engine: VictoriaMetrics fed by the OpenTelemetry SDK the way
Claude Code exports (OTLP/HTTP protobuf, delta counters, team.id as a resource attribute), queried through
PromQLClient with its real urllib transport. Also that transport against small loopback servers.

Needs the binary from `make setup`. Without it the VictoriaMetrics tests skip locally but FAIL in CI
(CI=true), so a CI run never passes without having queried a real engine.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, ObservableCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from tokenwarden.adapters.promql import (
    PromQLClient,
    PromQLConnectionError,
    PromQLHTTPError,
    PromQLLimitError,
    PromQLThrottledError,
    PromQLTimeoutError,
)
from tokenwarden.domain.promql import (
    Dialect,
    activity_query,
    evaluation_time,
    last_sample_query,
)
from tokenwarden.local.victoriametrics import (
    BINARY_ENV,
    VictoriaMetrics,
    VictoriaMetricsError,
    VictoriaMetricsNotFoundError,
    find_binary,
)

SESSIONS = "claude_code.session.count"
TOKENS = "claude_code.token.usage"
HOUR = timedelta(hours=1)
DELTA: dict[type, AggregationTemporality] = {
    Counter: AggregationTemporality.DELTA,
    Histogram: AggregationTemporality.DELTA,
    ObservableCounter: AggregationTemporality.DELTA,
}


def victoriametrics_binary() -> Path:
    try:
        return find_binary()
    except VictoriaMetricsNotFoundError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{exc} — CI must run the VictoriaMetrics integration tests, not skip them")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def vm() -> Iterator[VictoriaMetrics]:
    with VictoriaMetrics(victoriametrics_binary()) as server:
        yield server


class Laptop:
    """One Claude Code installation: its own SDK pipeline and resource attributes."""

    def __init__(self, otlp_url: str, team: str | None, user: str) -> None:
        attributes = {"service.name": "claude-code", "service.version": "2.0.0", "user.id": user}
        if team is not None:
            attributes["team.id"] = team
        exporter = OTLPMetricExporter(endpoint=otlp_url, preferred_temporality=DELTA, timeout=10)
        self.provider = MeterProvider(
            resource=Resource.create(attributes),
            metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)],
        )
        meter = self.provider.get_meter("com.anthropic.claude_code", "2.0.0")
        self.sessions = meter.create_counter(SESSIONS, unit="count")
        self.tokens = meter.create_counter(TOKENS, unit="tokens")
        self.user = user

    def session(self, session_id: str) -> None:
        self.sessions.add(1, {"session.id": session_id})

    def use(self, kind: str, amount: int) -> None:
        self.tokens.add(amount, {"type": kind, "model": "claude-sonnet-4-5", "session.id": f"s-{self.user}"})

    def export(self) -> None:
        assert self.provider.force_flush(timeout_millis=10_000)

    def close(self) -> None:
        self.provider.shutdown()


@dataclass(frozen=True)
class Pushed:
    started: datetime
    finished: datetime
    at: datetime
    """An evaluation time (a minute boundary) at or after every pushed sample."""


@pytest.fixture(scope="module")
def pushed(vm: VictoriaMetrics) -> Pushed:
    started = datetime.now(UTC)
    alice = Laptop(vm.otlp_url, "platform-eng", "alice")
    bob = Laptop(vm.otlp_url, "platform-eng", "bob")
    carol = Laptop(vm.otlp_url, "data-science", "carol")
    stray = Laptop(vm.otlp_url, None, "dave")  # OTEL_RESOURCE_ATTRIBUTES without team.id
    try:
        # First export interval: three sessions start and use tokens.
        alice.session("s-alice")
        alice.use("input", 1000)
        alice.use("output", 200)
        bob.session("s-bob")
        bob.use("input", 500)
        carol.session("s-carol")
        carol.use("input", 50)
        stray.session("s-dave")
        for laptop in (alice, bob, carol, stray):
            laptop.export()
        # Second interval: only alice keeps working. Delta temporality sends the new 1000 tokens, not 2000,
        # and nothing for the counters that did not move.
        alice.use("input", 1000)
        alice.export()
    finally:
        for laptop in (alice, bob, carol, stray):
            laptop.close()
    finished = datetime.now(UTC)
    vm.force_flush()
    return Pushed(started, finished, evaluation_time(finished + timedelta(minutes=1)))


def client(vm: VictoriaMetrics, **options: Any) -> PromQLClient:
    return PromQLClient.unsigned(vm.base_url, **options)


# --- VictoriaMetrics --------------------------------------------------------------------------------------


def test_listens_on_loopback_only(vm: VictoriaMetrics) -> None:
    assert vm.base_url.startswith("http://127.0.0.1:")
    assert vm.otlp_url == f"{vm.base_url}/opentelemetry/v1/metrics"


def test_sessions_per_team(vm: VictoriaMetrics, pushed: Pushed) -> None:
    result = client(vm).query(activity_query(Dialect.PROMETHEUS, SESSIONS, HOUR), time=pushed.at)

    assert not result.truncated
    assert result.values_by_team() == {"platform-eng": 2.0, "data-science": 1.0}
    assert result.unattributed == 1.0  # the laptop without team.id, kept apart
    assert {sample.timestamp for sample in result.samples} == {pushed.at}


def test_token_usage_samples_per_team(vm: VictoriaMetrics, pushed: Pushed) -> None:
    result = client(vm).query(activity_query(Dialect.PROMETHEUS, TOKENS, HOUR), time=pushed.at)

    # platform-eng: alice input+output, bob input, then alice input again; data-science: carol input.
    assert result.values_by_team() == {"platform-eng": 4.0, "data-science": 1.0}


def test_delta_values_are_stored_as_deltas(vm: VictoriaMetrics, pushed: Pushed) -> None:
    query = 'sum by ("team.id") (sum_over_time({__name__="claude_code.token.usage"}[1h]))'
    result = client(vm).query(query, time=pushed.at)

    assert result.values_by_team() == {"platform-eng": 2700.0, "data-science": 50.0}


@pytest.mark.parametrize("metric", [SESSIONS, TOKENS])
def test_last_sample_time_per_team(vm: VictoriaMetrics, pushed: Pushed, metric: str) -> None:
    result = client(vm).query(last_sample_query(Dialect.PROMETHEUS, metric, HOUR), time=pushed.at)

    seen = result.times_by_team()
    assert set(seen) == {"platform-eng", "data-science"}
    margin = timedelta(seconds=1)
    for team, last in seen.items():
        assert pushed.started - margin <= last <= pushed.finished + margin, team


def test_quoted_metric_name_selects_the_same_series(vm: VictoriaMetrics, pushed: Pushed) -> None:
    quoted = 'sum by ("team.id") (count_over_time({"claude_code.session.count"}[1h]))'
    by_name = activity_query(Dialect.PROMETHEUS, SESSIONS, HOUR)
    assert (
        client(vm).query(quoted, time=pushed.at).values_by_team()
        == client(vm).query(by_name, time=pushed.at).values_by_team()
    )


def test_samples_outside_the_window_are_not_counted(vm: VictoriaMetrics, pushed: Pushed) -> None:
    later = pushed.at + timedelta(hours=2)
    promql = client(vm)
    assert promql.query(activity_query(Dialect.PROMETHEUS, SESSIONS, HOUR), time=later).samples == ()
    assert promql.query(last_sample_query(Dialect.PROMETHEUS, SESSIONS, HOUR), time=later).samples == ()


def test_a_query_the_engine_rejects_is_a_typed_error(vm: VictoriaMetrics) -> None:
    with pytest.raises(PromQLLimitError) as caught:
        client(vm, max_attempts=1).query("sum by (team.id (")
    assert caught.value.status == 422
    assert caught.value.error  # VictoriaMetrics' own explanation is carried along


def test_stop_is_idempotent_and_frees_the_port() -> None:
    server = VictoriaMetrics(victoriametrics_binary()).start()
    base_url = server.base_url
    server.stop()
    server.stop()
    assert not server.running
    with pytest.raises(PromQLConnectionError):
        PromQLClient.unsigned(base_url, max_attempts=1).query("vector(1)")


# --- Finding and starting the binary (no VictoriaMetrics needed) -------------------------------------------


def test_missing_binary_says_to_run_make_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(BINARY_ENV, raising=False)
    with pytest.raises(VictoriaMetricsNotFoundError, match="run `make setup`") as caught:
        find_binary(tmp_path)
    assert str(tmp_path / ".cache" / "victoriametrics" / "victoria-metrics") in str(caught.value)
    with pytest.raises(VictoriaMetricsNotFoundError, match="make setup"):
        VictoriaMetrics(tmp_path / "victoria-metrics")


def test_environment_overrides_the_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    binary = tmp_path / "vm"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv(BINARY_ENV, str(binary))
    assert find_binary(tmp_path / "elsewhere") == binary


def test_a_binary_that_dies_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    binary = tmp_path / "victoria-metrics"
    binary.write_text("#!/bin/sh\necho 'cannot bind: address already in use' >&2\nexit 3\n")
    binary.chmod(0o755)
    with pytest.raises(VictoriaMetricsError, match="exited with code 3") as caught:
        VictoriaMetrics(binary, startup_timeout=5).start()
    assert "address already in use" in str(caught.value)


# --- The urllib transport against loopback servers ---------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Answers according to the path the test points the client at."""

    received: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append((self.path, dict(self.headers.items()), body))
        if self.path.startswith("/slow/"):
            time.sleep(1.5)
        if self.path.startswith("/throttled/"):
            self._reply(429, {"status": "error", "errorType": "throttled", "error": "too many"})
        elif self.path.startswith("/moved/"):
            self.send_response(302)
            self.send_header("Location", "/ok/api/v1/query")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._reply(200, {"status": "success", "data": {"resultType": "vector", "result": []}})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up first
            self.wfile.write(data)


@pytest.fixture(scope="module")
def loopback() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_transport_posts_the_form(loopback: str) -> None:
    _Handler.received.clear()
    result = PromQLClient.unsigned(f"{loopback}/ok").query("vector(1)")
    assert result.samples == ()
    ((path, headers, body),) = _Handler.received
    assert path == "/ok/api/v1/query"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert body == b"query=vector%281%29"


def test_transport_reads_error_answers(loopback: str) -> None:
    with pytest.raises(PromQLThrottledError, match="too many"):
        PromQLClient.unsigned(f"{loopback}/throttled", max_attempts=2, sleep=lambda _: None).query(
            "vector(1)"
        )


def test_transport_does_not_follow_redirects(loopback: str) -> None:
    with pytest.raises(PromQLHTTPError, match="HTTP 302"):
        PromQLClient.unsigned(f"{loopback}/moved").query("vector(1)")


def test_transport_times_out(loopback: str) -> None:
    with pytest.raises(PromQLTimeoutError, match=r"within 0\.3 s"):
        PromQLClient.unsigned(f"{loopback}/slow", timeout=0.3).query("vector(1)")
