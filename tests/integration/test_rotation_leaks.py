"""Hostile token values through the whole rotation path: IAM issuing them, the rotation function
storing and probing them, Secrets Manager retrying, the failure announced. None of them may reach a
log record (as Powertools writes it), an SNS message, a return value, a run report, an exception's
text, repr, traceback or chain, or what X-Ray would record of it."""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aws_xray_sdk.core.models.throwable import Throwable

from tests.conftest import T0, Env, days
from tokenwarden.local import iam_ssc, realism
from tokenwarden.local.fake_context import FakeContext
from tokenwarden.local.stack import load_function
from tokenwarden.observability import logger as powertools_logger

MARK = "Zq7LeakMark"

# Each holds the mark, so that any part of it can be found; the long one holds it every kilobyte.
HOSTILE = {
    "crlf": f"{MARK}\r\nX-Injected: 1",
    "double quote": f'{MARK}"}}, "injected": "',
    "backslash": f"{MARK}\\u0000\\n\\",
    "unicode": f"{MARK}tök€n\u2028end",
    "json": f'{{"token": "{MARK}", "nested": {{"a": [1, 2]}}}}',
    "nul and escape": f"{MARK}\x00\x1btail",
    "100 KB": (MARK + "A" * 1013) * 100,
}
STORABLE = {name: value for name, value in HOSTILE.items() if len(value) < 65536}


class Records(logging.Handler):
    """Every record of the product's logger as Powertools formats it, and its raw attributes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(powertools_logger.registered_formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.lines.append(repr(record.__dict__))


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> Iterator[Records]:
    caplog.set_level(logging.DEBUG)
    handler = Records()
    product = logging.getLogger(powertools_logger.name)
    level = product.level
    product.addHandler(handler)
    product.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        product.removeHandler(handler)
        product.setLevel(level)


def exception_texts(error: BaseException) -> list[str]:
    """What logs, traces and dead letters could keep of an exception, its chain included."""
    texts = [
        str(error),
        repr(error),
        "".join(traceback.format_exception(type(error), error, error.__traceback__, chain=True)),
        repr(Throwable(error, traceback.extract_tb(error.__traceback__)).to_dict()),
    ]
    linked = error.__cause__ or error.__context__
    while linked is not None:
        texts += [str(linked), repr(linked)]
        linked = linked.__cause__ or linked.__context__
    return texts


def rotation_function(env: Env, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The rotation function as Lambda loads it, configured for this world."""
    env.use_handlers(monkeypatch)
    return load_function("rotate_secret")


def invoke(
    env: Env, function: Any, step: str, secret: str, version: str
) -> tuple[object, BaseException | None]:
    context = FakeContext(
        function_name="tokenwarden-rotate-secret", invoked_function_arn=str(env.settings.rotation_lambda_arn)
    )
    event = {"Step": step, "SecretId": secret, "ClientRequestToken": version}
    try:
        return function.lambda_handler(event, context), None
    except Exception as error:
        return None, error


def assert_nowhere(value: str, texts: list[str]) -> None:
    haystack = "\n".join(texts)
    assert MARK not in haystack
    for piece in value.splitlines():  # what a log line split at CR/LF would keep
        assert len(piece) < 8 or piece not in haystack


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_token_from_iam_reaches_no_log_message_result_or_error(
    env: Env, monkeypatch: pytest.MonkeyPatch, records: Records, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    env.run()
    env.messages()
    issued: list[str] = []

    def hostile_secret() -> str:
        issued.append(value)
        return value

    monkeypatch.setattr(iam_ssc, "_new_secret", hostile_secret)
    reports = [env.run(T0 + days(80))]  # every principal is due: Secrets Manager rotates in the background
    function = rotation_function(env, monkeypatch)
    secret = env.settings.naming.secret_name("platform-eng")
    pending = next(v for v, stages in env.secret_versions("platform-eng").items() if "AWSPENDING" in stages)
    results, errors = [], []
    for step in ("createSecret", "testSecret", "finishSecret"):  # a late retry, as Lambda runs it
        result, error = invoke(env, function, step, secret, pending)
        results.append(result)
        errors.append(error)
    reports.append(env.run(T0 + days(81)))  # the next night sees the failed rotation

    messages = env.messages()
    failures = [m for m in messages if m["_attributes"]["event_type"] == "rotation_failed"]
    background = [r.as_dict() for r in realism.rotation_records()]
    assert issued, "IAM never issued the hostile value: the test proves nothing"
    assert failures, "no rotation failed: the hostile value was never used"
    assert any(r["failures"] for r in background)
    assert any(e is not None for e in errors)
    texts = (
        records.lines
        + [caplog.text]
        + [str(m) for m in messages]
        + [repr(r) for r in results]
        + [r.model_dump_json() for r in reports]
        + [repr(b) for b in background]
        + [t for e in errors if e is not None for t in exception_texts(e)]
    )
    assert_nowhere(value, texts)


@pytest.mark.parametrize("value", list(STORABLE.values()), ids=list(STORABLE))
def test_a_hostile_value_in_the_pending_version_fails_test_secret_without_quoting_it(
    env: Env, monkeypatch: pytest.MonkeyPatch, records: Records, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    env.run()
    env.messages()
    secret = env.settings.naming.secret_name("platform-eng")
    version = str(uuid.uuid4())
    env.client("secretsmanager").put_secret_value(
        SecretId=secret, ClientRequestToken=version, SecretString=value, VersionStages=["AWSPENDING"]
    )
    function = rotation_function(env, monkeypatch)

    result, error = invoke(env, function, "testSecret", secret, version)

    assert result is None and error is not None
    assert "characters a bearer token cannot have" in str(error)
    assert error.__cause__ is None and error.__context__ is None
    (failed,) = [m for m in env.messages() if m["_attributes"]["event_type"] == "rotation_failed"]
    assert "characters a bearer token cannot have" in str(failed)
    assert_nowhere(value, [*records.lines, caplog.text, str(failed), *exception_texts(error)])


def test_a_value_iam_issues_that_is_not_a_bearer_token_is_never_stored(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.run()
    env.messages()
    value = HOSTILE["crlf"]
    monkeypatch.setattr(iam_ssc, "_new_secret", lambda: value)
    env.log.calls.clear()

    env.client("secretsmanager").rotate_secret(SecretId="tokenwarden/platform-eng", RotateImmediately=True)
    env.settle()

    assert "iam:CreateServiceSpecificCredential" in env.log.calls
    assert "secretsmanager:PutSecretValue" not in env.log.calls
    sm = env.client("secretsmanager")
    for version in env.secret_versions("platform-eng"):
        try:
            stored = sm.get_secret_value(SecretId="tokenwarden/platform-eng", VersionId=version)
        except sm.exceptions.ResourceNotFoundException:
            continue  # the empty AWSPENDING version Secrets Manager made
        assert MARK not in stored.get("SecretString", "")
    (failed,) = [m for m in env.messages() if m["_attributes"]["event_type"] == "rotation_failed"]
    assert "createSecret: the token holds characters a bearer token cannot have" in str(failed)


def test_an_unparsable_answer_quoting_a_new_token_stays_inside_the_reconciler(
    env: Env, monkeypatch: pytest.MonkeyPatch, records: Records
) -> None:
    """botocore's ResponseParserError is a plain Exception whose text is the raw response: IAM's
    answer, with the new key's token. Onboarding runs the steps in-process; the principal fails,
    the run goes on, and the token is in no report, log record, message or escaping exception."""
    from botocore.parsers import ResponseParserError

    def unparsable(**_: Any) -> Any:
        raise ResponseParserError(
            f"Unable to parse response, invalid XML received:\nb'<Secret>{MARK}</Secret>'"
        )

    monkeypatch.setattr(env.adapters.iam._iam, "create_service_specific_credential", unparsable)
    try:
        report = env.run()
    except Exception as error:  # the test fails below, naming what escaped, without the token
        pytest.fail(f"the run raised {type(error).__name__}: {'token' if MARK in str(error) else str(error)}")
    failed = [o for o in report.outcomes if o.status == "failed"]
    assert {o.principal for o in failed} == {p.id for p in env.registry.principals}
    assert all(o.error and "ResponseParserError" in o.error for o in failed), failed
    texts = [report.model_dump_json(), *records.lines, *(str(m) for m in env.messages())]
    assert_nowhere(MARK, texts)
