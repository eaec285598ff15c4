"""The two adapters that hand a token to AWS never let it out in an error."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tokenwarden.adapters.iam import IamAdapter
from tokenwarden.adapters.secrets import SecretsAdapter, SecretWriteError

TOKEN = "cw-bearer-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"


def stand_in(client: object) -> Any:
    """A stand-in for a boto3 client with only the calls the test makes, passed where the adapter
    takes the real client's type."""
    return client


class EchoingSecretsManager:
    """A client whose error quotes the request, as some services and client validators do."""

    def put_secret_value(self, **request: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "InvalidRequestException", "Message": f"refused {request}"}}, "PutSecretValue"
        )


def test_a_failed_put_names_the_version_and_code_but_not_the_token() -> None:
    with pytest.raises(SecretWriteError) as caught:
        SecretsAdapter(stand_in(EchoingSecretsManager())).put_pending("tokenwarden/alpha", "v-1", TOKEN)

    error = caught.value
    assert TOKEN not in str(error) and TOKEN not in repr(error)
    assert "InvalidRequestException" in str(error) and "v-1" in str(error)
    assert error.__cause__ is None and error.__suppress_context__  # no chained original with the request


class NoSecretIam:
    def create_service_specific_credential(self, **_: Any) -> dict[str, Any]:
        return {
            "ServiceSpecificCredential": {
                "ServiceSpecificCredentialId": "ACCA0000000000000000A",
                "UserName": "tw-alpha",
                "ServiceCredentialAlias": "tw-alpha-at-1",
                "ServiceCredentialSecret": 12345,
                "Status": "Active",
                "CreateDate": "2027-01-01T00:00:00Z",
            }
        }


def test_an_unusable_secret_in_the_answer_is_refused_without_quoting_it() -> None:
    with pytest.raises(RuntimeError, match="no usable secret") as caught:
        IamAdapter(stand_in(NoSecretIam())).create_credential("tw-alpha", 90)
    assert "12345" not in str(caught.value)


@pytest.mark.parametrize(
    "hostile",
    [TOKEN + "\r\nX-Injected: 1", '"' + TOKEN + '"', TOKEN + "\\", TOKEN + "\x00", "tök€n" + TOKEN],
    ids=["crlf", "quotes", "backslash", "nul", "unicode"],
)
def test_what_the_rotation_function_raises_for_a_response_botocore_cannot_parse_quotes_nothing(
    hostile: str,
) -> None:
    """botocore's ResponseParserError quotes the raw response (here, IAM's answer holding the new
    token). The rotation function raises a fresh error in its place that names the type only."""
    import traceback

    from botocore.parsers import ResponseParserError

    from tokenwarden.service.rotation import RotationError, describe_error, token_free

    try:
        raise ResponseParserError(f"Unable to parse response, invalid XML received:\nb'{hostile}'")
    except ResponseParserError as exc:
        original = exc
    replacement = token_free(original)

    assert isinstance(replacement, RotationError)
    assert describe_error(original) == "ResponseParserError"
    texts = [str(replacement), repr(replacement), "".join(traceback.format_exception(replacement))]
    assert not any(TOKEN in text for text in texts)
    assert replacement.__cause__ is None and replacement.__context__ is None


# -- botocore's errors become TokenWarden's at the boundary --------------------------------------


class FailingClient:
    """A boto3 client stand-in whose every call, and every page, raises `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_user(self, **_: Any) -> Any:
        raise self.error

    def get_paginator(self, operation: str) -> Any:
        client = self

        class Paginator:
            def paginate(self, **_: Any) -> Any:
                yield {"Users": [{"UserName": "tw-alpha", "Path": "/tokenwarden/", "Arn": "arn"}]}
                raise client.error

        return Paginator()


def raised_by(call: Any) -> BaseException:
    with pytest.raises(Exception) as caught:
        call()
    return caught.value


def test_an_aws_refusal_becomes_an_aws_error_with_its_operation_code_message_and_status() -> None:
    from tokenwarden.errors import AwsError

    refusal = ClientError(
        {
            "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "GetUser",
    )
    error = raised_by(lambda: IamAdapter(stand_in(FailingClient(refusal))).get_user("tw-alpha"))

    assert isinstance(error, AwsError)
    assert (error.operation, error.code, error.message, error.http_status) == (
        "GetUser",
        "ThrottlingException",
        "Rate exceeded",
        400,
    )
    assert error.throttled and not error.access_denied
    assert error.__cause__ is None and error.__context__ is None


def test_a_failure_on_a_later_page_is_translated_too() -> None:
    from tokenwarden.errors import AwsError

    refusal = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListUsers")
    error = raised_by(lambda: IamAdapter(stand_in(FailingClient(refusal))).list_users("/tokenwarden/"))

    assert isinstance(error, AwsError) and error.access_denied
    assert error.__cause__ is None and error.__context__ is None


@pytest.mark.parametrize(
    ("make", "reason", "endpoint"),
    [
        ("no_credentials", "no-credentials", None),
        ("no_region", "no-region", None),
        ("unreachable", "unreachable", "https://iam.amazonaws.com"),
        ("unparsable", "client", None),
        ("invalid_parameter", "client", None),
    ],
)
def test_a_failure_to_ask_aws_becomes_aws_unavailable_naming_its_kind_never_its_text(
    make: str, reason: str, endpoint: str | None
) -> None:
    from botocore.exceptions import (
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ParamValidationError,
    )
    from botocore.parsers import ResponseParserError

    from tokenwarden.errors import AwsUnavailable

    original: Exception = {
        "no_credentials": lambda: NoCredentialsError(),
        "no_region": lambda: NoRegionError(),
        "unreachable": lambda: EndpointConnectionError(endpoint_url="https://iam.amazonaws.com"),
        "unparsable": lambda: ResponseParserError(f"Unable to parse response: b'<Secret>{TOKEN}</Secret>'"),
        "invalid_parameter": lambda: ParamValidationError(report=f"Invalid value {TOKEN}"),
    }[make]()
    error = raised_by(lambda: IamAdapter(stand_in(FailingClient(original))).get_user("tw-alpha"))

    assert isinstance(error, AwsUnavailable)
    assert (error.reason, error.kind, error.endpoint) == (reason, type(original).__name__, endpoint)
    assert TOKEN not in str(error) and TOKEN not in repr(error)
    assert error.__cause__ is None and error.__context__ is None
