"""Each function's role grants exactly what its code calls: no more, no less.

The functions run their whole lifecycle in a moto world, as Lambda runs them (handlers loaded from
functions/<name>/<name>_handler.py, fed the documented events): onboarding, rotations, retirements, deletions, a
revoke with a reissue, a restore, an offboarding, a re-onboarding and a health check that rolls a
retirement back. Every AWS API
call is recorded against the function that made it (the rotation function runs on Secrets Manager's
background threads, and is labelled there). Then, per function:

- every call's IAM action is granted by its role (the code never needs more), and
- every action its role grants is called, or is in UNCALLED with the reason it cannot be seen as an
  SDK call (the role holds nothing it never uses).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from tests.conftest import ROOT, T0, Env, open_env
from tests.infra.test_template import allowing, as_list, granted, role_of, statements
from tests.integration.test_handlers import _FakePromQL
from tokenwarden.local import lambda_router
from tokenwarden.local.fake_context import FakeContext
from tokenwarden.local.stack import load_function

pytestmark = pytest.mark.infra

FUNCTIONS = {
    "reconcile": "ReconcileFunction",
    "rotate_secret": "RotateSecretFunction",
    "revoke": "RevokeFunction",
    "restore": "RestoreFunction",
    "health": "HealthFunction",
}

# Granted, but never an SDK call the function makes itself; each with why it is needed.
UNCALLED: dict[str, dict[str, str]] = {
    "ReconcileFunction": {
        "kms:Decrypt": "Secrets Manager, DynamoDB and SNS use the keys on the caller's behalf",
        "kms:GenerateDataKey": "Secrets Manager, DynamoDB and SNS use the keys on the caller's behalf",
        "lambda:InvokeFunction": "RotateSecret with a RotationLambdaARN needs the caller to be allowed to invoke it",
        "iam:TagUser": "CreateUser with Tags needs it",
        "iam:PutUserPermissionsBoundary": "only for a user of an earlier version that has no boundary yet",
        "secretsmanager:UpdateSecret": "only to move a secret of an earlier version onto SecretsKey",
    },
    "RotateSecretFunction": {
        "kms:Decrypt": "Secrets Manager and DynamoDB use the keys on the caller's behalf",
        "kms:GenerateDataKey": "Secrets Manager and DynamoDB use the keys on the caller's behalf",
        "iam:DeleteServiceSpecificCredential": "only for a key whose token was lost, or to free a slot",
    },
    "RevokeFunction": {
        "kms:Decrypt": "DynamoDB and SNS use the key on the caller's behalf",
        "kms:GenerateDataKey": "DynamoDB and SNS use the key on the caller's behalf",
        "lambda:InvokeFunction": "RotateSecret with a RotationLambdaARN needs the caller to be allowed to invoke it",
        "iam:DeleteServiceSpecificCredential": "only for the key of a rotation the revoke abandons",
        "secretsmanager:UpdateSecretVersionStage": "only to abandon a rotation in flight",
    },
    "RestoreFunction": {
        "kms:Decrypt": "DynamoDB and SNS use the key on the caller's behalf",
        "kms:GenerateDataKey": "DynamoDB and SNS use the key on the caller's behalf",
    },
    "HealthFunction": {
        "kms:Decrypt": "DynamoDB and SNS use the key on the caller's behalf",
        "kms:GenerateDataKey": "DynamoDB and SNS use the key on the caller's behalf",
        "cloudwatch:GetMetricData": "what CloudWatch's PromQL API (an HTTP API, not an SDK call) authorizes a query as",
        "cloudwatch:ListMetrics": "what CloudWatch's PromQL API (an HTTP API, not an SDK call) authorizes a query as",
        "aps:QueryMetrics": "Amazon Managed Prometheus's query API is HTTP, not an SDK call",
        "sqs:SendMessage": "Lambda sends a failed asynchronous invocation to the dead-letter queue with it",
    },
}
NEEDS_NO_PERMISSION = {"sts:GetCallerIdentity"}
CONDITIONED = {"secretsmanager:RotateSecret", "secretsmanager:PutResourcePolicy"}


# The requests whose role statements hold conditions on the request itself (aws:RequestTag,
# aws:TagKeys): what each of them sent, to be held to those conditions.
TAGGING = {"iam:CreateUser", "iam:TagUser", "secretsmanager:CreateSecret", "secretsmanager:TagResource"}


class Calls:
    """AWS API calls by function, labelled by the thread running that function's handler."""

    def __init__(self) -> None:
        self.by_function: dict[str, set[str]] = defaultdict(set)
        self.requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.settings: dict[str, str] = {}
        self._local = threading.local()

    def labelled(self, function: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        def run(event: dict[str, Any], context: Any) -> Any:
            outer = getattr(self._local, "function", None)
            self._local.function = function
            try:
                return handler(event, context)
            finally:
                self._local.function = outer

        return run

    def record(self, client: BaseClient, operation: str, params: dict[str, Any]) -> None:
        function = getattr(self._local, "function", None)
        if function is None:
            return
        prefix = client.meta.service_model.endpoint_prefix
        if operation == "TransactWriteItems":
            for item in params.get("TransactItems", []):
                for kind in item:
                    self.by_function[function].add(f"dynamodb:{kind}Item")
            return
        action = f"{prefix}:{operation}"
        self.by_function[function].add(action)
        if action in TAGGING or action in CONDITIONED:
            self.requests[action].append(dict(params))


@contextlib.contextmanager
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    calls = Calls()
    real = BaseClient._make_api_call

    def make_api_call(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        calls.record(self, operation_name, api_params)
        return real(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)
    yield calls


def _event(name: str) -> dict[str, Any]:
    return dict(json.loads((ROOT / "events" / name).read_text()))


def _registry_without(tmp_path: Path, principal: str) -> Path:
    """teams.yaml with one principal's entry left out (an offboarding)."""
    text = (ROOT / "teams.yaml").read_text()
    head, _, tail = text.partition(f"  - id: {principal}\n")
    rest = tail.split("\n  - id: ", 1)
    kept = head + (("  - id: " + rest[1]) if len(rest) > 1 else "")
    path = tmp_path / "teams.yaml"
    path.write_text(kept)
    return path


def _registry_moving(tmp_path: Path, principal: str, team: str) -> Path:
    """teams.yaml with one developer principal moved to another team."""
    text = (ROOT / "teams.yaml").read_text()
    head, _, tail = text.partition(f"  - id: {principal}\n")
    entry, sep, rest = tail.partition("\n  - id: ")
    moved = "\n".join(
        f"    team: {team}" if line.startswith("    team: ") else line for line in entry.split("\n")
    )
    path = tmp_path / "teams-moved.yaml"
    path.write_text(head + f"  - id: {principal}\n" + moved + sep + rest)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Calls:
    """The calls each function made over a whole lifecycle in one moto world."""
    monkeypatch = pytest.MonkeyPatch()
    tmp_path = tmp_path_factory.mktemp("lifecycle")
    try:
        with open_env(monkeypatch) as env, recording(monkeypatch) as calls:
            _run_lifecycle(env, monkeypatch, calls, tmp_path)
            return calls
    finally:
        monkeypatch.undo()


@pytest.fixture(scope="module")
def lifecycle(world: Calls) -> dict[str, set[str]]:
    return dict(world.by_function)


def _run_lifecycle(env: Env, monkeypatch: pytest.MonkeyPatch, calls: Calls, tmp_path: Path) -> None:
    env.use_handlers(monkeypatch)
    # As deployed, every user gets a permissions boundary (the stack's own by default).
    boundary = env.client("iam").create_policy(
        PolicyName="tokenwarden-user-boundary",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"}],
            }
        ),
    )["Policy"]["Arn"]
    monkeypatch.setenv("TOKENWARDEN_PERMISSIONS_BOUNDARY_ARN", boundary)
    calls.settings = {**env.settings_environment(), "TOKENWARDEN_PERMISSIONS_BOUNDARY_ARN": boundary}

    def handler(name: str) -> Callable[..., Any]:
        """Loaded when it runs, as Lambda would, so that it reads the settings of that moment; on
        the world's simulated time, as the rotations and IAM's expiry are."""
        return calls.labelled(FUNCTIONS[name], load_function(name, env.clock).lambda_handler)

    # The rotation function as Secrets Manager invokes it, in the background.
    rotate = load_function("rotate_secret")
    monkeypatch.setattr(rotate, "_engine", lambda: env.reconciler.engine)
    assert env.settings.rotation_lambda_arn is not None
    lambda_router.register(
        env.settings.rotation_lambda_arn, calls.labelled("RotateSecretFunction", rotate.lambda_handler)
    )

    def night(days: float, registry: Path | None = None) -> None:
        """Every other night as the state machine runs it (plan, one task per principal, summary),
        the others as one whole run: the role covers both."""
        env.clock.advance_to(T0 + timedelta(days=days))
        if registry is not None:
            monkeypatch.setenv("TOKENWARDEN_REGISTRY_PATH", str(registry))
        if int(days) % 8 == 4:
            _night_in_steps(handler("reconcile"))
        else:
            handler("reconcile")(_event("reconcile.json"), FakeContext())
        env.settle()

    # Onboarding, then rotations, retirements and deletions over more than one key lifetime.
    for day in range(0, 101, 4):
        night(day)
    # Break-glass: a revoke with a reissue, then a revoke and its restore.
    handler("revoke")(_event("revoke.json"), FakeContext())
    env.settle()
    handler("revoke")({**_event("revoke.json"), "principal": "mobile", "reissue": False}, FakeContext())
    handler("restore")({**_event("restore.json"), "principal": "mobile"}, FakeContext())
    # Offboarding (keys, then user and secret), then the principal comes back.
    without_mobile = _registry_without(tmp_path, "mobile")
    for day in range(101, 141, 4):
        night(day, without_mobile)
    night(141, ROOT / "teams.yaml")
    # A developer moves to another team: the user and the secret are tagged again.
    night(145, _registry_moving(tmp_path, "jdoe", "data-science"))
    night(149, ROOT / "teams.yaml")
    # The hourly health check.
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakePromQL)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TOKENWARDEN_PROMQL_URL", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("TOKENWARDEN_PROMQL_DIALECT", "prometheus")
        # platform-eng's key is rotated by hand; its laptops keep the previous key. They report on a
        # Monday morning after the grace, a run at 09:00 retires that key, and they fall silent for
        # the rest of the day: the afternoon's health check rolls the retirement back.
        env.client("secretsmanager").rotate_secret(SecretId="tokenwarden/platform-eng")
        env.settle()
        later = env.clock.now() + timedelta(days=8)
        monday = (later + timedelta(days=7 - later.weekday())).replace(
            hour=8, minute=0, second=0, microsecond=0
        )
        env.clock.advance_to(monday)
        sample = env.clock.now().timestamp()
        _FakePromQL.answer = {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [{"metric": {"team.id": "platform-eng"}, "value": [sample, str(sample)]}],
            },
        }
        handler("health")(_event("health.json"), FakeContext())
        env.clock.advance_to(monday.replace(hour=9))
        handler("reconcile")(_event("reconcile.json"), FakeContext())
        env.clock.advance_to(monday.replace(hour=16))
        report = handler("health")(_event("health.json"), FakeContext())
        assert [r["verdict"] for r in report["rollbacks"]] == ["rollback"], report["rollbacks"]
    finally:
        server.shutdown()
        server.server_close()


def _night_in_steps(reconcile: Callable[..., Any]) -> None:
    """The events the nightly state machine sends the reconcile function, round after round
    (statemachine/nightly.asl.json)."""
    previous: dict[str, Any] | None = None
    while True:
        planned = reconcile(
            {"mode": "plan_night", "allow_mass_revoke": False, "max_principals": 2, "previous": previous},
            FakeContext(),
        )
        if not planned["more"]:
            break
        results = [
            reconcile(
                {"mode": "principal", "principal": p, "run_id": planned["night"]["run_id"]},
                FakeContext(),
            )
            for p in planned["work"]
        ]
        previous = {"round": {k: planned[k] for k in ("night", "upto", "waiting")}, "results": results}
    reconcile({"mode": "summary", "night": planned["night"]}, FakeContext())


def granted_actions(cfn: dict[str, Any], function: str) -> set[str]:
    role = role_of(cfn, function)
    return {a for s in statements(cfn, role) if s["Effect"] == "Allow" for a in as_list(s["Action"])}


@pytest.mark.parametrize("function", sorted(FUNCTIONS.values()))
def test_the_role_grants_every_call_the_function_makes(
    cfn: dict[str, Any], lifecycle: dict[str, set[str]], function: str
) -> None:
    made = lifecycle.get(function, set()) - NEEDS_NO_PERMISSION
    assert made, f"{function} made no call: the lifecycle did not exercise it"
    missing = sorted(a for a in made if not allowing(cfn, role_of(cfn, function), a))
    assert not missing, f"{function} calls what its role does not grant: {missing}"


@pytest.mark.parametrize("function", sorted(FUNCTIONS.values()))
def test_the_role_grants_nothing_the_function_never_calls(
    cfn: dict[str, Any], lifecycle: dict[str, set[str]], function: str
) -> None:
    made = lifecycle.get(function, set())
    unused = sorted(
        action
        for action in granted_actions(cfn, function)
        if not any(granted(action, call) for call in made) and action not in UNCALLED[function]
    )
    assert not unused, f"{function}'s role grants what its code never calls: {unused}"
    stale = sorted(a for a in UNCALLED[function] if a not in granted_actions(cfn, function))
    assert not stale, f"UNCALLED lists actions {function}'s role no longer grants: {stale}"


def _tags(request: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in request.get("Tags", [])}


def test_every_tagging_request_meets_the_roles_request_conditions(world: Calls) -> None:
    """The roles allow CreateUser, TagUser, CreateSecret and TagResource only with TokenWarden's
    managed-by tag in the request and only tokenwarden:* keys (aws:RequestTag, aws:TagKeys):
    moto does not enforce them, so what the code sends is held to them here."""
    for action in sorted(TAGGING):
        sent = world.requests[action]
        assert sent, f"the lifecycle never made a {action} request"
        for request in sent:
            tags = _tags(request)
            assert tags.get("tokenwarden:managed-by") == "tokenwarden", (action, sorted(tags))
            assert all(key.startswith("tokenwarden:") for key in tags), (action, sorted(tags))


def test_every_conditioned_request_names_what_the_role_requires(world: Calls) -> None:
    """CreateSecret only with the secrets' key, RotateSecret only with the rotation function, a
    resource policy only with BlockPublicPolicy, a user only with the boundary."""
    env_key = world.settings["TOKENWARDEN_SECRETS_KMS_KEY_ID"]
    rotation = world.settings["TOKENWARDEN_ROTATION_LAMBDA_ARN"]
    boundary = world.settings["TOKENWARDEN_PERMISSIONS_BOUNDARY_ARN"]
    assert all(r["KmsKeyId"] == env_key for r in world.requests["secretsmanager:CreateSecret"])
    rotations = world.requests["secretsmanager:RotateSecret"]
    assert rotations and all(r.get("RotationLambdaARN") == rotation for r in rotations)
    policies = world.requests["secretsmanager:PutResourcePolicy"]
    assert policies and all(r.get("BlockPublicPolicy") is True for r in policies)
    users = world.requests["iam:CreateUser"]
    assert users and all(r.get("PermissionsBoundary") == boundary for r in users)
