"""The evidence report's figures, each computed from hand-built ledger records: late rotations,
minutes from a revoke to a working replacement, silence detection and recovery, drift resolution,
and the citations that tie each row to its records."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar

from tokenwarden.domain.evidence import (
    DriftRow,
    Evidence,
    KeyRow,
    Report,
    RevokeRow,
    RollbackRow,
    RotationRow,
    Section,
    SilenceRow,
    account_of,
    build_report,
    policy_days,
)
from tokenwarden.domain.health import active_hours
from tokenwarden.domain.journal import (
    HealthRecord,
    HistoryItem,
    RepairRecord,
    TakeoverRefusedRecord,
    threshold_crossed_at,
)
from tokenwarden.domain.model import LedgerEntry, LedgerState
from tokenwarden.domain.outcomes import Finding
from tokenwarden.domain.plan import rotation_due_at
from tokenwarden.domain.registry import ActivityProfile, Lifecycle, parse_registry
from tokenwarden.domain.rollback import EscalationRecord, RollbackRecord

R = TypeVar("R")

END = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
START = END - timedelta(days=90)
REGISTRY = parse_registry("principals: [{id: alpha}, {id: beta}]", "teams.yaml")
LIFE = Lifecycle()


def key(
    version: str,
    activated: datetime,
    *,
    principal: str = "alpha",
    state: LedgerState = LedgerState.CURRENT,
    **dates: Any,
) -> LedgerEntry:
    return LedgerEntry(
        principal=principal,
        version_id=version,
        state=state,
        created_at=activated - timedelta(minutes=1),
        credential_id=f"ACCA{version.upper()}",
        alias=f"alias-{version}",
        expires_at=activated + timedelta(days=LIFE.key_age_days),
        activated_at=activated,
        **dates,
    )


def history(pk: str, sk: str, record: dict[str, Any]) -> HistoryItem:
    return HistoryItem(pk=pk, sk=sk, record=record)


def journal(principal: str, record: HealthRecord | RepairRecord | TakeoverRefusedRecord) -> HistoryItem:
    pk = "HEALTH" if isinstance(record, HealthRecord) else f"P#{principal}"
    sk = f"H#{principal}#{record.key}" if isinstance(record, HealthRecord) else f"H#{record.key}"
    return history(pk, sk, record.model_dump(mode="json"))


def report(
    entries: tuple[LedgerEntry, ...] = (),
    items: tuple[HistoryItem, ...] = (),
    findings: tuple[Finding, ...] = (),
) -> Report:
    evidence = Evidence(
        entries=entries, history=items, registry=REGISTRY, findings=findings, start=START, end=END
    )
    return build_report(evidence, generated_at=END, account="123456789012", ledger_table="tokenwarden-ledger")


def section(built: Report, section_id: str) -> Section:
    return next(s for s in built.sections if s.id == section_id)


def rows_of(built: Report, section_id: str, kind: type[R]) -> list[R]:
    rows = section(built, section_id).rows
    assert all(isinstance(r, kind) for r in rows)
    return [r for r in rows if isinstance(r, kind)]


def due(entry: LedgerEntry) -> datetime:
    assert entry.expires_at is not None
    return rotation_due_at(entry.principal, LIFE, entry.expires_at)


# -- rotations --------------------------------------------------------------------------------------


def test_a_rotation_done_three_days_after_its_due_date_is_late_by_72_hours() -> None:
    old = key("v1", START - timedelta(days=40), state=LedgerState.PREVIOUS)
    done = due(old) + timedelta(days=3)
    old = old.model_copy(update={"superseded_at": done})
    new = key("v2", done)

    (row,) = rows_of(report((old, new)), "rotations", RotationRow)

    assert row.late and row.late_hours == 72.0
    assert (row.due_at, row.done_at, row.replaced_by) == (due(old), done, "alias-v2")
    assert row.sources == ("P#alpha/V#v1", "P#alpha/V#v2")
    assert "1 late" in section(report((old, new)), "rotations").summary


def test_a_rotation_at_the_next_nightly_run_after_its_due_time_is_on_time() -> None:
    old = key("v1", START - timedelta(days=40), state=LedgerState.PREVIOUS)
    done = due(old) + timedelta(hours=24, minutes=3)  # due at 02:15:30, done at the next night's run
    old = old.model_copy(update={"superseded_at": done})

    (row,) = rows_of(report((old, key("v2", done))), "rotations", RotationRow)

    assert not row.late and row.late_hours == 24.1


def test_a_key_past_its_due_date_and_never_replaced_is_owed_and_late_until_the_end() -> None:
    current = key("v1", END - timedelta(days=80))

    (row,) = rows_of(report((current,)), "rotations", RotationRow)

    assert row.done_at is None and row.late
    assert row.late_hours == round((END - due(current)).total_seconds() / 3600, 1)


def test_a_key_replaced_by_a_revoke_is_not_a_late_rotation() -> None:
    old = key("v1", START - timedelta(days=40), state=LedgerState.RETIRED)
    revoked = due(old) + timedelta(days=5)
    old = old.model_copy(update={"revoked_at": revoked, "superseded_at": revoked + timedelta(minutes=3)})

    assert rows_of(report((old, key("v2", revoked + timedelta(minutes=3)))), "rotations", RotationRow) == []


# -- keys -------------------------------------------------------------------------------------------


def test_a_key_active_longer_than_the_policy_is_flagged_and_one_within_it_is_not() -> None:
    limit = policy_days(LIFE)
    over = key("v1", START, state=LedgerState.RETIRED, deactivated_at=START + timedelta(days=limit + 4))
    within = key("v2", START, principal="beta", deactivated_at=START + timedelta(days=limit + 3))

    rows = {r.principal: r for r in rows_of(report((over, within)), "keys", KeyRow)}

    assert rows["alpha"].over_policy and rows["alpha"].active_days == limit + 4
    assert not rows["beta"].over_policy
    assert rows["alpha"].sources == ("P#alpha/V#v1",)


def test_a_still_active_key_counts_its_life_up_to_the_end_of_the_period() -> None:
    (row,) = rows_of(report((key("v1", END - timedelta(days=10)),)), "keys", KeyRow)
    assert row.still_active and row.active_days == 10.0


def test_keys_outside_the_period_are_left_out() -> None:
    gone = key("v1", START - timedelta(days=100), deleted_at=START - timedelta(days=5))
    assert rows_of(report((gone,)), "keys", KeyRow) == []


# -- revokes ----------------------------------------------------------------------------------------


def revoke_record(at: datetime, number: int = 1, reissue: bool = True) -> HistoryItem:
    return history(
        "P#alpha",
        f"H#revoke#{number:06d}",
        {
            "kind": "revoke",
            "principal": "alpha",
            "number": number,
            "revoked_at": at.isoformat(),
            "actor": {"acted_as": "arn:aws:iam::123456789012:user/oncall", "requester": None},
            "reason": "token pasted in #general",
            "reissue": reissue,
            "keys": [{"credential_id": "ACCAV1", "alias": "alias-v1", "version_id": "v1"}],
        },
    )


def test_a_revoke_names_who_and_why_and_the_minutes_to_its_activated_replacement() -> None:
    at = END - timedelta(days=3)
    old = key("v1", END - timedelta(days=20), state=LedgerState.RETIRED, revoked_at=at)
    new = key("v2", at + timedelta(minutes=7, seconds=30))

    (row,) = rows_of(report((old, new), (revoke_record(at),)), "revokes", RevokeRow)

    assert row.minutes_to_replacement == 7.5 and row.replacement == "alias-v2"
    assert row.actor == "arn:aws:iam::123456789012:user/oncall (invoker in CloudTrail)"
    assert row.reason == "token pasted in #general" and row.keys == ("alias-v1",)
    assert row.sources == ("P#alpha/H#revoke#000001", "P#alpha/V#v2")


def test_a_restore_before_any_new_key_is_the_working_replacement() -> None:
    at = END - timedelta(days=3)
    old = key("v1", END - timedelta(days=20), state=LedgerState.CURRENT)
    restore = history(
        "P#alpha",
        "H#revoke#000001#restore",
        {
            "kind": "restore",
            "principal": "alpha",
            "revoke": 1,
            "restored_at": (at + timedelta(hours=2)).isoformat(),
        },
    )

    (row,) = rows_of(report((old,), (revoke_record(at, reissue=False), restore)), "revokes", RevokeRow)

    assert row.replacement == "restored" and row.minutes_to_replacement == 120.0
    assert row.sources[-1] == "P#alpha/H#revoke#000001#restore"


def test_a_revoke_with_no_working_key_since_has_no_replacement_time() -> None:
    at = END - timedelta(days=3)
    old = key("v1", END - timedelta(days=20), state=LedgerState.RETIRED, revoked_at=at)

    (row,) = rows_of(report((old,), (revoke_record(at, reissue=False),)), "revokes", RevokeRow)

    assert row.replacement is None and row.minutes_to_replacement is None


def test_a_revoke_by_a_lambda_invoke_names_the_function_the_request_and_the_claim() -> None:
    item = revoke_record(END - timedelta(days=1))
    item.record["actor"] = {
        "acted_as": "arn:aws:lambda:us-east-1:123456789012:function:tokenwarden-revoke",
        "request_id": "req-1",
        "claimed_by": "jdoe",
    }
    (row,) = rows_of(report((), (item,)), "revokes", RevokeRow)
    assert row.actor == (
        "arn:aws:lambda:us-east-1:123456789012:function:tokenwarden-revoke request req-1 "
        "(invoker in CloudTrail), claimed by jdoe"
    )


# -- silences ---------------------------------------------------------------------------------------


def health(
    event: str, at: datetime, crossed: datetime | None = None, last: datetime | None = None
) -> HistoryItem:
    record = HealthRecord(
        team="alpha",
        event=event,
        at=at,
        current="silent" if event == "team_silent" else "recovered",
        last_sample_at=last,
        threshold_crossed_at=crossed,
    )
    return journal("alpha", record)


def test_a_silence_is_detected_after_its_threshold_and_recovers_later() -> None:
    last = END - timedelta(days=2, hours=6)
    crossed = last + timedelta(hours=4)
    detected = crossed + timedelta(minutes=42)
    recovered = detected + timedelta(hours=20)
    items = (health("team_silent", detected, crossed, last), health("team_recovered", recovered))

    (row,) = rows_of(report((), items), "silences", SilenceRow)

    assert row.minutes_to_detection == 42.0 and row.minutes_to_recovery == 1200.0
    assert (row.last_sample_at, row.threshold_crossed_at, row.recovered_at) == (last, crossed, recovered)
    assert row.sources == (items[0].pk + "/" + items[0].sk, items[1].pk + "/" + items[1].sk)


def test_a_recovery_after_the_end_of_the_period_is_not_counted() -> None:
    items = (
        health("team_silent", END - timedelta(hours=3)),
        health("team_recovered", END + timedelta(hours=1)),
    )
    (row,) = rows_of(report((), items), "silences", SilenceRow)
    assert row.recovered_at is None and row.sources == (items[0].citation,)


def test_a_key_replaced_by_a_repair_is_not_a_rotation() -> None:
    at = END - timedelta(days=4)
    broken = key("v1", END - timedelta(days=30), state=LedgerState.DELETED, superseded_at=at)
    repair = RepairRecord(principal="alpha", at=at, reason="deleted out of band", credential_id="ACCAV1")
    built = report((broken, key("v2", at)), (journal("alpha", repair),))
    assert rows_of(built, "rotations", RotationRow) == []
    assert [r.resolution for r in rows_of(built, "drift", DriftRow)] == ["repaired"]


def test_a_silence_not_recovered_by_the_end_stays_open() -> None:
    (row,) = rows_of(report((), (health("team_silent", END - timedelta(hours=3)),)), "silences", SilenceRow)
    assert row.recovered_at is None and row.minutes_to_recovery is None
    assert (
        "1 not recovered"
        in section(report((), (health("team_silent", END - timedelta(hours=3)),)), "silences").summary
    )


def test_a_reminder_does_not_start_a_second_silence() -> None:
    start = END - timedelta(days=3)
    items = (
        health("team_silent", start),
        health("team_silent_reminder", start + timedelta(days=1)),
        health("team_recovered", start + timedelta(days=2)),
    )
    (row,) = rows_of(report((), items), "silences", SilenceRow)
    assert row.minutes_to_recovery == 2 * 24 * 60


def test_the_threshold_is_crossed_in_working_hours_only() -> None:
    profile = ActivityProfile()  # Monday to Friday, 09:00-18:00 UTC, silent after 4 h
    friday_5pm = datetime(2027, 5, 28, 17, 0, tzinfo=UTC)
    assert threshold_crossed_at(profile, friday_5pm, 4.0) == datetime(2027, 5, 31, 12, 0, tzinfo=UTC)
    saturday = datetime(2027, 5, 29, 10, 0, tzinfo=UTC)
    assert threshold_crossed_at(profile, saturday, 4.0) == datetime(2027, 5, 31, 13, 0, tzinfo=UTC)


def test_the_crossing_is_where_the_health_checks_own_working_hours_reach_the_threshold() -> None:
    berlin = ActivityProfile(
        timezone="Europe/Berlin", start=time(8, 30), end=time(17, 0), silent_after_hours=6.5
    )
    for start in (datetime(2027, 3, 26, 15, 0, tzinfo=UTC), datetime(2027, 10, 29, 23, 0, tzinfo=UTC)):
        crossed = threshold_crossed_at(berlin, start, 6.5)
        assert crossed is not None
        assert active_hours(berlin, start, crossed) == 6.5
        assert active_hours(berlin, start, crossed - timedelta(minutes=1)) < 6.5


# -- drift ------------------------------------------------------------------------------------------


def test_a_repair_is_resolved_when_its_replacement_became_active() -> None:
    at = END - timedelta(days=4)
    repair = journal(
        "alpha", RepairRecord(principal="alpha", at=at, reason="current key deleted out of band")
    )
    fixed = key("v2", at + timedelta(minutes=2))

    (row,) = rows_of(report((fixed,), (repair,)), "drift", DriftRow)

    assert (row.resolution, row.resolved_at) == ("repaired", at + timedelta(minutes=2))
    assert row.sources == (
        f"P#alpha/H#{RepairRecord(principal='alpha', at=at, reason='x').key}",
        "P#alpha/V#v2",
    )


def test_refused_takeovers_are_one_row_per_principal_citing_every_day() -> None:
    first = END - timedelta(days=3)
    items = tuple(
        journal(
            "beta",
            TakeoverRefusedRecord(principal="beta", at=first + timedelta(days=d), finding="foreign KMS key"),
        )
        for d in range(3)
    )

    (row,) = rows_of(report((), items), "drift", DriftRow)

    assert row.resolution == "takeover refused" and row.found_at == first
    assert len(row.sources) == 3 and "refused on 3 days" in row.detail


def test_a_takeover_no_longer_refused_for_two_nights_was_resolved() -> None:
    refused = TakeoverRefusedRecord(principal="beta", at=END - timedelta(days=4), finding="foreign KMS key")
    (row,) = rows_of(report((), (journal("beta", refused),)), "drift", DriftRow)
    assert row.resolution == "takeover refused, no refusal since"


def test_what_the_account_audit_finds_now_is_still_open() -> None:
    finding = Finding(principal=None, kind="key_outside_tokenwarden", detail="key A1 of IAM user console")
    (row,) = rows_of(report(findings=(finding,)), "drift", DriftRow)
    assert (row.resolution, row.finding, row.found_at) == ("still open", "key_outside_tokenwarden", END)


# -- robustness -------------------------------------------------------------------------------------


def test_a_record_of_an_unknown_kind_is_skipped_and_an_unreadable_known_one_is_noted() -> None:
    unknown = history("P#alpha", "H#snooze#1", {"kind": "snooze", "until": "whenever"})
    broken = history("P#alpha", "H#revoke#000009", {"kind": "revoke", "principal": "alpha"})

    built = report((), (unknown, broken))

    assert all(not s.rows for s in built.sections)
    assert built.notes == (
        "history record P#alpha/H#revoke#000009 (revoke) could not be read and is left out",
    )


def test_the_report_states_its_period_account_and_registry() -> None:
    built = report()
    assert (built.period_start, built.period_end, built.generated_at) == (START, END, END)
    assert (built.account, built.registry) == ("123456789012", "teams.yaml")
    assert [s.id for s in built.sections] == [
        "keys",
        "rotations",
        "revokes",
        "silences",
        "rollbacks",
        "drift",
    ]


def test_the_account_is_read_from_the_callers_arn() -> None:
    assert account_of("arn:aws:iam::123456789012:user/oncall") == "123456789012"
    assert account_of(None) is None and account_of("not-an-arn") is None


def rollback_items(retired: datetime) -> tuple[HistoryItem, HistoryItem]:
    done = RollbackRecord(
        principal="alpha",
        team="alpha",
        credential_id="ACCAV1",
        alias="alias-v1",
        version_id="v1",
        retired_at=retired,
        rolled_back_at=retired + timedelta(hours=9),
        grace_until=retired + timedelta(days=3, hours=9),
        last_sample_at=retired - timedelta(hours=1),
        reason="the team went silent right after the retirement",
    )
    again = EscalationRecord(
        principal="alpha",
        team="alpha",
        credential_id="ACCAV1",
        alias="alias-v1",
        retired_at=retired + timedelta(days=4),
        escalated_at=retired + timedelta(days=4, hours=6),
        reason="silent again after the key's second retirement",
    )
    return (
        history("P#alpha", f"H#{done.key}", done.model_dump(mode="json")),
        history("P#alpha", f"H#{again.key}", again.model_dump(mode="json")),
    )


def test_an_automatic_rollback_and_its_escalation_are_rows_citing_their_records() -> None:
    items = rollback_items(END - timedelta(days=10))

    rows = rows_of(report((), items), "rollbacks", RollbackRow)

    assert [(r.outcome, r.minutes_after_retirement) for r in rows] == [
        ("re-activated", 540.0),
        ("escalated (second silence; not re-activated)", 360.0),
    ]
    assert rows[0].active_until == END - timedelta(days=10) + timedelta(days=3, hours=9)
    assert rows[1].active_until is None
    assert [r.sources for r in rows] == [(items[0].citation,), (items[1].citation,)]
    assert section(report((), items), "rollbacks").summary == "1 key re-activated, 1 escalated."


def test_rollbacks_outside_the_period_are_left_out() -> None:
    items = rollback_items(START - timedelta(days=10))
    assert rows_of(report((), items), "rollbacks", RollbackRow) == []
