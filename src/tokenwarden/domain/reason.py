"""The rule for the reason a person gives for a break-glass action (a revoke, a forced restore).

A reason goes into the ledger and the alert, so it must say something, fit in a message, and be
one line of printable text: no line break that could forge a log line, no control or invisible
formatting character that could hide what it says.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

MAX_REASON_LENGTH = 500


class ReasonError(ValueError):
    """The reason given is empty, too long or not one printable line; the message says which."""


BREAK_GLASS = "a break-glass action needs a reason, recorded in the ledger and the alert"


def checked_reason(raw: str, what: str = "the reason", needed: str = BREAK_GLASS) -> str:
    """`raw` without surrounding whitespace, if it is a usable reason; `what` names it in the error
    (a CLI option, a payload field), `needed` says what needs it and where it goes."""
    reason = raw.strip()
    if not reason:
        raise ReasonError(f"{what} must say why: {needed}")
    if len(reason) > MAX_REASON_LENGTH:
        raise ReasonError(f"{what} is {len(reason)} characters; keep it to {MAX_REASON_LENGTH} or fewer")
    if not reason.isprintable():
        raise ReasonError(f"{what} must be one line of printable text (no control characters)")
    return reason


Reason = Annotated[str, AfterValidator(checked_reason)]
"""A reason field of a request model: validated by `checked_reason`."""
