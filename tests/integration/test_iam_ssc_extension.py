"""The project's moto extensions: IAM service-specific credentials and in-process rotation Lambdas."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from tokenwarden.local import iam_ssc, lambda_router
from tokenwarden.local.clock import StackClock
from tokenwarden.local.iam_ssc import AuthOutcome, authenticate, issued_secrets

REGION = "us-east-1"
ACCOUNT = "123456789012"
CW = "cloudwatch.amazonaws.com"
ROTATION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:tokenwarden-rotation"
UNKNOWN_ID = "ACCA" + "Z" * 17
START = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_IAM",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock() -> Iterator[StackClock]:
    stack_clock = StackClock(start=START)
    iam_ssc.install(stack_clock)
    yield stack_clock
    iam_ssc.install()


@pytest.fixture
def iam(clock: StackClock) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("iam", region_name=REGION)


@pytest.fixture
def routes() -> Iterator[None]:
    yield
    lambda_router.unregister_all()


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _create(iam: Any, user: str, age: int | None = 90, service: str = CW) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"UserName": user, "ServiceName": service}
    if age is not None:
        kwargs["CredentialAgeDays"] = age
    credential: dict[str, Any] = iam.create_service_specific_credential(**kwargs)["ServiceSpecificCredential"]
    return credential


def _listed(iam: Any, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = iam.list_service_specific_credentials(**kwargs)[
        "ServiceSpecificCredentials"
    ]
    return items


# --- create/list ---


def test_create_returns_secret_and_expiry_and_list_never_shows_the_secret(iam: Any) -> None:
    iam.create_user(UserName="tw-alpha")

    created = _create(iam, "tw-alpha", age=90)

    secret = created["ServiceCredentialSecret"]
    assert len(secret) >= 40
    assert secret in issued_secrets()
    assert re.fullmatch(r"ACCA[A-Z0-9]{17}", created["ServiceSpecificCredentialId"])
    assert re.fullmatch(rf"tw-alpha-at-{ACCOUNT}-[a-z]{{6}}", created["ServiceCredentialAlias"])
    assert secret not in created["ServiceCredentialAlias"]
    assert created["Status"] == "Active"
    assert created["ServiceName"] == CW
    assert created["UserName"] == "tw-alpha"
    assert timedelta(0) <= created["CreateDate"] - START.replace(microsecond=0) < timedelta(seconds=30)
    assert created["ExpirationDate"] == created["CreateDate"] + timedelta(days=90)

    response = iam.list_service_specific_credentials(UserName="tw-alpha")
    (listed,) = response["ServiceSpecificCredentials"]
    assert "ServiceCredentialSecret" not in listed
    assert secret not in repr(response)
    assert listed["ServiceSpecificCredentialId"] == created["ServiceSpecificCredentialId"]
    assert listed["ServiceCredentialAlias"] == created["ServiceCredentialAlias"]
    assert listed["ExpirationDate"] == created["ExpirationDate"]
    assert response["IsTruncated"] is False


def test_aliases_and_secrets_are_unique_per_key(iam: Any) -> None:
    iam.create_user(UserName="tw-alpha")
    first, second = _create(iam, "tw-alpha"), _create(iam, "tw-alpha")
    assert first["ServiceCredentialAlias"] != second["ServiceCredentialAlias"]
    assert first["ServiceCredentialSecret"] != second["ServiceCredentialSecret"]


def test_third_key_for_a_service_is_refused_even_when_one_is_inactive(iam: Any) -> None:
    iam.create_user(UserName="tw-alpha")
    first = _create(iam, "tw-alpha")
    _create(iam, "tw-alpha")
    iam.update_service_specific_credential(
        UserName="tw-alpha",
        ServiceSpecificCredentialId=first["ServiceSpecificCredentialId"],
        Status="Inactive",
    )

    with pytest.raises(ClientError) as exc:
        _create(iam, "tw-alpha")

    assert _error(exc) == ("LimitExceeded", 409)
    assert _create(iam, "tw-alpha", service="bedrock.amazonaws.com")["Status"] == "Active"  # per service


def test_create_for_unknown_user_is_no_such_entity(iam: Any) -> None:
    with pytest.raises(ClientError) as exc:
        _create(iam, "nobody")
    assert _error(exc) == ("NoSuchEntity", 404)


def test_create_for_unsupported_service_is_refused(iam: Any) -> None:
    iam.create_user(UserName="tw-alpha")
    with pytest.raises(ClientError) as exc:
        _create(iam, "tw-alpha", service="cloudwatch")
    assert _error(exc) == ("NotSupportedService", 404)


@pytest.mark.parametrize("age", [0, 36601, -5])
def test_out_of_range_age_is_rejected_by_the_service(iam: Any, age: int) -> None:
    iam.create_user(UserName="tw-alpha")
    unchecked = boto3.client("iam", region_name=REGION, config=Config(parameter_validation=False))

    with pytest.raises(ClientError) as exc:
        _create(unchecked, "tw-alpha", age=age)

    assert _error(exc) == ("ValidationError", 400)
    assert _listed(iam, UserName="tw-alpha") == []


def test_botocore_checks_only_the_minimum_age(iam: Any) -> None:
    iam.create_user(UserName="tw-alpha")
    with pytest.raises(ParamValidationError):
        _create(iam, "tw-alpha", age=0)
    with pytest.raises(ClientError):  # the maximum reaches the service, which refuses it
        _create(iam, "tw-alpha", age=36601)
    created = _create(iam, "tw-alpha", age=36600)
    assert created["ExpirationDate"] - created["CreateDate"] == timedelta(days=36600)
    assert abs(created["CreateDate"] - START) < timedelta(minutes=1)  # the stack clock, not the wall clock


def test_omitted_age_gives_a_key_without_expiration(iam: Any) -> None:
    iam.create_user(UserName="tw-alpha")

    created = _create(iam, "tw-alpha", age=None)

    assert "ExpirationDate" not in created
    (listed,) = _listed(iam, UserName="tw-alpha")
    assert "ExpirationDate" not in listed
    assert listed["Status"] == "Active"


# --- expiry ---


def test_key_is_expired_once_the_clock_passes_its_expiry_and_is_then_read_only(
    iam: Any, clock: StackClock
) -> None:
    iam.create_user(UserName="tw-alpha")
    created = _create(iam, "tw-alpha", age=1)
    key_id = created["ServiceSpecificCredentialId"]
    expires = created["ExpirationDate"]

    clock.advance_to(expires - timedelta(minutes=1))
    assert _listed(iam, UserName="tw-alpha")[0]["Status"] == "Active"

    clock.advance_to(expires)
    assert _listed(iam, UserName="tw-alpha")[0]["Status"] == "Expired"
    for status in ("Active", "Inactive"):
        with pytest.raises(ClientError) as exc:
            iam.update_service_specific_credential(ServiceSpecificCredentialId=key_id, Status=status)
        assert _error(exc) == ("ValidationError", 400)
    assert authenticate(created["ServiceCredentialSecret"]).outcome is AuthOutcome.EXPIRED

    iam.delete_service_specific_credential(ServiceSpecificCredentialId=key_id)  # deleting is allowed
    assert _listed(iam, UserName="tw-alpha") == []


def test_update_accepts_only_active_or_inactive(iam: Any) -> None:
    iam.create_user(UserName="tw-alpha")
    key_id = _create(iam, "tw-alpha")["ServiceSpecificCredentialId"]
    for status in ("Expired", "Disabled"):
        with pytest.raises(ClientError) as exc:
            iam.update_service_specific_credential(ServiceSpecificCredentialId=key_id, Status=status)
        assert _error(exc) == ("ValidationError", 400)
    assert _listed(iam, UserName="tw-alpha")[0]["Status"] == "Active"


def test_clock_never_goes_back() -> None:
    clock = StackClock(start=START)
    later = clock.advance_to(START + timedelta(days=3))
    assert later == START + timedelta(days=3)
    assert clock.advance_to(START) >= later
    assert clock.now() >= later
    assert clock.now().tzinfo is not None


# --- list ---


def test_all_users_lists_every_key_across_users_page_by_page(iam: Any) -> None:
    expected = set()
    for index in range(5):
        user = f"tw-team{index}"
        iam.create_user(UserName=user)
        expected |= {_create(iam, user)["ServiceSpecificCredentialId"] for _ in range(2)}
    _create(iam, "tw-team0", service="bedrock.amazonaws.com")

    seen: list[str] = []
    pages = 0
    kwargs: dict[str, Any] = {"AllUsers": True, "ServiceName": CW, "MaxItems": 3}
    while True:
        page = iam.list_service_specific_credentials(**kwargs)
        pages += 1
        seen += [item["ServiceSpecificCredentialId"] for item in page["ServiceSpecificCredentials"]]
        assert all("ServiceCredentialSecret" not in item for item in page["ServiceSpecificCredentials"])
        if not page["IsTruncated"]:
            assert "Marker" not in page
            break
        kwargs["Marker"] = page["Marker"]

    assert pages == 4
    assert len(seen) == len(set(seen)) == 10
    assert set(seen) == expected
    assert len(_listed(iam, AllUsers=True)) == 11
    assert {item["UserName"] for item in _listed(iam, AllUsers=True)} == {f"tw-team{i}" for i in range(5)}


def test_all_users_with_user_name_is_refused(iam: Any) -> None:
    iam.create_user(UserName="tw-alpha")
    with pytest.raises(ClientError) as exc:
        iam.list_service_specific_credentials(UserName="tw-alpha", AllUsers=True)
    assert _error(exc) == ("ValidationError", 400)


def test_list_without_user_name_lists_the_callers_own_keys(iam: Any) -> None:
    iam.create_user(UserName="tw-alpha")
    iam.create_user(UserName="tw-beta")
    own = _create(iam, "tw-alpha")["ServiceSpecificCredentialId"]
    _create(iam, "tw-beta")
    key = iam.create_access_key(UserName="tw-alpha")["AccessKey"]
    as_alpha = boto3.client(
        "iam",
        region_name=REGION,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        aws_session_token="",
    )

    assert [item["ServiceSpecificCredentialId"] for item in _listed(as_alpha)] == [own]
    assert _listed(iam) == []  # the default test credentials belong to no IAM user


def test_list_for_unknown_user_is_no_such_entity(iam: Any) -> None:
    with pytest.raises(ClientError) as exc:
        iam.list_service_specific_credentials(UserName="nobody")
    assert _error(exc) == ("NoSuchEntity", 404)


def test_max_items_above_1000_is_refused(iam: Any) -> None:
    with pytest.raises(ClientError) as exc:
        iam.list_service_specific_credentials(AllUsers=True, MaxItems=1001)
    assert _error(exc) == ("ValidationError", 400)


# --- update/delete/reset ---


@pytest.mark.parametrize(
    ("operation", "extra"),
    [
        ("delete_service_specific_credential", {}),
        ("reset_service_specific_credential", {}),
        ("update_service_specific_credential", {"Status": "Inactive"}),
    ],
)
def test_operations_on_an_unknown_id_are_no_such_entity(
    iam: Any, operation: str, extra: dict[str, str]
) -> None:
    iam.create_user(UserName="tw-alpha")
    _create(iam, "tw-alpha")
    with pytest.raises(ClientError) as exc:
        getattr(iam, operation)(ServiceSpecificCredentialId=UNKNOWN_ID, **extra)
    assert _error(exc) == ("NoSuchEntity", 404)


def test_a_key_is_not_found_under_another_user(iam: Any) -> None:
    iam.create_user(UserName="tw-alpha")
    iam.create_user(UserName="tw-beta")
    key_id = _create(iam, "tw-alpha")["ServiceSpecificCredentialId"]
    with pytest.raises(ClientError) as exc:
        iam.delete_service_specific_credential(UserName="tw-beta", ServiceSpecificCredentialId=key_id)
    assert _error(exc) == ("NoSuchEntity", 404)


def test_reset_invalidates_the_old_secret_at_once(iam: Any) -> None:
    iam.create_user(UserName="tw-alpha")
    created = _create(iam, "tw-alpha")
    old = created["ServiceCredentialSecret"]
    assert authenticate(old).accepted

    reset = iam.reset_service_specific_credential(
        UserName="tw-alpha", ServiceSpecificCredentialId=created["ServiceSpecificCredentialId"]
    )["ServiceSpecificCredential"]

    new = reset["ServiceCredentialSecret"]
    assert new != old
    assert new in issued_secrets()
    assert reset["ServiceSpecificCredentialId"] == created["ServiceSpecificCredentialId"]
    assert reset["ExpirationDate"] == created["ExpirationDate"]
    assert authenticate(old).outcome is AuthOutcome.UNKNOWN
    assert authenticate(new).outcome is AuthOutcome.ACCEPTED


def test_delete_user_with_keys_is_a_conflict(iam: Any) -> None:
    iam.create_user(UserName="tw-alpha")
    key_id = _create(iam, "tw-alpha")["ServiceSpecificCredentialId"]

    with pytest.raises(ClientError) as exc:
        iam.delete_user(UserName="tw-alpha")
    assert _error(exc) == ("DeleteConflict", 409)

    iam.delete_service_specific_credential(ServiceSpecificCredentialId=key_id)
    iam.delete_user(UserName="tw-alpha")
    assert iam.list_users()["Users"] == []


# --- authenticate ---


def test_authenticate_outcomes(iam: Any, clock: StackClock) -> None:
    iam.create_user(UserName="tw-alpha")
    iam.create_user(UserName="tw-beta")
    active = _create(iam, "tw-alpha", age=30)
    inactive = _create(iam, "tw-alpha", age=30)
    expiring = _create(iam, "tw-beta", age=1)
    bedrock = _create(iam, "tw-beta", service="bedrock.amazonaws.com")
    iam.update_service_specific_credential(
        ServiceSpecificCredentialId=inactive["ServiceSpecificCredentialId"], Status="Inactive"
    )
    clock.advance(timedelta(days=2))

    verdict = authenticate(active["ServiceCredentialSecret"])
    assert verdict.accepted
    assert (verdict.credential_id, verdict.user_name, verdict.account_id) == (
        active["ServiceSpecificCredentialId"],
        "tw-alpha",
        ACCOUNT,
    )
    assert active["ServiceCredentialSecret"] not in repr(verdict)
    assert verdict.reason == "accepted"
    assert authenticate(inactive["ServiceCredentialSecret"]).outcome is AuthOutcome.INACTIVE
    assert authenticate(expiring["ServiceCredentialSecret"]).outcome is AuthOutcome.EXPIRED
    assert authenticate("not-a-token").outcome is AuthOutcome.UNKNOWN
    assert authenticate("").outcome is AuthOutcome.UNKNOWN
    assert authenticate(bedrock["ServiceCredentialSecret"]).outcome is AuthOutcome.UNKNOWN
    assert authenticate(bedrock["ServiceCredentialSecret"], "bedrock.amazonaws.com").accepted


def test_state_resets_between_mock_aws_contexts(clock: StackClock) -> None:
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        iam.create_user(UserName="tw-alpha")
        secret = _create(iam, "tw-alpha")["ServiceCredentialSecret"]
        assert authenticate(secret).accepted

    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        iam.create_user(UserName="tw-alpha")
        assert _listed(iam, UserName="tw-alpha") == []
        assert _listed(iam, AllUsers=True) == []
        assert authenticate(secret).outcome is AuthOutcome.UNKNOWN
        _create(iam, "tw-alpha")
        _create(iam, "tw-alpha")  # the old context's keys do not count towards the limit


def test_install_is_idempotent(iam: Any, clock: StackClock) -> None:
    iam_ssc.install(clock)
    iam_ssc.install(clock)
    iam.create_user(UserName="tw-alpha")
    _create(iam, "tw-alpha")
    with pytest.raises(ClientError) as exc:
        iam.delete_user(UserName="tw-alpha")
    assert _error(exc) == ("DeleteConflict", 409)


# --- server mode ---


@pytest.fixture
def moto_server(clock: StackClock) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        yield endpoint
    finally:
        # The server shares moto's global backends with this process: leave them empty.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).close()
        server.stop()


def test_create_and_list_work_over_http_in_server_mode(moto_server: str) -> None:
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto_server)
    iam.create_user(UserName="tw-server")

    created = _create(iam, "tw-server", age=90)

    assert created["ExpirationDate"] == created["CreateDate"] + timedelta(days=90)
    (listed,) = _listed(iam, AllUsers=True, ServiceName=CW)
    assert listed["ServiceSpecificCredentialId"] == created["ServiceSpecificCredentialId"]
    assert "ServiceCredentialSecret" not in listed
    assert authenticate(created["ServiceCredentialSecret"]).accepted
    with pytest.raises(ClientError) as exc:
        _create(iam, "nobody")
    assert _error(exc) == ("NoSuchEntity", 404)


def test_rotation_handler_runs_in_process_in_server_mode(moto_server: str, routes: None) -> None:
    secretsmanager = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_server)
    secretsmanager.create_secret(Name="tw/server", SecretString="token-v1")
    steps: list[str] = []
    lambda_router.register(ROTATION_ARN, _rotation_handler(secretsmanager, steps))

    secretsmanager.rotate_secret(
        SecretId="tw/server", RotationLambdaARN=ROTATION_ARN, RotationRules={"AutomaticallyAfterDays": 30}
    )

    assert steps == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    current = secretsmanager.get_secret_value(SecretId="tw/server", VersionStage="AWSCURRENT")
    assert current["SecretString"] == "token-v2"


# --- lambda router ---


def _rotation_handler(
    secretsmanager: Any, steps: list[str], calls: list[dict[str, Any]] | None = None
) -> lambda_router.Handler:
    """A minimal four-step rotation handler that records what it was asked to do."""

    def handler(event: dict[str, Any], context: Any) -> None:
        steps.append(event["Step"])
        if calls is not None:
            calls.append(
                {
                    **event,
                    "arn": context.invoked_function_arn,
                    "remaining": context.get_remaining_time_in_millis(),
                }
            )
        token = event["ClientRequestToken"]
        secret_id = event["SecretId"]
        if event["Step"] == "createSecret":
            secretsmanager.put_secret_value(
                SecretId=secret_id,
                ClientRequestToken=token,
                SecretString="token-v2",
                VersionStages=["AWSPENDING"],
            )
        elif event["Step"] == "finishSecret":
            described = secretsmanager.describe_secret(SecretId=secret_id)
            current = next(
                version
                for version, stages in described["VersionIdsToStages"].items()
                if "AWSCURRENT" in stages
            )
            secretsmanager.update_secret_version_stage(
                SecretId=secret_id,
                VersionStage="AWSCURRENT",
                MoveToVersionId=token,
                RemoveFromVersionId=current,
            )
            secretsmanager.update_secret_version_stage(
                SecretId=secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=token
            )

    return handler


def test_rotate_secret_invokes_the_registered_handler_for_the_four_steps(
    clock: StackClock, routes: None
) -> None:
    with mock_aws():
        secretsmanager = boto3.client("secretsmanager", region_name=REGION)
        secretsmanager.create_secret(Name="tw/alpha", SecretString="token-v1")
        steps: list[str] = []
        calls: list[dict[str, Any]] = []
        lambda_router.register(ROTATION_ARN, _rotation_handler(secretsmanager, steps, calls))

        response = secretsmanager.rotate_secret(
            SecretId="tw/alpha", RotationLambdaARN=ROTATION_ARN, RotationRules={"AutomaticallyAfterDays": 30}
        )

        assert steps == ["createSecret", "setSecret", "testSecret", "finishSecret"]
        assert {call["ClientRequestToken"] for call in calls} == {response["VersionId"]}
        assert {call["SecretId"] for call in calls} == {"tw/alpha"}
        assert {call["arn"] for call in calls} == {ROTATION_ARN}
        assert all(call["remaining"] > 0 for call in calls)
        current = secretsmanager.get_secret_value(SecretId="tw/alpha", VersionStage="AWSCURRENT")
        assert current["SecretString"] == "token-v2"
        assert current["VersionId"] == response["VersionId"]
        stages = secretsmanager.describe_secret(SecretId="tw/alpha")["VersionIdsToStages"]
        assert not any("AWSPENDING" in labels for labels in stages.values())
        assert secretsmanager.describe_secret(SecretId="tw/alpha")["RotationEnabled"] is True


def test_registered_function_is_matched_by_name_too(clock: StackClock, routes: None) -> None:
    with mock_aws():
        secretsmanager = boto3.client("secretsmanager", region_name=REGION)
        secretsmanager.create_secret(Name="tw/alpha", SecretString="token-v1")
        steps: list[str] = []
        lambda_router.register("tokenwarden-rotation", _rotation_handler(secretsmanager, steps))

        secretsmanager.rotate_secret(
            SecretId="tw/alpha", RotationLambdaARN=ROTATION_ARN, RotationRules={"AutomaticallyAfterDays": 30}
        )

        assert steps == ["createSecret", "setSecret", "testSecret", "finishSecret"]


def test_a_failing_handler_makes_rotate_secret_fail_without_leaking_its_message(
    clock: StackClock, routes: None
) -> None:
    leaked = "secret-token-that-must-not-leak"
    steps: list[str] = []

    def failing(event: dict[str, Any], context: Any) -> None:
        steps.append(event["Step"])
        raise RuntimeError(f"could not create key {leaked}")

    with mock_aws():
        secretsmanager = boto3.client("secretsmanager", region_name=REGION)
        secretsmanager.create_secret(Name="tw/alpha", SecretString="token-v1")
        lambda_router.register(ROTATION_ARN, failing)

        with pytest.raises(ClientError) as exc:
            secretsmanager.rotate_secret(
                SecretId="tw/alpha",
                RotationLambdaARN=ROTATION_ARN,
                RotationRules={"AutomaticallyAfterDays": 30},
            )

        assert _error(exc) == ("InvalidRequestException", 400)
        message = exc.value.response["Error"]["Message"]
        assert "createSecret" in message
        assert "RuntimeError" in message
        assert leaked not in str(exc.value)
        assert steps == ["createSecret"]
        current = secretsmanager.get_secret_value(SecretId="tw/alpha", VersionStage="AWSCURRENT")
        assert current["SecretString"] == "token-v1"
        stages = secretsmanager.describe_secret(SecretId="tw/alpha")["VersionIdsToStages"]
        assert sum("AWSPENDING" in labels for labels in stages.values()) == 1  # moto leaves it behind


def test_unregistered_functions_fall_through_to_moto(clock: StackClock, routes: None) -> None:
    with mock_aws():
        secretsmanager = boto3.client("secretsmanager", region_name=REGION)
        secretsmanager.create_secret(Name="tw/alpha", SecretString="token-v1")
        lambda_router.register(ROTATION_ARN, lambda event, context: None)
        lambda_router.unregister_all()

        with pytest.raises(ClientError) as exc:
            secretsmanager.rotate_secret(
                SecretId="tw/alpha",
                RotationLambdaARN=ROTATION_ARN,
                RotationRules={"AutomaticallyAfterDays": 30},
            )

        assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
