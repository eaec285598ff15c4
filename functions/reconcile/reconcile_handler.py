"""Reconciler: nightly (ScheduleV2 with an explicit Input) or invoked by hand."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from tokenwarden.domain.registry import load_registry
from tokenwarden.observability import logger, metrics, tracer
from tokenwarden.ports import Clock
from tokenwarden.service.reconciler import Reconciler
from tokenwarden.settings import Settings, load_settings
from tokenwarden.wiring import SystemClock, build_adapters, build_reconciler

SETTINGS: Settings = load_settings()
# The system clock; the embedded local stack runs this function on its simulated clock instead.
CLOCK: Clock = SystemClock()


@cache
def _reconciler() -> Reconciler:
    """Built on the first invocation (not at import, so tests can mock AWS first), then reused by
    every later invocation in this container: clients are made once."""
    return build_reconciler(SETTINGS, build_adapters(SETTINGS), CLOCK)


class ReconcileInput(BaseModel):
    """The schedule's explicit Input. Strict: `allow_mass_revoke: "yes"` or `1` is refused, not read as true."""

    model_config = ConfigDict(extra="forbid", strict=True)

    mode: Literal["plan", "apply"] = "apply"
    allow_mass_revoke: bool = False


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ReconcileInput.model_validate({} if event is None else event)
    registry = load_registry(SETTINGS.registry_path)
    reconciler = _reconciler()
    now = CLOCK.now()
    inventory = reconciler.inventory()
    plan = reconciler.plan(registry, now, inventory, allow_mass_revoke=request.allow_mass_revoke)
    if request.mode == "plan":
        return {"mode": "plan", "actions": [a.model_dump(mode="json") for a in plan.actions]}
    report = reconciler.apply(
        registry,
        plan,
        now,
        inventory,
        remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    return {"mode": "apply", **report.model_dump(mode="json")}
