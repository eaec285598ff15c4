"""End-to-end fixtures: `tokenwarden local up` as a real subprocess, and helpers that drive the
`tokenwarden` CLI and the AWS CLI against it with nothing but an environment (as a person would after
`eval "$(tokenwarden local up | sed '/^ready$/q')"`)."""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
READY_TIMEOUT = 60.0
COMMAND_TIMEOUT = 60.0
CLOUDWATCH = "cloudwatch.amazonaws.com"
USER_PATH = "/tokenwarden/"


def tokenwarden_command() -> list[str]:
    """The installed console script when there is one, else the module (same entry point)."""
    script = BIN / "tokenwarden"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "tokenwarden.cli.main"]


def aws_command() -> list[str]:
    script = BIN / "aws"
    if not script.exists():
        pytest.fail(
            f"the AWS CLI is not installed next to {sys.executable}: install the dev extras (`make test`)"
        )
    return [str(script)]


def clean_environment() -> dict[str, str]:
    """os.environ without anything that could point a client at a real account or another stack."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not (
            name.startswith(("AWS_", "OTEL_"))
            or (name.startswith("TOKENWARDEN_") and name != "TOKENWARDEN_VICTORIAMETRICS")
        )
    }
    env.update(
        {
            # No profile, config or credentials file of the developer's, no instance metadata.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
            # Loopback is never proxied.
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p),
        }
    )
    return env


def victoriametrics_available() -> bool:
    from tokenwarden.local.victoriametrics import VictoriaMetricsError, find_binary

    try:
        find_binary()
    except VictoriaMetricsError:
        return False
    return True


def parse_exports(lines: Sequence[str]) -> dict[str, str]:
    exports: dict[str, str] = {}
    for line in lines:
        if not line.startswith("export "):
            continue  # anything else `local up` may say before `ready`
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            exports[name] = value
    return exports


class Cli(Protocol):
    """The `tokenwarden` CLI run in the test's process: what it printed (stdout, then stderr), once it
    has exited with `expect` and the background rotations it started have finished."""

    def __call__(self, *argv: str, expect: int = 0) -> str: ...


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"{self} did not print JSON: {exc}") from exc

    def __str__(self) -> str:
        return (
            f"`{shlex.join(self.args)}` exited {self.returncode}\n"
            f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}"
        )


@dataclass
class Stack:
    """A running `tokenwarden local up` and the environment its `export` lines describe."""

    env: dict[str, str]
    exports: dict[str, str]
    process: subprocess.Popen[str]
    stderr_path: Path
    victoriametrics: bool
    #: stdout and stderr of every `tokenwarden` command run so far, to search for leaked tokens.
    tokenwarden_output: list[str] = field(default_factory=list)

    @property
    def otlp_endpoint(self) -> str:
        return self.env["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]

    def run(self, command: Sequence[str], check: bool = False) -> Result:
        args = list(command)
        done = subprocess.run(
            args, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
        result = Result(args, done.returncode, done.stdout, done.stderr)
        if check and result.returncode != 0:
            raise AssertionError(str(result))
        return result

    def tw(self, *args: str, check: bool = False) -> Result:
        result = self.run([*tokenwarden_command(), *args], check=check)
        self.tokenwarden_output.append(result.stdout + result.stderr)
        self.settle()
        return result

    def settle(self, timeout: float = 60.0) -> None:
        """Wait for the rotations Secrets Manager runs in the background (as the next night would)."""
        request = urllib.request.Request(
            self.env["TOKENWARDEN_STACK_URL"] + "/_tokenwarden/settle",
            data=json.dumps({"timeout": timeout}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with _LOOPBACK.open(request, timeout=timeout + 30) as answer:
            assert json.loads(answer.read())["idle"], f"background rotations still running after {timeout} s"

    def advance(self, delta: timedelta) -> datetime:
        """Move the stack's clock forward (a person waiting a moment, or a night passing)."""
        from tokenwarden.local.clock import RemoteStackClock

        clock = RemoteStackClock(self.env["TOKENWARDEN_STACK_URL"])
        return clock.advance_to(clock.now() + delta)

    def aws(self, *args: str, check: bool = True) -> Result:
        return self.run([*aws_command(), *args], check=check)

    # -- what the seed recipe and a person at a shell would read ----------------------------------

    def secret_token(self, principal: str) -> str:
        """Exactly the seed's recipe."""
        result = self.aws(
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            f"tokenwarden/{principal}",
            "--query",
            "SecretString",
            "--output",
            "text",
        )
        token = result.stdout.strip()
        assert token and "\n" not in token, str(result)
        return token

    def credentials(self, principal: str) -> list[dict[str, Any]]:
        result = self.aws(
            "iam",
            "list-service-specific-credentials",
            "--user-name",
            f"tw-{principal}",
            "--service-name",
            CLOUDWATCH,
            "--output",
            "json",
        )
        return list(result.json()["ServiceSpecificCredentials"])

    def managed_users(self) -> set[str]:
        result = self.aws("iam", "list-users", "--path-prefix", USER_PATH, "--output", "json")
        return {user["UserName"] for user in result.json()["Users"]}

    def promql(self, query: str, at: datetime) -> list[dict[str, Any]]:
        """An instant query at VictoriaMetrics (only when the stack runs it)."""
        url = (
            self.env["TOKENWARDEN_PROMQL_URL"]
            + "/api/v1/query?"
            + urllib.parse.urlencode({"query": query, "time": at.isoformat()})
        )
        for _ in range(10):  # the stack answers a share of queries with 429, as CloudWatch may
            try:
                with _LOOPBACK.open(url, timeout=10) as answer:
                    body = json.loads(answer.read())
                break
            except urllib.error.HTTPError as exc:
                if exc.code != 429:
                    raise
                time.sleep(float(exc.headers.get("Retry-After") or 1))
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def stack_stderr(self) -> str:
        """Everything `local up` (which runs the rotation function in-process) wrote to stderr."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run independent read-only commands at once (each is a process start); results in call order."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


# Loopback only: never through a proxy from the environment.
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def parse_time(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def write_registry(path: Path, principals: list[dict[str, Any]], **top: Any) -> Path:
    path.write_text(
        yaml.safe_dump({"version": 1, **top, "principals": principals}, sort_keys=False), encoding="utf-8"
    )
    return path


class World:
    """The registry of everything onboarded on the module's stack, growing as tests add principals.

    The registry is the whole truth: `apply` offboards every managed principal it does not list. So the
    tests do not each apply a registry of their own (each run would offboard the others' principals);
    a test adds its principals (ids no other test uses) and applies the registry of all of them, as a
    platform team adds an entry to `teams.yaml`. Whatever order the tests run in, nothing is offboarded.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._principals: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._files = 0

    @property
    def ids(self) -> set[str]:
        return {spec["id"] for spec in self._principals}

    def add(self, *principals: dict[str, Any]) -> Path:
        """Register the principals for good; return a file with the whole registry."""
        with self._lock:
            known = self.ids
            self._principals += [spec for spec in principals if spec["id"] not in known]
            return self._write(self._principals)

    def with_extra(self, *principals: dict[str, Any]) -> Path:
        """A file with the whole registry plus principals that are not added for good (plan only)."""
        with self._lock:
            return self._write([*self._principals, *principals])

    def _write(self, principals: list[dict[str, Any]]) -> Path:
        self._files += 1
        return write_registry(self._directory / f"teams-{self._files}.yaml", list(principals))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("registry"))


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        # Its own process group (start_new_session): this also ends a VictoriaMetrics child it left.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("local-up")
    stderr_path = workdir / "local-up.stderr"
    with_vm = victoriametrics_available()
    command = [*tokenwarden_command(), "local", "up"]
    if not with_vm:
        command.append("--no-victoriametrics")
    base_env = clean_environment()
    with stderr_path.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            command,
            env=base_env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    try:
        lines: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = "<timeout>"
            if line == "ready":
                break
            if line is None or line == "<timeout>":
                _stop(process)
                what = "exited" if line is None else f"did not print `ready` within {READY_TIMEOUT:g} s"
                pytest.fail(
                    f"`{shlex.join(command)}` {what} (exit {process.returncode})\n"
                    f"--- stdout ---\n"
                    + "\n".join(seen)
                    + "\n--- stderr ---\n"
                    + stderr_path.read_text()[-4000:]
                )
            seen.append(line)
        exports = parse_exports(seen)
        missing = {"AWS_ENDPOINT_URL", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "TOKENWARDEN_STACK_URL"} - set(
            exports
        )
        assert not missing, f"`local up` printed no export for {sorted(missing)}:\n" + "\n".join(seen)
        env = {**base_env, **exports}
        env.pop("AWS_PROFILE", None)
        yield Stack(
            env=env, exports=exports, process=process, stderr_path=stderr_path, victoriametrics=with_vm
        )
        assert process.poll() is None, f"`local up` died during the tests:\n{stderr_path.read_text()[-4000:]}"
    finally:
        _stop(process)


@pytest.fixture(autouse=True)
def _loopback_unproxied(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process OpenTelemetry exporter talks to 127.0.0.1 directly, whatever the shell's proxy."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@contextmanager
def in_process_stack(victoriametrics: bool) -> Iterator[dict[str, str]]:
    """The embedded stack in this test process (for tests that call the CLI's `main` directly).

    It exports its settings into os.environ, as `local up` prints them; the environment is restored
    afterwards. VictoriaMetrics missing is a failure in CI and a skip elsewhere.
    """
    from tokenwarden.local.clock import set_default_clock
    from tokenwarden.local.stack import LocalStack
    from tokenwarden.local.victoriametrics import find_binary

    if victoriametrics:
        try:
            find_binary()
        except FileNotFoundError:
            if os.environ.get("CI"):
                pytest.fail("VictoriaMetrics is missing in CI: `make setup` must fetch it")
            pytest.skip("VictoriaMetrics is not installed here: run `make setup`")
    saved = dict(os.environ)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    local = LocalStack(victoriametrics=victoriametrics)
    try:
        yield local.start()
    finally:
        local.stop()
        set_default_clock(None)
        os.environ.clear()
        os.environ.update(saved)
