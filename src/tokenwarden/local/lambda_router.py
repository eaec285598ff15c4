"""Serve registered Lambda functions in-process, so moto's RotateSecret runs the rotation handler.

moto's ``SecretsManagerBackend.rotate_secret`` checks the rotation function with
``lambda_backend.get_function(arn)`` and then calls ``lambda_backend.invoke(arn, qualifier=None,
body=<json>, headers={}, response_headers={})`` once per step (``createSecret``, ``setSecret``,
``testSecret``, ``finishSecret``; only ``testSecret`` with ``RotateImmediately=False``), all with the
same ``ClientRequestToken``. moto's Lambda backend runs functions in Docker, which the local stack and
the tests do not have. :func:`register` maps a function ARN (or name) to a Python handler and
:func:`install` patches ``LambdaBackend.get_function`` and ``LambdaBackend.invoke`` (and the
Docker-free ``LambdaSimpleBackend.invoke``): registered functions are answered in-process, every other
name falls through to moto unchanged.

``invoke`` returns what moto's does for a ``RequestResponse`` call: the JSON-encoded result as bytes.

Failures: moto ignores the invoke *result* (even a payload marked ``x-amz-function-error``), so a
handler that raises must raise through moto. The router turns the exception into
:class:`RotationHandlerFailed` (``InvalidRequestException``, HTTP 400), which moto serialises like its
own Secrets Manager errors: the ``RotateSecret`` caller gets a ``ClientError`` in both ``mock_aws`` and
server mode (a plain exception would escape ``mock_aws`` unwrapped and be an HTTP 500, retried by
botocore, in server mode). The steps after the failing one are not invoked and the ``AWSPENDING``
version moto created stays behind, so the next ``RotateSecret`` meets the leftover, as on AWS.
That is moto's synchronous ``RotateSecret`` (the stack's ``gentle`` mode). AWS runs rotation
asynchronously, so there ``RotateSecret`` succeeds and the failure shows up later (a
``RotationFailed`` event, a stuck ``AWSPENDING``): :mod:`tokenwarden.local.async_rotation` (on by
default in the embedded stack) does the same, calling ``invoke`` from a background thread and
retrying the whole rotation. A difference from AWS, on purpose: a Lambda
``Invoke`` API call of a registered function that raises also gets this error, where AWS would answer
200 with ``FunctionError: Unhandled``. The error message names the function, the step and the
exception type only, never the exception's text (it could hold a token), and it is not chained to
the handler's exception.

The handler's context carries ``invoked_function_arn`` as Lambda sets it: the ARN the function was
invoked with. Secrets Manager invokes the secret's ``RotationLambdaARN``, so the rotation function
sees the ARN the secret is configured with, and its check that it is the secret's rotation function
holds in the embedded stack as on AWS.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from moto.awslambda.models import LambdaBackend
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.exceptions import JsonRESTError

from tokenwarden.local.fake_context import FakeContext

__all__ = [
    "Handler",
    "RotationHandlerFailed",
    "RoutedFunction",
    "install",
    "invoked_arn",
    "register",
    "unregister_all",
]

Handler = Callable[[dict[str, Any], Any], object]

_DEFAULT_REGION: Final = "us-east-1"
_DEFAULT_ACCOUNT: Final = "123456789012"
_PATCH_MARK: Final = "__tokenwarden_lambda_router__"


@dataclass(frozen=True)
class RoutedFunction:
    """What the patched ``get_function`` returns for a registered function (a small stand-in)."""

    function_name: str
    function_arn: str
    handler: Handler
    qualifier: str = "$LATEST"
    version: str = "$LATEST"


class RotationHandlerFailed(JsonRESTError):
    """A registered handler raised; surfaces to the API caller as ``InvalidRequestException`` (400)."""

    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("InvalidRequestException", message)


_lock = threading.Lock()
_routes: dict[str, RoutedFunction] = {}


def _split(name_or_arn: str) -> tuple[str, str | None]:
    """(function name, unqualified ARN or None) of a function name or (qualified) function ARN."""
    if name_or_arn.startswith("arn:"):
        parts = name_or_arn.split(":")
        if len(parts) >= 7 and parts[5] == "function":
            return parts[6], ":".join(parts[:7])
    return name_or_arn.split(":")[0], None


def _lookup(name_or_arn: str) -> RoutedFunction | None:
    name, arn = _split(name_or_arn)
    with _lock:
        if arn is not None and arn in _routes:
            return _routes[arn]
        return next((route for route in _routes.values() if route.function_name == name), None)


def register(function_arn: str, handler: Handler) -> None:
    """Serve ``function_arn`` (a function ARN, or a bare name) with ``handler`` in-process.

    Installs the patches on first use. Lookups match the full ARN (any qualifier) or the name.
    """
    name, arn = _split(function_arn)
    if arn is None:
        arn = f"arn:aws:lambda:{_DEFAULT_REGION}:{_DEFAULT_ACCOUNT}:function:{name}"
    install()
    with _lock:
        _routes[arn] = RoutedFunction(function_name=name, function_arn=arn, handler=handler)


def unregister_all() -> None:
    """Forget every registered function (the patches stay; they fall through to moto)."""
    with _lock:
        _routes.clear()


def _decode_event(body: object) -> dict[str, Any]:
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8")
    if body is None or body == "":
        return {}
    try:
        decoded = json.loads(body) if isinstance(body, str) else body
    except ValueError:
        decoded = None
    if not isinstance(decoded, dict):
        raise RotationHandlerFailed("The routed Lambda function expects a JSON object as its event.")
    return decoded


def invoked_arn(route: RoutedFunction, name_or_arn: str, qualifier: str | None) -> str:
    """The ARN the function sees as ``context.invoked_function_arn``, as Lambda gives it: the ARN it
    was invoked with (Secrets Manager invokes the secret's ``RotationLambdaARN``), or, when invoked by
    name, the function's ARN, with the qualifier if one was given."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    return f"{route.function_arn}:{qualifier}" if qualifier else route.function_arn


def _call(route: RoutedFunction, invoked: str, body: object, response_headers: Any) -> bytes:
    event = _decode_event(body)
    context = FakeContext(function_name=route.function_name, invoked_function_arn=invoked)
    failure: str | None = None
    try:
        payload = json.dumps(route.handler(event, context)).encode("utf-8")
    except Exception as exc:
        failure = type(exc).__name__
    if failure is not None:
        # Raised outside the handler above: the handler's exception (whose text could hold a
        # token) is neither the cause nor the context of the error moto serialises.
        step = event.get("Step")
        at_step = f" at step {step}" if isinstance(step, str) else ""
        raise RotationHandlerFailed(f"Lambda function {route.function_name} failed{at_step}: {failure}")
    if isinstance(response_headers, dict):
        response_headers["Content-Length"] = str(len(payload))
    return payload


def _patched_invoke(original: Callable[..., str | bytes | None]) -> Callable[..., str | bytes | None]:
    def invoke(
        self: LambdaBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> str | bytes | None:
        route = _lookup(function_name)
        if route is None:
            return original(self, function_name, qualifier, body, headers, response_headers)
        return _call(route, invoked_arn(route, function_name, qualifier), body, response_headers)

    setattr(invoke, _PATCH_MARK, True)
    return invoke


def _patched_get_function(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_function(self: LambdaBackend, function_name_or_arn: str, qualifier: str | None = None) -> Any:
        route = _lookup(function_name_or_arn)
        if route is None:
            return original(self, function_name_or_arn, qualifier)
        return route

    setattr(get_function, _PATCH_MARK, True)
    return get_function


def install() -> None:
    """Patch moto's Lambda backends (idempotent); unregistered functions keep moto's behaviour."""
    with _lock:
        if not getattr(LambdaBackend.get_function, _PATCH_MARK, False):
            LambdaBackend.get_function = _patched_get_function(LambdaBackend.get_function)  # type: ignore[method-assign]
        for backend_class in (LambdaBackend, LambdaSimpleBackend):
            current = backend_class.__dict__.get("invoke")
            if current is not None and not getattr(current, _PATCH_MARK, False):
                backend_class.invoke = _patched_invoke(current)  # type: ignore[method-assign]
