"""The health check's records on DynamoDB (moto): one item until they outgrow DynamoDB's 400 KB item
limit, then parts written and read in one transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tokenwarden.adapters.ledger import (
    MAX_PARTS,
    DynamoHealthStore,
    HealthRecordsError,
    create_table,
    health_parts,
)

ITEM_LIMIT = 400 * 1024


def record(team: int) -> dict[str, Any]:
    """A team's record as the health check saves it (the fields of domain.health.TeamRecord)."""
    return {
        "state": "healthy",
        "since": "2027-03-01T09:00:00+00:00",
        "first_seen_at": "2027-01-04T09:00:00+00:00",
        "last_sample_at": f"2027-03-0{1 + team % 9}T10:{team % 60:02d}:00+00:00",
        "last_alert_at": None,
        "team": f"team-{team:05d}",
    }


def teams(count: int) -> dict[str, dict[str, Any]]:
    return {f"team-{n:05d}": record(n) for n in range(count)}


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        create_table(db, "ledger")
        yield db


def health_items(client: Any) -> list[dict[str, Any]]:
    pages = client.get_paginator("query").paginate(
        TableName="ledger",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :s)",
        ExpressionAttributeValues={":pk": {"S": "HEALTH"}, ":s": {"S": "TEAMS"}},
    )
    return [item for page in pages for item in page["Items"]]


def test_a_few_teams_stay_one_item_written_with_one_put(client: Any) -> None:
    store = DynamoHealthStore(client, "ledger")
    calls: list[str] = []
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    store.save(teams(40))
    assert calls == ["PutItem"]
    assert [item["sk"]["S"] for item in health_items(client)] == ["TEAMS"]
    assert store.load() == teams(40)


def test_five_thousand_teams_are_split_into_parts_each_within_the_item_limit(client: Any) -> None:
    store = DynamoHealthStore(client, "ledger")
    records = teams(5000)
    store.save(records)
    items = health_items(client)
    assert len(items) > 1
    assert all(len(json.dumps(item).encode()) < ITEM_LIMIT for item in items)
    assert {item["parts"]["N"] for item in items} == {str(len(items))}
    assert store.load() == records


def test_parts_left_by_a_larger_save_are_never_read(client: Any) -> None:
    store = DynamoHealthStore(client, "ledger")
    store.save(teams(5000))
    store.save(teams(3))
    assert store.load() == teams(3), "the first part's count decides which parts belong to the save"
    store.save(teams(4000))
    assert store.load() == teams(4000)


def test_a_record_saved_before_parts_existed_still_loads(client: Any) -> None:
    client.put_item(
        TableName="ledger",
        Item={"pk": {"S": "HEALTH"}, "sk": {"S": "TEAMS"}, "teams": {"S": json.dumps(teams(2))}},
    )
    assert DynamoHealthStore(client, "ledger").load() == teams(2)


def test_a_missing_part_is_an_error_not_teams_forgotten(client: Any) -> None:
    store = DynamoHealthStore(client, "ledger")
    store.save(teams(5000))
    client.delete_item(TableName="ledger", Key={"pk": {"S": "HEALTH"}, "sk": {"S": "TEAMS#1"}})
    with pytest.raises(HealthRecordsError, match="not all of them are there"):
        store.load()


def test_records_that_change_at_every_read_are_an_error_after_a_few_reads(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another run saving a different number of parts at each read: the load stops, it does not
    read forever."""
    store = DynamoHealthStore(client, "ledger")
    store.save(teams(9000))
    count = len(health_parts(teams(9000)))
    assert count >= 3
    reads: list[int] = []
    real = store._db.transact_get_items

    def saved_in_between(**kwargs: Any) -> Any:
        asked = len(kwargs["TransactItems"])
        reads.append(asked)
        answer = real(**kwargs)
        answer["Responses"][0]["Item"]["parts"] = {"N": str(asked - 1 if asked == count else count)}
        return answer

    monkeypatch.setattr(store._db, "transact_get_items", saved_in_between)
    with pytest.raises(HealthRecordsError, match="changed at each of 3 reads"):
        store.load()
    assert reads == [count, count - 1, count]


def test_records_too_large_for_one_transaction_are_refused_and_the_last_save_kept(client: Any) -> None:
    store = DynamoHealthStore(client, "ledger")
    store.save(teams(10))
    huge = {f"team-{n:05d}": {**record(n), "pad": "x" * 40_000} for n in range(MAX_PARTS * 8)}
    with pytest.raises(HealthRecordsError, match="at most"):
        store.save(huge)
    assert store.load() == teams(10)


def test_parts_hold_every_team_once_in_order_and_within_their_size() -> None:
    records = teams(700)
    parts = [json.loads(part) for part in health_parts(records, part_bytes=10_000)]
    assert len(parts) > 5
    assert all(len(json.dumps(part, sort_keys=True).encode()) <= 10_000 for part in parts)
    assert [team for part in parts for team in part] == sorted(records)
    assert health_parts({}) == ["{}"]
