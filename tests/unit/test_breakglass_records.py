"""The break-glass history as data: which revoke is the latest, which one a revoke repeats, what a
record says about who asked, and the bounds on free text. No AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from tokenwarden.service.breakglass import (
    Actor,
    BreakGlassError,
    BreakGlassFailed,
    History,
    RestoreRecord,
    RevokeRecord,
    free_text,
)

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
ONCALL = Actor.caller("arn:aws:sts::123456789012:assumed-role/Oncall/carol")


def revoke(number: int, reason: str = "leak", at: datetime = NOW) -> dict[str, Any]:
    return RevokeRecord(
        principal="alpha", number=number, revoked_at=at, actor=ONCALL, reason=reason, reissue=False, keys=()
    ).model_dump(mode="json")


def restore(number: int, at: datetime = NOW) -> dict[str, Any]:
    return RestoreRecord(principal="alpha", revoke=number, restored_at=at, actor=ONCALL, keys=()).model_dump(
        mode="json"
    )


def test_the_latest_revoke_is_the_highest_number_whatever_the_clock_says() -> None:
    history = History.parse("alpha", [revoke(2, at=NOW - timedelta(hours=1)), restore(1), revoke(1)])
    assert history.latest is not None and history.latest.number == 2
    assert history.next_number == 3
    assert history.restore_of(history.revokes[0]) is not None and history.restore_of(history.latest) is None
    assert History.parse("alpha", []).next_number == 1


def test_a_revoke_repeats_the_latest_one_with_its_reason_only_while_recent_and_not_restored() -> None:
    history = History.parse("alpha", [revoke(1, "leak"), revoke(2, "other")])
    repeated = history.repeat_of("leak", NOW + timedelta(hours=23))
    assert repeated is not None and repeated.number == 1
    assert history.repeat_of("leak", NOW + timedelta(hours=24)) is None
    assert history.repeat_of("something new", NOW) is None
    restored = History.parse("alpha", [revoke(1, "leak"), restore(1)])
    assert restored.repeat_of("leak", NOW) is None  # undone: the same reason again is a new revoke


def test_an_unreadable_record_stops_break_glass_without_quoting_it() -> None:
    broken = {**revoke(1), "reason": None, "note": "hand-edited"}
    with pytest.raises(BreakGlassFailed, match="unreadable; nothing was changed") as caught:
        History.parse("alpha", [broken])
    assert "hand-edited" not in str(caught.value)
    assert History.parse("alpha", [{"kind": "something else"}]).latest is None


def test_an_invoke_is_described_as_a_claim_with_its_request_id() -> None:
    invoked = Actor.invoke(
        "arn:aws:lambda:eu-west-1:123456789012:function:tw-revoke", "r-1", "alice@example.com"
    )
    assert invoked.requester is None
    assert invoked.describe() == (
        "arn:aws:lambda:eu-west-1:123456789012:function:tw-revoke request r-1 (invoker in CloudTrail), "
        "claimed by alice@example.com"
    )
    assert invoked.context() == {
        "acted_as": "arn:aws:lambda:eu-west-1:123456789012:function:tw-revoke",
        "claimed_by": "alice@example.com",
        "request_id": "r-1",
    }
    assert ONCALL.describe() == ONCALL.requester and Actor.of("oncall") == Actor.caller("oncall")


@pytest.mark.parametrize("claim", ["alice\nbob", "alice\x1b[0m", "\u202ealice", "a" * 201])
def test_a_claim_is_bounded_and_printable(claim: str) -> None:
    with pytest.raises(ValidationError):
        Actor.invoke("arn:aws:lambda:eu-west-1:123456789012:function:tw-revoke", "r-1", claim)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a\tb", "printable"),
        ("a\u2029b", "printable"),
        ("a\u00adb", "printable"),
        ("z" * 11, "keep it to 10"),
    ],
)
def test_free_text_is_one_printable_line_within_its_bound(text: str, fragment: str) -> None:
    with pytest.raises(BreakGlassError, match=fragment):
        free_text(text, "the reason", 10)
    assert free_text("  café ✓ ", "the reason", 10) == "café ✓"
