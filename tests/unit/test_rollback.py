"""The automatic rollback rule, outcome by outcome: which silences a retirement explains, which keys
may come back, for how long, and when a second silence escalates instead."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.unit.builders import credential, entry, principal, rotated
from tokenwarden.domain.calendar import Span
from tokenwarden.domain.health import HealthState, TeamRecord
from tokenwarden.domain.model import LedgerEntry, LedgerState
from tokenwarden.domain.plan import ActionKind, PlanConfig, plan_principal
from tokenwarden.domain.registry import ActivityProfile, Lifecycle, Registry
from tokenwarden.domain.rollback import (
    ROLLED_BACK,
    Decision,
    EscalationRecord,
    KeyFacts,
    KeyHistory,
    RollbackPolicy,
    Silence,
    Verdict,
    decide_rollback,
    is_candidate,
    retirement_note,
    rollback_record,
    rolled_back_entry,
    settled_refusal,
    team_record,
)

# Working hours 9-18 UTC, Monday to Friday; silent after 4 working hours.
RETIRED_AT = datetime(2030, 5, 7, 2, 15, tzinfo=UTC)  # a Tuesday night, when the nightly run retires
LAST_SAMPLE = datetime(2030, 5, 6, 17, 40, tzinfo=UTC)  # Monday evening, before the retirement
FOUND_AT = datetime(2030, 5, 7, 14, 0, tzinfo=UTC)  # Tuesday afternoon: 5 working hours of silence
PROFILE = ActivityProfile()
POLICY = RollbackPolicy()
KEY = credential("K1", status="Inactive", created_at=RETIRED_AT - timedelta(days=83))


def retired(**fields: Any) -> LedgerEntry:
    values: dict[str, Any] = {
        "superseded_at": RETIRED_AT - timedelta(days=7),
        "deactivated_at": RETIRED_AT,
        "activated_at": KEY.created_at,
    }
    values.update(fields)
    return entry("v1", LedgerState.RETIRED, cred=KEY, **values)


def facts(
    record: LedgerEntry | None = None,
    *,
    cred: Any = KEY,
    history: KeyHistory | None = None,
    registered: bool = True,
) -> KeyFacts:
    return KeyFacts(
        entry=record or retired(),
        credential=cred,
        lifecycle=Lifecycle(),
        registered=registered,
        history=history or KeyHistory(),
    )


def silence(last: datetime | None = LAST_SAMPLE, state: HealthState = HealthState.SILENT) -> Silence:
    return Silence(team="alpha", state=state, last_sample_at=last, profile=PROFILE)


def decide(
    key: KeyFacts | None = None, team: Silence | None = None, now: datetime = FOUND_AT
) -> Decision | None:
    return decide_rollback(key or facts(), team or silence(), now, POLICY)


def rolled_back_once() -> tuple[KeyHistory, LedgerEntry]:
    """The key rolled back after its first retirement, then retired again when that grace ended."""
    first = facts()
    decision = decide(first)
    assert decision is not None
    record = rollback_record(first, silence(), decision, FOUND_AT)
    again = rolled_back_entry(first.entry, record).model_copy(
        update={
            "state": LedgerState.RETIRED,
            "deactivated_at": record.grace_until,
            "notified": frozenset({ROLLED_BACK}),
        }
    )
    return KeyHistory(rollbacks=(record,)), again


# -- rollback ---------------------------------------------------------------------------------------


def test_a_team_silent_right_after_a_switched_off_at_gets_its_key_back_for_the_rollback_grace() -> None:
    decision = decide()

    assert decision is not None and decision.verdict is Verdict.ROLLBACK
    assert decision.grace_until == FOUND_AT + timedelta(days=3)
    assert "alias-k1" in decision.reason


def test_the_rollback_grace_never_outlasts_the_key() -> None:
    expiring = KEY.model_copy(update={"expires_at": FOUND_AT + timedelta(days=1)})

    decision = decide(facts(cred=expiring))

    assert decision is not None and decision.grace_until == FOUND_AT + timedelta(days=1)


def test_the_rollback_grace_follows_the_policy() -> None:
    decision = decide_rollback(facts(), silence(), FOUND_AT, RollbackPolicy(grace_days=5))

    assert decision is not None and decision.grace_until == FOUND_AT + timedelta(days=5)


def test_a_grace_of_zero_days_turns_the_rollback_off() -> None:
    off = RollbackPolicy(grace_days=0)

    assert decide_rollback(facts(), silence(), FOUND_AT, off) is None
    assert not is_candidate(retired(), silence(), off)


def test_a_sample_just_after_the_retirement_still_counts_as_before_it() -> None:
    decision = decide(team=silence(RETIRED_AT + timedelta(minutes=10)))

    assert decision is not None and decision.verdict is Verdict.ROLLBACK


# -- not the cause: nothing to say -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("team", "why"),
    [
        (silence(RETIRED_AT + timedelta(hours=9)), "the team reported after the retirement"),
        (silence(LAST_SAMPLE - timedelta(days=1)), "the team was silent before the retirement"),
        (silence(None, HealthState.NEVER_REPORTED), "the team never reported"),
        (silence(LAST_SAMPLE, HealthState.HEALTHY), "the team is not silent"),
    ],
)
def test_a_silence_the_retirement_does_not_explain_is_left_alone(team: Silence, why: str) -> None:
    assert decide(team=team) is None, why
    assert not is_candidate(retired(), team)


def test_a_key_that_was_never_switched_off_is_left_alone() -> None:
    previous = entry("v1", LedgerState.PREVIOUS, cred=KEY, superseded_at=RETIRED_AT)
    current = entry("v1", LedgerState.CURRENT, cred=KEY, deactivated_at=RETIRED_AT)

    assert decide(facts(previous)) is None
    assert decide(facts(current)) is None


def test_a_previous_key_switched_off_by_a_revoke_is_refused_and_said_so() -> None:
    revoked = entry(
        "v1",
        LedgerState.PREVIOUS,
        cred=KEY,
        superseded_at=RETIRED_AT,
        deactivated_at=RETIRED_AT,
        revoked_at=RETIRED_AT,
    )
    deleted = retired(revoked_at=RETIRED_AT).model_copy(update={"state": LedgerState.DELETED})

    assert "revoked" in refusal(facts(revoked))
    assert "revoked" in refusal(facts(deleted, cred=None))


def test_a_key_switched_off_other_than_by_the_nightly_retirement_is_refused() -> None:
    off = entry("v1", LedgerState.PREVIOUS, cred=KEY, superseded_at=RETIRED_AT, deactivated_at=RETIRED_AT)

    assert "not retired by the nightly run" in refusal(facts(off))


# -- refused -------------------------------------------------------------------------------------


def refusal(key: KeyFacts, now: datetime = FOUND_AT) -> str:
    decision = decide(key, now=now)
    assert decision is not None and decision.verdict is Verdict.REFUSE, decision
    return decision.reason


def test_a_revoked_key_is_never_rolled_back() -> None:
    assert "revoked" in refusal(facts(retired(revoked_at=RETIRED_AT, revoked_by="ops")))


def test_a_key_any_revoke_named_is_never_rolled_back_even_after_a_restore() -> None:
    history = KeyHistory.parse(
        [{"kind": "revoke", "revoked_at": "2030-01-01T00:00:00Z", "keys": [{"credential_id": "K1"}]}]
    )

    assert "revoked" in refusal(facts(history=history))


def test_no_key_comes_back_after_a_revoke_of_its_principal_since_it_was_replaced() -> None:
    """A revoke switches off the Active keys only; a key retired before it is not named, yet the
    operator who revoked the principal wants none of its keys working again."""
    revoke = {"kind": "revoke", "revoked_at": RETIRED_AT.isoformat(), "keys": [{"credential_id": "K2"}]}
    before = {"kind": "revoke", "revoked_at": "2029-01-01T00:00:00Z", "keys": [{"credential_id": "K0"}]}

    assert "revoked" in refusal(facts(history=KeyHistory.parse([revoke])))
    only_older = decide(facts(history=KeyHistory.parse([before])))
    assert only_older is not None and only_older.verdict is Verdict.ROLLBACK


def test_a_revoke_record_that_cannot_be_read_refuses_every_rollback_of_the_principal() -> None:
    """Fail closed: the damaged record may name the very key a rollback would re-activate."""
    damaged = {"kind": "revoke", "revoked_at": "not a time", "keys": [{"credential_id": "K1"}]}
    unreadable_rollback = {"kind": "rolled_back", "principal": "p"}

    assert "cannot be read" in refusal(facts(history=KeyHistory.parse([damaged])))
    still_decided = decide(facts(history=KeyHistory.parse([unreadable_rollback])))
    assert still_decided is not None and still_decided.verdict is Verdict.ROLLBACK


def test_an_offboarded_key_is_not_rolled_back() -> None:
    assert "offboarding" in refusal(facts(retired(reason="offboarded")))
    assert "offboarding" in refusal(facts(registered=False))


def test_a_key_no_rotation_replaced_is_not_rolled_back() -> None:
    assert "rotation" in refusal(facts(retired(superseded_at=None)))


def test_a_deleted_key_is_not_rolled_back() -> None:
    assert "deleted" in refusal(facts(cred=None))


def test_an_expired_key_is_not_rolled_back() -> None:
    expired = KEY.model_copy(update={"expires_at": FOUND_AT - timedelta(minutes=1)})

    assert "expired" in refusal(facts(cred=expired))
    assert "expired" in refusal(facts(cred=KEY.model_copy(update={"status": "Expired"})))


def test_a_key_at_the_end_of_its_retention_is_not_rolled_back() -> None:
    late_team = Silence(
        team="alpha",
        state=HealthState.SILENT,
        last_sample_at=LAST_SAMPLE,
        profile=PROFILE.model_copy(update={"silent_after_hours": 60.0}),
    )

    younger = KEY.model_copy(update={"expires_at": RETIRED_AT + timedelta(days=30)})

    decision = decide_rollback(facts(cred=younger), late_team, RETIRED_AT + timedelta(days=7), POLICY)

    assert decision is not None and decision.verdict is Verdict.REFUSE
    assert "retention" in decision.reason


def test_a_silence_found_after_the_teams_next_working_hours_is_too_late() -> None:
    next_evening = datetime(2030, 5, 8, 18, 0, tzinfo=UTC)  # 18 working hours after the retirement

    assert "too late" in refusal(facts(), now=next_evening)


def test_within_the_next_working_hours_it_is_not_too_late() -> None:
    next_morning = datetime(2030, 5, 8, 11, 0, tzinfo=UTC)  # 11 working hours: 4 + 8 allowed

    decision = decide(now=next_morning)

    assert decision is not None and decision.verdict is Verdict.ROLLBACK


def test_a_snoozed_day_after_the_retirement_counts_no_working_hours_toward_too_late() -> None:
    """Retired early Tuesday, the team snoozed all Tuesday (an offsite), found silent Wednesday 13:00."""
    offsite = Span(datetime(2030, 5, 7, 0, 0, tzinfo=UTC), datetime(2030, 5, 8, 0, 0, tzinfo=UTC))
    wednesday = datetime(2030, 5, 8, 13, 0, tzinfo=UTC)  # 9 + 4 working hours, 4 of them not snoozed
    team = Silence(team="alpha", state=HealthState.SILENT, last_sample_at=LAST_SAMPLE, profile=PROFILE)

    snoozed = decide(team=replace(team, snoozed=(offsite,)), now=wednesday)
    unsnoozed = decide(team=team, now=wednesday)

    assert snoozed is not None and snoozed.verdict is Verdict.ROLLBACK
    assert unsnoozed is not None and "too late" in unsnoozed.reason


def test_a_refusal_the_key_record_alone_shows_is_settled() -> None:
    later = datetime(2030, 5, 8, 18, 0, tzinfo=UTC)  # too late
    expired = retired(expires_at=FOUND_AT - timedelta(hours=1))

    assert settled_refusal(retired(), silence(), Lifecycle(), later, POLICY)
    assert settled_refusal(retired(revoked_at=RETIRED_AT), silence(), Lifecycle(), FOUND_AT, POLICY)
    assert settled_refusal(expired, silence(), Lifecycle(), FOUND_AT, POLICY)
    assert not settled_refusal(retired(), silence(), Lifecycle(), FOUND_AT, POLICY)  # may come back
    rolled = rolled_back_entry(retired(), rollback_record(facts(), silence(), decide(), FOUND_AT))  # type: ignore[arg-type]
    assert not settled_refusal(rolled, silence(), Lifecycle(), later, POLICY)  # unfinished, or escalates
    again = retired(notified=frozenset({ROLLED_BACK}))
    assert not settled_refusal(again, silence(), Lifecycle(), later, POLICY)


# -- once per key --------------------------------------------------------------------------------


def test_a_second_silence_after_the_keys_rollback_escalates() -> None:
    history, again = rolled_back_once()
    assert again.deactivated_at is not None
    later = silence(again.deactivated_at - timedelta(hours=1))

    decision = decide_rollback(
        facts(again, history=history), later, again.deactivated_at + timedelta(hours=12), POLICY
    )

    assert decision is not None and decision.verdict is Verdict.ESCALATE
    assert "rolled back once already" in decision.reason


def test_an_escalation_is_announced_once() -> None:
    history, again = rolled_back_once()
    assert again.deactivated_at is not None
    escalated = EscalationRecord(
        principal="alpha",
        team="alpha",
        credential_id="K1",
        alias="alias-k1",
        retired_at=again.deactivated_at,
        escalated_at=again.deactivated_at,
        reason="-",
    )
    history = KeyHistory(rollbacks=history.rollbacks, escalations=(escalated,))

    decision = decide_rollback(
        facts(again, history=history),
        silence(again.deactivated_at - timedelta(hours=1)),
        again.deactivated_at + timedelta(hours=12),
        POLICY,
    )

    assert decision is None


# -- killed half way: finished, never counted twice ------------------------------------------------


def test_a_recorded_rollback_whose_key_record_was_not_rewritten_is_finished() -> None:
    history, _ = rolled_back_once()

    decision = decide(facts(history=history), now=FOUND_AT + timedelta(hours=1))

    assert decision is not None and decision.verdict is Verdict.FINISH
    assert decision.record == history.rollbacks[0]


def test_a_rolled_back_key_still_inactive_or_unannounced_is_finished() -> None:
    history, _ = rolled_back_once()
    record = history.rollbacks[0]
    back = rolled_back_entry(retired(), record)

    inactive = decide(facts(back, history=history))
    unannounced = decide(facts(back, cred=KEY.model_copy(update={"status": "Active"}), history=history))
    done = decide(
        facts(
            back.model_copy(update={"notified": frozenset({ROLLED_BACK})}),
            cred=KEY.model_copy(update={"status": "Active"}),
            history=history,
        )
    )

    assert inactive is not None and inactive.verdict is Verdict.FINISH
    assert unannounced is not None and unannounced.verdict is Verdict.FINISH
    assert done is None
    assert is_candidate(back, silence()) and not is_candidate(
        back.model_copy(update={"notified": frozenset({ROLLED_BACK})}), silence()
    )


def test_a_recorded_rollback_is_not_finished_for_a_key_revoked_since() -> None:
    history, _ = rolled_back_once()

    decision = decide(facts(retired(revoked_at=FOUND_AT), history=history))

    assert decision is not None and decision.verdict is Verdict.REFUSE


def test_history_records_of_other_kinds_or_unreadable_ones_are_ignored() -> None:
    history = KeyHistory.parse([{"kind": "restore"}, {"kind": "rolled_back", "principal": "alpha"}])

    assert history == KeyHistory()


# -- the plan keeps a rolled-back key until its extended grace ends -------------------------------


def test_the_plan_retires_a_rolled_back_key_when_its_extended_grace_ends() -> None:
    inv = rotated(superseded=timedelta(days=8))
    extended = inv.ledger[0].model_copy(
        update={"grace_until": inv.ledger[0].created_at + timedelta(days=200)}
    )
    assert extended.version_id == "v1"
    until = extended.grace_until
    assert until is not None
    inv = inv.model_copy(update={"ledger": (extended, *inv.ledger[1:])})
    registry = Registry(source="teams.yaml", principals=(principal(),))
    now_in_grace = until - timedelta(minutes=1)

    kept = plan_principal(registry, "alpha", inv, now_in_grace, PlanConfig())
    retire = plan_principal(registry, "alpha", inv, until, PlanConfig())

    assert ActionKind.RETIRE not in [a.kind for a in kept.actions]
    assert kept.upcoming is not None and kept.upcoming.at == until
    (action,) = [a for a in retire.actions if a.kind is ActionKind.RETIRE]
    assert "extended" in action.reason


# -- the reconciler's note -----------------------------------------------------------------------


def record(state: HealthState, last: datetime | None = LAST_SAMPLE) -> TeamRecord:
    return TeamRecord(
        team="alpha", state=state, since=LAST_SAMPLE, first_seen_at=LAST_SAMPLE, last_sample_at=last
    )


def test_retiring_the_key_of_a_silent_or_never_reported_team_is_said_to_cut_nobody_off() -> None:
    silent = retirement_note("alpha", "alias-k1", record(HealthState.SILENT))
    never = retirement_note("alpha", "alias-k1", record(HealthState.NEVER_REPORTED, None))

    assert silent is not None and "already silent" in silent and "17:40" in silent
    assert never is not None and "never reported" in never


def test_retiring_the_key_of_a_reporting_or_unjudged_team_needs_no_note() -> None:
    assert retirement_note("alpha", "k", record(HealthState.HEALTHY)) is None
    assert retirement_note("alpha", "k", record(HealthState.RECOVERED)) is None
    assert retirement_note("alpha", "k", None) is None


def test_a_saved_health_record_is_read_and_an_unreadable_one_ignored() -> None:
    saved = {"alpha": record(HealthState.SILENT).model_dump(mode="json"), "beta": {"state": "?"}}

    assert team_record(saved, "alpha") == record(HealthState.SILENT)
    assert team_record(saved, "beta") is None
    assert team_record(saved, "gamma") is None
