"""The in-memory fakes keep to their ports and to AWS's rules (mypy checks their types through
`tests.fakes.conformance`; this checks, at test time, that no method drifted in name or parameters)."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta

import pytest

from tests import fakes
from tokenwarden import ports
from tokenwarden.domain.model import AWSCURRENT, AWSPENDING, AWSPREVIOUS
from tokenwarden.domain.promql import PromQLQuerier
from tokenwarden.errors import AwsError
from tokenwarden.service.breakglass import BreakGlassLedger
from tokenwarden.service.health import HealthStore
from tokenwarden.service.snooze import SnoozeLog

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _methods(protocol: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(protocol, inspect.isfunction)
        if not name.startswith("_")
    }


@pytest.mark.parametrize(
    ("port", "fake"),
    [
        (ports.Clock, fakes.FakeClock),
        (ports.IamPort, fakes.FakeIam),
        (ports.SecretsPort, fakes.FakeSecrets),
        (ports.LedgerPort, fakes.FakeLedger),
        (BreakGlassLedger, fakes.FakeLedger),
        (ports.Notifier, fakes.FakeNotifier),
        (ports.TokenProbe, fakes.FakeProbe),
        (HealthStore, fakes.FakeHealthStore),
        (PromQLQuerier, fakes.FakePromQL),
        (SnoozeLog, fakes.FakeSnoozeLog),
    ],
)
def test_every_method_of_the_port_is_in_the_fake_with_the_same_parameters(port: type, fake: type) -> None:
    implemented = _methods(fake)
    for name, wanted in _methods(port).items():
        assert name in implemented, f"{fake.__name__} lacks {name}"
        assert list(implemented[name].parameters) == list(wanted.parameters), f"{fake.__name__}.{name}"


def test_a_secrets_first_version_is_current_and_labels_stay_unique() -> None:
    secrets = fakes.FakeSecrets(fakes.FakeClock(T0))
    secret = secrets.add("tokenwarden/alpha")
    secrets.put_pending(secret.arn, "v1", "token-1")
    assert secret.stages == {"v1": {AWSCURRENT, AWSPENDING}}

    secrets.remove_stage(secret.arn, AWSPENDING, "v1")
    secrets.rotate(secret.arn, "v2", fakes.ROTATION_ARN, 30)
    secrets.put_pending(secret.arn, "v2", "token-2")
    with pytest.raises(AwsError, match="InvalidParameterException"):
        secrets.move_stage(secret.arn, AWSCURRENT, "v2", None)  # AWSCURRENT is on v1
    secrets.move_stage(secret.arn, AWSCURRENT, "v2", "v1")
    assert secret.stages == {"v1": {AWSPREVIOUS}, "v2": {AWSCURRENT, AWSPENDING}}


def test_secrets_manager_refuses_a_rotation_over_an_unfinished_one() -> None:
    secrets = fakes.FakeSecrets(fakes.FakeClock(T0))
    secret = secrets.add("tokenwarden/alpha")
    secrets.put_pending(secret.arn, "v1", "token-1")
    secrets.remove_stage(secret.arn, AWSPENDING, "v1")
    secrets.rotate(secret.arn, "v2", fakes.ROTATION_ARN, 30)
    with pytest.raises(AwsError, match="previous rotation"):
        secrets.rotate(secret.arn, "v3", fakes.ROTATION_ARN, 30)


def test_a_lease_is_taken_conditionally_and_expires_by_itself() -> None:
    ledger = fakes.FakeLedger()
    assert ledger.acquire("alpha", "run-1", T0, 300)
    assert not ledger.acquire("alpha", "run-2", T0, 300)
    assert ledger.hand_over("alpha", "run-1", "rotation:v2", T0, 300)
    ledger.release("alpha", "run-1")  # not the holder any more: nothing happens
    assert ledger.holder("alpha") == "rotation:v2"
    assert ledger.acquire("alpha", "run-2", T0 + timedelta(seconds=301), 300)


def test_a_lease_is_kept_only_by_its_unexpired_holder() -> None:
    ledger = fakes.FakeLedger()
    assert not ledger.keep("alpha", "rotation:v2", T0, 300)  # free: nothing to keep
    assert ledger.hand_over("alpha", "run-1", "rotation:v2", T0, 300)
    assert not ledger.keep("alpha", "run-1", T0, 300)
    assert ledger.keep("alpha", "rotation:v2", T0 + timedelta(seconds=300), 300)
    assert not ledger.keep("alpha", "rotation:v2", T0 + timedelta(seconds=601), 300)  # expired
    assert ledger.holder("alpha") == "rotation:v2"


def test_a_key_turns_expired_and_cannot_be_switched_back_on() -> None:
    clock = fakes.FakeClock(T0)
    iam = fakes.FakeIam(clock)
    iam.add_user("tw-alpha")
    issued = iam.create_credential("tw-alpha", 1)
    clock.advance(timedelta(days=1))
    assert [c.status for c in iam.list_user_credentials("tw-alpha")] == ["Expired"]
    assert not iam.accepts(issued.token)
    with pytest.raises(AwsError):
        iam.set_credential_status("tw-alpha", issued.credential.id, active=True)
