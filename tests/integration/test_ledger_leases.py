"""The ledger's conditional writes on DynamoDB (moto): the leases' acquire, hand-over, keep and
release, and a history record written with its key record in one transaction, both or neither."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from tests.unit.builders import entry
from tokenwarden.adapters.ledger import DynamoLedger, create_table
from tokenwarden.domain.model import LedgerState

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


def test_a_history_record_and_its_key_record_are_written_together_and_a_retry_counts_as_written(
    ledger: DynamoLedger,
) -> None:
    retired = entry("v1", LedgerState.RETIRED, deactivated_at=T0)
    ledger.save(retired)
    back = retired.model_copy(
        update={"state": LedgerState.PREVIOUS, "deactivated_at": None, "grace_until": T0 + timedelta(days=3)}
    )
    record = {"kind": "rolled_back", "n": 1}

    assert ledger.append_history_and_save("alpha", "rollback#1", record, back)
    assert ledger.append_history_and_save("alpha", "rollback#1", record, back)  # retried: it is ours

    assert ledger.history("alpha") == [record]
    assert ledger.get("alpha", "v1") == back


def test_over_another_history_record_nothing_is_written(ledger: DynamoLedger) -> None:
    retired = entry("v1", LedgerState.RETIRED, deactivated_at=T0)
    ledger.save(retired)
    assert ledger.append_history("alpha", "rollback#1", {"kind": "rolled_back", "n": 1})
    back = retired.model_copy(update={"state": LedgerState.PREVIOUS, "deactivated_at": None})

    assert not ledger.append_history_and_save("alpha", "rollback#1", {"kind": "rolled_back", "n": 2}, back)

    assert ledger.history("alpha") == [{"kind": "rolled_back", "n": 1}]
    assert ledger.get("alpha", "v1") == retired  # the key record is untouched: neither was written
