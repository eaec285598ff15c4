"""Writing the journal records (tokenwarden.domain.journal) into the ledger's append-only history.

A journal write is evidence, not control: the run has already done (and announced) what the record
describes, so a failed write is logged and counted (`JournalWriteFailed`, which an alarm can watch)
and the run goes on; it never undoes or repeats the work it describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from tokenwarden.domain.journal import JournalRecord
from tokenwarden.errors import AwsError
from tokenwarden.observability import count, logger


class Journal(Protocol):
    def append_history(self, principal: str, key: str, record: Mapping[str, Any]) -> bool:
        """Write a history record unless one exists under `key` (never overwritten)."""
        ...


def write_record(journal: Journal | None, principal: str, record: JournalRecord) -> None:
    """Append `record` under `principal`; a journal of None (not configured) writes nothing."""
    if journal is None:
        return
    try:
        journal.append_history(principal, record.key, record.model_dump(mode="json"))
    except AwsError as exc:
        count("JournalWriteFailed", 1)
        logger.warning(
            "journal record not written",
            extra={"principal": principal, "record": record.key, "error": exc.code},
        )
