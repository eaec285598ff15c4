"""The nightly state machine as deployed: its definition file (statemachine/nightly.asl.json) with
the template's substitutions, its role, its logging and tracing, and the alarm on a night that did
not finish."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
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
from tokenwarden.domain.outcomes import (
    BatchResult,
    Finding,
    NightRound,
    NightState,
    PrincipalOutcome,
    RunReport,
)
from tokenwarden.local.stack import nightly_definition
from tokenwarden.service import night as steps

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
    parsed: dict[str, Any] = json.loads(
        nightly_definition("arn:aws:lambda:us-east-1:1:function:f", 7, 300, 11)
    )
    return parsed


def test_every_placeholder_of_the_definition_is_substituted_by_the_template(cfn: dict[str, Any]) -> None:
    machine = props(cfn, STATE_MACHINE)
    placeholders = set(re.findall(r"\$\{(\w+)\}", DEFINITION.read_text(encoding="utf-8")))
    assert placeholders == set(machine["DefinitionSubstitutions"])
    assert machine["DefinitionSubstitutions"] == {
        "ReconcileFunctionArn": {"Fn::GetAtt": ["ReconcileFunction", "Arn"]},
        "MaxConcurrency": {"Ref": "NightlyMaxConcurrency"},
        "MaxPrincipalsPerRun": {"Ref": "NightlyMaxPrincipals"},
        "MaxRounds": {"Ref": "NightlyMaxRounds"},
    }
    assert machine["StateMachineType"] == "STANDARD"
    assert cfn["Parameters"]["NightlyMaxConcurrency"]["Default"] == 10


def test_rounds_of_plan_and_a_distributed_map_then_one_summary(definition: dict[str, Any]) -> None:
    states = definition["States"]
    start = states[definition["StartAt"]]
    assert start["Parameters"]["previous"] is None and start["Next"] == "Plan"
    payload = states["Plan"]["Parameters"]["Payload"]
    assert (payload["mode"], payload["max_principals"], payload["max_rounds"]) == ("plan_night", 300, 11)
    assert payload["previous.$"] == "$.previous"
    more = states[states["Plan"]["Next"]]
    go, quiet = more["Choices"]
    assert (more["Type"], go["Variable"], go["BooleanEquals"]) == ("Choice", "$.round.more", True)
    assert (go["Next"], more["Default"]) == ("Principals", "Summary")
    # A quiet night's first plan step summarised it: its report is the execution's output.
    assert (quiet["Variable"], quiet["IsNull"], quiet["Next"]) == ("$.round.report", False, "Report")
    assert states["Report"]["InputPath"] == "$.round.report"
    principals = states["Principals"]
    assert principals["Type"] == "Map" and principals["ItemsPath"] == "$.round.work"
    assert principals["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert principals["MaxConcurrency"] == 7
    back = states[principals["Next"]]
    assert back["Next"] == "Plan", "each round's results go back to the plan step"
    assert back["Parameters"]["previous"] == {
        "round": {"night.$": "$.round.night", "upto.$": "$.round.upto", "waiting.$": "$.round.waiting"},
        "results.$": "$.results",
    }, "the night, where the round stopped and its results: not its ids again (256 KiB a state)"
    assert states["Summary"]["Parameters"]["Payload"] == {"mode": "summary", "night.$": "$.round.night"}
    for name in ("Plan", "Summary"):
        assert states[name]["Parameters"]["FunctionName"] == "arn:aws:lambda:us-east-1:1:function:f"
    into_summary = {
        name for name, state in states.items() if "Summary" in (state.get("Next"), state.get("Default"))
    }
    assert into_summary == {"More?", "NoResults"}, "one summary per night, after the last round"


# History events of a standard execution (Step Functions quotas: 25,000 per execution). A Task
# state: entered, scheduled, started, succeeded, exited, and three more per retry (scheduled,
# started, failed). A Choice or Pass state: entered, exited. A Distributed Map in its parent:
# entered, started, its Map Run started and succeeded, succeeded, exited (its items' events are
# in their child executions' histories).
HISTORY_LIMIT = 25_000
MAP_EVENTS = 6


def worst_case_events(states: dict[str, Any], name: str) -> int:
    state = states[name]
    if state["Type"] == "Task":
        return 5 + sum(3 * int(retry["MaxAttempts"]) for retry in state.get("Retry", []))
    if state["Type"] == "Map":
        return MAP_EVENTS
    return 2


def test_the_largest_round_limit_fits_the_execution_history(
    cfn: dict[str, Any], definition: dict[str, Any]
) -> None:
    states = definition["States"]
    per_round = sum(worst_case_events(states, name) for name in ("Plan", "More?", "Principals", "NextRound"))
    once = 2 + sum(
        worst_case_events(states, n) for n in ("Night", "Plan", "More?", "Summary", "MapFailed?", "Report")
    )
    rounds = cfn["Parameters"]["NightlyMaxRounds"]

    assert per_round * rounds["MaxValue"] + once <= HISTORY_LIMIT // 2, "half the history limit, for margin"
    assert (per_round, once) == (27, 44), "docs/architecture.md quotes these figures"
    assert (
        rounds["MinValue"] == 1
        and rounds["Default"] * cfn["Parameters"]["NightlyMaxPrincipals"]["Default"] >= 50_000
    )


STATE_LIMIT = 256 * 1024


def failed(n: int) -> PrincipalOutcome:
    """A failure as long as they come: a registry id of the longest kind and a long error."""
    return PrincipalOutcome(
        principal=f"p{n:05d}".ljust(48, "x"), status="failed", done=("secure", "onboard"), error="e" * 120
    )


def noted(n: int) -> PrincipalOutcome:
    """A retirement as long as they come: the longest id and notes beyond the caps, bounded as the
    Map item bounds them."""
    return steps.bounded_notes(
        PrincipalOutcome(
            principal=f"p{n:05d}".ljust(48, "x"),
            status="ok",
            done=("retire", "delete"),
            notes=("n" * 400,) * 3,
        )
    )


def largest(n: int) -> PrincipalOutcome:
    return max(failed(n), noted(n), key=lambda o: len(o.model_dump_json(exclude_defaults=True)))


def test_the_largest_round_fits_a_state_next_to_the_night(cfn: dict[str, Any]) -> None:
    most = cfn["Parameters"]["NightlyMaxPrincipals"]["MaxValue"]
    # The guard's finding names every principal it holds: 60,000 of them, and more findings than carried.
    findings = tuple(
        Finding(principal=None, kind="guard_tripped", detail=", ".join(f"p{n:05d}" for n in range(60_000)))
        for _ in range(steps.MAX_CARRIED_FINDINGS + 900)
    )
    night = NightState(
        run_id="f" * 32,
        started_at=datetime(2030, 1, 1, tzinfo=UTC),
        findings=steps.carried_findings(findings),
        unlisted_findings=900,
        rounds=119,
        through=failed(0).principal,
        outcomes=tuple(largest(n) for n in range(steps.MAX_LISTED_OUTCOMES)),
        unlisted=60_000,
        counts={"secure": 60_000, "onboard": 60_000, "principals_failed": 60_000},
    )
    work = tuple(failed(n).principal for n in range(most))
    planned = NightRound(night=night, work=work, upto=work[-1], waiting=60_000, more=True)
    results = [steps.item_output(BatchResult(outcomes=(largest(n),))) for n in range(most)]

    # The largest state of a round: after the Map, the round as planned and every item's result.
    after_map = {"round": planned.model_dump(mode="json"), "map_failed": False, "results": results}

    assert len(noted(0).notes[0]) == steps.MAX_NOTE_CHARS, "the notes are at their cap"
    assert len(night.findings) == steps.MAX_CARRIED_FINDINGS
    assert all(len(f.detail) == steps.MAX_FINDING_CHARS for f in night.findings)
    assert len(json.dumps(after_map).encode()) < 0.9 * STATE_LIMIT, "a tenth of the limit to spare"


def test_the_largest_report_fits_the_state_after_the_summary(cfn: dict[str, Any]) -> None:
    """After the summary step the state is the report in the round's place and the Map's failure:
    every listed outcome at its longest, and a drift audit that found something for each of 60,000
    principals (with long details) still fit."""
    drift = tuple(
        Finding(principal=f"p{n:05d}".ljust(48, "x"), kind="secret_policy_drift", detail="d" * 2_000)
        for n in range(60_000)
    )
    report = steps.reported(
        RunReport(
            started_at=datetime(2030, 1, 1, tzinfo=UTC),
            outcomes=tuple(largest(n) for n in range(steps.MAX_LISTED_OUTCOMES)),
            findings=drift,
            counts={"secure": 60_000, "principals_failed": 60_000},
            min_days_to_expiry=0.5,
        )
    )
    after_summary = {
        "round": {"report": report.model_dump(mode="json")},
        "map_failed": True,
        "error": "States.ExceedToleratedFailureThreshold",
    }

    assert len(report.findings) == steps.MAX_REPORTED_FINDINGS + 1
    assert report.findings[-1].detail.startswith(f"{60_000 - steps.MAX_REPORTED_FINDINGS} more finding(s)")
    size = len(json.dumps(after_summary).encode())
    print(f"\nthe state after the summary, at every cap: {size:,} bytes")
    assert size < 0.9 * STATE_LIMIT, "a tenth of the limit to spare"


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
    assert states["Summary"]["ResultPath"] == "$.round", "the report takes the night's place"
    assert states[choice["Default"]]["InputPath"] == "$.round.report", "the output is the run report"


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
