"""How a failure reaches the operator: one line on stderr saying what holds and what to do next, and
the documented exit code. Never a traceback, and never a request's content: botocore quotes request
parameters in some of its errors, and a request may hold a token.

Exit codes: 0 success, 1 a principal (or an AWS call) failed, 2 bad input (nothing was changed).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from pydantic import ValidationError

from tokenwarden.domain.promql import PromQLError
from tokenwarden.domain.reason import ReasonError
from tokenwarden.domain.registry import RegistryError
from tokenwarden.errors import AwsError, AwsUnavailable
from tokenwarden.service.breakglass import BreakGlassError, BreakGlassFailed
from tokenwarden.service.health import HealthSettingsError
from tokenwarden.service.lease import PrincipalBusy
from tokenwarden.service.rotation import RotationError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

MAX_AWS_MESSAGE = 300
SETUP_HINT = "or point at the embedded stack with `tokenwarden local up` and source its exports"
# What botocore raises for a request it refuses to send (AwsUnavailable's `kind` when translated).
INVALID_REQUEST_KINDS = frozenset({"ParamValidationError", "ValidationError"})
INTERRUPTED = "interrupted: what was done stays done; the next run finishes or undoes the rest"


class UsageError(Exception):
    """Bad input: exit 2, nothing changed."""


Failure = tuple[str, int]


def guarded(command: Callable[[], int]) -> int:
    """Run `command`; a failure becomes its one line on stderr and its exit code."""
    try:
        return int(command())
    except KeyboardInterrupt:
        return fail(INTERRUPTED, EXIT_FAILED)
    except Exception as exc:  # every failure, typed or not, ends as one line (never a traceback)
        return fail(*failure(exc))


def fail(message: str, code: int) -> int:
    """The one line an operator sees for a failure, with its exit code."""
    print(f"tokenwarden: {' '.join(message.split())}", file=sys.stderr)
    return code


def failure(exc: Exception) -> Failure:
    """The line and exit code for `exc`: TokenWarden's own errors first, then AWS's (translated by
    the adapters or still botocore's), then a last resort that says nothing of the error's text."""
    known = _own_failure(exc) or _aws_failure(exc)
    if known is not None:
        return known
    return (
        f"unexpected error ({type(exc).__name__}); what was done stays done and the next run "
        "finishes or undoes the rest",
        EXIT_FAILED,
    )


def _own_failure(exc: Exception) -> Failure | None:
    if isinstance(exc, RegistryError | UsageError | BreakGlassError | ReasonError):
        return str(exc), EXIT_BAD_INPUT
    if isinstance(exc, ValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        return f"invalid {exc.title}: {problems}", EXIT_BAD_INPUT
    if isinstance(exc, HealthSettingsError):  # a PromQLError too, but bad input: no query was sent
        return f"invalid settings: {exc}", EXIT_BAD_INPUT
    if isinstance(exc, PromQLError):
        return f"the metrics query failed: {exc}", EXIT_FAILED
    if isinstance(exc, PrincipalBusy | BreakGlassFailed | RotationError):
        return str(exc), EXIT_FAILED
    return None


def _aws_failure(exc: Exception) -> Failure | None:
    if _invalid_parameters(exc):
        return invalid_request_failure(parameter_names(str(exc)))
    translated = exc if isinstance(exc, AwsError | AwsUnavailable) else from_botocore(exc)
    if isinstance(translated, AwsUnavailable):
        return unavailable_failure(translated)
    if isinstance(translated, AwsError):
        return refusal_failure(translated)
    return None


def unavailable_failure(exc: AwsUnavailable) -> Failure:
    """AWS could not be asked at all: what to set up, or what to check."""
    if exc.reason == "no-credentials":
        return (
            f"no AWS credentials found: configure them (AWS_PROFILE, `aws sso login`), {SETUP_HINT}",
            EXIT_BAD_INPUT,
        )
    if exc.reason == "no-region":
        return f"no AWS region configured: set AWS_REGION (e.g. eu-west-1), {SETUP_HINT}", EXIT_BAD_INPUT
    if exc.reason == "unreachable":
        return (
            f"cannot reach AWS at {clipped(exc.endpoint or '?', 200)}: check the network, AWS_REGION and "
            "AWS_ENDPOINT_URL (for the embedded stack, run `tokenwarden local up` and source its exports); "
            "nothing was changed by this call",
            EXIT_FAILED,
        )
    if exc.kind in INVALID_REQUEST_KINDS:
        return invalid_request_failure([])
    return (
        f"an AWS call failed on this side ({exc.kind}): check the network and run the command again; "
        "what was done stays done",
        EXIT_FAILED,
    )


def refusal_failure(exc: AwsError) -> Failure:
    """AWS answered with an error: the operation, AWS's code and (cut) message, and what to do."""
    message = clipped(exc.message, MAX_AWS_MESSAGE)
    line = f"AWS refused {exc.operation}: {exc.code}: {message}".rstrip(": ")
    if exc.throttled:
        line += " (AWS is throttling the account after every retry: run the command again in a minute)"
    elif exc.access_denied:
        line += (
            " (the credentials in use lack this permission: use the operator role, or ask for it to be "
            "granted; `aws sts get-caller-identity` shows who you are)"
        )
    return line, EXIT_FAILED


def from_botocore(exc: Exception) -> AwsError | AwsUnavailable | None:
    """A botocore exception (from a place no adapter wraps: STS, a test's moto) as TokenWarden's
    own AWS error, by the adapters' one translation; None for anything else."""
    from botocore.exceptions import BotoCoreError, ClientError

    from tokenwarden.adapters.aws import aws_error, aws_unavailable

    if isinstance(exc, ClientError):
        return aws_error(exc)
    if isinstance(exc, BotoCoreError):
        return aws_unavailable(exc)
    return None


def invalid_request_failure(names: list[str]) -> Failure:
    """botocore refused to send a request: a bug, said with the parameters' names only."""
    named = f" ({', '.join(names[:5])})" if names else ""
    return (
        f"botocore refused to send a request whose parameters are invalid{named}; nothing was sent. "
        "This is a bug in TokenWarden: please report it",
        EXIT_FAILED,
    )


def parameter_names(text: str) -> list[str]:
    """The names of the parameters a botocore validation error complains about (never their values)."""
    return sorted(set(re.findall(r'param(?:eter)? (?:in [\w.\[\]]+: )?"?([\w.\[\]-]+)', text)))


def _invalid_parameters(exc: Exception) -> bool:
    from botocore.exceptions import ParamValidationError, ValidationError

    return isinstance(exc, ParamValidationError | ValidationError)


def clipped(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit] + "..."


def settings_problem(exc: ValidationError) -> str:
    """Each invalid setting by the variable that sets it."""
    problems = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"]).upper()
        variable = "AWS_REGION" if name == "REGION" else f"TOKENWARDEN_{name}"
        problems.append(f"{variable}: {error['msg'].removeprefix('Value error, ')}")
    return "invalid settings: " + "; ".join(problems)
