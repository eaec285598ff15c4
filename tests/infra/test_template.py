"""The deployed shape, read from the SAM template translated offline to plain CloudFormation.

These tests hold the template to DESIGN §4 (least privilege, encryption, failure handling,
alarms): they read what CloudFormation would create, not the SAM shorthand.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tokenwarden.domain.registry import Lifecycle
from tokenwarden.service.rotation import ProbePolicy

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
TRANSLATE = REPO / "scripts" / "translate-template"
BUILD_DIR = REPO / ".aws-sam" / "build"

USER_ARN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:user${UserPath}*"
SECRET_ARN = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretPrefix}*"
SSC_SERVICE = "cloudwatch.amazonaws.com"
# Account-wide reads that IAM, Secrets Manager and CloudWatch cannot scope by resource (DESIGN §1).
UNSCOPABLE_ACTIONS = {
    "iam:ListServiceSpecificCredentials",
    "iam:ListUsers",
    "secretsmanager:ListSecrets",
    # What CloudWatch's PromQL API authorizes a query as (DESIGN §1 Querying).
    "cloudwatch:GetMetricData",
    "cloudwatch:ListMetrics",
}
# CloudWatch Logs' log delivery, which Step Functions logs through: its actions take no resource.
LOG_DELIVERY_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
STATE_MACHINE = "NightlyStateMachine"
STATE_MACHINE_ROLE = "NightlyStateMachineRole"
STATE_MACHINE_ARN = (
    "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-nightly"
)
CLOUDWATCH_QUERY_ACTIONS = {"cloudwatch:GetMetricData", "cloudwatch:ListMetrics"}
APS_WORKSPACE_ARN = "arn:${AWS::Partition}:aps:${AWS::Region}:${AWS::AccountId}:workspace/*"
SECRET_ACTIONS_ON_PREFIX = {
    "secretsmanager:CreateSecret",
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:RotateSecret",
    "secretsmanager:TagResource",
    "secretsmanager:DeleteSecret",
    "secretsmanager:RestoreSecret",
}
MANAGED_TAG = "aws:ResourceTag/tokenwarden:managed-by"
TOKENWARDEN_ENV = {
    "TOKENWARDEN_USER_PATH",
    "TOKENWARDEN_USER_PREFIX",
    "TOKENWARDEN_SECRET_PREFIX",
    "TOKENWARDEN_LEDGER_TABLE",
    "TOKENWARDEN_TOPIC_ARN",
    "TOKENWARDEN_SECRETS_KMS_KEY_ID",
    "TOKENWARDEN_MAX_KEY_AGE_DAYS",
    "TOKENWARDEN_OTLP_ENDPOINT",
    "TOKENWARDEN_PERMISSIONS_BOUNDARY_ARN",
}


# ------------------------------------------------------------------------------------------ helpers
def resources(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in cfn["Resources"].items() if res["Type"] == kind}


def props(cfn: dict[str, Any], logical_id: str) -> dict[str, Any]:
    value: dict[str, Any] = cfn["Resources"][logical_id]["Properties"]
    return value


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def text(value: Any) -> Any:
    """The template string behind a plain value or an Fn::Sub."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub[0] if isinstance(sub, list) else sub
    return value


def branches(value: Any) -> Iterator[Any]:
    """Every value a Fn::If may take (AWS::NoValue dropped): a policy must hold in every case."""
    if isinstance(value, dict) and "Fn::If" in value:
        for branch in value["Fn::If"][1:]:
            yield from branches(branch)
    elif value != {"Ref": "AWS::NoValue"}:
        yield value


def condition_branches(value: Any) -> Iterator[Any]:
    """Like `branches`, but an AWS::NoValue condition is a real case: no condition at all."""
    if isinstance(value, dict) and "Fn::If" in value:
        for branch in value["Fn::If"][1:]:
            yield from condition_branches(branch)
    else:
        yield None if value == {"Ref": "AWS::NoValue"} else value


def role_of(cfn: dict[str, Any], function_id: str) -> str:
    role = props(cfn, function_id)["Role"]
    assert isinstance(role, dict) and "Fn::GetAtt" in role, "functions use the role the template declares"
    name: str = role["Fn::GetAtt"][0]
    return name


def statements(cfn: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    """Inline policy statements of a role, with each Fn::If expanded to all of its branches."""
    found: list[dict[str, Any]] = []
    for policy in props(cfn, role_id).get("Policies", []):
        for raw in as_list(policy["PolicyDocument"]["Statement"]):
            for statement in branches(raw):
                found += [
                    {**statement, "Condition": c} for c in condition_branches(statement.get("Condition"))
                ]
    return found


def allowing(cfn: dict[str, Any], role_id: str, action: str) -> list[dict[str, Any]]:
    return [
        s
        for s in statements(cfn, role_id)
        if s["Effect"] == "Allow" and any(granted(pattern, action) for pattern in as_list(s["Action"]))
    ]


def granted(pattern: str, action: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return action.lower().startswith(pattern[:-1].lower())
    return pattern.lower() == action.lower()


def all_roles(cfn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources(cfn, "AWS::IAM::Role")


def env(cfn: dict[str, Any], function_id: str) -> dict[str, Any]:
    variables: dict[str, Any] = props(cfn, function_id)["Environment"]["Variables"]
    return variables


def functions(cfn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = resources(cfn, "AWS::Lambda::Function")
    assert {"ReconcileFunction", "RotateSecretFunction", "HealthFunction", "RevokeFunction"} <= set(found)
    return found


def checkov_waivers(cfn: dict[str, Any], logical_id: str) -> dict[str, str]:
    """The checkov checks skipped on a resource, with their justifications."""
    skips = cfn["Resources"][logical_id].get("Metadata", {}).get("checkov", {}).get("skip", [])
    return {skip["id"]: skip.get("comment", "") for skip in skips}


# ------------------------------------------------------------------------------------------ runtime
def test_every_function_runs_python313_on_arm64_with_the_shared_layer(cfn: dict[str, Any]) -> None:
    (layer_id,) = resources(cfn, "AWS::Lambda::LayerVersion")
    layer = props(cfn, layer_id)
    assert layer["CompatibleRuntimes"] == ["python3.13"]
    assert layer["CompatibleArchitectures"] == ["arm64"]
    for name, function in functions(cfn).items():
        p = function["Properties"]
        assert p["Runtime"] == "python3.13", name
        assert p["Architectures"] == ["arm64"], name
        assert {"Ref": layer_id} in p["Layers"], name
        assert p["TracingConfig"] == {"Mode": "Active"}, name


def test_reconciler_runs_for_up_to_fifteen_minutes(cfn: dict[str, Any]) -> None:
    reconcile = props(cfn, "ReconcileFunction")
    assert reconcile["Timeout"] == 900
    assert reconcile["Handler"] == "reconcile_handler.lambda_handler"
    assert env(cfn, "ReconcileFunction")["TOKENWARDEN_REGISTRY_PATH"] == "teams.yaml"
    assert env(cfn, "ReconcileFunction")["TOKENWARDEN_ROTATION_LAMBDA_ARN"] == {
        "Fn::GetAtt": ["RotateSecretFunction", "Arn"]
    }


def test_health_check_runs_with_its_promql_settings(cfn: dict[str, Any]) -> None:
    health = props(cfn, "HealthFunction")
    assert health["Handler"] == "health_handler.lambda_handler"
    assert (health["Timeout"], health["MemorySize"]) == (120, 256)
    variables = env(cfn, "HealthFunction")
    assert variables["TOKENWARDEN_REGISTRY_PATH"] == "teams.yaml"
    assert variables["TOKENWARDEN_PROMQL_DIALECT"] == {"Ref": "PromQLDialect"}
    assert variables["TOKENWARDEN_PROMQL_URL"] == {"Ref": "PromQLUrl"}
    assert variables["TOKENWARDEN_HEALTH_METRICS"] == {"Ref": "HealthMetrics"}
    parameters = cfn["Parameters"]
    assert parameters["PromQLDialect"]["AllowedValues"] == ["cloudwatch", "prometheus"]
    assert parameters["PromQLDialect"]["Default"] == "cloudwatch"
    assert parameters["PromQLUrl"]["Default"] == "", "empty means CloudWatch's PromQL API in the region"
    assert parameters["HealthMetrics"]["Default"] == "claude_code.session.count,claude_code.token.usage"


def test_revoke_runs_by_hand_and_reissues_through_the_rotation_function(cfn: dict[str, Any]) -> None:
    revoke = props(cfn, "RevokeFunction")
    assert revoke["Handler"] == "revoke_handler.lambda_handler"
    assert revoke["Code"]["S3Key"] == "functions/revoke"
    # It may wait for a rotation in flight, then for the replacement's rotation: two rotation bounds.
    bound = ProbePolicy().rotation_bound_seconds()
    assert revoke["Timeout"] >= 2 * bound + 30
    assert props(cfn, "RotateSecretFunction")["Timeout"] >= ProbePolicy().worst_case_seconds() + 30
    variables = env(cfn, "RevokeFunction")
    assert variables["TOKENWARDEN_REGISTRY_PATH"] == "teams.yaml"
    assert variables["TOKENWARDEN_ROTATION_LAMBDA_ARN"] == {"Fn::GetAtt": ["RotateSecretFunction", "Arn"]}


def test_restore_runs_by_hand_and_waits_one_rotation_for_the_lease(cfn: dict[str, Any]) -> None:
    restore = props(cfn, "RestoreFunction")
    assert restore["Handler"] == "restore_handler.lambda_handler"
    assert restore["Code"]["S3Key"] == "functions/restore"
    assert restore["Timeout"] >= ProbePolicy().rotation_bound_seconds() + 30
    variables = env(cfn, "RestoreFunction")
    assert variables["TOKENWARDEN_REGISTRY_PATH"] == "teams.yaml"
    assert "TOKENWARDEN_ROTATION_LAMBDA_ARN" not in variables, "a restore never rotates"


def test_no_function_reserves_concurrency(cfn: dict[str, Any]) -> None:
    # Lambda keeps 100 executions unreserved: in accounts with a low concurrency quota (new and
    # sandbox accounts) any reservation fails the deploy. Runs are kept apart by leases instead.
    for name, function in functions(cfn).items():
        assert "ReservedConcurrentExecutions" not in function["Properties"], name
        waiver = checkov_waivers(cfn, name).get("CKV_AWS_115", "")
        assert "quota" in waiver or "concurrency cap" in waiver, (
            f"{name}: CKV_AWS_115 needs a justified waiver"
        )


def test_powertools_never_logs_events_and_settings_come_from_the_stack(cfn: dict[str, Any]) -> None:
    for name in functions(cfn):
        variables = env(cfn, name)
        assert variables["POWERTOOLS_SERVICE_NAME"] == "tokenwarden", name
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "TokenWarden", name
        assert variables.get("POWERTOOLS_LOGGER_LOG_EVENT", "false") == "false", name
        assert variables.get("POWERTOOLS_TRACER_CAPTURE_RESPONSE", "false") == "false", name
        assert variables["LOG_LEVEL"] in {"INFO", "WARNING", "ERROR"}, name
        assert set(variables) >= TOKENWARDEN_ENV, name
        assert variables["TOKENWARDEN_LEDGER_TABLE"] == {"Ref": "LedgerTable"}
        assert variables["TOKENWARDEN_TOPIC_ARN"] == {"Ref": "Topic"}
        assert variables["TOKENWARDEN_MAX_KEY_AGE_DAYS"] == {"Ref": "MaxKeyAgeDays"}


def test_otlp_endpoint_defaults_to_the_regional_cloudwatch_endpoint(cfn: dict[str, Any]) -> None:
    endpoint = env(cfn, "RotateSecretFunction")["TOKENWARDEN_OTLP_ENDPOINT"]
    _condition, configured, derived = endpoint["Fn::If"]
    assert configured == {"Ref": "OtlpEndpoint"}
    assert text(derived) == "https://monitoring.${AWS::Region}.amazonaws.com/v1/metrics"
    assert cfn["Parameters"]["OtlpEndpoint"]["Default"] == ""


def rule_value(expression: Any, parameters: dict[str, str]) -> Any:
    """What a rule's condition or assertion evaluates to, for the functions rules in this template use."""
    if not isinstance(expression, dict):
        return expression
    ((function, argument),) = expression.items()
    if function == "Ref":
        return parameters[argument]
    values = [rule_value(item, parameters) for item in as_list(argument)]
    if function == "Fn::Equals":
        return values[0] == values[1]
    if function == "Fn::Not":
        return not values[0]
    if function == "Fn::And":
        return all(values)
    if function == "Fn::Or":
        return any(values)
    raise AssertionError(f"the test cannot evaluate {function} in a rule")


def refused_by_rules(cfn: dict[str, Any], **chosen: str) -> list[str]:
    """The AssertDescription of every rule assertion that the given parameter values break."""
    parameters = {name: str(p.get("Default", "")) for name, p in cfn["Parameters"].items()}
    parameters.update(chosen)
    refused: list[str] = []
    for rule in cfn.get("Rules", {}).values():
        if not rule_value(rule.get("RuleCondition", True), parameters):
            continue
        for assertion in rule["Assertions"]:
            if not rule_value(assertion["Assert"], parameters):
                refused.append(assertion["AssertDescription"])
    return refused


def test_prometheus_dialect_without_a_url_is_refused_before_deploying(cfn: dict[str, Any]) -> None:
    (message,) = refused_by_rules(cfn, PromQLDialect="prometheus", PromQLUrl="")
    assert message.startswith("PromQLDialect=prometheus needs PromQLUrl"), message
    assert "PromQLDialect=cloudwatch" in message, "the message says how else to fix it"
    workspace = "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1234"
    assert refused_by_rules(cfn, PromQLDialect="prometheus", PromQLUrl=workspace) == []
    assert refused_by_rules(cfn, PromQLDialect="cloudwatch", PromQLUrl="") == []
    assert refused_by_rules(cfn) == [], "the defaults deploy"


def test_key_age_parameter_cannot_exceed_ninety_days(cfn: dict[str, Any]) -> None:
    age = cfn["Parameters"]["MaxKeyAgeDays"]
    assert (age["Type"], int(age["Default"]), int(age["MinValue"]), int(age["MaxValue"])) == (
        "Number",
        90,
        1,
        90,
    )
    assert cfn["Parameters"]["UserPath"]["Default"] == "/tokenwarden/"
    assert cfn["Parameters"]["SecretPrefix"]["Default"] == "tokenwarden/"


# ------------------------------------------------------------------------------------------ triggers
def test_nightly_schedule_starts_the_state_machine_with_an_explicit_input(cfn: dict[str, Any]) -> None:
    (schedule,) = (
        s["Properties"]
        for s in resources(cfn, "AWS::Scheduler::Schedule").values()
        if s["Properties"]["Target"]["Arn"] == {"Ref": STATE_MACHINE}
    )
    assert schedule["ScheduleExpression"] == {"Ref": "ReconcileSchedule"}
    assert json.loads(schedule["Target"]["Input"]) == {"allow_mass_revoke": False}
    assert schedule["Target"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
    assert cfn["Parameters"]["ReconcileSchedule"]["Default"] == "cron(15 2 * * ? *)"
    scheduler_role = schedule["Target"]["RoleArn"]["Fn::GetAtt"][0]
    (start,) = allowing(cfn, scheduler_role, "states:StartExecution")
    assert start["Resource"] == {"Ref": STATE_MACHINE}
    targets = [s["Properties"]["Target"]["Arn"] for s in resources(cfn, "AWS::Scheduler::Schedule").values()]
    assert {"Fn::GetAtt": ["ReconcileFunction", "Arn"]} not in targets, "one nightly run, not two"


def test_health_schedule_passes_an_explicit_input_every_15_minutes(cfn: dict[str, Any]) -> None:
    (schedule,) = (
        s["Properties"]
        for s in resources(cfn, "AWS::Scheduler::Schedule").values()
        if s["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["HealthFunction", "Arn"]}
    )
    assert schedule["ScheduleExpression"] == {"Ref": "HealthSchedule"}
    assert json.loads(schedule["Target"]["Input"]) == {"mode": "check"}
    assert schedule["Target"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
    # A silence is announced within 15 minutes of its threshold.
    assert cfn["Parameters"]["HealthSchedule"]["Default"] == "rate(15 minutes)"


def test_revoke_has_no_schedule_or_trigger(cfn: dict[str, Any]) -> None:
    arn = {"Fn::GetAtt": ["RevokeFunction", "Arn"]}
    for schedule in resources(cfn, "AWS::Scheduler::Schedule").values():
        assert schedule["Properties"]["Target"]["Arn"] != arn
    for rule in resources(cfn, "AWS::Events::Rule").values():
        assert all(t["Arn"] != arn for t in rule["Properties"].get("Targets", []))
    for permission in resources(cfn, "AWS::Lambda::Permission").values():
        assert permission["Properties"]["FunctionName"] not in (arn, {"Ref": "RevokeFunction"})
    for mapping in resources(cfn, "AWS::Lambda::EventSourceMapping").values():
        assert mapping["Properties"]["FunctionName"] != {"Ref": "RevokeFunction"}
    assert not any(
        name.startswith("RevokeFunction") and name not in ("RevokeFunction", "RevokeFunctionRole")
        for name in cfn["Resources"]
    ), "only the function and its role: no schedule, event rule, URL or invoke permission"


def test_secrets_manager_may_invoke_the_rotation_function_from_this_account_only(cfn: dict[str, Any]) -> None:
    permissions = [
        p["Properties"]
        for p in resources(cfn, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "secretsmanager.amazonaws.com"
    ]
    assert permissions, "Secrets Manager cannot call the rotation function"
    for permission in permissions:
        assert permission["FunctionName"] == {"Fn::GetAtt": ["RotateSecretFunction", "Arn"]}
        assert permission["Action"] == "lambda:InvokeFunction"
        assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_failed_async_invocations_land_in_an_encrypted_dead_letter_queue(cfn: dict[str, Any]) -> None:
    queue = props(cfn, "DeadLetterQueue")
    assert queue.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in queue
    configs = {
        c["Properties"]["FunctionName"]["Ref"]: c["Properties"]
        for c in resources(cfn, "AWS::Lambda::EventInvokeConfig").values()
    }
    for name in ("HealthFunction",):
        assert configs[name]["DestinationConfig"]["OnFailure"]["Destination"] == {
            "Fn::GetAtt": ["DeadLetterQueue", "Arn"]
        }, name
        actions = {
            a for s in allowing(cfn, role_of(cfn, name), "sqs:SendMessage") for a in as_list(s["Action"])
        }
        assert "sqs:SendMessage" in actions, name


def test_only_asynchronously_invoked_functions_have_an_event_invoke_config(cfn: dict[str, Any]) -> None:
    # Secrets Manager invokes the rotation function synchronously, the state machine the reconciler,
    # and revoke runs by hand: Lambda's asynchronous retries and on-failure destinations would never
    # apply to them.
    scheduled = {
        s["Properties"]["Target"]["Arn"]["Fn::GetAtt"][0]
        for s in resources(cfn, "AWS::Scheduler::Schedule").values()
        if "Fn::GetAtt" in s["Properties"]["Target"]["Arn"]
    }
    configured = {
        c["Properties"]["FunctionName"]["Ref"]
        for c in resources(cfn, "AWS::Lambda::EventInvokeConfig").values()
    }
    assert scheduled == {"HealthFunction"}
    assert configured == scheduled
    assert not allowing(cfn, role_of(cfn, "RotateSecretFunction"), "sqs:SendMessage")
    assert not allowing(cfn, role_of(cfn, "RevokeFunction"), "sqs:SendMessage")
    assert not allowing(cfn, role_of(cfn, "ReconcileFunction"), "sqs:SendMessage")
    for name in functions(cfn):
        waiver = checkov_waivers(cfn, name)["CKV_AWS_116"]
        if name in configured:
            assert "EventInvokeConfig" in waiver, name
        else:
            assert "synchronously" in waiver and "EventInvokeConfig" not in waiver, name


# ------------------------------------------------------------------------------------------ encryption
def test_topic_and_table_use_one_rotating_key_and_the_secrets_another(cfn: dict[str, Any]) -> None:
    for key in ("KmsKey", "SecretsKey"):
        assert props(cfn, key)["EnableKeyRotation"] is True
        assert cfn["Resources"][key]["DeletionPolicy"] == "Retain"
    assert props(cfn, "Topic")["KmsMasterKeyId"] == {"Ref": "KmsKey"}
    sse = props(cfn, "LedgerTable")["SSESpecification"]
    assert (sse["SSEEnabled"], sse["SSEType"], sse["KMSMasterKeyId"]) == (True, "KMS", {"Ref": "KmsKey"})
    for name in functions(cfn):
        assert env(cfn, name)["TOKENWARDEN_SECRETS_KMS_KEY_ID"] == {"Fn::GetAtt": ["SecretsKey", "Arn"]}
        assert env(cfn, name)["TOKENWARDEN_LEGACY_KMS_KEY_ID"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}


def test_key_policy_lets_cloudwatch_alarms_publish_and_opens_to_nobody_else(cfn: dict[str, Any]) -> None:
    key_statements = props(cfn, "KmsKey")["KeyPolicy"]["Statement"]
    cloudwatch = [
        s
        for s in key_statements
        if s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch, "alarms could not publish to the encrypted topic"
    actions = {a for s in cloudwatch for a in as_list(s["Action"])}
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= actions
    assert "kms:*" not in actions
    for statement in key_statements:
        principal = statement["Principal"]
        assert principal != "*" and principal.get("AWS") != "*", statement.get("Sid")


def test_ledger_table_survives_and_recovers(cfn: dict[str, Any]) -> None:
    table = cfn["Resources"]["LedgerTable"]
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
    p = table["Properties"]
    assert p["BillingMode"] == "PAY_PER_REQUEST"
    assert p["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {(a["AttributeName"], a["AttributeType"]) for a in p["AttributeDefinitions"]} == {
        ("pk", "S"),
        ("sk", "S"),
    }
    assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


# ------------------------------------------------------------------------------------------ IAM
def test_no_statement_grants_every_action(cfn: dict[str, Any]) -> None:
    for role_id in all_roles(cfn):
        for statement in statements(cfn, role_id):
            if statement["Effect"] != "Allow":
                continue
            for action in as_list(statement["Action"]):
                assert action != "*" and not action.endswith(":*"), (role_id, statement.get("Sid"), action)


def test_only_unscopable_reads_use_a_wildcard_resource(cfn: dict[str, Any]) -> None:
    for role_id in all_roles(cfn):
        unscopable = UNSCOPABLE_ACTIONS | (LOG_DELIVERY_ACTIONS if role_id == STATE_MACHINE_ROLE else set())
        for statement in statements(cfn, role_id):
            if statement["Effect"] == "Allow" and "*" in as_list(statement["Resource"]):
                assert set(as_list(statement["Action"])) <= unscopable, (
                    role_id,
                    statement.get("Sid"),
                )


def test_keys_are_created_only_for_cloudwatch_and_never_beyond_the_maximum_age(cfn: dict[str, Any]) -> None:
    seen = 0
    for role_id in all_roles(cfn):
        for statement in allowing(cfn, role_id, "iam:CreateServiceSpecificCredential"):
            seen += 1
            condition = statement["Condition"]
            assert condition["StringEquals"]["iam:ServiceSpecificCredentialServiceName"] == SSC_SERVICE
            assert condition["StringEquals"][MANAGED_TAG] == "tokenwarden"
            assert condition["NumericLessThanEquals"]["iam:ServiceSpecificCredentialAgeDays"] == {
                "Ref": "MaxKeyAgeDays"
            }
            assert [text(r) for r in as_list(statement["Resource"])] == [USER_ARN]
    assert seen == 2, "the reconciler and the rotation function create keys; the revoke does not"


def test_key_updates_and_deletes_are_scoped_by_resource_never_by_service_name(cfn: dict[str, Any]) -> None:
    """IAM documents iam:ServiceSpecificCredentialServiceName for CreateServiceSpecificCredential
    only: on an update or delete the request carries no service name, and a condition on it would
    deny every retire, delete and revoke. They are scoped to the user path and TokenWarden's tag."""
    seen = 0
    for role_id in all_roles(cfn):
        for action in (
            "iam:UpdateServiceSpecificCredential",
            "iam:DeleteServiceSpecificCredential",
            "iam:ResetServiceSpecificCredential",
        ):
            for statement in allowing(cfn, role_id, action):
                seen += 1
                assert action != "iam:ResetServiceSpecificCredential", (role_id, "never resets a key")
                assert statement["Condition"] == {"StringEquals": {MANAGED_TAG: "tokenwarden"}}, (
                    role_id,
                    action,
                )
                assert [text(r) for r in as_list(statement["Resource"])] == [USER_ARN]
    assert seen >= 6


def test_iam_user_actions_are_scoped_to_the_user_path(cfn: dict[str, Any]) -> None:
    for role_id in all_roles(cfn):
        for statement in statements(cfn, role_id):
            iam_actions = {a for a in as_list(statement["Action"]) if a.startswith("iam:")}
            if statement["Effect"] != "Allow" or not iam_actions or iam_actions <= UNSCOPABLE_ACTIONS:
                continue
            assert [text(r) for r in as_list(statement["Resource"])] == [USER_ARN], (
                role_id,
                statement.get("Sid"),
            )


def test_reconciler_attaches_only_the_cloudwatch_api_key_policy(cfn: dict[str, Any]) -> None:
    for action in ("iam:AttachUserPolicy", "iam:DetachUserPolicy"):
        found = allowing(cfn, "ReconcileFunctionRole", action)
        assert found, action
        for statement in found:
            assert text(statement["Condition"]["ArnEquals"]["iam:PolicyARN"]) == (
                "arn:${AWS::Partition}:iam::aws:policy/CloudWatchAPIKeyAccess"
            )


BOUNDARY = {
    "Fn::If": ["HasPermissionsBoundary", {"Ref": "PermissionsBoundaryArn"}, {"Ref": "UserBoundaryPolicy"}]
}


def test_every_user_gets_the_configured_boundary_or_the_stacks_own(cfn: dict[str, Any]) -> None:
    for action in ("iam:CreateUser", "iam:PutUserPermissionsBoundary"):
        (statement,) = allowing(cfn, "ReconcileFunctionRole", action)
        assert statement["Condition"]["StringEquals"]["iam:PermissionsBoundary"] == BOUNDARY, action
    for name in functions(cfn):
        assert env(cfn, name)["TOKENWARDEN_PERMISSIONS_BOUNDARY_ARN"] == BOUNDARY
    boundary = props(cfn, "UserBoundaryPolicy")["PolicyDocument"]["Statement"]
    assert [(s["Effect"], sorted(as_list(s["Action"]))) for s in boundary] == [
        ("Allow", ["cloudwatch:CallWithBearerToken", "cloudwatch:PutMetricData"])
    ]


def test_secret_writes_are_scoped_to_the_secret_prefix(cfn: dict[str, Any]) -> None:
    reconcile_actions: set[str] = set()
    for role_id in all_roles(cfn):
        for statement in statements(cfn, role_id):
            actions = {a for a in as_list(statement["Action"]) if a.startswith("secretsmanager:")}
            if statement["Effect"] != "Allow" or not actions or actions <= UNSCOPABLE_ACTIONS:
                continue
            assert [text(r) for r in as_list(statement["Resource"])] == [SECRET_ARN], (
                role_id,
                statement.get("Sid"),
            )
            if role_id == "ReconcileFunctionRole":
                reconcile_actions |= actions
    assert reconcile_actions >= SECRET_ACTIONS_ON_PREFIX


def test_secrets_are_never_force_deleted(cfn: dict[str, Any]) -> None:
    denials = [
        s
        for s in statements(cfn, "ReconcileFunctionRole")
        if s["Effect"] == "Deny" and "secretsmanager:DeleteSecret" in as_list(s["Action"])
    ]
    assert any(
        s["Condition"] == {"Bool": {"secretsmanager:ForceDeleteWithoutRecovery": "true"}} for s in denials
    )


def test_rotation_function_neither_creates_nor_deletes_users_or_secrets(cfn: dict[str, Any]) -> None:
    role = role_of(cfn, "RotateSecretFunction")
    for action in (
        "iam:CreateUser",
        "iam:DeleteUser",
        "iam:AttachUserPolicy",
        "secretsmanager:CreateSecret",
        "secretsmanager:DeleteSecret",
        "secretsmanager:RotateSecret",
    ):
        assert not allowing(cfn, role, action), action
    for action in ("secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"):
        assert allowing(cfn, role, action), action


def test_reconciler_may_start_rotations(cfn: dict[str, Any]) -> None:
    assert role_of(cfn, "ReconcileFunction") == "ReconcileFunctionRole"
    (statement,) = allowing(cfn, "ReconcileFunctionRole", "lambda:InvokeFunction")
    assert statement["Resource"] == {"Fn::GetAtt": ["RotateSecretFunction", "Arn"]}


@pytest.mark.parametrize(
    "function", ["ReconcileFunction", "RotateSecretFunction", "RevokeFunction", "HealthFunction"]
)
def test_no_function_deletes_ledger_records(cfn: dict[str, Any], function: str) -> None:
    # The ledger is the history; a lease is released by writing it expired.
    assert not allowing(cfn, role_of(cfn, function), "dynamodb:DeleteItem")


def test_revoke_neither_creates_nor_deletes_users_or_secrets(cfn: dict[str, Any]) -> None:
    role = role_of(cfn, "RevokeFunction")
    for action in (
        "iam:CreateUser",
        "iam:DeleteUser",
        "iam:TagUser",
        "iam:AttachUserPolicy",
        "iam:DetachUserPolicy",
        "iam:PutUserPermissionsBoundary",
        "iam:ListUsers",
        "iam:PassRole",
        "secretsmanager:CreateSecret",
        "secretsmanager:DeleteSecret",
        "secretsmanager:RestoreSecret",
        "secretsmanager:TagResource",
        "secretsmanager:ListSecrets",
        "dynamodb:DeleteItem",
        "dynamodb:Scan",
    ):
        assert not allowing(cfn, role, action), action
    for action in (
        "iam:UpdateServiceSpecificCredential",
        "secretsmanager:DescribeSecret",
        "secretsmanager:RotateSecret",
        "dynamodb:Query",
        "dynamodb:GetItem",
    ):
        assert allowing(cfn, role, action), action


def test_break_glass_touches_only_tokenwardens_keys_under_the_user_path(cfn: dict[str, Any]) -> None:
    for function in ("RevokeFunction", "RestoreFunction"):
        role = role_of(cfn, function)
        (listing,) = allowing(cfn, role, "iam:ListServiceSpecificCredentials")
        assert [text(r) for r in as_list(listing["Resource"])] == [USER_ARN], "no account-wide listing"
        (update,) = allowing(cfn, role, "iam:UpdateServiceSpecificCredential")
        assert update["Condition"]["StringEquals"] == {MANAGED_TAG: "tokenwarden"}
        assert [text(r) for r in as_list(update["Resource"])] == [USER_ARN]


def test_revoke_reissues_through_the_rotation_function_and_never_holds_a_token(cfn: dict[str, Any]) -> None:
    revoke = role_of(cfn, "RevokeFunction")
    for action in (
        "iam:CreateServiceSpecificCredential",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecret",
        "kms:Encrypt",
    ):
        assert not allowing(cfn, revoke, action), action
    (rotate,) = allowing(cfn, revoke, "secretsmanager:RotateSecret")
    assert rotate["Condition"]["StringEquals"]["secretsmanager:RotationLambdaARN"] == {
        "Fn::GetAtt": ["RotateSecretFunction", "Arn"]
    }
    (invoke,) = allowing(cfn, revoke, "lambda:InvokeFunction")
    assert invoke["Resource"] == {"Fn::GetAtt": ["RotateSecretFunction", "Arn"]}


def test_restore_has_its_own_function_that_can_only_reactivate_keys(cfn: dict[str, Any]) -> None:
    """So that an organisation can grant lambda:InvokeFunction on revoke widely and on restore narrowly."""
    revoke, restore = role_of(cfn, "RevokeFunction"), role_of(cfn, "RestoreFunction")
    assert revoke != restore
    writes = {
        a
        for s in statements(cfn, restore)
        if s["Effect"] == "Allow"
        for a in as_list(s["Action"])
        if not a.startswith("kms:") and not a.split(":")[1].startswith(("Get", "List", "Describe", "Query"))
    }
    assert writes == {"iam:UpdateServiceSpecificCredential", "dynamodb:PutItem", "sns:Publish"}
    assert not any("Schedule" in str(e) for e in props(cfn, "RestoreFunction").get("Events", {}).values())
    assert not [
        p
        for p in resources(cfn, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"]
        in ({"Ref": "RestoreFunction"}, {"Fn::GetAtt": ["RestoreFunction", "Arn"]})
    ], "nobody but IAM principals granted lambda:InvokeFunction may call it"


def test_health_check_queries_only_the_health_and_principal_partitions(cfn: dict[str, Any]) -> None:
    """It reads the snoozes with Query on pk HEALTH, and (for the automatic rollback) a principal's
    records on its P# partition; never a Query without a partition condition."""
    conditions = [q["Condition"] for q in allowing(cfn, role_of(cfn, "HealthFunction"), "dynamodb:Query")]
    assert sorted(conditions, key=str) == sorted(
        [
            {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["HEALTH"]}},
            {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["P#*"]}},
        ],
        key=str,
    )


def test_health_check_writes_iam_only_to_roll_back_and_never_touches_secrets(cfn: dict[str, Any]) -> None:
    role = role_of(cfn, "HealthFunction")
    for statement in statements(cfn, role):
        if statement["Effect"] != "Allow":
            continue
        for action in as_list(statement["Action"]):
            service, _, name = action.partition(":")
            assert service != "secretsmanager", (statement.get("Sid"), action)
            if service == "iam" and name == "UpdateServiceSpecificCredential":
                # The automatic rollback: keys of TokenWarden's users only.
                assert statement["Resource"] == {
                    "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:user${UserPath}*"
                }
                assert statement["Condition"] == {
                    "StringEquals": {"aws:ResourceTag/tokenwarden:managed-by": "tokenwarden"}
                }
            elif service == "iam":
                # No other IAM write: nothing that creates, deletes, attaches, tags or passes.
                assert name.startswith(("Get", "List")) and "*" not in name, (statement.get("Sid"), action)
    assert allowing(cfn, role, "iam:ListServiceSpecificCredentials")
    assert not allowing(cfn, role, "iam:CreateServiceSpecificCredential")
    assert not allowing(cfn, role, "iam:DeleteServiceSpecificCredential")
    assert not allowing(cfn, role, "iam:PassRole")


def test_health_check_may_roll_back_only_when_the_rollback_is_on(cfn: dict[str, Any]) -> None:
    """RollbackGraceDays 0 turns the rollback off, and with it every write outside the health record."""
    raw = [
        raw
        for policy in props(cfn, role_of(cfn, "HealthFunction")).get("Policies", [])
        for raw in as_list(policy["PolicyDocument"]["Statement"])
    ]
    rollback = [s for s in raw if isinstance(s, dict) and "Fn::If" in s and s["Fn::If"][0] == "RollsBack"]
    assert {b["Sid"] for s in rollback for b in branches(s)} == {
        "RollBackARetiredKeyOfTokenWardensUsers",
        "ReadAPrincipalsRecords",
        "WriteOnlyPrincipalsRecordsUnderTheirLease",
    }
    assert all(s["Fn::If"][2] == {"Ref": "AWS::NoValue"} for s in rollback)
    writes = next(b for s in rollback for b in branches(s) if b["Action"] == "dynamodb:PutItem")
    assert writes["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["P#*"]}}
    assert env(cfn, "HealthFunction")["TOKENWARDEN_ROLLBACK_GRACE_DAYS"] == {"Ref": "RollbackGraceDays"}
    assert cfn["Parameters"]["RollbackGraceDays"]["Default"] == 3


def test_health_check_queries_cloudwatch_and_prometheus_only_when_chosen(cfn: dict[str, Any]) -> None:
    role = role_of(cfn, "HealthFunction")
    for action in CLOUDWATCH_QUERY_ACTIONS:
        assert allowing(cfn, role, action), action
    raw = [
        raw
        for policy in props(cfn, role).get("Policies", [])
        for raw in as_list(policy["PolicyDocument"]["Statement"])
    ]
    unconditional = [s for s in raw if not (isinstance(s, dict) and "Fn::If" in s)]
    assert not any(
        granted(pattern, "aps:QueryMetrics") or pattern.startswith("aps:")
        for s in unconditional
        for pattern in as_list(s["Action"])
    ), "Amazon Managed Prometheus access must depend on the dialect"
    aps = [s for s in raw if isinstance(s, dict) and "Fn::If" in s]
    aps = [s for s in aps if any("aps:QueryMetrics" in as_list(b["Action"]) for b in branches(s))]
    assert aps, "the prometheus dialect could not query Amazon Managed Prometheus"
    for conditional in aps:
        condition, when_true, when_false = conditional["Fn::If"]
        assert condition == "IsPrometheusDialect"
        assert when_false == {"Ref": "AWS::NoValue"}
        assert as_list(when_true["Action"]) == ["aps:QueryMetrics"]
        assert [text(r) for r in as_list(when_true["Resource"])] == [APS_WORKSPACE_ARN]
    assert cfn["Conditions"]["IsPrometheusDialect"] == {
        "Fn::Equals": [{"Ref": "PromQLDialect"}, "prometheus"]
    }
    # Nobody else queries metrics.
    for other in all_roles(cfn):
        if other != role:
            assert not allowing(cfn, other, "aps:QueryMetrics"), other
            assert not allowing(cfn, other, "cloudwatch:GetMetricData"), other


def test_functions_reach_only_their_own_table_topic_and_keys(cfn: dict[str, Any]) -> None:
    table_and_topic_key = {"Fn::GetAtt": ["KmsKey", "Arn"]}
    secrets_key = {"Fn::GetAtt": ["SecretsKey", "Arn"]}
    for name in functions(cfn):
        role = role_of(cfn, name)
        for action, allowed in (
            ("dynamodb:PutItem", [{"Fn::GetAtt": ["LedgerTable", "Arn"]}]),
            ("sns:Publish", [{"Ref": "Topic"}]),
            ("kms:GenerateDataKey", [table_and_topic_key, secrets_key]),
            ("kms:Decrypt", [table_and_topic_key, secrets_key]),
        ):
            found = allowing(cfn, role, action)
            assert found, (name, action)
            assert all(
                as_list(s["Resource"])[0] in allowed and len(as_list(s["Resource"])) == 1 for s in found
            ), (name, action)
        for statement in statements(cfn, role):
            if statement["Effect"] == "Allow" and statement["Resource"] == secrets_key:
                # The secrets' key only through Secrets Manager.
                assert statement["Condition"]["StringEquals"]["kms:ViaService"] == {
                    "Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"
                }, name
        assert not allowing(cfn, role, "kms:Encrypt"), (
            name,
            "Secrets Manager, SNS and DynamoDB use data keys",
        )
    for name in ("HealthFunction", "RevokeFunction", "RestoreFunction"):
        role = role_of(cfn, name)
        assert all(s["Resource"] != secrets_key for s in statements(cfn, role)), (name, "never reads a token")


def test_health_writes_only_its_own_record_and_principals_records_for_a_rollback(cfn: dict[str, Any]) -> None:
    role = role_of(cfn, "HealthFunction")
    puts = allowing(cfn, role, "dynamodb:PutItem")
    assert sorted(str(put["Condition"]) for put in puts) == sorted(
        str(c)
        for c in (
            {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["HEALTH"]}},
            {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["P#*"]}},
        )
    )


# ------------------------------------------------------------------------------------------ alarms
def alarms(cfn: dict[str, Any]) -> list[dict[str, Any]]:
    """The alarms on one metric (the nightly run's alarm adds three up: see test_state_machine.py)."""
    return [
        a["Properties"]
        for a in resources(cfn, "AWS::CloudWatch::Alarm").values()
        if "Metrics" not in a["Properties"]
    ]


def test_every_function_has_an_errors_alarm_to_the_topic(cfn: dict[str, Any]) -> None:
    for name in functions(cfn):
        matching = [
            a
            for a in alarms(cfn)
            if (a["Namespace"], a["MetricName"]) == ("AWS/Lambda", "Errors")
            and {"Name": "FunctionName", "Value": {"Ref": name}} in a["Dimensions"]
        ]
        assert matching, name
        assert all({"Ref": "Topic"} in a["AlarmActions"] for a in matching)


def test_rotation_failures_and_near_expiry_raise_alarms(cfn: dict[str, Any]) -> None:
    by_metric = {(a["Namespace"], a["MetricName"]): a for a in alarms(cfn)}
    failed = by_metric[("TokenWarden", "RotationFailed")]
    assert (failed["ComparisonOperator"], failed["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    expiring = by_metric[("TokenWarden", "MinDaysToExpiry")]
    # The fewest days left on any current key: it alarms at the bound of the expiring_soon
    # notification (days left <= expiry_alert_days), after the planned rotation.
    lifecycle = Lifecycle()
    assert expiring["Statistic"] == "Minimum"
    assert (expiring["ComparisonOperator"], expiring["Threshold"]) == (
        "LessThanOrEqualToThreshold",
        lifecycle.expiry_alert_days,
    )
    assert expiring["Threshold"] < lifecycle.rotate_before_days
    # Emitted only when keys exist: a fresh deploy without keys must not sit in ALARM.
    assert expiring["TreatMissingData"] == "notBreaching"
    for alarm in (failed, expiring):
        assert {"Ref": "Topic"} in alarm["AlarmActions"]
        # Powertools Metrics publishes with the service dimension only.
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "tokenwarden"}]


def test_outputs_name_what_operators_need(cfn: dict[str, Any]) -> None:
    assert {
        "TopicArn",
        "LedgerTableName",
        "RotationFunctionArn",
        "ReconcileFunctionName",
        "HealthFunctionName",
        "RevokeFunctionName",
    } <= set(cfn["Outputs"])
    assert cfn["Outputs"]["HealthFunctionName"]["Value"] == {"Ref": "HealthFunction"}
    assert cfn["Outputs"]["RevokeFunctionName"]["Value"] == {"Ref": "RevokeFunction"}


# ------------------------------------------------------------------------------------------ packaging
def test_layer_requirements_are_pinned_and_ship_no_dev_tooling() -> None:
    lines = [
        line.split("#", 1)[0].strip()
        for line in (REPO / "layers" / "shared" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    ]
    requirements = [line for line in lines if line]
    assert requirements
    assert all("==" in line for line in requirements), requirements
    names = {line.split("==")[0].split("[")[0].lower() for line in requirements}
    assert {"boto3", "botocore", "aws-lambda-powertools", "pydantic", "pyyaml"} <= names
    # The functions read their settings with pydantic alone; pydantic-settings is the embedded stack's.
    assert not names & {"moto", "pytest", "hypothesis", "awscli", "pydantic-settings"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_built_artifacts_ship_no_dev_tooling_and_carry_the_registry() -> None:
    layer = BUILD_DIR / "SharedLayer" / "python"
    if not layer.is_dir():
        pytest.skip("no sam build output (.aws-sam/build): run `make build` to check what ships")
    assert (layer / "tokenwarden" / "__init__.py").is_file()
    assert (layer / "boto3").is_dir() and (layer / "pydantic_core").is_dir()
    assert not (layer / "moto").exists()
    assert not (layer / "tokenwarden" / "local").exists()
    assert not (layer / "tokenwarden" / "cli").exists()
    # The only bytecode is what the build compiles from layers/shared/bytecode.txt, never a cache
    # left by a run on the build machine.
    listed = (REPO / "layers" / "shared" / "bytecode.txt").read_text(encoding="utf-8")
    for cached in layer.rglob("*.pyc"):
        assert cached.parent.name == "__pycache__", cached
        source = cached.parent.parent / f"{cached.name.split('.')[0]}.py"
        assert f"\n{source.relative_to(layer)}\n" in listed, cached
    for module in (layer / "tokenwarden").rglob("*.py"):
        for imported in _imports(module):
            assert not imported.startswith(("tokenwarden.local", "tokenwarden.cli", "moto")), (
                module,
                imported,
            )
    native = list((layer / "pydantic_core").glob("*.so"))
    assert native and all("aarch64" in so.name for so in native), "the layer must be built for arm64"
    for function, handler in (
        ("ReconcileFunction", "reconcile_handler"),
        ("HealthFunction", "health_handler"),
        ("RevokeFunction", "revoke_handler"),
        ("RestoreFunction", "restore_handler"),
        ("RotateSecretFunction", "rotate_secret_handler"),
    ):
        assert (BUILD_DIR / function / "teams.yaml").is_file(), function
        assert (BUILD_DIR / function / f"{handler}.py").is_file(), function


ALLOWED_CHECKOV_WAIVERS = {"CKV_AWS_27", "CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"}


def test_every_checkov_waiver_is_known_and_justified(cfn: dict[str, Any]) -> None:
    waivers = [
        (logical_id, skip)
        for logical_id, resource in cfn["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert waivers, "the checkov waivers moved or vanished"
    for logical_id, skip in waivers:
        assert skip["id"] in ALLOWED_CHECKOV_WAIVERS, f"{logical_id}: new waiver {skip['id']} needs a review"
        assert len(skip.get("comment", "")) > 40, f"{logical_id}: waiver {skip['id']} without a justification"
