"""`scripts/invoke` (and so `make invoke`) runs a handler only against the embedded stack, unless
`--real-account` (`REAL_ACCOUNT=yes`) says a real account is the target on purpose. The refusal comes
before any connection: the script runs with every socket blocked and a host that cannot resolve."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tokenwarden.local import invoke

SCRIPT = ROOT / "scripts" / "invoke"
FAR = "https://aws.tokenwarden-test.invalid"

# What `tokenwarden local up` exports, on loopback.
STACK = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:45123",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "TOKENWARDEN_OTLP_ENDPOINT": "http://127.0.0.1:45124/v1/metrics",
    "TOKENWARDEN_STACK_URL": "http://127.0.0.1:45124",
    "TOKENWARDEN_PROMQL_URL": "http://127.0.0.1:45124/prometheus",
}

# Loaded first in the script's interpreter: the first name lookup or connection is recorded and ends
# the process with NETWORK_ATTEMPTED, so nothing leaves the machine.
NETWORK_ATTEMPTED = 97
BLOCK_NETWORK = f"""
import os, socket

def _blocked(*args, **kwargs):
    with open(os.environ["NETWORK_ATTEMPTS"], "a", encoding="utf-8") as attempts:
        attempts.write(repr(args[:2]) + "\\n")
    os._exit({NETWORK_ATTEMPTED})

socket.getaddrinfo = _blocked
socket.create_connection = _blocked
socket.socket.connect = _blocked
socket.socket.connect_ex = _blocked
"""


# ------------------------------------------------------------------------------- where it would go
def test_the_embedded_stack_exports_reach_only_loopback() -> None:
    assert invoke.non_local_destinations(STACK) == []


@pytest.mark.parametrize("url", ["http://localhost:4566", "http://[::1]:4566", "http://127.1.2.3:4566"])
def test_every_loopback_form_counts_as_local(url: str) -> None:
    assert invoke.non_local_destinations({**STACK, "AWS_ENDPOINT_URL": url}) == []


@pytest.mark.parametrize(
    "url",
    [
        FAR,
        "http://10.0.0.1:4566",
        "http://127.0.0.1.example.com",
        "http://localhost.example.com",
        "http://[::ffff:8.8.8.8]:80",
        "not a url",
    ],
)
def test_any_other_aws_endpoint_is_named(url: str) -> None:
    assert invoke.non_local_destinations({**STACK, "AWS_ENDPOINT_URL": url}) == [f"AWS_ENDPOINT_URL={url}"]


def test_without_an_endpoint_it_names_the_region_and_the_credentials_it_would_use() -> None:
    env = {k: v for k, v in STACK.items() if k != "AWS_ENDPOINT_URL"}
    env |= {"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY7Q2Z"}
    assert invoke.non_local_destinations(env) == [
        "the AWS APIs of eu-west-1, with the access key …7Q2Z from AWS_ACCESS_KEY_ID"
    ]
    del env["AWS_ACCESS_KEY_ID"]
    env["AWS_PROFILE"] = "prod-admin"
    assert "profile 'prod-admin'" in invoke.non_local_destinations(env)[0]


def test_a_service_endpoint_or_an_ignored_endpoint_is_not_the_stack() -> None:
    sts = {**STACK, "AWS_ENDPOINT_URL_STS": FAR}
    assert invoke.non_local_destinations(sts) == [f"AWS_ENDPOINT_URL_STS={FAR}"]
    assert invoke.non_local_destinations({**STACK, "AWS_ENDPOINT_URL_IAM": "http://127.0.0.1:1"}) == []
    ignored = {**STACK, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
    assert invoke.non_local_destinations(ignored) == [
        "the AWS APIs of us-east-1, with the access key …ting from AWS_ACCESS_KEY_ID"
    ]


def test_telemetry_and_promql_default_to_cloudwatch_when_not_set() -> None:
    env = {k: v for k, v in STACK.items() if k not in {"TOKENWARDEN_OTLP_ENDPOINT", "TOKENWARDEN_PROMQL_URL"}}
    assert invoke.non_local_destinations(env) == [
        "CloudWatch's OTLP endpoint in us-east-1 (TOKENWARDEN_OTLP_ENDPOINT is not set)",
        "CloudWatch's PromQL API in us-east-1 (TOKENWARDEN_PROMQL_URL is not set)",
    ]
    assert invoke.non_local_destinations({**STACK, "TOKENWARDEN_PROMQL_URL": FAR}) == [
        f"TOKENWARDEN_PROMQL_URL={FAR}"
    ]


# ------------------------------------------------------------------------------ the script as run
def _run(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    blocker = tmp_path / "blocker"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text(BLOCK_NETWORK, encoding="utf-8")
    attempts = tmp_path / "network-attempts"
    attempts.touch()
    base = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT / "src")]),
        "NETWORK_ATTEMPTS": str(attempts),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, attempts.read_text(encoding="utf-8")


def test_it_refuses_a_real_endpoint_before_any_connection_and_says_how_to_opt_in(tmp_path: Path) -> None:
    done, attempts = _run(tmp_path, {**STACK, "AWS_ENDPOINT_URL": FAR}, "reconcile", "events/reconcile.json")

    assert done.returncode == invoke.REFUSED
    assert done.stdout == ""
    assert f"AWS_ENDPOINT_URL={FAR}" in done.stderr
    assert "make invoke FN=reconcile EVENT=events/reconcile.json REAL_ACCOUNT=yes" in done.stderr
    assert "--real-account" in done.stderr
    assert attempts == "", "no name lookup and no connection before the refusal"


def test_it_refuses_the_default_credential_chain_naming_region_and_key(tmp_path: Path) -> None:
    env = {
        "AWS_REGION": "eu-central-1",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY9X1Y",
        "AWS_SECRET_ACCESS_KEY": "x",
    }
    done, attempts = _run(tmp_path, env, "health", "events/health.json")

    assert done.returncode == invoke.REFUSED
    assert "the AWS APIs of eu-central-1, with the access key …9X1Y" in done.stderr
    assert "AKIAEXAMPLE" not in done.stderr, "only the key ID's last characters are shown"
    assert attempts == ""


def test_with_real_account_it_goes_past_the_guard_to_the_named_endpoint(tmp_path: Path) -> None:
    # A real account: no stack; whatever the handler reaches first is the far endpoint.
    real = {k: v for k, v in STACK.items() if k != "TOKENWARDEN_STACK_URL"}
    real |= {
        name: FAR for name in ("AWS_ENDPOINT_URL", "TOKENWARDEN_OTLP_ENDPOINT", "TOKENWARDEN_PROMQL_URL")
    }

    done, attempts = _run(tmp_path, real, "--real-account", "reconcile", "events/reconcile.json")

    assert "--real-account" in done.stderr and f"AWS_ENDPOINT_URL={FAR}" in done.stderr
    assert done.returncode == NETWORK_ATTEMPTED
    assert attempts.startswith("('aws.tokenwarden-test.invalid', 443)"), attempts


def test_make_invoke_passes_real_account_only_when_asked() -> None:
    def command(*assignments: str) -> str:
        done = subprocess.run(
            [
                "make",
                "--no-print-directory",
                "-n",
                "invoke",
                "FN=reconcile",
                "EVENT=events/reconcile.json",
                *assignments,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.splitlines()[-1]

    assert command().endswith("scripts/invoke reconcile events/reconcile.json")
    assert command("REAL_ACCOUNT=yes").endswith(
        "scripts/invoke --real-account reconcile events/reconcile.json"
    )
    assert command("REAL_ACCOUNT=no").endswith("scripts/invoke reconcile events/reconcile.json")
