"""The two adapters that hand a token to AWS never let it out in an error."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tokenwarden.adapters.iam import IamAdapter
from tokenwarden.adapters.secrets import SecretsAdapter, SecretWriteError

TOKEN = "cw-bearer-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"


class EchoingSecretsManager:
    """A client whose error quotes the request, as some services and client validators do."""

    def put_secret_value(self, **request: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "InvalidRequestException", "Message": f"refused {request}"}}, "PutSecretValue"
        )


def test_a_failed_put_names_the_version_and_code_but_not_the_token() -> None:
    with pytest.raises(SecretWriteError) as caught:
        SecretsAdapter(EchoingSecretsManager()).put_pending("tokenwarden/alpha", "v-1", TOKEN)

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
        IamAdapter(NoSecretIam()).create_credential("tw-alpha", 90)
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
