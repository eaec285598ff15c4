"""The ledger's leases on DynamoDB (moto): the conditional writes behind acquire, hand-over, keep and
release."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from tokenwarden.adapters.ledger import DynamoLedger, create_table

T0 = datetime(2030, 5, 6, 2, 0, tzinfo=UTC)


@pytest.fixture
def ledger() -> Iterator[DynamoLedger]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "ledger")
        yield DynamoLedger(client, "ledger")


def test_a_lease_is_kept_only_by_its_unexpired_holder(ledger: DynamoLedger) -> None:
    assert not ledger.keep("alpha", "rotation:v2", T0, 300)  # free: nothing to keep
    assert ledger.acquire("alpha", "run-1", T0, 300)
    assert ledger.hand_over("alpha", "run-1", "rotation:v2", T0, 300)
    assert not ledger.keep("alpha", "run-1", T0, 300)
    assert ledger.keep("alpha", "rotation:v2", T0 + timedelta(seconds=300), 300)
    assert not ledger.keep("alpha", "rotation:v2", T0 + timedelta(seconds=601), 300)  # expired
    assert not ledger.acquire("alpha", "run-2", T0 + timedelta(seconds=599), 300)


def test_a_released_lease_is_not_kept_and_is_free_for_another(ledger: DynamoLedger) -> None:
    assert ledger.acquire("alpha", "rotation:v2", T0, 300)
    ledger.release("alpha", "rotation:v2")
    assert not ledger.keep("alpha", "rotation:v2", T0, 300)
    assert ledger.acquire("alpha", "breakglass:1", T0, 300)
