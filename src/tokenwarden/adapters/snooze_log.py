"""Snooze records in the ledger table, next to the health check's own record.

Keys: ``pk = HEALTH``, ``sk = SNOOZE#<team>#<when, ISO-8601 UTC>``. A record is written once with a
conditional put and never rewritten or deleted: the snoozes are history, like revokes. Every record
of every team is read with one paged Query on that partition: one read per health run, whatever the
number of teams.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tokenwarden.adapters.aws import translating
from tokenwarden.adapters.ledger import _append as append_once
from tokenwarden.domain.snooze import SnoozeRecord
from tokenwarden.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PARTITION = "HEALTH"
PREFIX = "SNOOZE#"


def record_key(record: SnoozeRecord) -> dict[str, Any]:
    at = record.at.astimezone(UTC).isoformat(timespec="microseconds")
    return {"pk": {"S": PARTITION}, "sk": {"S": f"{PREFIX}{record.team}#{at}"}}


class DynamoSnoozeLog:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = translating(client)
        self._table = table

    def append(self, record: SnoozeRecord) -> bool:
        """Write the record; False when another record holds its key (and it is not this one, as a
        retried write that landed the first time finds)."""
        key = record_key(record)
        return append_once(
            self._db, self._table, key["pk"]["S"], key["sk"]["S"], record.model_dump(mode="json")
        )

    def records(self) -> list[SnoozeRecord]:
        """Every snooze and unsnooze of every team, in key order (team, then time)."""
        found: list[SnoozeRecord] = []
        for page in self._db.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :s)",
            ExpressionAttributeValues={":pk": {"S": PARTITION}, ":s": {"S": PREFIX}},
            ConsistentRead=True,
        ):
            found += [record for item in page["Items"] if (record := _readable(item)) is not None]
        return found


def _readable(item: dict[str, Any]) -> SnoozeRecord | None:
    """The item's snooze, or None (logged by its key) when it cannot be read: one damaged record
    must not stop the health check, and a snooze that cannot be read silences nothing."""
    try:
        return SnoozeRecord.model_validate_json(item["record"]["S"])
    except (KeyError, ValidationError):
        logger.warning("a snooze record cannot be read and is ignored", extra={"sk": item["sk"]["S"]})
        return None
