"""What a Lambda handler loads at cold start: its settings, its event model, Powertools and boto3;
not the code of the other functions, nor what only the development tools use.

Each handler is imported in a process of its own, isolated as Lambda's is (tests/infra/lambda_path.py),
and the modules it left loaded are read from ``sys.modules``. Every module named here costs a cold
start its import (benchmarks/test_import_time.py times it); the service a handler runs is loaded with
the objects its first invocation builds.
"""

from __future__ import annotations

import json
import subprocess
from functools import cache

import pytest

from tests.infra.lambda_path import handlers, lambda_environment, source_layout

# Never at a cold start: the development tools, and what only they, a registry's parsing or a
# team's public holidays need.
NEVER = ("tokenwarden.local", "tokenwarden.cli", "pydantic_settings", "dotenv", "yaml", "holidays", "moto")

# Each function's handler module, and the services of the other functions it must not load.
OTHERS = {
    "rotate_secret_handler": (
        "tokenwarden.service.breakglass",
        "tokenwarden.service.reconciler",
        "tokenwarden.service.health",
        "tokenwarden.domain.registry",
        "tokenwarden.domain.promql",
    ),
    "health_handler": (
        "tokenwarden.service.breakglass",
        "tokenwarden.service.reconciler",
        "tokenwarden.service.rotation",
    ),
    "revoke_handler": (
        "tokenwarden.service.reconciler",
        "tokenwarden.service.health",
        "tokenwarden.domain.promql",
    ),
    "restore_handler": (
        "tokenwarden.service.reconciler",
        "tokenwarden.service.health",
        "tokenwarden.domain.promql",
    ),
    # Its events' models only (tokenwarden.domain.outcomes): the reconciler, the planner and the
    # night's steps load with its first invocation.
    "reconcile_handler": (
        "tokenwarden.service.breakglass",
        "tokenwarden.service.health",
        "tokenwarden.service.reconciler",
        "tokenwarden.service.night",
        "tokenwarden.domain.plan",
        "tokenwarden.domain.registry",
    ),
}

HANDLERS = {module: folder for folder, module in handlers()}


@cache
def loaded_at_import(module: str) -> frozenset[str]:
    """The modules a fresh, Lambda-like process holds after importing `module`."""
    body = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    command = source_layout(HANDLERS[module]).command(body)
    done = subprocess.run(command, env=lambda_environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return frozenset(json.loads(done.stdout))


def held(loaded: frozenset[str], packages: tuple[str, ...]) -> list[str]:
    """The loaded modules that are one of `packages` or inside one."""
    return sorted(name for name in loaded if any(name == p or name.startswith(p + ".") for p in packages))


def test_every_handler_is_listed() -> None:
    assert set(OTHERS) == set(HANDLERS)


@pytest.mark.parametrize("module", sorted(OTHERS))
def test_a_cold_start_loads_no_development_tool_nor_yaml_parser(module: str) -> None:
    loaded = loaded_at_import(module)
    assert module in loaded and "tokenwarden.settings" in loaded
    assert held(loaded, NEVER) == []


@pytest.mark.parametrize("module", sorted(OTHERS))
def test_a_cold_start_loads_no_other_functions_service(module: str) -> None:
    assert held(loaded_at_import(module), OTHERS[module]) == []


def test_the_check_sees_a_module_loaded_at_import() -> None:
    """The same reading finds what a handler does load: the check cannot pass on an empty answer."""
    assert held(loaded_at_import("reconcile_handler"), ("tokenwarden.domain.outcomes",))
    assert held(loaded_at_import("health_handler"), ("tokenwarden.service.health_settings",))
