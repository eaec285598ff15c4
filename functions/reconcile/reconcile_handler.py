"""Reconciler: the steps of the nightly state machine, or a whole run invoked by hand.

Modes: `plan` (a dry run) and `apply` (one whole run in this invocation, for small registries and
by hand); `plan_night` (once per round), `principal` and `summary` are the state machine's steps
(statemachine/nightly.asl.json, tokenwarden.service.night). At import only the events' models are
loaded (tokenwarden.domain.outcomes); the reconciler, the planner and the night's steps load with
the first invocation, as every other function's service does."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from tokenwarden.domain.naming import SLUG
from tokenwarden.domain.outcomes import DEFAULT_MAX_PRINCIPALS, DEFAULT_MAX_ROUNDS, NightState, RoundResults
from tokenwarden.observability import logger, metrics, tracer
from tokenwarden.settings import Settings, load_settings
from tokenwarden.wiring import SystemClock, build_adapters, build_reconciler

if TYPE_CHECKING:
    from tokenwarden.domain.registry import Registry
    from tokenwarden.ports import Clock
    from tokenwarden.service.reconciler import Reconciler

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


class PlanNightInput(BaseModel):
    """The state machine's plan step, at the start of each round."""

    model_config = ConfigDict(extra="forbid", strict=True)

    mode: Literal["plan_night"]
    allow_mass_revoke: bool = False
    max_principals: int = Field(default=DEFAULT_MAX_PRINCIPALS, ge=1)
    max_rounds: int = Field(default=DEFAULT_MAX_ROUNDS, ge=1)
    # The last round and its results (JSON from Step Functions: read leniently); none in the first.
    previous: Annotated[RoundResults | None, Field(strict=False)] = None


class PrincipalInput(BaseModel):
    """One Map item: one principal of the run `run_id`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    mode: Literal["principal"]
    run_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")  # plan_night's uuid4 hex
    principal: str = Field(pattern=f"^{SLUG.pattern}$")  # a registry id; never free text
    allow_mass_revoke: bool = False


class SummaryInput(BaseModel):
    """The state machine's last step, once per night: the night the rounds left (JSON from Step
    Functions)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["summary"]
    night: NightState


Request = Annotated[
    ReconcileInput | PlanNightInput | PrincipalInput | SummaryInput, Field(discriminator="mode")
]
_REQUEST: TypeAdapter[Request] = TypeAdapter(Request)


class _Envelope(BaseModel):
    """What every event is: an object whose `mode`, when given, is one of this function's. Read
    first so that a bad event is refused naming its field (a tagged union names none)."""

    model_config = ConfigDict(extra="allow", strict=True)

    mode: Literal["plan", "apply", "plan_night", "principal", "summary"] = "apply"


def parse_request(event: object) -> Request:
    """The event as one of the modes; no `mode` is a whole run (`apply`), as the schedule sent it."""
    envelope = _Envelope.model_validate({} if event is None else event)
    return _REQUEST.validate_python({**envelope.model_dump(), "mode": envelope.mode})


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The registry and the night's steps are loaded with the reconciler, by the first invocation.
    from tokenwarden.domain.registry import load_registry
    from tokenwarden.service import night

    request = parse_request(event)
    registry = load_registry(SETTINGS.registry_path)
    reconciler = _reconciler()
    now = CLOCK.now()
    if isinstance(request, PlanNightInput):
        planned = night.plan_night(
            reconciler,
            registry,
            now,
            request.allow_mass_revoke,
            request.max_principals,
            request.max_rounds,
            request.previous,
        )
        return planned.model_dump(mode="json")
    if isinstance(request, PrincipalInput):
        result = night.apply_batch(
            reconciler, registry, [request.principal], now, request.run_id, request.allow_mass_revoke
        )
        return night.item_output(result)
    if isinstance(request, SummaryInput):
        return night.summarise_night(reconciler, registry, request.night, now).model_dump(mode="json")
    return _whole_run(request, registry, reconciler, now, context)


def _whole_run(
    request: ReconcileInput, registry: Registry, reconciler: Reconciler, now: datetime, context: LambdaContext
) -> dict[str, Any]:
    """`plan` or `apply` in this one invocation: every principal in turn, until 60 s are left."""
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
