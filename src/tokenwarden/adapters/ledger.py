"""The ledger: a DynamoDB table recording which IAM key each secret version holds, and what
break-glass did to them.

Keys: `pk = P#<principal>`; `sk = V#<version id>` for a key record (the key's present state,
rewritten as it changes), `H#<key>` for a history record (a revoke or a restore, see
service/breakglass.py; a repair or a refused takeover, see domain/journal.py: written once with a
conditional put and never rewritten), `LOCK` for the per-principal lease (see service/lease.py).
`pk = HEALTH` holds the health check's state (`sk = TEAMS`), its transitions (`sk =
H#<team>#<key>`) and the snoozes (`sk = SNOOZE#<team>#<time>`, see adapters/snooze_log.py). Records are never deleted: they are the history that later runs, the audit, the
health check's likely-cause hints and the evidence report read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from tokenwarden.adapters.aws import translating
from tokenwarden.domain.journal import HistoryItem
from tokenwarden.domain.model import LedgerEntry
from tokenwarden.errors import AwsError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_SER = TypeSerializer()
_DE = TypeDeserializer()
HISTORY = "H#"
_DATES = ("created_at", "expires_at", "activated_at", "superseded_at", "deactivated_at", "deleted_at")


def _pk(principal: str) -> str:
    return f"P#{principal}"


def _to_item(entry: LedgerEntry) -> dict[str, Any]:
    raw = entry.model_dump(mode="json", exclude_none=True)
    raw["notified"] = sorted(entry.notified)
    raw["pk"] = _pk(entry.principal)
    raw["sk"] = f"V#{entry.version_id}"
    return {k: _SER.serialize(v) for k, v in raw.items()}


def _from_item(item: dict[str, Any]) -> LedgerEntry:
    raw = {k: _DE.deserialize(v) for k, v in item.items() if k not in ("pk", "sk")}
    raw["notified"] = frozenset(raw.get("notified") or ())
    return LedgerEntry.model_validate(raw)


class DynamoLedger:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._db = translating(client)
        self._table = table

    def health_store(self) -> DynamoHealthStore:
        """The health check's team records, in the same table through the same client."""
        return DynamoHealthStore(self._client, self._table)

    def scan(self) -> list[LedgerEntry]:
        entries: list[LedgerEntry] = []
        for page in self._db.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True):
            entries += [_from_item(i) for i in page["Items"] if i["sk"]["S"].startswith("V#")]
        return entries

    def entries(self, principal: str) -> list[LedgerEntry]:
        entries: list[LedgerEntry] = []
        paginator = self._db.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
            ExpressionAttributeValues={":pk": {"S": _pk(principal)}, ":v": {"S": "V#"}},
            ConsistentRead=True,
        ):
            entries += [_from_item(i) for i in page["Items"]]
        return entries

    def get(self, principal: str, version_id: str) -> LedgerEntry | None:
        answer = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": _pk(principal)}, "sk": {"S": f"V#{version_id}"}},
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return _from_item(item) if item else None

    def create(self, entry: LedgerEntry) -> LedgerEntry:
        try:
            self._db.put_item(
                TableName=self._table, Item=_to_item(entry), ConditionExpression="attribute_not_exists(pk)"
            )
        except AwsError as exc:
            if exc.code != "ConditionalCheckFailedException":
                raise
            existing = self.get(entry.principal, entry.version_id)
            if existing is None:
                raise
            return existing
        return entry

    def append_history(self, principal: str, key: str, record: Mapping[str, Any]) -> bool:
        """Write a history record unless one exists under `key`: False when one does. A history
        record is never overwritten (revokes and restores are appended, never edited)."""
        return _append(self._db, self._table, _pk(principal), f"{HISTORY}{key}", record)

    def append_history_and_save(
        self, principal: str, key: str, record: Mapping[str, Any], entry: LedgerEntry
    ) -> bool:
        """Write a history record and a key record in one transaction, unless a history record
        exists under `key`: False when another one does (then nothing is written). A run killed at
        any instant leaves both or neither."""
        pk, sk = _pk(principal), f"{HISTORY}{key}"
        item = {"pk": {"S": pk}, "sk": {"S": sk}, "record": {"S": json.dumps(record, sort_keys=True)}}
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Put": {"TableName": self._table, "Item": _to_item(entry)}},
                ]
            )
        except AwsError as exc:
            if exc.code != "TransactionCanceledException":
                raise
            existing = self._db.get_item(
                TableName=self._table, Key={"pk": item["pk"], "sk": item["sk"]}, ConsistentRead=True
            ).get("Item")
            if existing is None:
                raise  # cancelled for another reason (a conflicting write): nothing was written
            # A retried transaction (the first answered 5xx after it landed) finds its own record.
            return existing.get("record") == item["record"]
        return True

    def history(self, principal: str) -> list[dict[str, Any]]:
        """The principal's history records, in key order."""
        records: list[dict[str, Any]] = []
        for page in self._db.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :h)",
            ExpressionAttributeValues={":pk": {"S": _pk(principal)}, ":h": {"S": HISTORY}},
            ConsistentRead=True,
        ):
            records += [dict(json.loads(i["record"]["S"])) for i in page["Items"]]
        return records

    def history_items(self) -> list[HistoryItem]:
        """Every history record of the table (break-glass, journal, health), with its keys: what the
        evidence report reads and cites."""
        items: list[HistoryItem] = []
        for page in self._db.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True):
            items += [
                HistoryItem(pk=i["pk"]["S"], sk=i["sk"]["S"], record=dict(json.loads(i["record"]["S"])))
                for i in page["Items"]
                if i["sk"]["S"].startswith(HISTORY) and "record" in i
            ]
        return items

    def save(self, entry: LedgerEntry) -> None:
        self._db.put_item(TableName=self._table, Item=_to_item(entry))

    def save_all(self, entries: list[LedgerEntry]) -> None:
        if len(entries) == 1:
            self.save(entries[0])
            return
        self._db.transact_write_items(
            TransactItems=[{"Put": {"TableName": self._table, "Item": _to_item(e)}} for e in entries]
        )

    def acquire(self, principal: str, owner: str, now: datetime, ttl_seconds: int) -> bool:
        return self._put_lease(principal, owner, owner, now, ttl_seconds)

    def hand_over(self, principal: str, owner: str, to_owner: str, now: datetime, ttl_seconds: int) -> bool:
        return self._put_lease(principal, owner, to_owner, now, ttl_seconds)

    def keep(self, principal: str, owner: str, now: datetime, ttl_seconds: int) -> bool:
        """Renew a lease `owner` holds and that has not expired; False when it does not."""
        return self._put_lease(
            principal,
            owner,
            owner,
            now,
            ttl_seconds,
            condition="#o = :holder AND lock_expires >= :now",
        )

    def _put_lease(
        self,
        principal: str,
        holder: str,
        new_owner: str,
        now: datetime,
        ttl_seconds: int,
        condition: str = "attribute_not_exists(pk) OR lock_expires < :now OR #o IN (:holder, :new)",
    ) -> bool:
        """Write the lease for `new_owner` if `condition` holds: by default, if it is free,
        expired, or held by `holder`."""
        values = {
            ":now": {"N": str(int(now.timestamp()))},
            ":holder": {"S": holder},
            ":new": {"S": new_owner},
        }  # DynamoDB refuses a value the condition does not use
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": _pk(principal)},
                    "sk": {"S": "LOCK"},
                    "owner": {"S": new_owner},
                    "lock_expires": {"N": str(int(now.timestamp()) + ttl_seconds)},
                },
                # A retried write (the first answered 5xx after it landed) finds its own owner: also fine.
                ConditionExpression=condition,
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={k: v for k, v in values.items() if k in condition},
            )
        except AwsError as exc:
            if exc.code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, principal: str, owner: str) -> None:
        """Let go of the lease by writing it expired (records are never deleted, so the
        functions' roles need no DeleteItem); a lease someone else holds is left alone."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": _pk(principal)},
                    "sk": {"S": "LOCK"},
                    "owner": {"S": ""},
                    "lock_expires": {"N": "0"},
                },
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except AwsError as exc:
            if exc.code != "ConditionalCheckFailedException":
                raise


def _append(db: Any, table: str, pk: str, sk: str, record: Mapping[str, Any]) -> bool:
    """Put a history record unless one exists under (pk, sk); False when another one does."""
    item = {"pk": {"S": pk}, "sk": {"S": sk}, "record": {"S": json.dumps(record, sort_keys=True)}}
    try:
        db.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
    except AwsError as exc:
        if exc.code != "ConditionalCheckFailedException":
            raise
        # A retried write (the first answered 5xx after it landed) finds its own record: written.
        existing = db.get_item(
            TableName=table, Key={"pk": item["pk"], "sk": item["sk"]}, ConsistentRead=True
        ).get("Item")
        return existing is not None and existing.get("record") == item["record"]
    return True


def create_table(client: DynamoDBClient, table: str) -> None:
    """Create the ledger table as the template declares it (local stack and tests)."""
    try:
        translating(client).create_table(
            TableName=table,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    except AwsError as exc:
        if exc.code != "ResourceInUseException":
            raise


HEALTH_KEY = {"pk": {"S": "HEALTH"}, "sk": {"S": "TEAMS"}}


# DynamoDB refuses an item over 400 KB and a transaction over 4 MB. One part holds the records of a
# few thousand teams; a registry needing more than MAX_PARTS parts is refused with its size named.
PART_BYTES = 300_000
MAX_PARTS = 12
# Reads of the parts while other runs keep saving, before a load gives up (the next run reads again).
MAX_PART_READS = 3


class HealthRecordsError(ValueError):
    """The health records of every team no longer fit one DynamoDB transaction, or a part is gone."""


def health_parts(records: Mapping[str, Any], part_bytes: int = PART_BYTES) -> list[str]:
    """The teams' records as JSON objects of at most `part_bytes` each, in team order; always at
    least one (an empty object for no team)."""
    parts: list[dict[str, Any]] = [{}]
    size = 2
    for team in sorted(records):
        entry = len(json.dumps({team: records[team]}, sort_keys=True, default=str).encode()) - 1
        if parts[-1] and size + entry > part_bytes:
            parts.append({})
            size = 2
        parts[-1][team] = records[team]
        size += entry
    return [json.dumps(part, sort_keys=True, default=str) for part in parts]


def _part_key(index: int) -> dict[str, Any]:
    return HEALTH_KEY if index == 0 else {**HEALTH_KEY, "sk": {"S": f"TEAMS#{index}"}}


class DynamoHealthStore:
    """Every team's health record: one item (`HEALTH`/`TEAMS`), one read and one write per health
    run, until the records outgrow it. Then they are split over parts (`TEAMS`, `TEAMS#1`, ...) that
    are written in one transaction and read in one, so a run never sees half of another's save; the
    first part says how many there are, so parts left over from a larger save are never read."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = translating(client)
        self._table = table

    def load(self) -> dict[str, dict[str, Any]]:
        item = self._db.get_item(TableName=self._table, Key=HEALTH_KEY, ConsistentRead=True).get("Item")
        if not item:
            return {}
        count = int(item.get("parts", {}).get("N", "1"))
        parts = [item] if count == 1 else self._read_parts(count)
        records: dict[str, dict[str, Any]] = {}
        for part in parts:
            records.update(json.loads(part["teams"]["S"]))
        return records

    def _read_parts(self, count: int) -> list[dict[str, Any]]:
        """Every part of one save, read together (the first part again, so its count is theirs). A
        save of another run in between is read instead, at most `MAX_PART_READS` times in all."""
        for _ in range(MAX_PART_READS):
            answer = self._db.transact_get_items(
                TransactItems=[{"Get": {"TableName": self._table, "Key": _part_key(i)}} for i in range(count)]
            )
            parts = [dict(response.get("Item") or {}) for response in answer.get("Responses", [])]
            if len(parts) != count or not all("teams" in part for part in parts):
                raise HealthRecordsError(
                    f"the health records say {count} parts, but not all of them are there"
                )
            saved = int(parts[0]["parts"]["N"])
            if saved == count:
                return parts
            count = saved  # another run saved in between: read its parts
        raise HealthRecordsError(f"the health records changed at each of {MAX_PART_READS} reads")

    def save(self, records: dict[str, dict[str, Any]]) -> None:
        parts = health_parts(records)
        if len(parts) > MAX_PARTS:
            raise HealthRecordsError(
                f"the health records of {len(records)} teams take {len(parts)} parts of "
                f"{PART_BYTES} bytes; at most {MAX_PARTS} fit one DynamoDB transaction"
            )
        items = [
            {**_part_key(i), "teams": {"S": part}, "parts": {"N": str(len(parts))}}
            for i, part in enumerate(parts)
        ]
        if len(items) == 1:
            self._db.put_item(TableName=self._table, Item=items[0])
            return
        self._db.transact_write_items(
            TransactItems=[{"Put": {"TableName": self._table, "Item": item}} for item in items]
        )

    def append_history(self, team: str, key: str, record: Mapping[str, Any]) -> bool:
        """A health transition's journal record, under the health item's own partition (the only
        one the health function may write): `pk = HEALTH`, `sk = H#<team>#<key>`."""
        return _append(self._db, self._table, HEALTH_KEY["pk"]["S"], f"{HISTORY}{team}#{key}", record)
