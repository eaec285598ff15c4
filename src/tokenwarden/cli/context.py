"""What a command runs with, built once per command: the settings, the registry, the clock and the
services composed by `tokenwarden.wiring`.

The clock is decided here and nowhere else. Against the embedded local stack (both
TOKENWARDEN_STACK_URL and AWS_ENDPOINT_URL on loopback) a command runs on the stack's clock, and
`--at` moves that clock forward. Anywhere else `--at` is the fixed time a read-only command looks
at, and without it the system clock runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tokenwarden.cli.errors import UsageError
from tokenwarden.cli.parser import command_name, parse_at
from tokenwarden.domain.outcomes import RunReport
from tokenwarden.domain.registry import Registry, load_registry
from tokenwarden.local.clock import RemoteStackClock, embedded_stack_url
from tokenwarden.service.breakglass import Actor, BreakGlass
from tokenwarden.service.reconciler import Reconciler
from tokenwarden.settings import Settings
from tokenwarden.wiring import Adapters, SystemClock, build_adapters, build_breakglass, build_reconciler

if TYPE_CHECKING:
    from tokenwarden.service.health import HealthChecker

# Commands that change AWS (keys rotate, a retired key is re-activated, alerts and snoozes are
# recorded): with --at, only on the embedded stack, whose time may move. Elsewhere a made-up time
# would be written into the ledger and could pass the rollback's time checks. `health --dry-run`
# changes nothing, so it may be evaluated as of any time.
MOVES_TIME = frozenset({"apply", "health", "health snooze", "health unsnooze"})


def moves_time(args: argparse.Namespace) -> bool:
    """Whether this command would act at the time `--at` names (a dry run never does)."""
    return command_name(args) in MOVES_TIME and not getattr(args, "dry_run", False)


class Clock(Protocol):
    def now(self) -> datetime: ...


class FixedClock:
    """A time that does not pass: what `--at` means away from the embedded stack."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at


@dataclass(frozen=True)
class Timing:
    """The clock a command's services read, and the time the command runs at."""

    clock: Clock
    now: datetime


def choose_clock(at: datetime | None, *, moves_time: bool, env: Mapping[str, str] | None = None) -> Timing:
    """The one place the CLI decides what time it is (see the module's docstring)."""
    stack_url = embedded_stack_url(env)
    if stack_url is not None:
        stack_clock = RemoteStackClock(stack_url)
        return Timing(stack_clock, stack_clock.now() if at is None else _moved(stack_clock, at))
    if at is not None and moves_time:
        raise UsageError(
            "--at with a command that changes AWS works only on the embedded local stack "
            "(TOKENWARDEN_STACK_URL and AWS_ENDPOINT_URL on loopback are not both set); "
            "`plan`, `status` and `health --dry-run` take --at anywhere"
        )
    if at is not None:
        return Timing(FixedClock(at), at)
    system = SystemClock()
    return Timing(system, system.now())


def _moved(clock: RemoteStackClock, at: datetime) -> datetime:
    """Move the stack's clock to `at`; say so when it was already later (it never goes back)."""
    now = clock.advance_to(at)
    if now - at > timedelta(seconds=1):
        print(
            f"note: the stack's clock is already at {now:%Y-%m-%d %H:%M} UTC and never goes back",
            file=sys.stderr,
        )
    return now


def deploy_registry(stack_url: str, path: Path) -> None:
    """Make `path` the registry the embedded stack's functions read (`sam deploy` on AWS)."""
    request = urllib.request.Request(  # noqa: S310 - the embedded stack, on loopback
        stack_url.rstrip("/") + "/_tokenwarden/registry",
        data=json.dumps({"path": str(path)}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with _LOOPBACK.open(request, timeout=30):
            pass
    except urllib.error.HTTPError as exc:
        raise UsageError(
            f"the embedded stack refused the registry {path}: {exc.read().decode()[:300]}"
        ) from None


# Loopback only: never through a proxy from the environment.
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Context:
    """One command's world. Each part is made on first use, so that a command that needs no
    registry, clock or AWS client (`local up`, `demo`) makes none."""

    def __init__(self, settings: Settings, args: argparse.Namespace) -> None:
        self.settings = settings
        self.args = args

    @cached_property
    def registry(self) -> Registry:
        return load_registry(self.registry_path())

    @cached_property
    def timing(self) -> Timing:
        at = parse_at(getattr(self.args, "at", None))
        return choose_clock(at, moves_time=moves_time(self.args))

    @property
    def clock(self) -> Clock:
        return self.timing.clock

    @property
    def now(self) -> datetime:
        return self.timing.now

    @cached_property
    def adapters(self) -> Adapters:
        return build_adapters(self.settings)

    def reconciler(self) -> Reconciler:
        clock = self.clock  # a bad --at is said before any AWS client is made
        return build_reconciler(self.settings, self.adapters, clock)

    def registry_path(self) -> Path:
        given = getattr(self.args, "registry", None)
        return Path(given) if given else self.settings.registry_path

    def nightly_run(self, allow_mass_revoke: bool, wait_seconds: float) -> RunReport:
        """One night through the deployed state machine, as the schedule starts it; its output is
        the run report. The functions read the registry deployed with them: on the embedded stack
        this command's registry is deployed first; elsewhere a --registry given is only checked."""
        from tokenwarden.wiring import build_nightly_state_machine

        registry, _ = self.registry, self.now  # a bad registry or --at is said before anything runs
        try:
            machine = build_nightly_state_machine(self.settings)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        stack_url = embedded_stack_url()
        if stack_url is not None:
            deploy_registry(stack_url, self.registry_path().resolve())
        elif getattr(self.args, "registry", None):
            print(
                f"note: the state machine applies the registry deployed with the function, not {registry.source}",
                file=sys.stderr,
            )
        output = machine.run({"allow_mass_revoke": allow_mass_revoke}, timeout_seconds=wait_seconds)
        return RunReport.model_validate(output)

    def breakglass(self) -> tuple[BreakGlass, Actor]:
        """Break-glass with the operator's own credentials: the caller's identity (STS) is authenticated."""
        clock = self.clock
        glass = build_breakglass(self.settings, self.adapters, clock)
        return glass, Actor.caller(self.adapters.iam.caller())

    def health_checker(self) -> HealthChecker:
        from tokenwarden.service.health import HealthSettingsError
        from tokenwarden.wiring import build_health_checker

        try:
            return build_health_checker(self.settings, self.adapters, clock=self.clock)
        except HealthSettingsError:
            raise  # names its own setting (window, metrics)
        except ValueError as exc:  # the PromQL settings do not describe a usable endpoint
            raise UsageError(f"{exc} (see the TOKENWARDEN_PROMQL_* settings)") from exc
