"""The dashboard cannot go stale: every metric it shows is one the code emits, with the same
name, namespace and dimensions, and it shows what an operator looks at first.

What the code emits is read from the code itself: each call of the metric helpers in src/ (a
name built from an enum is expanded over that enum), with the dimensions each helper really
writes into its EMF document."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from tokenwarden import observability
from tokenwarden.domain.health import HealthState
from tokenwarden.domain.plan import ActionKind

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-central-1"
HELPERS = ("count", "team_metric", "principal_metric")
# Metric names built at run time from an enum's values: the prefix and the enum.
DYNAMIC: dict[str, type[StrEnum]] = {"Action_": ActionKind, "Teams_": HealthState}
SEARCH = re.compile(r"SEARCH\('\{(?P<keys>[^}]*)\} MetricName=\"(?P<name>[^\"]+)\"'")

Metric = tuple[str, str, frozenset[str]]


def helper_dimensions(monkeypatch: pytest.MonkeyPatch, helper: str) -> frozenset[str]:
    """The dimension names the helper writes, read from the EMF document it prints, with the
    service name the template gives every function (test_functions_emit_under_the_dashboards_names)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", observability.SERVICE)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        if helper == "count":
            observability.count("Probe")
            observability.metrics.flush_metrics()
        else:
            getattr(observability, helper)("Probe", 1, "x")
    (document,) = [json.loads(line) for line in printed.getvalue().splitlines() if line.strip()]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == observability.NAMESPACE
    (dimensions,) = directive["Dimensions"]
    return frozenset(dimensions)


def emitted_names() -> Iterator[tuple[str, str]]:
    """(helper, metric name) of every metric helper call in src/."""
    for path in (REPO / "src" / "tokenwarden").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args):
                continue
            if node.func.id not in HELPERS:
                continue
            name = node.args[0]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                yield node.func.id, name.value
            elif isinstance(name, ast.JoinedStr) and isinstance(name.values[0], ast.Constant):
                prefix = str(name.values[0].value)
                assert prefix in DYNAMIC, f"{path}: metric name {prefix}... built from an unknown value"
                yield from ((node.func.id, prefix + member.value) for member in DYNAMIC[prefix])
            else:
                raise AssertionError(f"{path}:{node.lineno}: a metric name the test cannot read")


@pytest.fixture(scope="module")
def emitted() -> set[Metric]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        dimensions = {helper: helper_dimensions(monkeypatch, helper) for helper in HELPERS}
    return {(observability.NAMESPACE, name, dimensions[helper]) for helper, name in emitted_names()}


def substitute(text: str, values: dict[str, str]) -> str:
    """Fn::Sub as CloudFormation applies it: ${Name} and ${Resource.Attr} (a stand-in ARN)."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in values:
            return values[key]
        if key == "AWS::Region":
            return REGION
        assert key.endswith(".Arn"), key
        return f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:{key.removesuffix('.Arn')}"

    return re.sub(r"\$\{([^}!]+)\}", value, text)


def bodies(cfn: dict[str, Any]) -> dict[bool, dict[str, Any]]:
    """The dashboard as deployed with PrincipalMetrics true and false."""
    body, variables = cfn["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    condition, on, off = variables["PrincipalWidget"]["Fn::If"]
    assert condition == "HasPrincipalMetrics"
    out = {}
    for enabled, widget in ((True, on), (False, off)):
        widget = substitute(widget["Fn::Sub"], {}) if isinstance(widget, dict) else widget
        plain = {k: v for k, v in variables.items() if isinstance(v, str)}
        out[enabled] = json.loads(substitute(body, {**plain, "PrincipalWidget": widget}))
    return out


def shown(dashboard: dict[str, Any]) -> set[Metric]:
    """Every metric the dashboard's widgets chart, explicit or found by a SEARCH expression."""
    found: set[Metric] = set()
    for widget in dashboard["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], dict):
                match = SEARCH.search(row[0]["expression"])
                assert match, row
                namespace, *keys = match["keys"].split(",")
                found.add((namespace, match["name"], frozenset(keys)))
                continue
            namespace, name, *rest = [item for item in row if not isinstance(item, dict)]
            pairs = dict(zip(rest[::2], rest[1::2], strict=True))
            assert pairs.get("service", observability.SERVICE) == observability.SERVICE
            found.add((namespace, name, frozenset(pairs)))
    return found


@pytest.mark.parametrize("principal_metrics", [True, False])
def test_every_metric_the_dashboard_shows_is_emitted_by_the_code(
    cfn: dict[str, Any], emitted: set[Metric], principal_metrics: bool
) -> None:
    charted = shown(bodies(cfn)[principal_metrics])
    assert charted - emitted == set()


def test_the_dashboard_shows_what_an_operator_looks_at_first(
    cfn: dict[str, Any], emitted: set[Metric]
) -> None:
    names = {name for _, name, _ in shown(bodies(cfn)[True])}
    assert {"MinDaysToExpiry", "MaxDaysToExpiry", "DaysToExpiry"} <= names
    assert {f"Teams_{state.value}" for state in HealthState} <= names
    assert {"Action_rotate", "RotationFailed", "KeysRevoked"} <= names
    assert "DaysToExpiry" not in {name for _, name, _ in shown(bodies(cfn)[False])}


def test_every_widget_names_the_stack_region_and_every_alarm(cfn: dict[str, Any]) -> None:
    dashboard = bodies(cfn)[True]
    alarms = {logical for logical, r in cfn["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    (panel,) = [w for w in dashboard["widgets"] if w["type"] == "alarm"]
    assert {arn.rsplit(":", 1)[1] for arn in panel["properties"]["alarms"]} == alarms
    for widget in dashboard["widgets"]:
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == REGION


def test_functions_emit_under_the_dashboards_names(cfn: dict[str, Any]) -> None:
    functions = [r for r in cfn["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert functions
    for function in functions:
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["POWERTOOLS_SERVICE_NAME"] == observability.SERVICE
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == observability.NAMESPACE
