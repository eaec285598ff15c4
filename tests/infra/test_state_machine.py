"""The nightly state machine as deployed: its definition file (statemachine/nightly.asl.json) with
the template's substitutions, its role, its logging and tracing, and the alarm on a night that did
not finish."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.test_template import (
    LOG_DELIVERY_ACTIONS,
    REPO,
    STATE_MACHINE,
    STATE_MACHINE_ARN,
    STATE_MACHINE_ROLE,
    allowing,
    as_list,
    props,
    resources,
    statements,
    text,
)
from tokenwarden.local.stack import nightly_definition

pytestmark = pytest.mark.infra

DEFINITION = REPO / "statemachine" / "nightly.asl.json"
LAMBDA_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(nightly_definition("arn:aws:lambda:us-east-1:1:function:f", 7, 300))
    return parsed


def test_every_placeholder_of_the_definition_is_substituted_by_the_template(cfn: dict[str, Any]) -> None:
    machine = props(cfn, STATE_MACHINE)
    placeholders = set(re.findall(r"\$\{(\w+)\}", DEFINITION.read_text(encoding="utf-8")))
    assert placeholders == set(machine["DefinitionSubstitutions"])
    assert machine["DefinitionSubstitutions"] == {
        "ReconcileFunctionArn": {"Fn::GetAtt": ["ReconcileFunction", "Arn"]},
        "MaxConcurrency": {"Ref": "NightlyMaxConcurrency"},
        "MaxPrincipalsPerRun": {"Ref": "NightlyMaxPrincipals"},
    }
    assert machine["StateMachineType"] == "STANDARD"
    assert cfn["Parameters"]["NightlyMaxConcurrency"]["Default"] == 10


def test_plan_then_a_distributed_map_then_one_summary(definition: dict[str, Any]) -> None:
    states = definition["States"]
    assert definition["StartAt"] == "Plan"
    assert states["Plan"]["Next"] == "Principals"
    payload = states["Plan"]["Parameters"]["Payload"]
    assert (payload["mode"], payload["max_principals"]) == ("plan_night", 300)
    principals = states["Principals"]
    assert principals["Type"] == "Map"
    assert principals["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert principals["MaxConcurrency"] == 7
    assert principals["Next"] == "Summary"
    assert states["Summary"]["Parameters"]["Payload"]["mode"] == "summary"
    for name in ("Plan", "Summary"):
        assert states[name]["Parameters"]["FunctionName"] == "arn:aws:lambda:us-east-1:1:function:f"


def test_each_principal_retries_lambdas_and_throttlings_and_a_failure_stops_no_other(
    definition: dict[str, Any],
) -> None:
    processor = definition["States"]["Principals"]["ItemProcessor"]
    task = processor["States"][processor["StartAt"]]
    assert task["Parameters"]["Payload"]["mode"] == "principal"
    (retry,) = task["Retry"]
    assert set(retry["ErrorEquals"]) == LAMBDA_ERRORS | {"AwsUnavailable"}
    assert retry["MaxAttempts"] >= 3 and retry["BackoffRate"] > 1
    (catch,) = task["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"]
    recorded = processor["States"][catch["Next"]]
    assert recorded["Type"] == "Pass" and recorded.get("End") is True
    # The error's name only: its cause may quote a response.
    assert recorded["Parameters"]["error.$"] == "$.failure.Error"
    assert "Cause" not in json.dumps(recorded["Parameters"])


def test_a_failed_map_still_summarises_then_fails_the_execution(definition: dict[str, Any]) -> None:
    states = definition["States"]
    (catch,) = states["Principals"]["Catch"]
    assert states[catch["Next"]]["Next"] == "Summary"
    choice = states[states["Summary"]["Next"]]
    (failed,) = choice["Choices"]
    assert states[failed["Next"]]["Type"] == "Fail"
    assert states[choice["Default"]]["InputPath"] == "$.summary.report", "the output is the run report"


def test_the_state_machines_role_invokes_the_reconciler_and_runs_only_its_own_children(
    cfn: dict[str, Any],
) -> None:
    assert props(cfn, STATE_MACHINE)["RoleArn"] == {"Fn::GetAtt": [STATE_MACHINE_ROLE, "Arn"]}
    (invoke,) = allowing(cfn, STATE_MACHINE_ROLE, "lambda:InvokeFunction")
    assert invoke["Resource"] == {"Fn::GetAtt": ["ReconcileFunction", "Arn"]}
    (start,) = allowing(cfn, STATE_MACHINE_ROLE, "states:StartExecution")
    assert text(start["Resource"]) == STATE_MACHINE_ARN
    for action in ("states:DescribeExecution", "states:StopExecution"):
        (watch,) = allowing(cfn, STATE_MACHINE_ROLE, action)
        assert text(watch["Resource"]) == STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:") + "/*"
    granted = {a for s in statements(cfn, STATE_MACHINE_ROLE) for a in as_list(s["Action"])}
    assert (
        granted
        == {
            "lambda:InvokeFunction",
            "states:StartExecution",
            "states:DescribeExecution",
            "states:StopExecution",
        }
        | LOG_DELIVERY_ACTIONS
    )
    assert props(cfn, STATE_MACHINE_ROLE)["Path"] == {"Fn::Sub": "/tokenwarden/${AWS::StackName}/"}


def test_the_state_machine_logs_errors_without_execution_data_and_traces(cfn: dict[str, Any]) -> None:
    machine = props(cfn, STATE_MACHINE)
    logging = machine["LoggingConfiguration"]
    assert (logging["Level"], logging["IncludeExecutionData"]) == ("ERROR", False)
    (destination,) = logging["Destinations"]
    assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"] == {"Fn::GetAtt": ["NightlyLogGroup", "Arn"]}
    group = props(cfn, "NightlyLogGroup")
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["KmsKey", "Arn"]} and group["RetentionInDays"] >= 365
    assert machine["TracingConfiguration"] == {"Enabled": True}


def test_a_night_that_does_not_finish_raises_an_alarm_to_the_topic(cfn: dict[str, Any]) -> None:
    (alarm,) = (
        a["Properties"]
        for a in resources(cfn, "AWS::CloudWatch::Alarm").values()
        if "NightlyStateMachine" in json.dumps(a["Properties"].get("Metrics", []))
    )
    watched = {
        m["MetricStat"]["Metric"]["MetricName"]
        for m in alarm["Metrics"]
        if "MetricStat" in m
        and m["MetricStat"]["Metric"]["Dimensions"]
        == [{"Name": "StateMachineArn", "Value": {"Ref": STATE_MACHINE}}]
    }
    assert watched >= {"ExecutionsFailed", "ExecutionsTimedOut"}
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert {"Ref": "Topic"} in alarm["AlarmActions"]
    assert "docs/operate.md" in alarm["AlarmDescription"]


def test_only_the_nightly_log_group_may_use_the_key_through_cloudwatch_logs(cfn: dict[str, Any]) -> None:
    (logs,) = (
        s
        for s in props(cfn, "KmsKey")["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    )
    condition = logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
    assert text(condition).endswith(":log-group:/aws/vendedlogs/states/${AWS::StackName}-nightly")
    assert (
        text(props(cfn, "NightlyLogGroup")["LogGroupName"])
        == "/aws/vendedlogs/states/${AWS::StackName}-nightly"
    )
