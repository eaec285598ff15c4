"""The rotation engine's steps on in-memory fakes: what each step writes, what it refuses, and what
leaves it when something fails."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes import ROTATION_ARN, FakeClock, FakeSecret, FakeWorld
from tokenwarden.adapters.secrets import SecretWriteError
from tokenwarden.domain.model import (
    AWSCURRENT,
    AWSPENDING,
    AWSPREVIOUS,
    LedgerEntry,
    LedgerState,
    MalformedToken,
)
from tokenwarden.domain.ownership import MANAGED_TAG, NotTokenWardens
from tokenwarden.errors import AwsError, AwsUnavailable
from tokenwarden.service.lease import PrincipalBusy
from tokenwarden.service.rotation import (
    TAG_KEY_AGE,
    ProbePolicy,
    RotationAbandoned,
    RotationEngine,
    RotationError,
    RotationRefused,
)

T0 = datetime(2030, 5, 6, 2, 0, tzinfo=UTC)
SECRET = "tokenwarden/alpha"
USER = "tw-alpha"
V1 = "11111111-1111-4111-8111-111111111111"
V2 = "22222222-2222-4222-8222-222222222222"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld(clock=FakeClock(T0))


def onboarded(world: FakeWorld) -> tuple[RotationEngine, FakeSecret]:
    """alpha with its first key (V1) current, as an onboarding leaves it."""
    secret = world.principal_resources("alpha")
    engine = world.engine()
    engine.run_all(secret.arn, V1)
    world.notifier.published.clear()
    world.probe.checked = 0
    return engine, secret


def rotate(world: FakeWorld, engine: RotationEngine, secret: FakeSecret, version: str = V2) -> None:
    """Secrets Manager starting a rotation, then invoking the function for each step."""
    world.secrets.rotate(secret.arn, version, ROTATION_ARN, 30)
    for step in STEPS:
        engine.run_invoked(step, secret.arn, version, ROTATION_ARN)


def state(world: FakeWorld, version: str) -> LedgerState:
    entry = world.ledger.get("alpha", version)
    assert entry is not None
    return entry.state


# -- a rotation that goes through ----------------------------------------------------------------


def test_the_first_key_is_stored_current_recorded_and_announced(world: FakeWorld) -> None:
    secret = world.principal_resources("alpha")

    world.engine().run_all(secret.arn, V1)

    (key,) = world.iam.keys_of(USER)
    assert world.secrets.value(SECRET) == key.token
    assert secret.stages == {V1: {AWSCURRENT}}
    entry = world.ledger.get("alpha", V1)
    assert entry is not None and entry.state == LedgerState.CURRENT and entry.credential_id == key.id
    assert entry.expires_at == T0 + timedelta(days=90) and entry.requested_age_days == 90
    assert world.notifier.events() == ["onboarded"]


def test_a_rotation_makes_the_new_key_current_and_the_old_one_previous(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    old = world.secrets.value(SECRET)

    rotate(world, engine, secret)

    new = world.secrets.value(SECRET)
    assert new != old and world.iam.accepts(str(new)) and world.iam.accepts(str(old))
    assert secret.stages == {V1: {AWSPREVIOUS}, V2: {AWSCURRENT}}
    assert (state(world, V1), state(world, V2)) == (LedgerState.PREVIOUS, LedgerState.CURRENT)
    assert world.notifier.events() == ["rotated"]
    assert world.ledger.holder("alpha") == ""  # finishSecret let the lease go


def test_every_step_run_again_changes_nothing_more(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    rotate(world, engine, secret)
    keys = {k.id for k in world.iam.keys_of(USER)}

    for step in STEPS:
        engine.run_invoked(step, secret.arn, V2, ROTATION_ARN)

    assert {k.id for k in world.iam.keys_of(USER)} == keys
    assert world.notifier.events() == ["rotated"]


def test_create_secret_retried_after_its_key_was_stored_makes_no_second_key(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    world.secrets.rotate(secret.arn, V2, ROTATION_ARN, 30)
    engine.run_invoked("createSecret", secret.arn, V2, ROTATION_ARN)

    engine.run_invoked("createSecret", secret.arn, V2, ROTATION_ARN)

    assert len(world.iam.keys_of(USER)) == 2
    assert world.iam.count("create_credential") == 2


def test_a_key_whose_token_was_lost_is_deleted_and_made_again(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    world.secrets.rotate(secret.arn, V2, ROTATION_ARN, 30)
    world.secrets.fail("put_pending", AwsUnavailable("unreachable", "EndpointConnectionError"))
    with pytest.raises(RotationError):
        engine.run_invoked("createSecret", secret.arn, V2, ROTATION_ARN)
    lost = world.ledger.get("alpha", V2)
    assert lost is not None and lost.credential_id in world.iam.keys

    engine.run_invoked("createSecret", secret.arn, V2, ROTATION_ARN)

    entry = world.ledger.get("alpha", V2)
    assert entry is not None and entry.credential_id != lost.credential_id
    assert lost.credential_id not in world.iam.keys
    assert world.secrets.value(SECRET, AWSPENDING) == world.iam.key(str(entry.credential_id)).token


def test_the_key_age_tag_sets_the_expiry_within_the_maximum(world: FakeWorld) -> None:
    secret = world.principal_resources("alpha")
    secret.tags[TAG_KEY_AGE] = "30"
    world.engine().run_all(secret.arn, V1)
    (key,) = world.iam.keys_of(USER)
    assert key.expires_at == T0 + timedelta(days=30)

    secret.tags[TAG_KEY_AGE] = "400"
    engine = world.engine()
    rotate(world, engine, secret)
    newest = max(world.iam.keys_of(USER), key=lambda k: k.created_at.isoformat() + k.id)
    assert newest.expires_at - newest.created_at == timedelta(days=90)


# -- making room: two keys per user ---------------------------------------------------------------


def test_a_full_user_loses_its_unusable_key_first_never_the_current_one(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    current = world.ledger.get("alpha", V1)
    assert current is not None
    stray = world.iam.create_credential(USER, 10).credential
    world.iam.set_credential_status(USER, stray.id, active=False)

    rotate(world, engine, secret)

    ids = {k.id for k in world.iam.keys_of(USER)}
    assert current.credential_id in ids and stray.id not in ids and len(ids) == 2


def test_a_full_user_loses_its_oldest_previous_key(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    rotate(world, engine, secret)  # V1 previous, V2 current: two keys
    previous = world.ledger.get("alpha", V1)
    assert previous is not None
    v3 = "33333333-3333-4333-8333-333333333333"
    world.clock.advance(timedelta(days=1))

    rotate(world, engine, secret, v3)

    ids = {k.id for k in world.iam.keys_of(USER)}
    assert previous.credential_id not in ids  # the oldest previous key made room
    assert state(world, V1) == LedgerState.DELETED
    assert state(world, V2) == LedgerState.PREVIOUS and state(world, v3) == LedgerState.CURRENT


def test_iam_refuses_a_third_key(world: FakeWorld) -> None:
    world.principal_resources("alpha")
    world.iam.create_credential(USER, 10)
    world.iam.create_credential(USER, 10)
    with pytest.raises(AwsError) as refused:
        world.iam.create_credential(USER, 10)
    assert refused.value.code == "LimitExceeded"


# -- refusals: nothing read beyond the description, nothing changed -------------------------------


@pytest.mark.parametrize(
    ("arrange", "invoked_as", "reason"),
    [
        (lambda s: setattr(s, "rotation_enabled", False), ROTATION_ARN, "rotation is not enabled"),
        (lambda s: None, ROTATION_ARN.replace("rotation", "other"), "not by this function"),
        (lambda s: None, None, r"not by this function \(unknown\)"),
        (lambda s: s.stages.update({V2: {"AWSPREVIOUS"}}), ROTATION_ARN, "is AWSPREVIOUS, not AWSPENDING"),
        (lambda s: None, ROTATION_ARN, f"{V2} is not a version of"),
    ],
    ids=["rotation-off", "other-function", "no-function", "not-pending", "unknown-version"],
)
def test_an_invocation_that_is_not_this_functions_rotation_is_refused(
    world: FakeWorld, arrange: Callable[[Any], None], invoked_as: str | None, reason: str
) -> None:
    engine, secret = onboarded(world)
    arrange(secret)
    writes = len(world.ledger.calls)

    with pytest.raises(RotationRefused, match=reason):
        engine.run_step("createSecret", secret.arn, V2, function_arn=invoked_as)

    assert len(world.iam.keys_of(USER)) == 1
    assert [c for c in world.ledger.calls[writes:] if c not in ("get", "entries")] == []
    assert world.notifier.published == []


def test_a_qualified_function_arn_is_the_same_function(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    world.secrets.rotate(secret.arn, V2, ROTATION_ARN, 30)
    engine.run_step("createSecret", secret.arn, V2, function_arn=f"{ROTATION_ARN}:live")
    assert world.secrets.value(SECRET, AWSPENDING) is not None


def test_a_secret_outside_the_prefix_is_refused(world: FakeWorld) -> None:
    other = world.secrets.add("elsewhere/alpha")
    other.rotation_enabled, other.rotation_lambda_arn = True, ROTATION_ARN
    with pytest.raises(RotationRefused, match="not under the prefix"):
        world.engine().run_step("createSecret", other.arn, V1, function_arn=ROTATION_ARN)


def test_an_unknown_step_and_a_missing_secret_are_refused(world: FakeWorld) -> None:
    engine = world.engine()
    with pytest.raises(RotationRefused, match="unknown rotation step"):
        engine.run_step("dropSecret", SECRET, V1)
    with pytest.raises(RotationRefused, match="does not exist"):
        engine.run_step("createSecret", SECRET, V1, function_arn=ROTATION_ARN)


def test_a_version_already_current_has_nothing_left_and_finish_lets_the_lease_go(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    world.ledger.acquire("alpha", f"rotation:{V1}", T0, 600)

    engine.run_invoked("finishSecret", secret.arn, V1, ROTATION_ARN)

    assert world.ledger.holder("alpha") == ""
    assert world.notifier.published == []


def test_a_rotation_a_newer_run_abandoned_ends_quietly(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    world.secrets.rotate(secret.arn, V2, ROTATION_ARN, 30)
    secret.stages[V2].clear()  # a newer run took AWSPENDING off it
    world.ledger.save(
        LedgerEntry(principal="alpha", version_id=V2, state=LedgerState.ABANDONED, created_at=T0)
    )

    with pytest.raises(RotationAbandoned):
        engine.run_invoked("createSecret", secret.arn, V2, ROTATION_ARN)
    assert world.notifier.published == []


def test_a_version_since_removed_that_the_ledger_knows_is_abandoned(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    world.ledger.save(
        LedgerEntry(principal="alpha", version_id=V2, state=LedgerState.CREATING, created_at=T0)
    )
    with pytest.raises(RotationAbandoned, match="no longer exists"):
        engine.run_step("testSecret", secret.arn, V2, function_arn=ROTATION_ARN)


def test_an_abandoned_rotation_still_pending_is_never_resumed(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    world.secrets.rotate(secret.arn, V2, ROTATION_ARN, 30)
    world.ledger.save(
        LedgerEntry(
            principal="alpha", version_id=V2, state=LedgerState.ABANDONED, created_at=T0, reason="revoked"
        )
    )
    with pytest.raises(RotationError, match="was abandoned \\(revoked\\)"):
        engine.run_invoked("createSecret", secret.arn, V2, ROTATION_ARN)
    assert len(world.iam.keys_of(USER)) == 1


def test_a_secret_that_is_no_longer_tokenwardens_gets_no_key(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    world.secrets.rotate(secret.arn, V2, ROTATION_ARN, 30)
    del secret.tags[MANAGED_TAG]

    with pytest.raises(NotTokenWardens):
        engine.run_step("createSecret", secret.arn, V2, function_arn=ROTATION_ARN)
    assert len(world.iam.keys_of(USER)) == 1


def test_a_secret_that_stops_being_tokenwardens_while_its_key_is_made_gets_no_token(
    world: FakeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check before the write is made afresh, not taken from the step's first description."""
    engine, secret = onboarded(world)
    world.secrets.rotate(secret.arn, V2, ROTATION_ARN, 30)
    make_key = world.iam.create_credential

    def rekeyed_meanwhile(user_name: str, age_days: int) -> Any:
        secret.kms_key_id = "arn:aws:kms:us-east-1:123456789012:key/someone-elses"
        return make_key(user_name, age_days)

    monkeypatch.setattr(world.iam, "create_credential", rekeyed_meanwhile)

    with pytest.raises(SecretWriteError):
        engine.run_step("createSecret", secret.arn, V2, function_arn=ROTATION_ARN)
    assert secret.values.get(V2) is None


def test_a_whole_rotation_reads_the_secret_and_the_ledger_only_where_it_must(world: FakeWorld) -> None:
    """Handed the lease when it was started, a rotation describes the secret once per invocation (to
    admit it) and takes its tags from that; finishSecret reads the ledger with one query,
    createSecret not at all (its record's write says whether one existed)."""
    engine, secret = onboarded(world)
    world.ledger.acquire("alpha", f"rotation:{V2}", T0, 600)  # as the reconciler hands it over
    world.secrets.calls.clear()
    world.ledger.calls.clear()

    rotate(world, engine, secret)

    assert world.secrets.count("describe") == len(STEPS)
    assert world.secrets.count("tags") == 0
    assert (world.ledger.count("get"), world.ledger.count("entries")) == (0, 1)
    assert world.notifier.events() == ["rotated"]
    assert world.ledger.holder("alpha") == ""


def test_a_step_that_takes_the_lease_anew_describes_the_secret_again(world: FakeWorld) -> None:
    """Not handed the lease (Secrets Manager's own schedule started it, or the lease expired), a
    step may have waited for another holder: it acts on the secret as it is once the lease is its."""
    engine, secret = onboarded(world)
    world.secrets.calls.clear()

    rotate(world, engine, secret)

    # createSecret describes it again; finishSecret finds the lease createSecret kept for it.
    assert world.secrets.count("describe") == len(STEPS) + 1
    assert world.notifier.events() == ["rotated"]


# -- testSecret -----------------------------------------------------------------------------------


def test_test_secret_waits_through_propagation_and_throttling(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    world.probe.answers = [401, 403, 429, 503]
    world.secrets.rotate(secret.arn, V2, ROTATION_ARN, 30)
    engine.run_invoked("createSecret", secret.arn, V2, ROTATION_ARN)
    before = world.clock.now()

    engine.run_invoked("testSecret", secret.arn, V2, ROTATION_ARN)

    assert world.probe.checked == 5
    assert world.clock.now() - before == timedelta(seconds=2 + 4 + 8 + 15)


def test_test_secret_stops_at_a_final_answer(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    world.probe.answers = [422, 200]
    with pytest.raises(RotationError, match="HTTP 422 after"):
        engine.test_secret(secret.arn, V1)
    assert world.probe.checked == 1


def test_test_secret_gives_up_after_its_attempts(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    world.iam.set_credential_status(USER, world.iam.keys_of(USER)[0].id, active=False)
    engine.probe_policy = ProbePolicy(attempts=3)
    with pytest.raises(RotationError, match="HTTP 401 after 3 attempt"):
        engine.test_secret(secret.arn, V1)
    assert world.probe.checked == 3


def test_test_secret_alone_on_a_version_secrets_manager_made_proves_the_current_key(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    world.secrets.rotate(secret.arn, V2, ROTATION_ARN, 30)  # an empty version, unknown to the ledger
    engine.test_secret(secret.arn, V2)
    assert world.probe.checked == 1


def test_test_secret_without_any_key_fails(world: FakeWorld) -> None:
    secret = world.principal_resources("alpha")
    with pytest.raises(RotationError, match="holds no key"):
        world.engine().test_secret(secret.arn, V1)


def test_finish_without_a_recorded_key_fails(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    world.secrets.rotate(secret.arn, V2, ROTATION_ARN, 30)
    with pytest.raises(RotationError, match="no recorded key"):
        engine.run_invoked("finishSecret", secret.arn, V2, ROTATION_ARN)


# -- failures: counted, announced once, and never carrying a token out ----------------------------


def test_a_failing_rotation_is_announced_once_however_often_it_is_retried(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    world.secrets.rotate(secret.arn, V2, ROTATION_ARN, 30)
    engine.run_invoked("createSecret", secret.arn, V2, ROTATION_ARN)
    pending = world.ledger.get("alpha", V2)
    assert pending is not None
    world.iam.set_credential_status(USER, str(pending.credential_id), active=False)
    engine.probe_policy = ProbePolicy(attempts=1)

    for _ in range(3):
        with pytest.raises(RotationError):
            engine.run_invoked("testSecret", secret.arn, V2, ROTATION_ARN)

    assert world.notifier.events() == ["rotation_failed"]
    assert "testSecret" in world.notifier.published[0].description


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            AwsError("CreateServiceSpecificCredential", "ThrottlingException", "Rate exceeded"),
            "CreateServiceSpecificCredential answered ThrottlingException",
        ),
        (
            AwsUnavailable("unreachable", "EndpointConnectionError", "https://iam"),
            "AWS client error (EndpointConnectionError)",
        ),
        (ValueError("b'<Secret>cw-token-leaked-into-a-message</Secret>'"), "ValueError"),
    ],
    ids=["aws-error", "aws-unavailable", "foreign"],
)
def test_what_leaves_an_invoked_step_names_the_failure_without_its_text(
    world: FakeWorld, error: Exception, said: str
) -> None:
    engine, secret = onboarded(world)
    world.secrets.rotate(secret.arn, V2, ROTATION_ARN, 30)
    world.iam.fail("create_credential", error)

    with pytest.raises(RotationError) as raised:
        engine.run_invoked("createSecret", secret.arn, V2, ROTATION_ARN)

    failure = raised.value
    assert str(failure) == f"the rotation step failed: {said}"
    assert failure.__cause__ is None and failure.__context__ is None
    assert "cw-token" not in "".join(traceback.format_exception(failure))
    assert world.ledger.holder("alpha") == ""  # the lease was let go
    assert world.notifier.events() == ["rotation_failed"]


def test_the_failure_report_is_best_effort(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    world.secrets.rotate(secret.arn, V2, ROTATION_ARN, 30)
    world.iam.fail("create_credential", AwsError("CreateServiceSpecificCredential", "ServiceFailure"))
    world.notifier.fail("publish", AwsError("Publish", "ThrottlingException"))

    with pytest.raises(RotationError, match="answered ServiceFailure"):
        engine.run_invoked("createSecret", secret.arn, V2, ROTATION_ARN)
    assert world.notifier.published == []


def test_in_process_steps_keep_aws_errors_and_refusals_and_hide_the_rest(world: FakeWorld) -> None:
    secret = world.principal_resources("alpha")
    engine = world.engine()
    world.iam.fail("create_credential", AwsError("CreateServiceSpecificCredential", "ServiceFailure"))
    with pytest.raises(AwsError, match="ServiceFailure"):
        engine.run_all(secret.arn, V1)

    world.iam.tokens = ["not a bearer token\r\n"]
    with pytest.raises(MalformedToken) as malformed:
        engine.run_all(secret.arn, V1)
    assert "bearer token cannot have" in str(malformed.value) and "\r\n" not in str(malformed.value)
    assert world.secrets.value(SECRET, AWSPENDING) is None  # never stored

    engine.run_all(secret.arn, V1)  # the malformed key is deleted as lost, and another one made
    (key,) = world.iam.keys_of(USER)
    assert world.secrets.value(SECRET) == key.token


def test_a_step_waits_for_the_lease_then_reports_the_principal_busy(world: FakeWorld) -> None:
    engine, secret = onboarded(world)
    world.secrets.rotate(secret.arn, V2, ROTATION_ARN, 30)
    world.ledger.acquire("alpha", "reconcile:other", T0, 3600)
    before = world.clock.now()

    with pytest.raises(PrincipalBusy, match="Secrets Manager retries"):
        engine.run_invoked("createSecret", secret.arn, V2, ROTATION_ARN)

    assert world.clock.now() - before >= timedelta(seconds=engine.lease_wait_seconds)
    assert world.ledger.holder("alpha") == "reconcile:other"
    assert len(world.iam.keys_of(USER)) == 1
