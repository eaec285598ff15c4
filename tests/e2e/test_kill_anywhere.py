"""Kill anywhere: `tokenwarden apply` and `tokenwarden revoke` killed (SIGKILL) at seeded random
moments during onboarding, a night where every key rotates, and break-glass, against `tokenwarden
local up` with every AWS behaviour on. Then one clean run (the next night): everything converges
and the seed recipe's token is accepted by the OTLP endpoint for every principal."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, Stack, parse_time, tokenwarden_command, write_registry

pytestmark = pytest.mark.e2e

PRINCIPALS: list[dict[str, Any]] = [
    {"id": "red", "kind": "team", "owners": ["red@example.com"]},
    {"id": "green", "kind": "team", "owners": ["green@example.com"]},
    {"id": "blue", "kind": "team", "owners": ["blue@example.com"]},
]
KILLS_PER_FLOW = 4
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _stack_now(stack: Stack) -> datetime:
    with _LOOPBACK.open(stack.env["TOKENWARDEN_STACK_URL"] + "/_tokenwarden/clock", timeout=10) as answer:
        return parse_time(json.loads(answer.read())["now"])


def _settle(stack: Stack) -> None:
    request = urllib.request.Request(
        stack.env["TOKENWARDEN_STACK_URL"] + "/_tokenwarden/settle",
        data=json.dumps({"timeout": 60}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with _LOOPBACK.open(request, timeout=90) as answer:
        assert json.loads(answer.read())["idle"], "background rotations still running after 60 s"


def _kill_during(stack: Stack, args: list[str], after: float) -> int | None:
    """Start a `tokenwarden` command and SIGKILL it `after` seconds later (unless it ended first)."""
    process = subprocess.Popen(
        [*tokenwarden_command(), *args],
        env=stack.env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        process.wait(timeout=after)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        return None
    out, err = process.communicate()
    stack.tokenwarden_output.append(out + err)
    assert "Traceback" not in err, err
    return process.returncode


def _accepted(stack: Stack, token: str) -> bool:
    """The documented probe, as a laptop's exporter would be judged (IAM may need a few seconds)."""
    for _ in range(20):
        request = urllib.request.Request(
            stack.otlp_endpoint,
            data=b'{"resourceMetrics":[]}',
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        try:
            with _LOOPBACK.open(request, timeout=10) as answer:
                status: int = answer.status
                return 200 <= status < 300
        except urllib.error.HTTPError as exc:
            if exc.code not in (401, 429):
                return False
        time.sleep(0.5)
    return False


def _converged(stack: Stack, registry: Path, at: datetime, tokens: list[str]) -> None:
    """One clean run, the background rotations it started, then every principal works."""
    result = stack.tw("apply", "--registry", str(registry), "--at", at.isoformat(), "--json")
    assert result.returncode == 0, str(result)
    _settle(stack)
    for principal in PRINCIPALS:
        token = stack.secret_token(principal["id"])  # the seed recipe, unchanged
        tokens.append(token)
        assert _accepted(stack, token), f"{principal['id']}: the seed recipe's token is refused"
        described = stack.aws(
            "secretsmanager",
            "describe-secret",
            "--secret-id",
            f"tokenwarden/{principal['id']}",
            "--output",
            "json",
        ).json()
        stages = described.get("VersionIdsToStages") or {}
        pending = [v for v, labels in stages.items() if "AWSPENDING" in labels and "AWSCURRENT" not in labels]
        assert pending == [], f"{principal['id']}: AWSPENDING left behind"
        assert len(stack.credentials(principal["id"])) <= 2


def test_killed_runs_and_revokes_always_converge(stack: Stack, tmp_path: Path) -> None:
    chance = random.Random(20261130)
    registry = write_registry(tmp_path / "teams.yaml", PRINCIPALS)
    now = _stack_now(stack)
    kills = 0
    tokens: list[str] = []

    # Onboarding, killed at random moments.
    for _ in range(KILLS_PER_FLOW):
        kills += _kill_during(stack, ["apply", "--registry", str(registry)], chance.uniform(0.8, 4.0)) is None
    now += timedelta(days=1)
    _converged(stack, registry, now, tokens)

    # A night where every key rotates (within 14 days of expiry), killed at random moments.
    now += timedelta(days=80)
    for _ in range(KILLS_PER_FLOW):
        kills += (
            _kill_during(
                stack,
                ["apply", "--registry", str(registry), "--at", now.isoformat()],
                chance.uniform(0.8, 4.0),
            )
            is None
        )
    now += timedelta(days=1)
    _converged(stack, registry, now, tokens)

    # Break-glass with a replacement, killed at random moments.
    for _ in range(KILLS_PER_FLOW):
        target = chance.choice(PRINCIPALS)["id"]
        kills += (
            _kill_during(
                stack,
                ["revoke", target, "--registry", str(registry), "--reason", "leaked in CI", "--reissue"],
                chance.uniform(0.8, 4.0),
            )
            is None
        )
    now += timedelta(days=1)
    _converged(stack, registry, now, tokens)

    assert kills >= KILLS_PER_FLOW, "most commands ended before they could be killed: the test proves little"
    printed = "".join(stack.tokenwarden_output)
    assert not [t for t in tokens if t in printed], "a token reached a command's output"
