"""Reconciler: nightly (ScheduleV2 with an explicit Input) or invoked by hand."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from tokenwarden.domain.registry import load_registry
from tokenwarden.observability import logger, metrics, tracer
from tokenwarden.settings import Settings, load_settings
from tokenwarden.wiring import build_adapters, build_clock, build_reconciler

SETTINGS: Settings = load_settings()


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
    adapters = build_adapters(SETTINGS)
    clock = build_clock(SETTINGS)
    reconciler = build_reconciler(SETTINGS, adapters, clock)
    now = clock.now()
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
