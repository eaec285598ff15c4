"""The one rule for a break-glass reason, as the CLI, the revoke function and BreakGlass apply it."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from tokenwarden.domain.reason import MAX_REASON_LENGTH, Reason, ReasonError, checked_reason


def test_a_reason_is_kept_without_surrounding_whitespace() -> None:
    assert checked_reason("  token pasted in #général ✓ ") == "token pasted in #général ✓"
    assert checked_reason("x" * MAX_REASON_LENGTH) == "x" * MAX_REASON_LENGTH


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "--reason must say why"),
        (" \t ", "--reason must say why"),
        ("x" * (MAX_REASON_LENGTH + 1), f"keep it to {MAX_REASON_LENGTH} or fewer"),
        ("leaked\n[INFO] approved", "one line of printable text"),
        ("leaked\x1b[2J", "one line of printable text"),
        ("token in \u202egnp.exe", "one line of printable text"),
    ],
)
def test_an_unusable_reason_is_refused_naming_what_was_given(raw: str, fragment: str) -> None:
    with pytest.raises(ReasonError, match=fragment.replace("[", r"\[")):
        checked_reason(raw, "--reason")


def test_a_request_field_follows_the_same_rule() -> None:
    class Request(BaseModel):
        reason: Reason

    assert Request(reason=" leaked ").reason == "leaked"
    with pytest.raises(ValidationError, match="must say why"):
        Request(reason="   ")
    with pytest.raises(ValidationError, match="printable"):
        Request(reason="a\nb")
