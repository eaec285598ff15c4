"""The health function's cold start: settings no query could run with stop it at import, before any
AWS client exists; the checker is built once and reused by every invocation of the container."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ROOT
from tokenwarden import wiring
from tokenwarden.local.fake_context import FakeContext
from tokenwarden.local.stack import load_function
from tokenwarden.service.health import HealthSettingsError


@pytest.fixture(autouse=True)
def function_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TOKENWARDEN_REGISTRY_PATH", str(ROOT / "teams.yaml"))
    monkeypatch.setenv("TOKENWARDEN_PROMQL_DIALECT", "prometheus")
    monkeypatch.setenv("TOKENWARDEN_PROMQL_URL", "http://127.0.0.1:9")
    yield
    sys.modules.pop("tokenwarden_function_health", None)


@pytest.fixture
def no_aws_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building an adapter (an AWS client) at all fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an AWS client was built")

    monkeypatch.setattr(wiring, "build_adapters", refuse)
    monkeypatch.setattr(wiring, "build_health_checker", refuse)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        (
            "TOKENWARDEN_HEALTH_WINDOW_HOURS",
            "1.00001",
            "TOKENWARDEN_HEALTH_WINDOW_HOURS=1.00001 cannot be used",
        ),
        ("TOKENWARDEN_HEALTH_METRICS", "claude code", "TOKENWARDEN_HEALTH_METRICS cannot be used"),
        ("TOKENWARDEN_HEALTH_METRICS", ",", "TOKENWARDEN_HEALTH_METRICS names no metric"),
    ],
)
def test_an_unusable_health_setting_fails_the_cold_start(
    monkeypatch: pytest.MonkeyPatch, no_aws_client: None, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(HealthSettingsError, match=named):
        load_function("health")


def test_usable_settings_start_without_an_aws_client(no_aws_client: None) -> None:
    assert isinstance(load_function("health"), ModuleType)


class _Report:
    def model_dump(self, mode: str) -> dict[str, Any]:
        return {"teams": []}


class _Checker:
    def __init__(self) -> None:
        self.runs: list[bool] = []

    def run(self, registry: Any, now: Any, commit: bool = True) -> _Report:
        self.runs.append(commit)
        return _Report()


def test_the_checker_is_built_once_per_container(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[_Checker] = []

    def build(settings: Any, adapters: Any, clock: Any = None) -> _Checker:
        assert clock is health.CLOCK  # the rollback's leases read the function's clock
        built.append(_Checker())
        return built[-1]

    monkeypatch.setattr(wiring, "build_adapters", lambda settings: None)
    monkeypatch.setattr(wiring, "build_health_checker", build)
    health = load_function("health")
    assert built == []  # nothing is built at import

    health.lambda_handler({"mode": "check"}, FakeContext())
    health.lambda_handler({"mode": "dry_run"}, FakeContext())

    assert len(built) == 1
    assert built[0].runs == [True, False]
