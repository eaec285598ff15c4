"""The journal the evidence report reads: each announced health transition, repair and refused
takeover is appended to the ledger's history once, and a failed write never fails the run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.fakes import FakeClock, FakeLedger, FakePromQL, FakeWorld
from tests.unit.builders import registry
from tokenwarden.domain.journal import HealthRecord, RepairRecord, TakeoverRefusedRecord
from tokenwarden.errors import AwsError
from tokenwarden.service.journal import write_record

MONDAY_4PM = datetime(2030, 5, 6, 16, 0, tzinfo=UTC)  # working hours are 9-18 UTC, Monday to Friday


def test_a_silence_and_its_recovery_are_journaled_with_the_threshold_crossing() -> None:
    world = FakeWorld(clock=FakeClock(MONDAY_4PM))
    journal = FakeLedger()
    last = MONDAY_4PM - timedelta(hours=7)
    checker = world.health(FakePromQL({"alpha": last}))
    checker.journal = journal

    checker.run(registry("alpha"), MONDAY_4PM)
    checker.run(registry("alpha"), MONDAY_4PM + timedelta(hours=1))  # nothing new: nothing written
    checker.querier = FakePromQL({"alpha": MONDAY_4PM + timedelta(hours=1, minutes=50)})
    checker.run(registry("alpha"), MONDAY_4PM + timedelta(hours=2))

    records = [HealthRecord.model_validate(r) for r in journal.history("alpha")]
    assert [r.event for r in records] == ["team_silent", "team_recovered"]
    silent = records[0]
    assert silent.at == MONDAY_4PM and silent.last_sample_at == last
    assert silent.threshold_crossed_at == last + timedelta(hours=4)  # 09:00 + 4 working hours
    assert silent.silent_after_hours == 4.0 and silent.current == "silent"


def test_a_dry_run_journals_nothing() -> None:
    world = FakeWorld(clock=FakeClock(MONDAY_4PM))
    checker = world.health(FakePromQL({"alpha": MONDAY_4PM - timedelta(hours=7)}))
    checker.journal = journal = FakeLedger()
    checker.run(registry("alpha"), MONDAY_4PM, commit=False)
    assert journal.history("alpha") == []


def test_a_failed_journal_write_is_counted_and_the_run_goes_on() -> None:
    journal = FakeLedger()
    journal.fail("append_history", AwsError("PutItem", "AccessDeniedException", "no", 400))
    record = RepairRecord(principal="alpha", at=MONDAY_4PM, reason="deleted out of band")

    write_record(journal, "alpha", record)  # no exception
    write_record(journal, "alpha", record)

    assert journal.history("alpha") == [record.model_dump(mode="json")]


def test_a_takeover_refused_every_run_is_one_record_a_day() -> None:
    journal = FakeLedger()
    for hours in (0, 1, 5, 26):
        at = MONDAY_4PM + timedelta(hours=hours)
        write_record(
            journal, "alpha", TakeoverRefusedRecord(principal="alpha", at=at, finding="foreign KMS key")
        )
    assert [r["at"][:10] for r in journal.history("alpha")] == ["2030-05-06", "2030-05-07"]
