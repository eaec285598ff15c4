"""Run a function's handler in-process with an event file and a fake Lambda context.

The Docker-free stand-in for `sam local invoke`, meant for the embedded local stack (after
`tokenwarden local up`'s exports). It refuses to run when anything the handler would talk to (the
AWS APIs, the OTLP endpoint, the PromQL API) is not on loopback, unless `--real-account` says that a
real AWS account is the target on purpose.

    scripts/invoke reconcile events/reconcile.json
    scripts/invoke --real-account reconcile events/reconcile.json
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from tokenwarden.local.clock import loopback
from tokenwarden.local.stack import repo_root

USAGE = "usage: scripts/invoke [--real-account] FUNCTION EVENT_FILE   (e.g. reconcile events/reconcile.json)"
REFUSED = 3  # exit code: the target is not the embedded stack and --real-account was not given
_TRUE = {"1", "true", "yes", "on"}


def is_loopback(url: str) -> bool:
    return loopback(url.strip())


def _region(env: Mapping[str, str]) -> str:
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"


def _credentials(env: Mapping[str, str]) -> str:
    """Which credentials botocore would pick, without asking AWS (an access key ID's last 4 characters)."""
    key_id = env.get("AWS_ACCESS_KEY_ID", "")
    if key_id:
        return f"the access key …{key_id[-4:]} from AWS_ACCESS_KEY_ID"
    return f"the credentials of profile {env.get('AWS_PROFILE') or 'default'!r} (or the instance role)"


def aws_api_destinations(env: Mapping[str, str]) -> list[str]:
    """Where boto3 sends the AWS API calls: the endpoint variables win over the config file."""
    ignored = env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower() in _TRUE
    overrides = {
        name: url
        for name, url in env.items()
        if name.startswith("AWS_ENDPOINT_URL_") and url.strip() and not ignored
    }
    endpoint = "" if ignored else env.get("AWS_ENDPOINT_URL", "").strip()
    found = [f"{name}={url}" for name, url in sorted(overrides.items()) if not is_loopback(url)]
    if not endpoint:
        found.append(f"the AWS APIs of {_region(env)}, with {_credentials(env)}")
    elif not is_loopback(endpoint):
        found.append(f"AWS_ENDPOINT_URL={endpoint}")
    return found


def non_local_destinations(env: Mapping[str, str]) -> list[str]:
    """Everything the handlers could reach that is not on loopback (empty: the embedded stack)."""
    region = _region(env)
    found = aws_api_destinations(env)
    for name, when_unset in (
        ("TOKENWARDEN_OTLP_ENDPOINT", f"CloudWatch's OTLP endpoint in {region}"),
        ("TOKENWARDEN_PROMQL_URL", f"CloudWatch's PromQL API in {region}"),
        ("TOKENWARDEN_STACK_URL", None),  # unset: the system clock, nothing to reach
    ):
        url = env.get(name, "").strip()
        if url and not is_loopback(url):
            found.append(f"{name}={url}")
        elif not url and when_unset:
            found.append(f"{when_unset} ({name} is not set)")
    return found


def refusal(function: str, event_path: str, destinations: list[str]) -> str:
    lines = [
        f"scripts/invoke: refusing to run {function!r}: this is not the embedded local stack, and the "
        "handler would reach:",
        *(f"  - {where}" for where in destinations),
        "For the embedded stack, start `tokenwarden local up` and load the exports it prints.",
        "To run against a real AWS account on purpose:",
        f"  make invoke FN={function} EVENT={event_path} REAL_ACCOUNT=yes",
        f"  (or scripts/invoke --real-account {function} {event_path})",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    real_account = "--real-account" in argv
    args = [arg for arg in argv if arg != "--real-account"]
    if len(args) != 2 or any(arg.startswith("-") for arg in args):
        print(USAGE, file=sys.stderr)
        return 2
    name, event_path = args
    functions = sorted(
        p.name for p in (repo_root() / "functions").iterdir() if (p / f"{p.name}_handler.py").exists()
    )
    if name not in functions:
        print(f"unknown function {name!r}; one of: {', '.join(functions)}", file=sys.stderr)
        return 2
    try:
        event = json.loads(Path(event_path).read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read event {event_path}: {exc}", file=sys.stderr)
        return 2
    destinations = non_local_destinations(os.environ)
    if destinations and not real_account:
        print(refusal(name, event_path, destinations), file=sys.stderr)
        return REFUSED
    if destinations:
        print(f"scripts/invoke: --real-account: {name!r} reaches {'; '.join(destinations)}", file=sys.stderr)

    from tokenwarden.local.clock import RemoteStackClock, embedded_stack_url
    from tokenwarden.local.fake_context import FakeContext
    from tokenwarden.local.stack import load_function

    # On the embedded stack, the function runs on the stack's simulated time, as the stack's own
    # rotation function does; anywhere else on the system clock, as in Lambda.
    stack_url = embedded_stack_url()
    handler = load_function(name, RemoteStackClock(stack_url) if stack_url else None).lambda_handler
    context = FakeContext(function_name=f"tokenwarden-{name}")
    rotation_arn = os.environ.get("TOKENWARDEN_ROTATION_LAMBDA_ARN", "")
    if name == "rotate_secret" and rotation_arn:
        # The rotation function runs only rotations enabled with the ARN it is invoked as.
        context = FakeContext(
            function_name=rotation_arn.rsplit(":", 1)[-1], invoked_function_arn=rotation_arn
        )
    result = handler(event, context)
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
