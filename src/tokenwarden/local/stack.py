"""The embedded local stack: everything TokenWarden talks to, on loopback, without AWS.

- a moto server with the project's service-specific-credential operations, AWS managed
  policies loaded, and RotateSecret running the real rotation handler in-process;
- an OTLP metrics endpoint that accepts a bearer token exactly when it is an Active,
  unexpired CloudWatch key of the embedded IAM, and forwards accepted protobuf exports to
  VictoriaMetrics when it runs;
- its own clock, which only moves forward, so a year of nightly runs takes seconds;
- the resources the template would create: KMS key, topic (with a queue to read it), ledger.

Development tooling: it never ships in the Lambda layer.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

from tokenwarden.local import iam_ssc, lambda_router
from tokenwarden.local.clock import StackClock, set_default_clock

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROTATION_FUNCTION = "tokenwarden-rotate-secret"
ROTATION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{ROTATION_FUNCTION}"
LEDGER_TABLE = "tokenwarden-ledger"
TOPIC_NAME = "tokenwarden-notifications"
QUEUE_NAME = "tokenwarden-notifications-inbox"
CLOCK_PATH = "/_tokenwarden/clock"


class StackError(RuntimeError):
    pass


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def load_function(name: str) -> ModuleType:
    """Load `functions/<name>/app.py` of this checkout, as Lambda would load it."""
    path = repo_root() / "functions" / name / "app.py"
    if not path.exists():
        raise StackError(f"{path} not found: the local stack runs from a TokenWarden checkout")
    spec = importlib.util.spec_from_file_location(f"tokenwarden_function_{name}", path)
    if spec is None or spec.loader is None:
        raise StackError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the handler's annotations through it
    spec.loader.exec_module(module)
    return module


@dataclass
class LocalStack:
    host: str = "127.0.0.1"
    port: int = 0
    otlp_port: int = 0
    victoriametrics: bool = True
    clock: StackClock = field(default_factory=StackClock)
    _moto: Any = None
    _otlp: ThreadingHTTPServer | None = None
    _vm: Any = None
    exports: dict[str, str] = field(default_factory=dict)

    def start(self) -> dict[str, str]:
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        default_user_config["iam"]["load_aws_managed_policies"] = True
        set_default_clock(self.clock)
        iam_ssc.install(self.clock)

        self._moto = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto's backends are process-wide: a stack started again in the same process starts empty.
        reset = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")  # noqa: S310
        with urllib.request.urlopen(reset, timeout=10):  # noqa: S310 - loopback
            pass

        forward = self._start_victoriametrics()
        self._otlp = ThreadingHTTPServer((self.host, self.otlp_port), _otlp_handler(self.clock, forward))
        threading.Thread(target=self._otlp.serve_forever, daemon=True).start()
        otlp_host, otlp_port = self._otlp.server_address[:2]
        stack_url = f"http://{otlp_host!s}:{otlp_port}"

        self.exports = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{stack_url}/v1/metrics",
            "TOKENWARDEN_OTLP_ENDPOINT": f"{stack_url}/v1/metrics",
            "TOKENWARDEN_STACK_URL": stack_url,
            "TOKENWARDEN_LEDGER_TABLE": LEDGER_TABLE,
            "TOKENWARDEN_ROTATION_LAMBDA_ARN": ROTATION_ARN,
            "TOKENWARDEN_PROBE_ATTEMPTS": "2",
        }
        if self._vm is not None:
            self.exports["TOKENWARDEN_PROMQL_URL"] = self._vm.base_url
            self.exports["TOKENWARDEN_PROMQL_DIALECT"] = "prometheus"
        os.environ.update(self.exports)
        self._create_resources()
        rotate = load_function("rotate_secret")
        lambda_router.register(ROTATION_ARN, rotate.lambda_handler)
        return self.exports

    def _start_victoriametrics(self) -> Callable[[bytes, str], None] | None:
        if not self.victoriametrics:
            return None
        from tokenwarden.local.victoriametrics import VictoriaMetrics

        self._vm = VictoriaMetrics()
        self._vm.start()
        vm = self._vm
        clock = self.clock

        def forward(body: bytes, content_type: str) -> None:
            payload = to_stack_time(body, content_type, clock)
            request = urllib.request.Request(  # noqa: S310 - loopback URL we started
                vm.otlp_url, data=payload, method="POST", headers={"Content-Type": "application/x-protobuf"}
            )
            with urllib.request.urlopen(request, timeout=10):  # noqa: S310
                pass
            vm.force_flush()

        return forward

    def _create_resources(self) -> None:
        import boto3

        from tokenwarden.adapters.ledger import create_table

        session = boto3.session.Session(region_name=REGION)
        kms = session.client("kms")
        key_id = kms.create_key(Description="TokenWarden (local)")["KeyMetadata"]["Arn"]
        sns = session.client("sns")
        topic = sns.create_topic(Name=TOPIC_NAME, Attributes={"KmsMasterKeyId": key_id})["TopicArn"]
        sqs = session.client("sqs")
        queue_url = sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
        )
        create_table(session.client("dynamodb"), LEDGER_TABLE)
        extra = {
            "TOKENWARDEN_TOPIC_ARN": topic,
            "TOKENWARDEN_SECRETS_KMS_KEY_ID": key_id,
            "TOKENWARDEN_NOTIFICATIONS_QUEUE_URL": queue_url,
        }
        self.exports.update(extra)
        os.environ.update(extra)

    def stop(self) -> None:
        # The servers run on daemon threads; an orderly shutdown waits for idle keep-alive
        # connections, so it runs in the background and the process may exit under it.
        for server in (self._otlp, getattr(self._moto, "_server", None)):
            if server is not None:
                threading.Thread(target=server.shutdown, daemon=True).start()
        if self._vm is not None:
            self._vm.stop()
        lambda_router.unregister_all()


def to_stack_time(body: bytes, content_type: str, clock: StackClock) -> bytes:
    """Decode an OTLP export (protobuf or JSON), move its timestamps onto the stack's clock, re-encode.

    Laptops stamp samples with wall-clock time; the stack may be months ahead in simulated time.
    VictoriaMetrics only takes protobuf, while Claude Code may send http/json.
    """
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    request = ExportMetricsServiceRequest()
    try:
        if "json" in content_type:
            json_format.Parse(body, request, ignore_unknown_fields=True)
        else:
            request.ParseFromString(body)
    except (DecodeError, json_format.ParseError) as exc:
        raise ValueError("not an OTLP metrics export") from exc
    offset = int((clock.now() - datetime.now(UTC)).total_seconds() * 1e9)
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                for point in getattr(metric, kind).data_points:
                    point.time_unix_nano += offset
                    if point.start_time_unix_nano:
                        point.start_time_unix_nano += offset
    return bytes(request.SerializeToString())


def _otlp_handler(
    clock: StackClock, forward: Callable[[bytes, str], None] | None
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "tokenwarden-local"

        def log_message(self, format: str, *args: Any) -> None:
            return None  # the default logs to stderr; nothing here is worth a line

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == CLOCK_PATH:
                self._reply(200, {"now": clock.now().isoformat()})
            elif self.path == "/health":
                self._reply(200, {"status": "ok"})
            else:
                self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path == CLOCK_PATH:
                try:
                    at = datetime.fromisoformat(json.loads(body)["at"])
                except (ValueError, KeyError, TypeError):
                    self._reply(400, {"error": 'send {"at": "<ISO-8601 with offset>"}'})
                    return
                if at.tzinfo is None:
                    self._reply(400, {"error": "the time needs a UTC offset"})
                    return
                self._reply(200, {"now": clock.advance_to(at).isoformat()})
                return
            if self.path.rstrip("/") != "/v1/metrics":
                self._reply(404, {"error": "not found"})
                return
            header = self.headers.get("Authorization") or ""
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                self._reply(401, {"error": "missing bearer token"})
                return
            result = iam_ssc.authenticate(token.strip())
            if not result.accepted:
                self._reply(401 if result.reason == "unknown" else 403, {"error": f"key {result.reason}"})
                return
            content_type = self.headers.get("Content-Type") or "application/x-protobuf"
            if forward is not None and body:
                try:
                    forward(body, content_type)
                except ValueError as exc:
                    self._reply(400, {"error": f"not an OTLP metrics export: {type(exc).__name__}"})
                    return
                except OSError as exc:
                    self._reply(502, {"error": f"metrics store refused the export: {exc}"})
                    return
            self._reply(200, {})

    return Handler


def advance_clock(stack_url: str, at: datetime) -> datetime:
    """Move the embedded stack's clock forward (never back); return its time."""
    request = urllib.request.Request(  # noqa: S310 - the stack's own loopback URL
        stack_url + CLOCK_PATH,
        data=json.dumps({"at": at.isoformat()}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return datetime.fromisoformat(json.loads(response.read())["now"])


def stack_time(stack_url: str) -> datetime:
    with urllib.request.urlopen(stack_url + CLOCK_PATH, timeout=10) as response:  # noqa: S310
        return datetime.fromisoformat(json.loads(response.read())["now"])
