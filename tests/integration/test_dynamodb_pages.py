"""The embedded stack's Scan and Query pages (`tokenwarden.local.dynamodb_pages`): the answers moto's
serializer gives, without walking every item through it; a Query reads only its partition."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.serialize import ResponseSerializer
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoResult

from tokenwarden.adapters.ledger import create_table
from tokenwarden.local import dynamodb_pages
from tokenwarden.local.dynamodb_pages import partition_items

TABLE = "ledger"
EVERY_PLAIN_TYPE: dict[str, Any] = {
    "s": {"S": "text"},
    "n": {"N": "12.5"},
    "yes": {"BOOL": True},
    "none": {"NULL": True},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "l": {"L": [{"S": "x"}, {"N": "3"}, {"M": {"deep": {"BOOL": False}}}]},
    "m": {"M": {"k": {"S": "v"}, "inner": {"L": [{"NULL": True}]}}},
}


@pytest.fixture
def db() -> Iterator[Any]:
    dynamodb_pages.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE)
        yield client


def fill(db: Any, count: int, **extra: Any) -> None:
    for i in range(count):
        item = {"pk": {"S": "P#a"}, "sk": {"S": f"H#{i:04d}"}, **EVERY_PLAIN_TYPE, **extra}
        db.put_item(TableName=TABLE, Item=item)


def answers(db: Any) -> list[dict[str, Any]]:
    scan = db.scan(TableName=TABLE, Limit=7, ReturnConsumedCapacity="TOTAL")
    query = db.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :h)",
        ExpressionAttributeValues={":pk": {"S": "P#a"}, ":h": {"S": "H#"}},
        ScanIndexForward=False,
    )
    return [{k: v for k, v in a.items() if k != "ResponseMetadata"} for a in (scan, query)]


def as_moto_answers(db: Any, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    monkeypatch.setattr(DynamoResult, "execute_result", DynamoResult.execute_result.__wrapped__)  # type: ignore[attr-defined]
    return answers(db)


@pytest.mark.parametrize("extra", [{}, {"bin": {"B": b"\x00\xffbytes"}}], ids=["plain", "binary"])
def test_the_answers_are_moto_serializers_own(
    db: Any, monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any]
) -> None:
    fill(db, 12, **extra)
    ours = answers(db)
    assert ours[0]["Count"] == 7 and "LastEvaluatedKey" in ours[0] and ours[1]["Count"] == 12
    assert ours == as_moto_answers(db, monkeypatch)


def test_a_page_costs_the_serializer_the_same_whatever_its_items(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    serialized: list[int] = []
    real = ResponseSerializer._serialize

    def counted(self: ResponseSerializer, *args: Any, **kwargs: Any) -> Any:
        serialized.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ResponseSerializer, "_serialize", counted)
    costs = []
    for count in (5, 60):
        fill(db, count)
        serialized.clear()
        assert db.scan(TableName=TABLE)["Count"] == count
        costs.append(len(serialized))
    assert costs[0] == costs[1]


def test_a_query_reads_only_its_partition_and_answers_as_moto_does(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for owner in ("a", "b", "c"):
        for i in range(6):
            db.put_item(TableName=TABLE, Item={"pk": {"S": f"P#{owner}"}, "sk": {"S": f"H#{i:02d}"}})
    gathered: list[int] = []
    real = partition_items

    def counted(table: Any, hash_key: Any) -> Any:
        found = real(table, hash_key)
        gathered.append(len(found))
        return found

    monkeypatch.setattr(dynamodb_pages, "partition_items", counted)
    page = {"TableName": TABLE, "Limit": 4, "ScanIndexForward": False}
    query = {"KeyConditionExpression": "pk = :pk AND sk > :s"}
    values = {":pk": {"S": "P#b"}, ":s": {"S": "H#01"}}
    ours = db.query(**page, **query, ExpressionAttributeValues=values)
    after = db.query(
        **page, **query, ExpressionAttributeValues=values, ExclusiveStartKey=ours["LastEvaluatedKey"]
    )
    assert gathered == [6, 6]  # the partition of P#b, never the table's 18 items
    assert [i["sk"]["S"] for i in ours["Items"] + after["Items"]] == ["H#05", "H#04", "H#03", "H#02"]
    monkeypatch.setattr(Table, "query", Table.query.__wrapped__)  # type: ignore[attr-defined]
    moto = db.query(**page, **query, ExpressionAttributeValues=values)
    assert {k: v for k, v in moto.items() if k != "ResponseMetadata"} == {
        k: v for k, v in ours.items() if k != "ResponseMetadata"
    }
