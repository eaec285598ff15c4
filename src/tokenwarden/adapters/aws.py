"""The one place where botocore's exceptions become TokenWarden's own (tokenwarden/errors.py).

Every adapter talks to its boto3 client through `AwsClient`, so no botocore exception ever leaves
an adapter: AWS's refusal becomes `AwsError`, a failure to ask AWS at all `AwsUnavailable`. The
new exception is raised after the original is gone, with no cause or context leading back to it:
botocore quotes a response it cannot parse (which may hold a token) and some services quote the
request they refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from botocore.parsers import ResponseParserError

from tokenwarden.errors import AwsError, AwsUnavailable

T = TypeVar("T")
C = TypeVar("C")

# The request never left: nothing was changed. A read timeout or a closed connection is not here:
# AWS may have received the request and acted on it.
_UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError)


def aws_error(exc: ClientError) -> AwsError:
    """AWS's answer: the operation, AWS's code and message, the HTTP status; not the request."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return AwsError(
        operation=str(getattr(exc, "operation_name", "") or "an AWS call"),
        code=str(error.get("Code", "") or ""),
        message=str(error.get("Message", "") or ""),
        http_status=status if isinstance(status, int) else None,
    )


def aws_unavailable(exc: Exception) -> AwsUnavailable:
    """Why AWS could not be asked, named by botocore's exception type; never its text."""
    kind = type(exc).__name__
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AwsUnavailable("no-credentials", kind)
    if isinstance(exc, NoRegionError):
        return AwsUnavailable("no-region", kind)
    if isinstance(exc, _UNREACHABLE):
        endpoint = exc.kwargs.get("endpoint_url")
        return AwsUnavailable("unreachable", kind, str(endpoint) if endpoint else None)
    return AwsUnavailable("client", kind)


def translated(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`call(*args, **kwargs)`, raising TokenWarden's errors in place of botocore's."""
    failure: Exception
    try:
        return call(*args, **kwargs)
    except ClientError as exc:
        failure = aws_error(exc)
    except (BotoCoreError, ResponseParserError) as exc:
        failure = aws_unavailable(exc)
    raise failure  # outside the handler: nothing chains back to botocore's exception


class AwsClient:
    """A boto3 client whose calls, and the pages of its paginators, raise only TokenWarden's
    errors. Everything else (`meta`, `exceptions`) is the client's own."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if name == "get_paginator":
            return lambda operation: _Paginator(translated(attribute, operation))
        if name.startswith("_") or not callable(attribute):
            return attribute
        return lambda *args, **kwargs: translated(attribute, *args, **kwargs)


class _Paginator:
    def __init__(self, paginator: Any) -> None:
        self._paginator = paginator

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        pages = translated(lambda: iter(self._paginator.paginate(**kwargs)))
        while (page := translated(next, pages, None)) is not None:
            yield page


def translating(client: C) -> C:
    """`client` behind `AwsClient`, typed as the client itself (its mypy-boto3 type), so that every
    call an adapter makes is checked against the service's API and raises only TokenWarden's errors."""
    return cast(C, AwsClient(client))
