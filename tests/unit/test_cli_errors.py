"""How the `tokenwarden` CLI reports what went wrong after the input was accepted: one line on
stderr, the documented exit code (1 failed, 2 bad input), never a traceback and never a request's
content. Commands and services are replaced by ones that raise; no AWS call is made."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
)

from tests.conftest import ROOT
from tokenwarden.cli import main as cli
from tokenwarden.cli.context import Context
from tokenwarden.cli.main import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main
from tokenwarden.domain.promql import PromQLError
from tokenwarden.errors import AwsError, AwsUnavailable
from tokenwarden.service.breakglass import Actor, BreakGlassFailed, RestoreResult, RevokeResult
from tokenwarden.service.health import HealthSettingsError
from tokenwarden.service.lease import PrincipalBusy
from tokenwarden.service.rotation import RotationAbandoned, RotationError

REGISTRY = str(ROOT / "teams.yaml")
OPERATOR = Actor.caller("arn:aws:sts::123456789012:assumed-role/Oncall/alice")
SECRET_VALUE = "tw-9f1c2e7d5b3a4c6e8f0a1b2c3d4e5f60"


class AwsCalled(BaseException):
    """Raised from inside botocore: nothing in the product may catch it."""


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from botocore.client import BaseClient

    def refuse(self: Any, operation: str, params: Any) -> Any:
        raise AwsCalled(f"reached AWS: {operation}")

    monkeypatch.setattr(BaseClient, "_make_api_call", refuse)
    yield


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def one_line(err: str) -> str:
    assert "Traceback" not in err
    assert err.startswith("tokenwarden: "), err
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err.removeprefix("tokenwarden: ").rstrip("\n")


def plan_raises(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    def cmd_plan(args: Any, settings: Any) -> int:
        raise error

    monkeypatch.setitem(cli.COMMANDS, "plan", cmd_plan)


def failing(error: BaseException) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


# -- service failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        PrincipalBusy(
            "another run (a rotation or a nightly run) kept platform-eng busy for 960 s; nothing was "
            "changed. Run the same command again: its lease expires by itself"
        ),
        BreakGlassFailed(
            "the key is revoked, but Secrets Manager refused to start the replacement (LimitExceeded). "
            "The nightly run issues it; to do it now, run `tokenwarden apply` or this revoke again"
        ),
        RotationError("testSecret: the new key was refused 8 times;\nlook at the probe's endpoint"),
        RotationAbandoned("version v1 is no longer AWSPENDING"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_revoke_that_fails_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    glass = type("Glass", (), {"revoke": failing(error), "restore": failing(error)})()
    monkeypatch.setattr(Context, "breakglass", lambda self: (glass, OPERATOR))

    for argv in (
        ["revoke", "platform-eng", "--reason", "leaked", "--reissue"],
        ["restore", "platform-eng"],
    ):
        code, out, err = run(*argv, "--registry", REGISTRY)
        assert code == EXIT_FAILED, (code, err)
        assert out == ""
        assert one_line(err) == " ".join(str(error).split())


def test_a_busy_principal_during_apply_is_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        Context, "reconciler", failing(PrincipalBusy("another run holds jdoe; nothing was changed"))
    )
    code, _, err = run("apply", "--registry", REGISTRY)
    assert code == EXIT_FAILED
    assert one_line(err) == "another run holds jdoe; nothing was changed"


# -- health -------------------------------------------------------------------------------------


def test_a_health_setting_error_is_bad_input_not_a_failed_query(monkeypatch: pytest.MonkeyPatch) -> None:
    error = HealthSettingsError("TOKENWARDEN_HEALTH_WINDOW_HOURS=1.00001 cannot be used: not whole seconds")
    assert isinstance(error, PromQLError)  # why the order of the handlers matters
    plan_raises(monkeypatch, error)
    code, _, err = run("plan", "--registry", REGISTRY)
    assert code == EXIT_BAD_INPUT
    line = one_line(err)
    assert line.startswith("invalid settings: TOKENWARDEN_HEALTH_WINDOW_HOURS=1.00001")
    assert "metrics query failed" not in line


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("TOKENWARDEN_HEALTH_WINDOW_HOURS", "1.00001", "TOKENWARDEN_HEALTH_WINDOW_HOURS=1.00001"),
        ("TOKENWARDEN_HEALTH_METRICS", "claude code", "TOKENWARDEN_HEALTH_METRICS"),
        ("TOKENWARDEN_HEALTH_METRICS", " , ", "TOKENWARDEN_HEALTH_METRICS names no metric"),
    ],
)
def test_health_with_an_unusable_window_or_metric_exits_2_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv("TOKENWARDEN_PROMQL_DIALECT", "prometheus")
    monkeypatch.setenv("TOKENWARDEN_PROMQL_URL", "http://127.0.0.1:9")
    monkeypatch.setenv(variable, value)
    code, out, err = run("health", "--registry", REGISTRY, "--dry-run")
    assert code == EXIT_BAD_INPUT, err
    assert out == ""
    line = one_line(err)
    assert line.startswith("invalid settings: ") and named in line
    assert "TOKENWARDEN_PROMQL_*" not in line  # not blamed on the endpoint settings


def test_a_failed_metrics_query_is_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    plan_raises(monkeypatch, PromQLError("no answer from monitoring within 25 s"))
    code, _, err = run("plan", "--registry", REGISTRY)
    assert code == EXIT_FAILED
    assert one_line(err) == "the metrics query failed: no answer from monitoring within 25 s"


# -- AWS errors: raised by botocore (STS, moto) or translated by the adapters -------------------------

ACCESS_DENIED_MESSAGE = "User is not authorized\nto perform iam:ListUsers"


def client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.mark.parametrize(
    "error",
    [
        client_error("AccessDenied", ACCESS_DENIED_MESSAGE, "ListUsers"),
        AwsError("ListUsers", "AccessDenied", ACCESS_DENIED_MESSAGE, 403),
    ],
    ids=["botocore", "translated"],
)
def test_access_denied_names_the_operation_and_says_whose_permission_is_missing(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    plan_raises(monkeypatch, error)
    code, _, err = run("plan", "--registry", REGISTRY)
    assert code == EXIT_FAILED
    line = one_line(err)
    assert line.startswith(
        "AWS refused ListUsers: AccessDenied: User is not authorized to perform iam:ListUsers ("
    )
    assert "lack this permission" in line and "aws sts get-caller-identity" in line
    assert "throttling" not in line


@pytest.mark.parametrize(
    "error",
    [
        client_error("ResourceExistsException", "the secret exists", "CreateSecret"),
        AwsError("CreateSecret", "ResourceExistsException", "the secret exists"),
    ],
    ids=["botocore", "translated"],
)
def test_an_aws_refusal_is_one_line_with_the_operation_and_code(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    plan_raises(monkeypatch, error)
    code, _, err = run("plan", "--registry", REGISTRY)
    assert code == EXIT_FAILED
    assert one_line(err) == "AWS refused CreateSecret: ResourceExistsException: the secret exists"


@pytest.mark.parametrize(
    "error",
    [
        client_error("ValidationException", "x" * 50_000, "PutSecretValue"),
        AwsError("PutSecretValue", "ValidationException", "x" * 50_000),
    ],
    ids=["botocore", "translated"],
)
def test_a_long_aws_message_is_cut(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    plan_raises(monkeypatch, error)
    code, _, err = run("plan", "--registry", REGISTRY)
    assert code == EXIT_FAILED
    assert len(one_line(err)) < 400


def test_invalid_request_parameters_never_print_their_values(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from botocore.validate import validate_parameters

    model = boto3.client("secretsmanager", region_name="us-east-1").meta.service_model
    shape = model.operation_model("PutSecretValue").input_shape
    params = {"SecretId": "tokenwarden/jdoe", "SecretString": [SECRET_VALUE], "Bogus": 1}
    with pytest.raises(ParamValidationError) as raised:  # botocore's own report, which quotes values
        validate_parameters(params, shape)
    assert SECRET_VALUE in str(raised.value)
    plan_raises(monkeypatch, raised.value)

    code, _, err = run("plan", "--registry", REGISTRY)

    assert code == EXIT_FAILED
    line = one_line(err)
    assert SECRET_VALUE not in line
    assert "(Bogus, SecretString)" in line and "nothing was sent" in line


def test_a_request_the_adapter_could_not_send_is_reported_as_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    plan_raises(monkeypatch, AwsUnavailable("client", "ParamValidationError"))
    code, _, err = run("plan", "--registry", REGISTRY)
    assert code == EXIT_FAILED
    line = one_line(err)
    assert "nothing was sent" in line and "please report it" in line


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://iam.amazonaws.com/"),
        AwsUnavailable("unreachable", "EndpointConnectionError", "https://iam.amazonaws.com/"),
    ],
    ids=["botocore", "translated"],
)
def test_an_unreachable_endpoint_names_it_and_what_to_check(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    plan_raises(monkeypatch, error)
    code, _, err = run("plan", "--registry", REGISTRY)
    assert code == EXIT_FAILED
    line = one_line(err)
    assert line.startswith("cannot reach AWS at https://iam.amazonaws.com/: check the network")
    assert "AWS_ENDPOINT_URL" in line and "tokenwarden local up" in line


@pytest.mark.parametrize(
    "error",
    [
        client_error("ThrottlingException", "Rate exceeded", "ListSecrets"),
        AwsError("ListSecrets", "ThrottlingException", "Rate exceeded", 400),
    ],
    ids=["botocore", "translated"],
)
def test_throttling_after_every_retry_says_to_run_again_later(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    plan_raises(monkeypatch, error)
    code, _, err = run("plan", "--registry", REGISTRY)
    assert code == EXIT_FAILED
    assert one_line(err) == (
        "AWS refused ListSecrets: ThrottlingException: Rate exceeded (AWS is throttling the account "
        "after every retry: run the command again in a minute)"
    )


@pytest.mark.parametrize(
    "error",
    [NoCredentialsError(), AwsUnavailable("no-credentials", "NoCredentialsError")],
    ids=["botocore", "translated"],
)
def test_no_credentials_is_bad_input_saying_how_to_configure_them(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    plan_raises(monkeypatch, error)
    code, _, err = run("plan", "--registry", REGISTRY)
    assert code == EXIT_BAD_INPUT
    line = one_line(err)
    assert line.startswith("no AWS credentials found: configure them")
    assert "AWS_PROFILE" in line and "tokenwarden local up" in line
    assert "region" not in line


@pytest.mark.parametrize(
    "error",
    [NoRegionError(), AwsUnavailable("no-region", "NoRegionError")],
    ids=["botocore", "translated"],
)
def test_no_region_is_bad_input_saying_which_variable_to_set(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    plan_raises(monkeypatch, error)
    code, _, err = run("plan", "--registry", REGISTRY)
    assert code == EXIT_BAD_INPUT
    line = one_line(err)
    assert line.startswith("no AWS region configured: set AWS_REGION")
    assert "credentials" not in line


@pytest.mark.parametrize(
    "error",
    [
        ReadTimeoutError(endpoint_url="https://iam.amazonaws.com/"),
        AwsUnavailable("client", "ReadTimeoutError"),
    ],
    ids=["botocore", "translated"],
)
def test_another_client_side_failure_names_its_kind_and_says_to_retry(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    plan_raises(monkeypatch, error)
    code, _, err = run("plan", "--registry", REGISTRY)
    assert code == EXIT_FAILED
    assert one_line(err).startswith("an AWS call failed on this side (ReadTimeoutError): check the network")


def test_an_unexpected_error_says_only_its_type(monkeypatch: pytest.MonkeyPatch) -> None:
    plan_raises(monkeypatch, RuntimeError(f"request was {{'SecretString': '{SECRET_VALUE}'}}"))
    code, _, err = run("plan", "--registry", REGISTRY)
    assert code == EXIT_FAILED
    line = one_line(err)
    assert SECRET_VALUE not in line
    assert line.startswith("unexpected error (RuntimeError)")


def test_an_interrupt_is_one_line_saying_what_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    plan_raises(monkeypatch, KeyboardInterrupt())
    code, _, err = run("plan", "--registry", REGISTRY)
    assert code == EXIT_FAILED
    assert one_line(err).startswith("interrupted: what was done stays done")


# -- revoke --reissue while the replacement's rotation still runs ---------------------------------


def reissue_glass(monkeypatch: pytest.MonkeyPatch, result: RevokeResult) -> None:
    glass = type("Glass", (), {"revoke": lambda self, *args: result})()
    monkeypatch.setattr(Context, "breakglass", lambda self: (glass, OPERATOR))


IN_PROGRESS = RevokeResult(
    principal="platform-eng",
    actor="alice",
    reason="leaked",
    revoked=("ACCA1",),
    reissued=None,
    reissue_in_progress=True,
)


def test_a_reissue_still_rotating_is_reported_as_running_not_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    reissue_glass(monkeypatch, IN_PROGRESS)

    code, out, err = run("revoke", "platform-eng", "--reason", "leaked", "--reissue", "--registry", REGISTRY)

    assert code == EXIT_OK
    assert err == ""
    assert "Revoked 1 key(s) of platform-eng: ACCA1" in out
    assert "started by Secrets Manager and is still running in the background" in out
    assert "not a failure" in out
    assert "`rotated` notification" in out and "`rotation_failed`" in out
    assert "`tokenwarden status`" in out
    assert "aws secretsmanager describe-secret --secret-id tokenwarden/platform-eng" in out
    assert "Issued and verified" not in out


def test_the_secret_named_in_the_hint_follows_the_naming_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    reissue_glass(monkeypatch, IN_PROGRESS)
    monkeypatch.setenv("TOKENWARDEN_SECRET_PREFIX", "teams/keys/")
    code, out, _ = run("revoke", "platform-eng", "--reason", "leaked", "--reissue", "--registry", REGISTRY)
    assert code == EXIT_OK
    assert "--secret-id teams/keys/platform-eng" in out


def test_a_finished_reissue_says_the_new_key_is_current(monkeypatch: pytest.MonkeyPatch) -> None:
    reissue_glass(
        monkeypatch, IN_PROGRESS.model_copy(update={"reissued": "ACCA2", "reissue_in_progress": False})
    )
    code, out, _ = run("revoke", "platform-eng", "--reason", "leaked", "--reissue", "--registry", REGISTRY)
    assert code == EXIT_OK
    assert "Issued and verified a new key ACCA2" in out
    assert "still running" not in out


def test_a_reissue_still_rotating_is_in_the_json(monkeypatch: pytest.MonkeyPatch) -> None:
    reissue_glass(monkeypatch, IN_PROGRESS)
    code, out, err = run(
        "revoke", "platform-eng", "--reason", "leaked", "--reissue", "--json", "--registry", REGISTRY
    )
    assert code == EXIT_OK and err == ""
    answer = json.loads(out)
    assert answer["reissued"] is None and answer["reissue_in_progress"] is True


def test_revoke_says_which_record_it_wrote_and_as_whom(monkeypatch: pytest.MonkeyPatch) -> None:
    reissue_glass(
        monkeypatch,
        IN_PROGRESS.model_copy(
            update={"reissue_in_progress": False, "revoke": 3, "actor": OPERATOR.describe()}
        ),
    )
    code, out, _ = run("revoke", "platform-eng", "--reason", "leaked", "--registry", REGISTRY)
    assert code == EXIT_OK
    assert f"Recorded (revoke #3) as {OPERATOR.describe()}: leaked" in out


# -- restore ------------------------------------------------------------------------------------


def restore_glass(monkeypatch: pytest.MonkeyPatch, result: RestoreResult) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []

    def restore(self: Any, principal: Any, actor: Any, now: Any, force_reason: Any = None) -> RestoreResult:
        calls.append((principal.id, actor, force_reason))
        return result

    glass = type("Glass", (), {"restore": restore})()
    monkeypatch.setattr(Context, "breakglass", lambda self: (glass, OPERATOR))
    return calls


RESTORED = RestoreResult(
    principal="platform-eng", actor=OPERATOR.describe(), restored="ACCA1", current=True, revoke=2
)


def test_restore_passes_the_operators_identity_and_no_force_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = restore_glass(monkeypatch, RESTORED)
    code, out, err = run("restore", "platform-eng", "--registry", REGISTRY)
    assert (code, err) == (EXIT_OK, "")
    assert calls == [("platform-eng", OPERATOR, None)]
    assert "Re-activated 1 key(s) of platform-eng: ACCA1." in out
    assert f"Recorded as {OPERATOR.describe()}: undoes revoke #2, which stays on record." in out


def test_a_forced_restore_passes_its_reason_and_says_until_when_the_key_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    until = datetime(2027, 1, 11, 2, 15, tzinfo=UTC)
    calls = restore_glass(
        monkeypatch,
        RESTORED.model_copy(
            update={"current": False, "active_until": until, "forced": True, "force_reason": "false alarm"}
        ),
    )
    code, out, _ = run(
        "restore", "platform-eng", "--force", "--reason", " false alarm ", "--registry", REGISTRY
    )
    assert code == EXIT_OK
    assert calls == [("platform-eng", OPERATOR, "false alarm")]
    assert "works until 2027-01-11 02:15 UTC (the grace it had, not a new one)" in out
    assert "(forced: false alarm)" in out
