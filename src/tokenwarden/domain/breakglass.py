"""What a revoke does when it meets a revoke already made, or one still under way. Pure.

Break-glass is run by a person in a hurry, so the same revoke is often run twice: a retry after a
timeout, a second operator on the same alert, a run killed halfway. Running it again must change
nothing more than the first run would have, and must finish what an interrupted run left:

* A revoke with the same reason as the principal's latest revoke with that reason, within
  :data:`REPEAT_WINDOW` of it and not restored, is that revoke run again (:func:`decide_repeat`).
  It records nothing new for the keys that revoke took, and leaves alone the replacement its
  first run issued. Any other revoke is a new one, with a record of its own.
* Each key on the user is judged on its own (:func:`decide_key`): an Active key is switched off;
  an Inactive key whose record still says it is live and not revoked was switched off by a run
  killed before it could record it, so it is taken into this revoke's record; a key the repeated
  revoke already took, or issued, is left alone; a key already off is left alone.
* A key record is marked revoked once, by the revoke that took it (:func:`is_marked`): a run that
  finds records not yet marked announces the revoke and marks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from tokenwarden.domain.model import Credential, LedgerEntry, LedgerState

__all__ = [
    "REPEAT_WINDOW",
    "EarlierRevoke",
    "KeyDecision",
    "KeyOutcome",
    "RepeatDecision",
    "RepeatOutcome",
    "decide_key",
    "decide_repeat",
    "is_marked",
    "is_stranded",
]

REPEAT_WINDOW = timedelta(hours=24)
"""A second revoke with the same reason within this window is the same revoke, run again."""

_LIVE_STATES = (LedgerState.CURRENT, LedgerState.PREVIOUS)


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True)


class EarlierRevoke(_Value):
    """What the decision needs to know of a recorded revoke."""

    number: int
    reason: str
    revoked_at: datetime
    restored: bool = False
    credential_ids: frozenset[str] = frozenset()
    """The keys it took."""


# -- is this revoke one already made? ----------------------------------------------------------------


class RepeatOutcome(StrEnum):
    NEW = "new"
    """No earlier revoke has this reason: a new revoke."""
    RESTORED = "restored"
    """The latest revoke with this reason was undone: the same reason again is a new revoke."""
    STALE = "stale"
    """The latest revoke with this reason is older than the repeat window: a new revoke."""
    REPEAT = "repeat"
    """The same revoke run again: it finishes that revoke and takes only what it left."""


class RepeatDecision(_Value):
    outcome: RepeatOutcome
    reason: str
    """Why, in a sentence (for logs and tests)."""
    repeats: int | None = None
    """The number of the revoke this one repeats (only for ``REPEAT``)."""

    @property
    def is_repeat(self) -> bool:
        return self.outcome is RepeatOutcome.REPEAT

    def takes_held_off(self, reissue: bool) -> bool:
        """Whether the keys an earlier revoke still holds off join this revoke's record: only a new
        revoke that issues a replacement makes them leaked too (a repeat already decided that)."""
        return reissue and not self.is_repeat

    def reports_repeated(self, taken: int) -> bool:
        """A repeat that found nothing left to take is reported as already revoked."""
        return self.is_repeat and taken == 0


def decide_repeat(earlier: Sequence[EarlierRevoke], reason: str, now: datetime) -> RepeatDecision:
    """Whether a revoke for ``reason`` at ``now`` repeats one of the ``earlier`` revokes (in number
    order): only the latest with the same reason may be repeated, while recent and not restored."""
    same = [revoke for revoke in earlier if revoke.reason == reason]
    if not same:
        return RepeatDecision(outcome=RepeatOutcome.NEW, reason="no earlier revoke has this reason")
    latest = same[-1]
    if latest.restored:
        return RepeatDecision(
            outcome=RepeatOutcome.RESTORED,
            reason=f"revoke #{latest.number}, with the same reason, was restored",
        )
    if now - latest.revoked_at >= REPEAT_WINDOW:
        return RepeatDecision(
            outcome=RepeatOutcome.STALE,
            reason=f"revoke #{latest.number}, with the same reason, is older than {REPEAT_WINDOW}",
        )
    return RepeatDecision(
        outcome=RepeatOutcome.REPEAT,
        reason=f"revoke #{latest.number} had the same reason "
        f"{(now - latest.revoked_at) / timedelta(hours=1):.1f} h ago and was not restored",
        repeats=latest.number,
    )


# -- what becomes of each key -------------------------------------------------------------------------


class KeyOutcome(StrEnum):
    SWITCH_OFF = "switch_off"
    """Active: switched off and recorded by this revoke."""
    RECORD_STRANDED = "record_stranded"
    """Switched off by a run killed before it recorded it: taken into this revoke's record."""
    ALREADY_TAKEN = "already_taken"
    """The revoke this one repeats took it: nothing more to do."""
    REPLACEMENT = "replacement"
    """Made after the revoke this one repeats (its replacement): the same revoke must not take it."""
    ALREADY_OFF = "already_off"
    """Inactive or expired, and its record says so: nothing to do."""


class KeyDecision(_Value):
    credential_id: str
    outcome: KeyOutcome
    reason: str

    @property
    def taken(self) -> bool:
        """Whether this revoke takes the key (switches it off if needed, and records it)."""
        return self.outcome in (KeyOutcome.SWITCH_OFF, KeyOutcome.RECORD_STRANDED)


def is_stranded(cred: Credential, known: LedgerEntry | None) -> bool:
    """Inactive, yet recorded live and neither revoked nor deactivated: a revoke switched it off and
    died before it wrote anything."""
    return (
        cred.status == "Inactive"
        and known is not None
        and known.state in _LIVE_STATES
        and known.revoked_at is None
        and known.deactivated_at is None
    )


def _made_after(cred: Credential, known: LedgerEntry | None, repeat: EarlierRevoke) -> bool:
    """Made at or after ``repeat``: by its reissue (the record's time when there is one, IAM's if not)."""
    return (known.created_at if known else cred.created_at) >= repeat.revoked_at


def decide_key(cred: Credential, known: LedgerEntry | None, repeat: EarlierRevoke | None) -> KeyDecision:
    """What a revoke does with one key on the user; ``known`` is its ledger record, ``repeat`` the
    revoke this one repeats (None for a new revoke)."""

    def decided(outcome: KeyOutcome, reason: str) -> KeyDecision:
        return KeyDecision(credential_id=cred.id, outcome=outcome, reason=reason)

    if repeat is not None and cred.id in repeat.credential_ids:
        return decided(KeyOutcome.ALREADY_TAKEN, f"revoke #{repeat.number} took it")
    if repeat is not None and _made_after(cred, known, repeat):
        return decided(KeyOutcome.REPLACEMENT, f"made after revoke #{repeat.number}, by its reissue")
    if cred.status == "Active":
        return decided(KeyOutcome.SWITCH_OFF, "it is Active")
    if is_stranded(cred, known):
        return decided(KeyOutcome.RECORD_STRANDED, "switched off by a run that did not record it")
    return decided(KeyOutcome.ALREADY_OFF, f"it is {cred.status}, and no run left it unrecorded")


def is_marked(known: LedgerEntry | None, revoked_at: datetime) -> bool:
    """Whether the key record already says the revoke of ``revoked_at`` took it."""
    return known is not None and known.revoked_at == revoked_at
