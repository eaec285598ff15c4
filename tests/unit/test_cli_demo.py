"""The demo without VictoriaMetrics: every story but the health one, and a word on how to add it."""

from __future__ import annotations

from typing import Any

import pytest

from tokenwarden.cli import demo
from tokenwarden.local.victoriametrics import VictoriaMetricsNotFoundError


class FakeStack:
    started: list[bool] = []

    def __init__(self, victoriametrics: bool = True) -> None:
        self.victoriametrics = victoriametrics

    def start(self) -> dict[str, str]:
        FakeStack.started.append(self.victoriametrics)
        if self.victoriametrics:
            raise VictoriaMetricsNotFoundError("victoria-metrics is not installed: run `make setup`")
        return {"AWS_REGION": "us-east-1"}


def test_a_missing_victoriametrics_starts_the_stack_without_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeStack.started.clear()
    monkeypatch.setattr(demo, "LocalStack", FakeStack)
    monkeypatch.delenv("TOKENWARDEN_DEMO_VICTORIAMETRICS", raising=False)

    stack, exports = demo.start_stack()

    assert FakeStack.started == [True, False]
    assert isinstance(stack, FakeStack) and not stack.victoriametrics
    assert "TOKENWARDEN_PROMQL_URL" not in exports
    assert "VictoriaMetrics is not available" in capsys.readouterr().out


def test_without_victoriametrics_the_health_story_is_replaced_by_how_to_add_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    told: list[str] = []

    def story(name: str, code: int = 0) -> Any:
        def tell(world: object) -> int:
            told.append(name)
            return code

        return tell

    plot = demo.plot(200, health=False)
    assert len(plot) == 5
    assert demo.tell(world=None, plot=[story("a"), story("b"), *plot[3:]]) == 0  # type: ignore[arg-type]  # these stories never read the world
    assert told == ["a", "b"]
    assert "skipping the telemetry health story; run `make setup`" in capsys.readouterr().out


def test_the_first_story_that_does_not_hold_ends_the_demo_with_its_code() -> None:
    told: list[str] = []

    def story(name: str, code: int) -> Any:
        def tell(world: object) -> int:
            told.append(name)
            return code

        return tell

    assert demo.tell(world=None, plot=[story("a", 0), story("b", 1), story("c", 0)]) == 1  # type: ignore[arg-type]  # these stories never read the world
    assert told == ["a", "b"]
