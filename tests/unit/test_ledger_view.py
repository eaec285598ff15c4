"""The last thing that happened to a principal's keys, as `tokenwarden status` names it."""

from __future__ import annotations

from tests.unit.builders import NOW, credential, days, entry, healthy, rotated
from tokenwarden.domain.ledger_view import LedgerEvent, last_event
from tokenwarden.domain.model import LedgerState


def test_an_empty_ledger_has_no_last_event() -> None:
    assert last_event(()) is None


def test_the_first_activation_is_the_onboarding() -> None:
    assert last_event(healthy(age=days(10)).ledger) == LedgerEvent("onboarded", NOW - days(10))


def test_a_later_activation_is_a_rotation() -> None:
    assert last_event(rotated(superseded=days(2)).ledger) == LedgerEvent("rotated", NOW - days(2))


def test_a_deactivation_is_a_retirement_unless_the_principal_was_offboarded() -> None:
    retired = rotated(superseded=days(9), deactivated=days(1)).ledger
    assert last_event(retired) == LedgerEvent("retired", NOW - days(1))

    k1 = credential("K1", created_at=NOW - days(30))
    offboarded = entry(
        "v1",
        LedgerState.RETIRED,
        cred=k1,
        activated_at=k1.created_at,
        deactivated_at=NOW - days(3),
        reason="offboarded",
    )
    assert last_event((offboarded,)) == LedgerEvent("offboarded", NOW - days(3))


def test_the_newest_of_revoke_and_delete_wins() -> None:
    k1 = credential("K1", created_at=NOW - days(30))
    revoked = entry("v1", LedgerState.RETIRED, cred=k1, activated_at=k1.created_at, revoked_at=NOW - days(5))
    assert last_event((revoked,)) == LedgerEvent("revoked", NOW - days(5))
    deleted = revoked.model_copy(update={"deleted_at": NOW - days(1)})
    assert last_event((deleted,)) == LedgerEvent("deleted", NOW - days(1))
