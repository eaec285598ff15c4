"""The embedded local stack: everything TokenWarden talks to, on loopback, without AWS.

- a moto server with the project's service-specific-credential operations, AWS managed
  policies loaded, and RotateSecret running the real rotation handler in-process;
- the nightly state machine, made from statemachine/nightly.asl.json and run by moto's ASL
  interpreter, its Lambda tasks answered by the reconcile function in-process;
- an OTLP metrics endpoint that accepts a bearer token exactly when it is an Active,
  unexpired CloudWatch key of the embedded IAM, and forwards accepted protobuf exports to
  VictoriaMetrics when it runs;
- its own clock, which only moves forward, so a year of nightly runs takes seconds (the rotation
  function's waits move it instead of taking real time);
- a PromQL path (``/promql/api/v1/query``) that forwards to VictoriaMetrics;
- the resources the template would create: the secrets' KMS key (so every secret is made, and
  verified, exactly as in a deployment), topic (with a queue to read it), ledger;
- AWS's harsher behaviours, each a switch (:mod:`tokenwarden.local.realism`): background rotation
  with retries, IAM eventual consistency, keys listed without expiry, throttling and 5xx faults, 429s.

Control endpoints on the OTLP server: ``GET|POST /_tokenwarden/clock``; ``POST /_tokenwarden/settle``
(``{"timeout": seconds}`` → ``{"idle": bool}``: waits for background rotations);
``GET /_tokenwarden/behaviour``, ``/_tokenwarden/faults`` (injected faults per service) and
``/_tokenwarden/rotations`` (background rotations: secret, token, attempts, outcome);
``POST /_tokenwarden/registry`` (``{"path": "<teams.yaml>"}``: the registry the stack's reconcile
function reads from then on, as `sam deploy` ships one with the function).

Development tooling: it never ships in the Lambda layer.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

from tokenwarden.local import iam_ssc, lambda_router, realism
from tokenwarden.local.clock import CLOCK_PATH, StackClock, set_default_clock
from tokenwarden.local.realism import StackBehaviour
from tokenwarden.ports import Clock

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROTATION_FUNCTION = "tokenwarden-rotate-secret"
ROTATION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{ROTATION_FUNCTION}"
RECONCILE_FUNCTION = "tokenwarden-reconcile"
RECONCILE_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{RECONCILE_FUNCTION}"
STATE_MACHINE_NAME = "tokenwarden-nightly"
STATE_MACHINE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/tokenwarden/local/{STATE_MACHINE_NAME}"
# Items the local interpreter runs at once: its threads share this machine's cores with the stack.
LOCAL_MAX_CONCURRENCY = 4
LOCAL_MAX_PRINCIPALS = 500
LOCAL_MAX_ROUNDS = 120
LEDGER_TABLE = "tokenwarden-ledger"
# Who the secrets' resource policies name: the roles a deployment would have, and moto's default
# caller as the operator (moto does not enforce policies; the documents are what is tested).
SERVICE_ROLE_PATTERN = f"arn:aws:iam::{ACCOUNT}:role/tokenwarden/local/*"
OPERATOR_ARNS = f"arn:aws:iam::{ACCOUNT}:user/moto"
TOPIC_NAME = "tokenwarden-notifications"
QUEUE_NAME = "tokenwarden-notifications-inbox"
SETTLE_PATH = "/_tokenwarden/settle"
BEHAVIOUR_PATH = "/_tokenwarden/behaviour"
FAULTS_PATH = "/_tokenwarden/faults"
ROTATIONS_PATH = "/_tokenwarden/rotations"
REGISTRY_PATH = "/_tokenwarden/registry"
PROMQL_PREFIX = "/promql"
PROMQL_PATHS = ("/api/v1/query", "/api/v1/query_range")
DEFAULT_SETTLE_SECONDS = 30.0
RESET_TIMEOUT_SECONDS = 120.0
MAX_SETTLE_SECONDS = 600.0


class StackError(RuntimeError):
    pass


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def load_function(name: str, clock: Clock | None = None) -> ModuleType:
    """A fresh instance of the Lambda function `name` of this checkout: its handler module,
    `functions/<name>/<name>_handler.py`, imported by name as Lambda imports it (the function's
    folder is the root of its package there, so it goes on the import path here), on `clock`
    when given (the stack's simulated time) instead of the system clock.

    Fresh, as a new Lambda container is: its settings are read from the environment again and its
    clients are made again, so each test world gets its own."""
    folder = repo_root() / "functions" / name
    module_name = f"{name}_handler"
    if not (folder / f"{module_name}.py").is_file():
        raise StackError(
            f"{folder} holds no {module_name}.py: the local stack runs from a TokenWarden checkout"
        )
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.loader is None:
        raise StackError(f"cannot import {module_name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # pydantic resolves the handler's annotations through it
    spec.loader.exec_module(module)
    if clock is not None:
        module.CLOCK = clock  # type: ignore[attr-defined]  # every handler module declares CLOCK
    return module


def nightly_definition(
    reconcile_function_arn: str, max_concurrency: int, max_principals: int, max_rounds: int = LOCAL_MAX_ROUNDS
) -> str:
    """The nightly state machine's definition (statemachine/nightly.asl.json) with the template's
    DefinitionSubstitutions applied, as CloudFormation applies them."""
    substitutions = {
        "ReconcileFunctionArn": reconcile_function_arn,
        "MaxConcurrency": str(max_concurrency),
        "MaxPrincipalsPerRun": str(max_principals),
        "MaxRounds": str(max_rounds),
    }
    text = (repo_root() / "statemachine" / "nightly.asl.json").read_text(encoding="utf-8")
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    return text


@dataclass
class LocalStack:
    host: str = "127.0.0.1"
    port: int = 0
    otlp_port: int = 0
    victoriametrics: bool = True
    clock: StackClock = field(default_factory=StackClock)
    behaviour: StackBehaviour = field(default_factory=StackBehaviour)  # TOKENWARDEN_STACK_* variables
    _moto: Any = None
    _otlp: ThreadingHTTPServer | None = None
    _vm: Any = None
    _reconcile: ModuleType | None = None
    exports: dict[str, str] = field(default_factory=dict)

    def start(self) -> dict[str, str]:
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        default_user_config["iam"]["load_aws_managed_policies"] = True
        # StartExecution runs the definition (moto's ASL interpreter) instead of only recording it.
        default_user_config["stepfunctions"]["execute_state_machine"] = True
        set_default_clock(self.clock)
        iam_ssc.install(self.clock)
        realism.install(self.behaviour, self.clock)

        self._moto = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # The interpreter calls Lambda back on http://localhost:$MOTO_PORT: this server.
        os.environ["MOTO_PORT"] = str(port)
        # moto's backends are process-wide: a stack started again in the same process starts empty.
        # A reset reloads IAM's AWS-managed policies: seconds on a busy machine, so a long timeout.
        reset = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")  # noqa: S310
        with urllib.request.urlopen(reset, timeout=RESET_TIMEOUT_SECONDS):  # noqa: S310 - loopback
            pass

        forward = self._start_victoriametrics()
        promql = self._vm.base_url if self._vm is not None else None
        self._otlp = ThreadingHTTPServer(
            (self.host, self.otlp_port),
            stack_http_handler(self.clock, forward, promql, deploy_registry=self.deploy_registry),
        )
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
            "TOKENWARDEN_SERVICE_ROLE_ARN_PATTERN": SERVICE_ROLE_PATTERN,
            "TOKENWARDEN_OPERATOR_ARNS": OPERATOR_ARNS,
            # What the stack does that moto alone would not (`gentle` when nothing); informative only.
            "TOKENWARDEN_STACK_BEHAVIOUR": self.behaviour.summary(),
        }
        if self._vm is not None:
            self.exports["TOKENWARDEN_PROMQL_URL"] = stack_url + PROMQL_PREFIX
            self.exports["TOKENWARDEN_PROMQL_DIALECT"] = "prometheus"
        os.environ.update(self.exports)
        with realism.setup_calls():
            self._create_resources()
        self._start_functions()
        return self.exports

    def deploy_registry(self, path: Path) -> None:
        """The registry the stack's reconcile function (the state machine's tasks) reads from now
        on: what `sam deploy` does by shipping teams.yaml with the function."""
        from tokenwarden.domain.registry import load_registry

        load_registry(path)  # a registry that does not load is refused here, not by every task
        if self._reconcile is None:
            raise StackError("the stack is not started")
        if path != self._reconcile.SETTINGS.registry_path:  # type: ignore[attr-defined]
            self._start_functions(path)

    def _start_functions(self, registry: Path | None = None) -> None:
        """The functions that read the registry (the reconciler's runs, the rotation function's
        messages and their channels), started afresh on `registry` (None: the one their settings
        name): a deploy starts new containers."""
        rotate = load_function("rotate_secret", self.clock)
        simulate_waits(rotate, self.clock)
        reconcile = load_function("reconcile", self.clock)
        simulate_reconciler_waits(reconcile, self.clock)
        for module in (rotate, reconcile) if registry is not None else ():
            module.SETTINGS = module.SETTINGS.model_copy(update={"registry_path": registry})  # type: ignore[attr-defined]
        lambda_router.register(ROTATION_ARN, rotate.lambda_handler)
        lambda_router.register(RECONCILE_ARN, reconcile.lambda_handler)
        self._reconcile = reconcile

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
        key_id = kms.create_key(Description="TokenWarden secrets (local)")["KeyMetadata"]["Arn"]
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
        nightly = session.client("stepfunctions").create_state_machine(
            name=STATE_MACHINE_NAME,
            definition=nightly_definition(RECONCILE_ARN, LOCAL_MAX_CONCURRENCY, LOCAL_MAX_PRINCIPALS),
            roleArn=STATE_MACHINE_ROLE,
        )["stateMachineArn"]
        extra = {
            "TOKENWARDEN_STATE_MACHINE_ARN": nightly,
            "TOKENWARDEN_TOPIC_ARN": topic,
            "TOKENWARDEN_SECRETS_KMS_KEY_ID": key_id,
            "TOKENWARDEN_NOTIFICATIONS_QUEUE_URL": queue_url,
        }
        self.exports.update(extra)
        os.environ.update(extra)

    def stop(self) -> None:
        # Background rotations first, while the servers they call still answer: the waiting ones
        # are cancelled, a running one ends its current step.
        realism.uninstall()
        # The servers run on daemon threads; an orderly shutdown waits for idle keep-alive
        # connections, so it runs in the background and the process may exit under it.
        for server in (self._otlp, getattr(self._moto, "_server", None)):
            if server is not None:
                threading.Thread(target=server.shutdown, daemon=True).start()
        if self._vm is not None:
            self._vm.stop()
        lambda_router.unregister_all()


def simulate_waits(rotate: ModuleType, clock: StackClock) -> None:
    """Make the loaded rotation function's waits move the stack clock instead of taking real time.

    Its engine is built lazily by ``rotate._engine()`` (cached); the wrapper sets the engine's
    ``sleep`` on the first build. The stack's time is simulated, so waiting is simulated.
    """
    build = rotate._engine

    def advance(seconds: float) -> None:
        clock.advance(timedelta(seconds=max(0.0, seconds)))

    @functools.cache
    def engine() -> Any:
        built = build()
        built.sleep = advance
        return built

    rotate._engine = engine  # type: ignore[attr-defined]


def simulate_reconciler_waits(reconcile: ModuleType, clock: StackClock) -> None:
    """The loaded reconcile function's waits (IAM propagation, a new user becoming visible, a busy
    principal's lease) move the stack clock, as the rotation function's do (see `simulate_waits`)."""
    build = reconcile._reconciler

    def advance(seconds: float) -> None:
        clock.advance(timedelta(seconds=max(0.0, seconds)))

    @functools.cache
    def reconciler() -> Any:
        from tokenwarden.adapters.iam import IamAdapter

        built = build()
        built.engine.sleep = advance
        if isinstance(built.iam, IamAdapter):
            built.iam.sleep = advance
        if built.leases is not None:
            built.leases.sleep = advance
        return built

    reconcile._reconciler = reconciler  # type: ignore[attr-defined]


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


def stack_http_handler(
    clock: StackClock,
    forward: Callable[[bytes, str], None] | None,
    promql: str | None = None,
    deploy_registry: Callable[[Path], None] | None = None,
) -> type[BaseHTTPRequestHandler]:
    """The stack's HTTP server: OTLP ``/v1/metrics`` (passed to `forward`, None: accepted and
    dropped), the PromQL path to ``promql`` (VictoriaMetrics' base URL, None: no PromQL) and the
    ``/_tokenwarden/*`` control endpoints, all on `clock`; ``/_tokenwarden/registry`` calls
    `deploy_registry` (None: not served)."""
    return type(
        "StackRequestHandler",
        (StackRequestHandler,),
        {
            "clock": clock,
            "forward": staticmethod(forward) if forward else None,
            "promql": promql,
            "deploy_registry": staticmethod(deploy_registry) if deploy_registry else None,
        },
    )


class StackRequestHandler(BaseHTTPRequestHandler):
    """One request to the stack's HTTP server; `stack_http_handler` binds the clock, the metrics
    store and the PromQL server it answers with."""

    server_version = "tokenwarden-local"
    clock: StackClock
    forward: Callable[[bytes, str], None] | None
    promql: str | None
    deploy_registry: Callable[[Path], None] | None = None

    def log_message(self, format: str, *args: Any) -> None:
        return None  # the default logs to stderr; nothing here is worth a line

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(body).encode(), "application/json", headers or {})

    def _throttled(self, endpoint: str, body: dict[str, Any]) -> bool:
        if not realism.http_throttled(endpoint):
            return False
        self._reply(429, body, {"Retry-After": str(realism.retry_after_seconds())})
        return True

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        if self.path.startswith(PROMQL_PREFIX + "/"):
            self._promql(None)
            return
        current = realism.behaviour()
        answers: dict[str, Callable[[], Any]] = {
            CLOCK_PATH: lambda: {"now": self.clock.now().isoformat()},
            "/health": lambda: {"status": "ok"},
            BEHAVIOUR_PATH: lambda: current.describe() if current else {"installed": False},
            FAULTS_PATH: realism.injected_faults,
            ROTATIONS_PATH: lambda: [r.as_dict() for r in realism.rotation_records()],
        }
        answer = answers.get(self.path)
        if answer is None:
            self._reply(404, {"error": "not found"})
        else:
            self._reply(200, answer())

    def do_POST(self) -> None:
        body = self._body()
        if self.path.startswith(PROMQL_PREFIX + "/"):
            self._promql(body)
        elif self.path == CLOCK_PATH:
            self._set_clock(body)
        elif self.path == SETTLE_PATH:
            self._settle(body)
        elif self.path == REGISTRY_PATH and self.deploy_registry is not None:
            self._deploy_registry(body)
        elif self.path.rstrip("/") == "/v1/metrics":
            self._metrics(body)
        else:
            self._reply(404, {"error": "not found"})

    def _set_clock(self, body: bytes) -> None:
        try:
            at = datetime.fromisoformat(json.loads(body)["at"])
        except (ValueError, KeyError, TypeError):
            self._reply(400, {"error": 'send {"at": "<ISO-8601 with offset>"}'})
            return
        if at.tzinfo is None:
            self._reply(400, {"error": "the time needs a UTC offset"})
            return
        self._reply(200, {"now": self.clock.advance_to(at).isoformat()})

    def _settle(self, body: bytes) -> None:
        try:
            request = json.loads(body) if body.strip() else {}
            timeout = float(request.get("timeout", DEFAULT_SETTLE_SECONDS))
        except (ValueError, TypeError, AttributeError):
            self._reply(400, {"error": 'send {"timeout": <seconds>}'})
            return
        timeout = min(max(timeout, 0.0), MAX_SETTLE_SECONDS)
        self._reply(200, {"idle": realism.wait_idle(timeout)})

    def _deploy_registry(self, body: bytes) -> None:
        try:
            path = Path(json.loads(body)["path"])
        except (ValueError, KeyError, TypeError):
            self._reply(400, {"error": 'send {"path": "<registry file>"}'})
            return
        assert self.deploy_registry is not None  # routed here only when it is set
        try:
            self.deploy_registry(path)
        except Exception as exc:  # the registry's own error names the file and what is wrong
            self._reply(400, {"error": str(exc)})
            return
        self._reply(200, {"registry": str(path)})

    def _refused_key(self) -> tuple[int, str] | None:
        """Why the request's bearer key is refused, as the OTLP endpoint answers; None: accepted."""
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return 401, "missing bearer token"
        result = iam_ssc.authenticate(token.strip())
        if result.accepted:
            return None
        # A key IAM has not propagated yet is as unknown to the service as a wrong one.
        if result.reason in ("unknown", "propagating"):
            return 401, "key unknown"
        return 403, f"key {result.reason}"

    def _metrics(self, body: bytes) -> None:
        if self._throttled("otlp", {"error": "too many requests"}):
            return
        refused = self._refused_key()
        if refused is not None:
            self._reply(refused[0], {"error": refused[1]})
            return
        content_type = self.headers.get("Content-Type") or "application/x-protobuf"
        if self.forward is not None and body:
            try:
                self.forward(body, content_type)
            except ValueError as exc:
                self._reply(400, {"error": f"not an OTLP metrics export: {type(exc).__name__}"})
                return
            except OSError as exc:
                self._reply(502, {"error": f"metrics store refused the export: {exc}"})
                return
        self._reply(200, {})

    def _promql(self, body: bytes | None) -> None:
        path, _, query = self.path[len(PROMQL_PREFIX) :].partition("?")
        if self.promql is None or path.rstrip("/") not in PROMQL_PATHS:
            self._reply(404, {"status": "error", "errorType": "not_found", "error": "not found"})
            return
        throttled = {"status": "error", "errorType": "throttled", "error": "rate exceeded"}
        if self._throttled("promql", throttled):
            return
        url = self.promql.rstrip("/") + path + (f"?{query}" if query else "")
        headers = {"Content-Type": self.headers.get("Content-Type") or "application/x-www-form-urlencoded"}
        upstream = urllib.request.Request(  # noqa: S310 - VictoriaMetrics on loopback, started by us
            url, data=body, method="GET" if body is None else "POST", headers=headers if body else {}
        )
        try:
            with _LOOPBACK.open(upstream, timeout=30) as answer:
                status, data, kind = answer.status, answer.read(), answer.headers.get("Content-Type")
        except urllib.error.HTTPError as exc:
            status, data, kind = exc.code, exc.read(), exc.headers.get("Content-Type")
        except (urllib.error.URLError, OSError) as exc:
            self._reply(502, {"status": "error", "errorType": "unavailable", "error": str(exc)})
            return
        self._send(status, data, kind or "application/json", {})


# Loopback only: never through a proxy from the environment.
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))
