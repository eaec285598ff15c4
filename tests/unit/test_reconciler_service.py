"""The reconciler applying its plans on in-memory fakes: each principal under its lease and on its
own, what each action writes and announces, and how a principal's failure is reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes import API_KEY_POLICY, ROTATION_ARN, FakeClock, FakeWorld
from tests.unit.builders import registry
from tokenwarden.domain.model import AWSCURRENT, AWSPENDING, AWSPREVIOUS, LedgerState
from tokenwarden.domain.outcomes import RunReport
from tokenwarden.domain.ownership import MANAGED_TAG
from tokenwarden.domain.registry import Registry
from tokenwarden.errors import AwsError
from tokenwarden.service.reconciler import Reconciler

T0 = datetime(2030, 5, 6, 2, 0, tzinfo=UTC)
USER = "tw-alpha"
SECRET = "tokenwarden/alpha"
ALPHA = registry("alpha")
ROTATION_DUE = timedelta(days=80)  # 90-day keys rotate 14 (+ up to 3) days before they expire


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld(clock=FakeClock(T0))


def run(world: FakeWorld, reconciler: Reconciler, reg: Registry = ALPHA, **options: Any) -> RunReport:
    return reconciler.run(reg, world.clock.now(), **options)


def statuses(report: RunReport) -> dict[str, str]:
    return {o.principal: o.status for o in report.outcomes}


def outcome(report: RunReport, principal: str = "alpha") -> tuple[str, tuple[str, ...], str | None]:
    found = next(o for o in report.outcomes if o.principal == principal)
    return found.status, found.done, found.error


def onboarded(world: FakeWorld, rotation_lambda_arn: str | None = ROTATION_ARN) -> Reconciler:
    reconciler = world.reconciler(rotation_lambda_arn)
    assert statuses(run(world, reconciler)) == {"alpha": "ok"}
    world.notifier.published.clear()
    return reconciler


# -- onboarding and a quiet night -----------------------------------------------------------------


def test_a_new_principal_gets_its_user_secret_and_first_key(world: FakeWorld) -> None:
    report = run(world, world.reconciler())

    assert outcome(report) == ("ok", ("secure", "onboard"), None)
    user = world.iam.users[USER]
    assert user.path == "/tokenwarden/" and user.attached_policies == [API_KEY_POLICY]
    secret = world.secrets.secret(SECRET)
    assert secret.kms_key_id == world.rules.secrets_kms_key_id and secret.policy is not None
    (key,) = world.iam.keys_of(USER)
    assert world.secrets.value(SECRET) == key.token
    assert (secret.rotation_enabled, secret.rotation_lambda_arn) == (True, ROTATION_ARN)
    assert world.notifier.events() == ["onboarded", "run_summary"]
    assert world.ledger.holder("alpha") == ""
    assert report.min_days_to_expiry == 90.0


def test_a_principal_with_nothing_to_do_is_left_unchanged(world: FakeWorld) -> None:
    reconciler = onboarded(world)
    world.clock.advance(timedelta(days=1))
    writes = world.iam.count("create_credential")

    report = run(world, reconciler)

    assert outcome(report) == ("unchanged", (), None)
    assert world.iam.count("create_credential") == writes
    assert world.notifier.events() == ["run_summary"]


def test_a_principal_whose_secret_lost_its_tag_is_checked_even_with_nothing_to_do(world: FakeWorld) -> None:
    reconciler = onboarded(world)
    del world.secrets.secret(SECRET).tags[MANAGED_TAG]

    report = run(world, reconciler)

    status, _, error = outcome(report)
    assert status == "failed" and error is not None and error.startswith("refused: secret tokenwarden/alpha")
    assert world.notifier.events() == ["takeover_refused", "run_summary"]


# -- rotation ---------------------------------------------------------------------------------------


def test_a_due_rotation_is_started_in_secrets_manager_and_handed_the_lease(world: FakeWorld) -> None:
    reconciler = onboarded(world)
    world.clock.advance(ROTATION_DUE)
    world.ledger.calls.clear()

    report = run(world, reconciler)

    assert outcome(report) == ("ok", ("rotate",), None)
    pending = world.secrets.secret(SECRET).version_with(AWSPENDING)
    assert pending is not None and world.ledger.holder("alpha") == f"rotation:{pending}"
    assert world.ledger.count("release") == 0  # the lease is the rotation's to let go


def test_a_rotation_started_by_the_reconciler_finishes_in_the_background(world: FakeWorld) -> None:
    reconciler = onboarded(world)
    failures = world.rotate_in_background(reconciler.engine)
    world.clock.advance(ROTATION_DUE)

    run(world, reconciler)

    assert failures == []
    secret = world.secrets.secret(SECRET)
    assert sorted(map(sorted, secret.stages.values())) == [[AWSCURRENT], [AWSPREVIOUS]]
    assert len(world.iam.keys_of(USER)) == 2
    assert world.notifier.events() == ["rotated", "run_summary"]
    assert world.ledger.holder("alpha") == ""


def test_without_a_rotation_function_the_reconciler_rotates_in_process(world: FakeWorld) -> None:
    reconciler = onboarded(world, rotation_lambda_arn=None)
    world.clock.advance(ROTATION_DUE)

    report = run(world, reconciler)

    status, done, _ = outcome(report)
    assert status == "ok" and done[-1] == "rotate"
    assert world.secrets.count("rotate") == 0
    current = world.secrets.value(SECRET)
    assert current is not None and world.iam.accepts(current) and len(world.iam.keys_of(USER)) == 2


def test_a_rotation_secrets_manager_is_still_running_leaves_the_principal_locked(world: FakeWorld) -> None:
    reconciler = onboarded(world)
    world.clock.advance(ROTATION_DUE)
    world.secrets.fail(
        "rotate",
        AwsError("RotateSecret", "InvalidRequestException", "A previous rotation isn't complete."),
    )

    report = run(world, reconciler)

    status, _, error = outcome(report)
    assert status == "locked" and error is not None and "still running an earlier rotation" in error
    assert world.ledger.holder("alpha") == ""  # the rotation's lease was let go again


def test_a_refused_rotation_fails_the_principal_naming_the_call_and_code(world: FakeWorld) -> None:
    reconciler = onboarded(world)
    world.clock.advance(ROTATION_DUE)
    world.secrets.fail("rotate", AwsError("RotateSecret", "AccessDeniedException", "not authorized"))

    report = run(world, reconciler)

    assert outcome(report) == ("failed", (), "rotate: RotateSecret answered AccessDeniedException")
    assert world.ledger.holder("alpha") == ""
    assert [o.principal for o in report.failed] == ["alpha"]


def test_a_broken_current_key_is_repaired_and_announced(world: FakeWorld) -> None:
    reconciler = onboarded(world)
    (key,) = world.iam.keys_of(USER)
    world.iam.set_credential_status(USER, key.id, active=False)  # switched off by hand

    report = run(world, reconciler)

    assert outcome(report)[:2] == ("ok", ("repair",))
    assert world.notifier.events()[0] == "repaired"
    assert world.secrets.count("rotate") == 1


# -- retire, delete, offboard -----------------------------------------------------------------------


def test_the_previous_key_is_retired_after_its_grace_then_deleted_after_retention(world: FakeWorld) -> None:
    reconciler = onboarded(world, rotation_lambda_arn=None)
    (first,) = world.iam.keys_of(USER)
    world.clock.advance(ROTATION_DUE)
    run(world, reconciler)

    world.clock.advance(timedelta(days=8))
    retired = run(world, reconciler)
    assert "retire" in outcome(retired)[1]
    assert world.iam.key(first.id).status == "Inactive"
    assert "retired" in world.notifier.events()

    world.clock.advance(timedelta(days=8))
    deleted = run(world, reconciler)
    assert "delete" in outcome(deleted)[1]
    assert first.id not in world.iam.keys
    assert "deleted" in world.notifier.events()
    states = {e.credential_id: e.state for e in world.ledger.entries("alpha")}
    assert states[first.id] == LedgerState.DELETED


def test_a_principal_acted_on_is_read_once_under_its_lease(world: FakeWorld) -> None:
    """Its user is inspected once, for the plan and the ownership check alike; its secret is
    described once and only its policy read again; the ledger records the action updates are
    the ones read with the principal."""
    reconciler = onboarded(world, rotation_lambda_arn=None)
    world.clock.advance(ROTATION_DUE)
    run(world, reconciler)
    world.clock.advance(timedelta(days=8))
    for fake in (world.iam, world.secrets, world.ledger):
        fake.calls.clear()

    retired = run(world, reconciler)

    assert "retire" in outcome(retired)[1]
    assert (world.iam.count("inspect_user"), world.iam.count("get_user")) == (1, 0)
    assert (world.secrets.count("describe"), world.secrets.count("inspect")) == (1, 1)
    assert (world.ledger.count("entries"), world.ledger.count("get")) == (1, 0)
    assert world.iam.count("list_user_credentials") == 1


def test_a_principal_taken_out_of_the_registry_is_offboarded_once(world: FakeWorld) -> None:
    reconciler = onboarded(world, rotation_lambda_arn=None)
    world.clock.advance(ROTATION_DUE)
    run(world, reconciler)  # two keys now
    world.notifier.published.clear()
    others = registry("beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa")

    report = run(world, reconciler, others)

    status, done, _ = outcome(report)
    assert status == "ok" and done.count("offboard") == 2
    assert {k.status for k in world.iam.keys_of(USER)} == {"Inactive"}
    assert world.notifier.events().count("offboarded") == 1
    assert {e.state for e in world.ledger.entries("alpha")} == {LedgerState.RETIRED}


def test_after_the_retention_an_offboarded_principal_is_deleted_entirely(world: FakeWorld) -> None:
    reconciler = onboarded(world, rotation_lambda_arn=None)
    others = registry("beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa")
    run(world, reconciler, others)

    for _ in range(3):
        world.clock.advance(timedelta(days=8))
        run(world, reconciler, others)

    assert world.iam.keys_of(USER) == [] and USER not in world.iam.users
    assert world.secrets.secret(SECRET).deleted_at is not None


def test_the_guard_holds_a_mass_offboarding_and_says_so(world: FakeWorld) -> None:
    reg = registry("alpha", "beta", "gamma")
    reconciler = world.reconciler(None)
    run(world, reconciler, reg)
    world.notifier.published.clear()

    report = run(world, reconciler, registry("delta"))

    assert world.notifier.events()[0] == "guard_tripped"
    assert {k.status for k in world.iam.keys.values()} == {"Active"}
    assert any(f.kind == "guard_tripped" for f in report.findings)


# -- unfinished rotations -----------------------------------------------------------------------


def test_a_stray_pending_version_is_taken_off(world: FakeWorld) -> None:
    reconciler = onboarded(world)
    world.secrets.rotate(SECRET, "99999999-9999-4999-8999-999999999999", ROTATION_ARN, 30)  # never run

    report = run(world, reconciler)

    assert "abandon_pending" in outcome(report)[1]
    assert world.secrets.secret(SECRET).version_with(AWSPENDING) is None


def test_a_rotation_that_never_finished_is_abandoned_and_its_key_deleted(world: FakeWorld) -> None:
    reconciler = onboarded(world)
    world.clock.advance(ROTATION_DUE)
    run(world, reconciler)
    version = world.secrets.secret(SECRET).version_with(AWSPENDING)
    assert version is not None
    engine = reconciler.engine
    engine.run_invoked("createSecret", SECRET, version, ROTATION_ARN)  # then it died
    world.ledger.release("alpha", f"rotation:{version}")
    made = world.ledger.get("alpha", version)
    assert made is not None and made.credential_id in world.iam.keys
    world.clock.advance(timedelta(days=1))

    report = run(world, reconciler)

    assert outcome(report)[1][0] == "abandon_pending"
    assert made.credential_id not in world.iam.keys
    entry = world.ledger.get("alpha", version)
    assert entry is not None and entry.state == LedgerState.ABANDONED


# -- one principal at a time, each on its own ---------------------------------------------------


def test_a_principal_another_run_holds_is_skipped(world: FakeWorld) -> None:
    world.ledger.acquire("alpha", "another-run", T0, 300)

    report = run(world, world.reconciler())

    assert outcome(report)[0] == "locked"
    assert world.iam.users == {} and world.ledger.holder("alpha") == "another-run"


def test_a_run_out_of_time_defers_the_rest(world: FakeWorld) -> None:
    report = run(world, world.reconciler(), remaining_seconds=lambda: 30.0)
    assert outcome(report) == ("deferred", (), "out of time; next run")
    assert world.iam.users == {}


def test_one_principals_failure_is_reported_and_the_run_goes_on(world: FakeWorld) -> None:
    world.iam.fail("create_credential", AwsError("CreateServiceSpecificCredential", "ServiceFailure", "boom"))
    seen: list[str] = []

    report = world.reconciler().run(registry("alpha", "beta"), T0, progress=lambda o: seen.append(o.status))

    assert outcome(report, "alpha") == (
        "failed",
        ("secure",),
        "onboard: CreateServiceSpecificCredential answered ServiceFailure",
    )
    assert outcome(report, "beta")[0] == "ok"
    assert seen == ["failed", "ok"]
    assert report.counts["principals_failed"] == 1 and world.ledger.holder("alpha") == ""


def test_a_foreign_failure_is_named_by_its_type_only(world: FakeWorld) -> None:
    world.iam.fail("create_credential", ValueError("unparsable answer b'<Secret>cw-token-xyz</Secret>'"))
    report = run(world, world.reconciler())
    assert outcome(report)[2] == "onboard: the rotation step failed: ValueError"


def test_a_user_under_tokenwardens_name_that_is_not_its_own_is_refused_and_announced(
    world: FakeWorld,
) -> None:
    world.iam.add_user(USER, "/tokenwarden/", tags={"owner": "someone-else"})

    report = run(world, world.reconciler())

    status, _, error = outcome(report)
    assert status == "failed" and error is not None and error.startswith("refused: IAM user tw-alpha")
    assert SECRET not in world.secrets.secrets and world.iam.keys == {}
    assert world.notifier.events() == ["takeover_refused", "run_summary"]


def test_without_ownership_rules_nothing_is_made(world: FakeWorld) -> None:
    report = run(world, world.reconciler(custody=False))
    status, _, error = outcome(report)
    assert status == "failed" and error is not None and "without ownership rules" in error
    assert world.iam.users == {}


def test_a_rotation_whose_finish_died_after_moving_awscurrent_is_finished(world: FakeWorld) -> None:
    reconciler = onboarded(world)
    version = "22222222-2222-4222-8222-222222222222"
    world.secrets.rotate(SECRET, version, ROTATION_ARN, 30)
    for step in ("createSecret", "testSecret"):
        reconciler.engine.run_step(step, SECRET, version, leased=True)
    world.secrets.move_stage(
        SECRET, AWSCURRENT, version, world.secrets.secret(SECRET).version_with(AWSCURRENT)
    )
    world.secrets.remove_stage(SECRET, AWSPENDING, version)  # then the finish step died

    report = run(world, reconciler)

    assert "resume_finish" in outcome(report)[1]
    entry = world.ledger.get("alpha", version)
    assert entry is not None and entry.state == LedgerState.CURRENT
    assert world.notifier.events()[0] == "rotated"


def test_a_key_about_to_expire_is_announced_once(world: FakeWorld) -> None:
    reconciler = onboarded(world)
    world.clock.advance(timedelta(days=85))

    report = run(world, reconciler)

    assert "expiring_soon" in outcome(report)[1]
    assert world.notifier.events().count("expiring_soon") == 1
    entries = world.ledger.entries("alpha")
    assert any("expiring_soon" in e.notified for e in entries)


def test_a_key_nobody_recorded_is_deleted_once_it_is_old_enough(world: FakeWorld) -> None:
    reconciler = onboarded(world)
    stray = world.iam.create_credential(USER, 30).credential  # made outside TokenWarden
    world.clock.advance(timedelta(hours=25))

    report = run(world, reconciler)

    assert "delete_untracked" in outcome(report)[1]
    assert stray.id not in world.iam.keys and len(world.iam.keys_of(USER)) == 1
    (deleted,) = [n for n in world.notifier.published if n.event_type.value == "deleted"]
    assert "untracked" in deleted.description
