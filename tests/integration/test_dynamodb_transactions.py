"""The embedded stack's DynamoDB transactions (`tokenwarden.local.dynamodb_transactions`): all or
nothing, with DynamoDB's cancellation reasons, at a cost that does not grow with the table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import Item

from tokenwarden.adapters.ledger import create_table
from tokenwarden.local import dynamodb_transactions

TABLE = "ledger"


@pytest.fixture
def db() -> Iterator[Any]:
    dynamodb_transactions.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE)
        yield client


def key(pk: str, sk: str = "STATE") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def put(pk: str, value: str, **extra: Any) -> dict[str, Any]:
    return {"Put": {"TableName": TABLE, "Item": {**key(pk), "v": {"S": value}}, **extra}}


def stored(db: Any) -> dict[str, str]:
    items = db.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return {i["pk"]["S"]: i["v"]["S"] for i in items}


def seed(db: Any, **values: str) -> None:
    for pk, value in values.items():
        db.put_item(TableName=TABLE, Item={**key(pk), "v": {"S": value}})


def cancelled(db: Any, items: list[dict[str, Any]]) -> ClientError:
    with pytest.raises(ClientError) as caught:
        db.transact_write_items(TransactItems=items)
    return caught.value


def must_be_absent(pk: str) -> dict[str, Any]:
    return {
        "ConditionCheck": {
            "TableName": TABLE,
            "Key": key(pk),
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def test_a_failing_condition_on_the_last_item_leaves_the_first_items_unchanged(db: Any) -> None:
    seed(db, a="a0", b="b0", z="z0")
    items = [
        put("a", "a1"),
        put("new", "n1"),
        {
            "Update": {
                "TableName": TABLE,
                "Key": key("b"),
                "UpdateExpression": "SET v = :v",
                "ExpressionAttributeValues": {":v": {"S": "b1"}},
            }
        },
        {"Delete": {"TableName": TABLE, "Key": key("c")}},
        must_be_absent("z"),
    ]
    error = cancelled(db, items)
    assert error.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = error.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "None", "None", "None", "ConditionalCheckFailed"]
    assert reasons[-1]["Item"]["v"] == {"S": "z0"}  # ALL_OLD: the item that refused
    assert stored(db) == {"a": "a0", "b": "b0", "z": "z0"}


def test_every_failing_condition_is_named_and_nothing_is_written(db: Any) -> None:
    seed(db, a="a0")
    condition = {"ConditionExpression": "attribute_not_exists(pk)"}
    must_exist = {"ConditionExpression": "attribute_exists(pk)"}
    error = cancelled(db, [put("a", "a1", **condition), put("b", "b1"), put("c", "c1", **must_exist)])
    assert [r["Code"] for r in error.response["CancellationReasons"]] == [
        "ConditionalCheckFailed",
        "None",
        "ConditionalCheckFailed",
    ]
    assert "Item" not in error.response["CancellationReasons"][0]  # not asked for
    assert stored(db) == {"a": "a0"}


def test_a_transaction_whose_conditions_hold_writes_every_item(db: Any) -> None:
    seed(db, a="a0", gone="g0")
    db.transact_write_items(
        TransactItems=[
            put("a", "a1", ConditionExpression="v = :old", ExpressionAttributeValues={":old": {"S": "a0"}}),
            put("b", "b1", ConditionExpression="attribute_not_exists(pk)"),
            {"Delete": {"TableName": TABLE, "Key": key("gone")}},
        ]
    )
    assert stored(db) == {"a": "a1", "b": "b1"}


def test_a_write_refused_after_earlier_writes_puts_them_back(db: Any) -> None:
    seed(db, a="a0", b="b0")
    add_to_a_string = {
        "Update": {
            "TableName": TABLE,
            "Key": key("b"),
            "UpdateExpression": "SET v = v + :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }
    error = cancelled(db, [put("a", "a1"), put("new", "n1"), add_to_a_string])
    assert error.response["Error"]["Code"] == "ValidationException"
    assert stored(db) == {"a": "a0", "b": "b0"}


def test_two_operations_on_one_item_are_refused_before_any_write(db: Any) -> None:
    seed(db, a="a0")
    error = cancelled(db, [put("a", "a1"), put("b", "b1"), put("a", "a2")])
    assert error.response["Error"]["Code"] == "ValidationException"
    assert stored(db) == {"a": "a0"}


def test_more_than_a_hundred_items_are_refused(db: Any) -> None:
    items = [put(f"p{i}", "x") for i in range(dynamodb_transactions.MAX_ITEMS + 1)]
    assert cancelled(db, items).response["Error"]["Code"] == "ValidationException"
    assert stored(db) == {}


@pytest.mark.parametrize("size", [10, 300])
def test_a_transaction_copies_the_items_it_writes_not_the_table(
    db: Any, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    seed(db, **{f"p{i:04d}": "v0" for i in range(size)})
    copies: list[Item] = []
    real = Item.__deepcopy__

    def counted(self: Item, memo: dict[int, Any]) -> Item:
        copies.append(self)
        return real(self, memo)

    monkeypatch.setattr(Item, "__deepcopy__", counted)
    db.transact_write_items(TransactItems=[put("p0001", "v1"), put("p0002", "v1"), put("fresh", "v1")])
    cancelled(db, [put("p0003", "v1"), must_be_absent("p0004")])
    assert len(copies) == 2  # p0001 and p0002 kept before they were written; nothing for the refused one
    assert stored(db)["p0003"] == "v0"
