"""The pickup kit end to end: `tokenwarden pickup` names the secret by its ARN; the otelHeadersHelper
script, run as Claude Code runs it, reads the secret with the real AWS CLI from the embedded stack, and
keeps a simulated laptop's exports accepted at the OTLP endpoint across two rotations, with no restart
and no manual step; nothing in the environment redirects it, and it keeps away from a cache directory
others can reach."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import pytest
import yaml

from tests.e2e.conftest import in_process_stack
from tests.unit.test_pickup import group_running, run_in_own_group, wait_for
from tokenwarden.cli.main import main
from tokenwarden.local import realism
from tokenwarden.local.clock import RemoteStackClock
from tokenwarden.local.laptop import send_session
from tokenwarden.pickup import HELPER_FILE, SETTINGS_FILE, PickupKit, write_kit

pytestmark = pytest.mark.e2e

PRINCIPAL = "e2e-pickup"
TEAM = "e2e-pickup"
SECRET_ID = f"tokenwarden/{PRINCIPAL}"
BIN = Path(sys.executable).parent
REFRESH_TIMEOUT = 60.0  # the AWS CLI starts in about a second; allow for a loaded machine


@pytest.fixture(scope="module")
def local_stack() -> Iterator[dict[str, str]]:
    with in_process_stack(victoriametrics=False) as exports:
        yield exports


@pytest.fixture
def exports(local_stack: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The stack's settings for this test (the suite's autouse fixtures unset some of them per test)."""
    for name, value in local_stack.items():
        monkeypatch.setenv(name, value)
    return local_stack


class Laptop:
    """A developer's machine as Claude Code sees it: the installed helper, generated with its cache
    directory and the developer's own AWS CLI (the real one, from this virtualenv) fixed in it, that
    CLI pointed at the stack, and nothing else of this shell's."""

    def __init__(self, root: Path, exports: dict[str, str]) -> None:
        aws = BIN / "aws"
        if not aws.exists():
            pytest.fail(f"the AWS CLI is not installed next to {sys.executable}: install the dev extras")
        self.cache = root / "cache" / f"{PRINCIPAL}.json"
        kit = PickupKit(
            principal=PRINCIPAL,
            team=TEAM,
            secret_arn=secret_arn(),
            region="us-east-1",
            otlp_metrics_endpoint=exports["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"],
            cache_dir=str(self.cache.parent),
            aws_cli=(str(aws),),
        )
        self.kit_dir = root / "kit"
        write_kit(kit, self.kit_dir, helper_install_path=str(self.kit_dir / HELPER_FILE))
        self.script = self.kit_dir / HELPER_FILE
        self.settings = json.loads((self.kit_dir / SETTINGS_FILE).read_text())
        self.home = root / "home"
        self.home.mkdir()
        self.groups: list[int] = []
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            # the developer's identity: here the stack's test credentials, no config file of this machine
            "AWS_ENDPOINT_URL": exports["AWS_ENDPOINT_URL"],
            "AWS_ACCESS_KEY_ID": exports["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": exports["AWS_SECRET_ACCESS_KEY"],
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    def helper(self) -> dict[str, str]:
        """Run `otelHeadersHelper` exactly as Claude Code does: `sh -c <setting>`, wait for stdout."""
        done, group = run_in_own_group(["sh", "-c", self.settings["otelHeadersHelper"]], self.env)
        self.groups.append(group)
        assert done.returncode == 0 and done.stderr == "", done
        headers = json.loads(done.stdout)
        assert isinstance(headers, dict), done.stdout
        return headers

    def wait_idle(self) -> None:
        """Until every background refresh the helper started has exited."""
        assert wait_for(lambda: not any(group_running(g) for g in self.groups), timeout=REFRESH_TIMEOUT)

    def cached_token(self) -> str | None:
        try:
            line = self.cache.read_text()
        except FileNotFoundError:
            return None
        header = json.loads(line)["Authorization"]
        assert header.startswith("Bearer ")
        return str(header.removeprefix("Bearer "))

    def wait_for_cache(self, token: str) -> float:
        start = time.monotonic()
        while self.cached_token() != token:
            assert time.monotonic() - start < REFRESH_TIMEOUT, "the background refresh never delivered"
            time.sleep(0.05)
        return time.monotonic() - start

    def make_stale(self) -> None:
        hour_ago = time.time() - 3600
        os.utime(self.cache, (hour_ago, hour_ago))


def secret_arn() -> str:
    return str(boto3.client("secretsmanager").describe_secret(SecretId=SECRET_ID)["ARN"])


def current_secret() -> str:
    sm = boto3.client("secretsmanager")
    return str(sm.get_secret_value(SecretId=SECRET_ID, VersionStage="AWSCURRENT")["SecretString"])


def token_of(headers: dict[str, str]) -> str:
    assert set(headers) == {"Authorization"}, headers
    assert headers["Authorization"].startswith("Bearer "), headers
    return headers["Authorization"].removeprefix("Bearer ")


def write_registry(path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "principals": [{"id": PRINCIPAL, "kind": "team", "owners": ["pickup@example.com"]}],
            }
        )
    )
    return path


def apply(registry: Path, at: datetime | None = None) -> None:
    argv = ["apply", "--registry", str(registry), "--quiet"]
    if at is not None:
        argv += ["--at", at.isoformat()]
    assert main(argv) == 0
    realism.wait_idle(60)  # Secrets Manager's background rotation, done long before laptops look


def test_the_helper_keeps_a_laptop_accepted_across_two_rotations(
    exports: dict[str, str], tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    endpoint = exports["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]
    registry = write_registry(tmp_path / "teams.yaml")
    apply(registry)
    onboarded_at = RemoteStackClock(exports["TOKENWARDEN_STACK_URL"]).now()
    laptop = Laptop(tmp_path, exports)

    # Claude Code starts: nothing cached yet, so no header (never a wait: benchmarks/test_pickup_speed.py
    # holds the helper to its speed), and a refresh in the background.
    assert laptop.helper() == {}
    token = current_secret()
    waited = laptop.wait_for_cache(token)
    record_property("helper_first_refresh_s", round(waited, 2))
    headers = laptop.helper()
    assert token_of(headers) == token
    assert send_session(endpoint, token_of(headers), TEAM)

    # The cached answer, as Claude Code gets it again and again: a fresh cache starts no refresh.
    assert all(laptop.helper() == headers for _ in range(5))

    previous_rotation = onboarded_at
    for rotation in (1, 2):
        old = token
        rotated_at = previous_rotation + timedelta(days=80)
        apply(registry, rotated_at)
        token = current_secret()
        assert token != old, f"rotation {rotation} did not happen"

        # ~29 minutes later Claude Code calls the helper again: a stale cache still answers at once with
        # the old token (valid through its grace) and starts the refresh...
        laptop.make_stale()
        headers = laptop.helper()
        assert token_of(headers) == old
        assert send_session(endpoint, old, TEAM), "the previous key must stay valid during its grace"
        # ...so the next call serves the new one, with no restart and nobody touching the laptop.
        waited = laptop.wait_for_cache(token)
        print(f"rotation {rotation}: the background refresh delivered the new token in {waited:.2f} s")
        headers = laptop.helper()
        assert token_of(headers) == token
        assert send_session(endpoint, token_of(headers), TEAM)

        # After the grace the old key is retired: refused, while the helper's header keeps working.
        apply(registry, rotated_at + timedelta(days=8))
        assert not send_session(endpoint, old, TEAM), "the retired key must be refused"
        headers = laptop.helper()
        assert token_of(headers) == token
        assert send_session(endpoint, token_of(headers), TEAM)
        previous_rotation = rotated_at

    # The token was written to the private cache and nowhere else on the laptop or in the kit.
    holders = [p for p in tmp_path.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert holders == [laptop.cache]
    assert (laptop.cache.stat().st_mode & 0o777, laptop.cache.parent.stat().st_mode & 0o777) == (0o600, 0o700)


def test_the_cli_kit_names_the_secret_by_arn_and_denies_claude_code_the_cache(
    exports: dict[str, str], tmp_path: Path
) -> None:
    registry = write_registry(tmp_path / "teams.yaml")
    apply(registry)
    out = tmp_path / "kit"
    assert main(["pickup", PRINCIPAL, "--registry", str(registry), "--out", str(out)]) == 0

    arn = secret_arn()
    assert arn.startswith("arn:aws:secretsmanager:us-east-1:") and SECRET_ID in arn
    script = (out / HELPER_FILE).read_text()
    assert f"secret_arn={arn}" in script.splitlines()
    assert f"--secret-id {SECRET_ID} " not in script
    settings = json.loads((out / SETTINGS_FILE).read_text())
    assert settings["permissions"]["deny"] == [
        "Read(~/.cache/tokenwarden/**)",
        "Edit(~/.cache/tokenwarden/**)",
    ]
    assert arn in (out / "README.txt").read_text()


def test_a_kit_for_a_principal_not_onboarded_is_refused(exports: dict[str, str], tmp_path: Path) -> None:
    registry = tmp_path / "teams.yaml"
    registry.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "principals": [{"id": "never-onboarded", "kind": "team", "owners": ["pickup@example.com"]}],
            }
        )
    )
    out = tmp_path / "kit"
    assert main(["pickup", "never-onboarded", "--registry", str(registry), "--out", str(out)]) == 2
    assert not out.exists()


def test_nothing_in_the_environment_redirects_the_helper_and_others_cannot_plant_a_cache(
    exports: dict[str, str], tmp_path: Path
) -> None:
    apply(write_registry(tmp_path / "teams.yaml"))
    laptop = Laptop(tmp_path, exports)
    decoys = tmp_path / "decoys"
    decoys.mkdir()
    (decoys / "aws").write_text(f"#!/bin/sh\ntouch {tmp_path / 'decoy-ran'}\necho decoy-token\n")
    (decoys / "aws").chmod(0o755)
    laptop.env.update(
        {
            "PATH": f"{decoys}{os.pathsep}{laptop.env['PATH']}",
            "TOKENWARDEN_CACHE_DIR": str(tmp_path / "redirected"),
            "TOKENWARDEN_AWS_CLI": str(decoys / "aws"),
            "XDG_CACHE_HOME": str(tmp_path / "xdg"),
        }
    )

    # A cache directory another user could write to: never read, never written.
    laptop.cache.parent.mkdir(mode=0o777)
    laptop.cache.parent.chmod(0o777)
    laptop.cache.write_text('{"Authorization": "Bearer planted-token"}\n')
    headers = laptop.helper()
    assert headers == {}
    laptop.wait_idle()
    assert laptop.cache.read_text() == '{"Authorization": "Bearer planted-token"}\n'

    # Once it is private, the helper fills it with the real CLI, from the secret's ARN.
    laptop.cache.unlink()
    laptop.cache.parent.chmod(0o700)
    headers = laptop.helper()
    assert headers == {}
    token = current_secret()
    laptop.wait_for_cache(token)
    assert token_of(laptop.helper()) == token
    assert not (tmp_path / "decoy-ran").exists()
    assert not (tmp_path / "redirected").exists() and not (tmp_path / "xdg").exists()
