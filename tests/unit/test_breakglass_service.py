"""Break-glass on in-memory fakes: a revoke switches keys off and records it once, a restore
brings them back once, and every refusal changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes import ROTATION_ARN, FakeClock, FakeWorld
from tests.unit.builders import principal
from tokenwarden.domain.model import LedgerState
from tokenwarden.errors import AwsError
from tokenwarden.service.breakglass import Actor, BreakGlassError, BreakGlassFailed
from tokenwarden.service.lease import PrincipalBusy

T0 = datetime(2030, 5, 6, 10, 0, tzinfo=UTC)
USER = "tw-alpha"
SECRET = "tokenwarden/alpha"
ALPHA = principal("alpha")
OPERATOR = Actor.caller("arn:aws:sts::123456789012:assumed-role/Oncall/alice")
V1 = "11111111-1111-4111-8111-111111111111"


@pytest.fixture
def world() -> FakeWorld:
    world = FakeWorld(clock=FakeClock(T0))
    secret = world.principal_resources("alpha")
    world.engine().run_all(secret.arn, V1)
    world.notifier.published.clear()
    return world


def current_key(world: FakeWorld) -> str:
    entry = world.ledger.get("alpha", V1)
    assert entry is not None and entry.credential_id is not None
    return entry.credential_id


# -- revoke ---------------------------------------------------------------------------------------


def test_a_revoke_switches_every_key_off_records_who_and_why_and_announces_it(world: FakeWorld) -> None:
    key = current_key(world)

    result = world.breakglass().revoke(ALPHA, "leaked in a log", OPERATOR, False, T0)

    assert result.revoked == (key,) and result.revoke == 1 and not result.repeated
    assert world.iam.key(key).status == "Inactive"
    (record,) = world.ledger.history("alpha")
    assert (record["kind"], record["reason"], record["actor"]["requester"]) == (
        "revoke",
        "leaked in a log",
        OPERATOR.requester,
    )
    entry = world.ledger.get("alpha", V1)
    assert entry is not None and entry.revoked_at == T0 and entry.revoked_by == OPERATOR.requester
    assert entry.state == LedgerState.CURRENT  # still the secret's version: a restore puts it back
    assert world.notifier.events() == ["revoked"]
    assert world.ledger.holder("alpha") == ""


def test_the_same_revoke_run_again_changes_nothing_more(world: FakeWorld) -> None:
    glass = world.breakglass()
    glass.revoke(ALPHA, "leaked in a log", OPERATOR, False, T0)

    again = glass.revoke(ALPHA, "leaked in a log", OPERATOR, False, T0 + timedelta(hours=1))

    assert again.repeated and again.revoked == () and again.revoke == 1
    assert len(world.ledger.history("alpha")) == 1
    assert world.notifier.events() == ["revoked"]


@pytest.mark.parametrize(
    ("reason", "refusal"),
    [("   ", "needs a reason"), ("two\nlines", "one line of printable text"), ("x" * 501, "keep it to 500")],
)
def test_a_revoke_without_a_usable_reason_is_refused(world: FakeWorld, reason: str, refusal: str) -> None:
    with pytest.raises(BreakGlassError, match=refusal):
        world.breakglass().revoke(ALPHA, reason, OPERATOR, False, T0)
    assert world.iam.key(current_key(world)).status == "Active"
    assert world.ledger.history("alpha") == []


def test_a_revoke_waits_for_a_busy_principal_then_changes_nothing(world: FakeWorld) -> None:
    world.ledger.acquire("alpha", "rotation:someone", T0, 3600)
    glass = world.breakglass()

    with pytest.raises(PrincipalBusy, match="nothing was changed"):
        glass.revoke(ALPHA, "leaked", OPERATOR, False, T0)

    assert world.clock.now() - T0 >= timedelta(seconds=glass.wait_seconds)
    assert world.iam.key(current_key(world)).status == "Active"


def test_a_revoke_another_run_recorded_at_the_same_moment_says_to_run_it_again(
    world: FakeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    glass = world.breakglass()
    with monkeypatch.context() as patched:
        patched.setattr(world.ledger, "append_history", lambda principal, key, record: False)
        with pytest.raises(BreakGlassFailed, match="Run this revoke again"):
            glass.revoke(ALPHA, "leaked", OPERATOR, False, T0)

    assert world.iam.key(current_key(world)).status == "Inactive"  # switched off first, whatever follows
    result = glass.revoke(ALPHA, "leaked", OPERATOR, False, T0)
    assert result.revoke == 1 and world.notifier.events() == ["revoked"]


# -- reissue --------------------------------------------------------------------------------------


def test_a_revoke_with_reissue_issues_a_working_replacement_in_process(world: FakeWorld) -> None:
    old = current_key(world)

    result = world.breakglass().revoke(ALPHA, "leaked", OPERATOR, True, T0)

    assert result.reissued is not None and result.reissued != old and not result.reissue_in_progress
    assert world.iam.key(old).status == "Inactive"
    token = world.secrets.value(SECRET)
    assert token == world.iam.key(result.reissued).token and world.iam.accepts(token)


def test_a_replacement_through_secrets_manager_is_waited_for(world: FakeWorld) -> None:
    glass = world.breakglass(ROTATION_ARN)
    failures = world.rotate_in_background(glass.engine)

    result = glass.revoke(ALPHA, "leaked", OPERATOR, True, T0)

    assert failures == [] and result.reissued is not None and not result.reissue_in_progress
    assert world.ledger.holder("alpha") == ""


def test_a_replacement_that_does_not_finish_in_time_is_reported_in_progress(world: FakeWorld) -> None:
    glass = world.breakglass(ROTATION_ARN)  # Secrets Manager starts it; nothing runs it here

    result = glass.revoke(ALPHA, "leaked", OPERATOR, True, T0)

    assert result.reissued is None and result.reissue_in_progress
    assert world.clock.now() - T0 >= timedelta(seconds=glass.wait_seconds)
    assert world.ledger.holder("alpha").startswith("rotation:")


def test_a_replacement_secrets_manager_refuses_leaves_the_keys_revoked_and_says_what_next(
    world: FakeWorld,
) -> None:
    glass = world.breakglass(ROTATION_ARN)
    world.secrets.fail("rotate", AwsError("RotateSecret", "LimitExceededException", "slow down"))

    with pytest.raises(
        BreakGlassFailed, match=r"refused to start the replacement \(LimitExceededException\)"
    ):
        glass.revoke(ALPHA, "leaked", OPERATOR, True, T0)

    assert world.iam.key(current_key(world)).status == "Inactive"
    assert world.ledger.holder("alpha") == ""


def test_a_replacement_for_a_principal_without_a_secret_is_refused(world: FakeWorld) -> None:
    del world.secrets.secrets[SECRET]
    with pytest.raises(BreakGlassError, match="no secret yet"):
        world.breakglass().revoke(ALPHA, "leaked", OPERATOR, True, T0)


# -- restore --------------------------------------------------------------------------------------


def test_a_restore_brings_the_revoked_key_back_once(world: FakeWorld) -> None:
    glass = world.breakglass()
    key = current_key(world)
    glass.revoke(ALPHA, "false alarm", OPERATOR, False, T0)

    result = glass.restore(ALPHA, OPERATOR, T0 + timedelta(hours=1))

    assert (result.restored, result.current, result.revoke, result.forced) == (key, True, 1, False)
    assert world.iam.key(key).status == "Active"
    entry = world.ledger.get("alpha", V1)
    assert entry is not None and entry.revoked_at is None and entry.state == LedgerState.CURRENT
    assert [r["kind"] for r in world.ledger.history("alpha")] == ["revoke", "restore"]
    assert world.notifier.events() == ["revoked", "restored"]
    with pytest.raises(BreakGlassError, match="already restored"):
        glass.restore(ALPHA, OPERATOR, T0 + timedelta(hours=2))


def test_a_restore_without_a_revoke_is_refused(world: FakeWorld) -> None:
    with pytest.raises(BreakGlassError, match="no recorded revoke"):
        world.breakglass().restore(ALPHA, OPERATOR, T0)


def test_a_revoke_that_issued_a_replacement_is_restored_only_when_forced(world: FakeWorld) -> None:
    glass = world.breakglass()
    old = current_key(world)
    glass.revoke(ALPHA, "leaked", OPERATOR, True, T0)
    with pytest.raises(BreakGlassError, match="treated as leaked"):
        glass.restore(ALPHA, OPERATOR, T0 + timedelta(hours=1))
    assert world.iam.key(old).status == "Inactive"

    result = glass.restore(ALPHA, OPERATOR, T0 + timedelta(hours=1), force_reason="the log was private")

    assert result.forced and result.restored == old and not result.current
    assert result.active_until is not None and result.active_until <= T0 + timedelta(days=7)
    assert world.notifier.published[-1].severity == "critical"


def test_force_on_a_revoke_without_a_replacement_is_refused(world: FakeWorld) -> None:
    glass = world.breakglass()
    glass.revoke(ALPHA, "leaked", OPERATOR, False, T0)
    with pytest.raises(BreakGlassError, match="without --force"):
        glass.restore(ALPHA, OPERATOR, T0, force_reason="because")
    with pytest.raises(BreakGlassError, match="must say why"):
        glass.restore(ALPHA, OPERATOR, T0, force_reason="  ")


def test_a_revoke_older_than_the_retention_is_not_restored(world: FakeWorld) -> None:
    glass = world.breakglass()
    glass.revoke(ALPHA, "leaked", OPERATOR, False, T0)
    with pytest.raises(BreakGlassError, match="older than the 7-day retention"):
        glass.restore(ALPHA, OPERATOR, T0 + timedelta(days=8))


def test_a_restore_whose_keys_are_gone_is_refused(world: FakeWorld) -> None:
    glass = world.breakglass()
    glass.revoke(ALPHA, "leaked", OPERATOR, False, T0)
    world.iam.delete_credential(USER, current_key(world))
    with pytest.raises(BreakGlassError, match="no key left to restore"):
        glass.restore(ALPHA, OPERATOR, T0 + timedelta(hours=1))
    assert [r["kind"] for r in world.ledger.history("alpha")] == ["revoke"]


def test_a_restore_killed_before_its_keys_were_back_is_finished_by_the_next_one(world: FakeWorld) -> None:
    glass = world.breakglass()
    key = current_key(world)
    glass.revoke(ALPHA, "false alarm", OPERATOR, False, T0)
    world.iam.fail("set_credential_status", AwsError("UpdateServiceSpecificCredential", "ServiceFailure"))
    with pytest.raises(AwsError):
        glass.restore(ALPHA, OPERATOR, T0 + timedelta(hours=1))
    assert world.iam.key(key).status == "Inactive"

    result = glass.restore(ALPHA, OPERATOR, T0 + timedelta(hours=2))

    assert result.restored == key and world.iam.key(key).status == "Active"
    assert [r["kind"] for r in world.ledger.history("alpha")] == ["revoke", "restore"]


def test_a_replacement_gives_up_the_rotation_left_unfinished_and_its_key(world: FakeWorld) -> None:
    glass = world.breakglass()
    stuck = "33333333-3333-4333-8333-333333333333"
    world.secrets.rotate(SECRET, stuck, ROTATION_ARN, 30)
    glass.engine.run_step("createSecret", SECRET, stuck, leased=True)  # then its rotation died
    made = world.ledger.get("alpha", stuck)
    assert made is not None and made.credential_id is not None

    result = glass.revoke(ALPHA, "leaked", OPERATOR, True, T0)

    assert result.reissued is not None
    assert made.credential_id not in world.iam.keys
    entry = world.ledger.get("alpha", stuck)
    assert entry is not None and entry.state == LedgerState.ABANDONED


def test_a_revoke_that_finds_its_replacement_working_issues_no_other(world: FakeWorld) -> None:
    glass = world.breakglass()
    first = glass.revoke(ALPHA, "leaked", OPERATOR, True, T0)
    keys = set(world.iam.keys)

    again = glass.revoke(ALPHA, "leaked", OPERATOR, True, T0 + timedelta(minutes=5))

    assert again.repeated and again.reissued is None and first.reissued in keys
    assert set(world.iam.keys) == keys


def test_a_replacement_for_a_secret_without_a_current_version_says_to_apply(world: FakeWorld) -> None:
    world.secrets.secret(SECRET).stages.clear()
    with pytest.raises(BreakGlassFailed, match="run `tokenwarden apply`"):
        world.breakglass().revoke(ALPHA, "leaked", OPERATOR, True, T0)


def test_an_unreadable_history_record_stops_break_glass_before_it_changes_anything(world: FakeWorld) -> None:
    world.ledger.append_history("alpha", "revoke#000001", {"kind": "revoke", "number": "edited by hand"})
    with pytest.raises(BreakGlassFailed, match="unreadable"):
        world.breakglass().revoke(ALPHA, "leaked", OPERATOR, False, T0)
    assert world.iam.key(current_key(world)).status == "Active"
