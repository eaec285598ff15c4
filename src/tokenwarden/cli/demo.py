"""`tokenwarden demo`: the whole key lifecycle on the embedded stack, about 200 days in a minute."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

from tokenwarden.cli import stories
from tokenwarden.cli.context import Context
from tokenwarden.cli.demo_report import evidence_story
from tokenwarden.cli.demo_world import DemoWorld, say
from tokenwarden.domain.registry import load_registry
from tokenwarden.local import realism
from tokenwarden.local.stack import LocalStack, repo_root
from tokenwarden.local.victoriametrics import VictoriaMetricsNotFoundError

Story = Callable[[DemoWorld], int]

NO_HEALTH_STORY = (
    "\n(VictoriaMetrics is not running: skipping the telemetry health story; run `make setup` "
    "to install it, then `tokenwarden demo` again.)"
)


def command(args: argparse.Namespace, ctx: Context) -> int:
    return run_demo(
        days=args.days,
        registry_path=Path(args.registry) if args.registry else None,
        report_path=Path(args.report) if args.report else None,
    )


def run_demo(days: int = 200, registry_path: Path | None = None, report_path: Path | None = None) -> int:
    started = time.monotonic()
    registry_file = registry_path or repo_root() / "teams.yaml"
    registry = load_registry(registry_file)
    say(
        f"TokenWarden demo: {len(registry.principals)} principals from {registry_file.name}, {days} nightly runs"
    )
    say("Starting the embedded stack (moto + SSC extension, OTLP endpoint, VictoriaMetrics)...")
    stack, exports = start_stack()
    try:
        with realism.simulated_client_waits(stack.clock):
            world = DemoWorld.open(registry, stack, exports)
            code = tell(world, plot(days, health="TOKENWARDEN_PROMQL_URL" in exports))
            if code == 0:
                stories.final_status(world)
                code = evidence_story(world, report_path)
            if code == 0:
                say(f"\nDemo finished in {time.monotonic() - started:.1f} s.")
            return code
    finally:
        stack.stop()


def start_stack() -> tuple[LocalStack, dict[str, str]]:
    """The embedded stack, with VictoriaMetrics unless it is not installed (or the demo is told not
    to use it with TOKENWARDEN_DEMO_VICTORIAMETRICS=0): every story but the health one runs without."""
    stack = LocalStack(victoriametrics=os.environ.get("TOKENWARDEN_DEMO_VICTORIAMETRICS", "1") != "0")
    try:
        return stack, stack.start()
    except VictoriaMetricsNotFoundError as exc:
        say(f"  VictoriaMetrics is not available ({exc}); continuing without it")
        stack = LocalStack(victoriametrics=False)
        return stack, stack.start()


def plot(days: int, health: bool) -> list[Story]:
    """The stories in the order they are told."""
    return [
        lambda world: stories.lifecycle(world, days),
        stories.break_glass,
        stories.takeover,
        *([stories.silent_team, stories.rollback, stories.snoozed_team] if health else [_no_health_story]),
    ]


def tell(world: DemoWorld, plot: list[Story]) -> int:
    """Each story in turn; the first that does not hold ends the demo with its exit code."""
    for story in plot:
        code = story(world)
        if code:
            return code
    return 0


def _no_health_story(world: DemoWorld) -> int:
    say(NO_HEALTH_STORY)
    return 0
