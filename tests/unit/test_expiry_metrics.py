"""Days to expiry for the dashboard: the aggregates always, one metric per principal only when
the deployment asks for it (each is a custom metric of its own)."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from tokenwarden import observability
from tokenwarden.service.expiry_metrics import publish_expiry

DAYS = {"alpha": 12.5, "beta": 80.0, "gamma": 3.25}


def emitted(monkeypatch: pytest.MonkeyPatch, per_principal: bool) -> list[tuple[str, dict[str, str], float]]:
    """(name, dimensions, value) of every metric published, as the EMF documents say."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", observability.SERVICE)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        publish_expiry(DAYS, per_principal)
        observability.metrics.flush_metrics()
    out = []
    for line in printed.getvalue().splitlines():
        document = json.loads(line)
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        dimensions = {name: document[name] for name in directive["Dimensions"][0]}
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            out.append((metric["Name"], dimensions, value[0] if isinstance(value, list) else value))
    return out


def test_only_the_latest_expiry_is_added_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert emitted(monkeypatch, per_principal=False) == [
        ("MaxDaysToExpiry", {"service": observability.SERVICE}, 80.0)
    ]


def test_each_principal_gets_its_own_metric_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    per_principal = [m for m in emitted(monkeypatch, per_principal=True) if m[0] == "DaysToExpiry"]
    assert sorted((m[1]["principal"], m[2]) for m in per_principal) == sorted(DAYS.items())


def test_no_key_no_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.warns(UserWarning):
        publish_expiry({}, per_principal=True)
        observability.metrics.flush_metrics()
    assert printed.getvalue() == ""
