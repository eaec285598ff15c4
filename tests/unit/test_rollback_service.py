"""The automatic rollback on in-memory fakes: the nightly run retires a key the team's laptops still
use, the hourly health check finds the team silent and re-activates it under the principal's lease,
the plan keeps it until its extended grace ends and retires it again, and a second silence escalates.
Killed half way, the next check finishes it; a revoked principal's keys never come back."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes import FakeClock, FakeHealthStore, FakePromQL, FakeWorld
from tests.unit.builders import registry
from tokenwarden.domain.model import LedgerState
from tokenwarden.domain.rollback import ROLLED_BACK
from tokenwarden.errors import AwsError
from tokenwarden.service.health import HealthChecker, HealthReport
from tokenwarden.service.reconciler import Reconciler
from tokenwarden.service.rollback import AutomaticRollback

T0 = datetime(2030, 5, 6, 2, 0, tzinfo=UTC)  # a Monday night; working hours are 9-18 UTC, Mon-Fri
USER = "tw-alpha"
ALPHA = registry("alpha")


class Scene:
    """alpha's key rotated on day 77 and its previous key retired on day 85 (a Tuesday, 02:00)."""

    def __init__(self, world: FakeWorld) -> None:
        self.world = world
        self.reconciler: Reconciler = world.reconciler(rotation_lambda_arn=None)
        self.reconciler.run(ALPHA, world.clock.now())
        (self.first,) = world.iam.keys_of(USER)
        world.clock.advance(timedelta(days=77))
        self.reconciler.run(ALPHA, world.clock.now())
        self.querier = FakePromQL({"alpha": world.clock.now()})
        self.store = FakeHealthStore()
        self.checker = dataclasses.replace(
            world.health(self.querier, self.store),
            rollback=AutomaticRollback(world.iam, world.ledger, world.notifier, world.naming, world.clock),
        )
        self.night(days=8)
        self.retired_at = world.clock.now()
        assert self.retired_at.weekday() == 1 and self.status() == "Inactive"

    def night(self, days: int = 1) -> None:
        """The nightly run, `days` later at 02:00; the laptops' last sample is the evening before."""
        evening = (self.world.clock.now() + timedelta(days=days - 1)).replace(hour=17, minute=0)
        self.check(evening, sample=evening - timedelta(minutes=5))
        self.to(evening.replace(hour=2) + timedelta(days=1))
        self.reconciler.run(ALPHA, self.world.clock.now())

    def check(self, at: datetime, sample: datetime | None = None) -> HealthReport:
        if sample is not None:
            self.querier.last_seen["alpha"] = sample
        self.to(at)
        return self.checker.run(ALPHA, at)

    def to(self, at: datetime) -> None:
        self.world.clock.advance(at - self.world.clock.now())

    def status(self) -> str:
        return self.world.iam.key(self.first.id).status

    def events(self) -> list[str]:
        events = self.world.notifier.events()
        self.world.notifier.published.clear()
        return [e for e in events if e != "run_summary"]


@pytest.fixture
def scene() -> Scene:
    built = Scene(FakeWorld(clock=FakeClock(T0)))
    built.events()
    return built


def test_a_team_silenced_by_a_retirement_gets_the_key_back_and_the_plan_retires_it_again(
    scene: Scene,
) -> None:
    afternoon = scene.retired_at.replace(hour=15)

    report = scene.check(afternoon)

    assert [(o.verdict, o.credential_id) for o in report.rollbacks] == [("rollback", scene.first.id)]
    assert scene.status() == "Active"
    assert scene.events() == ["team_silent", "rolled_back"]
    (entry,) = [e for e in scene.world.ledger.entries("alpha") if e.credential_id == scene.first.id]
    assert entry.state is LedgerState.PREVIOUS and entry.deactivated_at is None
    assert entry.grace_until == afternoon + timedelta(days=3) and ROLLED_BACK in entry.notified
    (record,) = scene.world.ledger.history("alpha")
    assert record["kind"] == "rolled_back" and record["credential_id"] == scene.first.id
    assert scene.world.ledger.holder("alpha") == ""  # the lease was let go

    again = scene.check(afternoon + timedelta(hours=1))
    assert again.rollbacks == () and scene.events() == []

    scene.check(afternoon + timedelta(hours=2), sample=afternoon + timedelta(hours=1, minutes=50))
    assert scene.events() == ["team_recovered"]

    scene.night()  # Wednesday night: within the extended grace
    assert scene.status() == "Active"
    scene.night(days=3)  # Saturday night: the extended grace ended on Friday at 15:00
    assert scene.status() == "Inactive" and "retired" in scene.events()


def test_silent_again_after_the_keys_rollback_escalates_once_and_reactivates_nothing(scene: Scene) -> None:
    scene.check(scene.retired_at.replace(hour=15))
    scene.check(scene.retired_at.replace(hour=16), sample=scene.retired_at.replace(hour=15, minute=50))
    scene.night(days=4)  # retired again on Saturday night, after a healthy Friday
    scene.events()
    monday = scene.world.clock.now().replace(hour=15) + timedelta(days=2)

    report = scene.check(monday)
    scene.check(monday + timedelta(hours=1))

    assert [o.verdict for o in report.rollbacks] == ["escalate"]
    assert scene.status() != "Active"  # Inactive, and by now past its expiry
    events = scene.world.notifier.published
    assert [n.event_type.value for n in events] == ["team_silent", "rollback_escalated"]
    assert events[1].severity == "critical" and "pickup" in " ".join(events[1].next_steps)
    kinds = [r["kind"] for r in scene.world.ledger.history("alpha")]
    assert kinds == ["rolled_back", "rollback_escalated"]


def test_a_principal_another_run_holds_is_left_to_the_next_check(scene: Scene) -> None:
    afternoon = scene.retired_at.replace(hour=15)
    scene.world.ledger.acquire("alpha", "nightly", afternoon, 600)

    busy = scene.check(afternoon)
    scene.world.ledger.release("alpha", "nightly")
    later = scene.check(afternoon + timedelta(hours=1))

    assert [o.verdict for o in busy.rollbacks] == ["busy"]
    assert [o.verdict for o in later.rollbacks] == ["rollback"]
    assert scene.status() == "Active"


class Killed(BaseException):
    """The process stopped (a timeout, a crash): nothing after it runs, nothing catches it."""


class KilledOnce:
    """A port whose call `operation` stops the process once, right there."""

    def __init__(self, port: object, operation: str) -> None:
        self.port, self.operation, self.killed = port, operation, False

    def __getattr__(self, name: str) -> object:
        call = getattr(self.port, name)
        if name != self.operation or self.killed:
            return call
        self.killed = True

        def killed(*args: object, **kwargs: object) -> None:
            raise Killed(f"killed at {name}")

        return killed


def killed_check(scene: Scene, operation: str, at: datetime) -> None:
    """A check that stops the process at the rollback's first call of `operation` (on whichever of
    its ports makes it), then the dead check's lease, which would expire by itself, given up."""
    rollback = scene.checker.rollback
    assert rollback is not None
    port = {"set_credential_status": "iam", "publish": "notifier"}.get(operation, "ledger")
    setattr(rollback, port, KilledOnce(getattr(rollback, port), operation))
    with pytest.raises(Killed):
        scene.check(at)
    scene.world.ledger.release("alpha", scene.world.ledger.holder("alpha"))


@pytest.mark.parametrize("killed_at", ["append_history_and_save", "set_credential_status", "publish"])
def test_a_rollback_killed_at_any_step_is_finished_by_the_next_check(scene: Scene, killed_at: str) -> None:
    """Killed before a step (`append_history_and_save`: before anything was written)."""
    afternoon = scene.retired_at.replace(hour=15)

    killed_check(scene, killed_at, afternoon)
    first_try = scene.world.ledger.history("alpha")
    scene.check(afternoon + timedelta(hours=1))

    assert scene.status() == "Active"
    assert scene.world.notifier.events().count("rolled_back") == 1
    assert scene.world.notifier.events().count("team_silent") == 1  # saved before the rollback ran
    assert len(scene.world.ledger.history("alpha")) == 1  # finished, not counted as a second rollback
    (entry,) = [e for e in scene.world.ledger.entries("alpha") if e.credential_id == scene.first.id]
    started = afternoon if first_try else afternoon + timedelta(hours=1)
    assert entry.grace_until == started + timedelta(days=3) and ROLLED_BACK in entry.notified


@pytest.mark.parametrize("killed_at", ["append_history_and_save", "set_credential_status"])
def test_a_rollback_killed_before_the_key_is_back_leaves_no_record_its_key_record_does_not_show(
    scene: Scene, killed_at: str
) -> None:
    """The laptops send again by the next check (the team ran the pickup kit): a rollback killed
    before it wrote anything leaves nothing behind; one killed after its records is finished, since
    its history record says it was made."""
    afternoon = scene.retired_at.replace(hour=15)

    killed_check(scene, killed_at, afternoon)
    written = scene.world.ledger.history("alpha")
    scene.check(afternoon + timedelta(hours=1), sample=afternoon + timedelta(minutes=50))

    (entry,) = [e for e in scene.world.ledger.entries("alpha") if e.credential_id == scene.first.id]
    if killed_at == "append_history_and_save":
        assert written == [] and scene.world.ledger.history("alpha") == []
        assert scene.status() == "Inactive" and entry.state is LedgerState.RETIRED
        assert "rolled_back" not in scene.world.notifier.events()
    else:
        assert len(written) == 1 and len(scene.world.ledger.history("alpha")) == 1
        assert scene.status() == "Active" and ROLLED_BACK in entry.notified
        assert scene.world.notifier.events().count("rolled_back") == 1


def test_a_rollback_killed_after_its_announcement_before_the_mark_is_announced_again(scene: Scene) -> None:
    """The announcement is marked once sent: killed in between, the next check announces it again
    (at least once, never lost), and marks it."""
    afternoon = scene.retired_at.replace(hour=15)

    killed_check(scene, "save", afternoon)
    scene.check(afternoon + timedelta(hours=1))
    scene.check(afternoon + timedelta(hours=2))

    assert scene.world.notifier.events().count("rolled_back") == 2
    (entry,) = [e for e in scene.world.ledger.entries("alpha") if e.credential_id == scene.first.id]
    assert ROLLED_BACK in entry.notified and len(scene.world.ledger.history("alpha")) == 1


def test_a_rollback_killed_after_the_key_is_back_is_announced_once_though_the_team_recovered(
    scene: Scene,
) -> None:
    """The key back, the laptops send again: the team is no longer silent, yet it must be told."""
    afternoon = scene.retired_at.replace(hour=15)

    killed_check(scene, "publish", afternoon)
    assert scene.status() == "Active" and "rolled_back" not in scene.world.notifier.events()
    recovered = scene.check(afternoon + timedelta(hours=1), sample=afternoon + timedelta(minutes=50))
    scene.check(afternoon + timedelta(hours=2), sample=afternoon + timedelta(hours=1, minutes=50))

    assert [o.verdict for o in recovered.rollbacks] == ["finish"]
    assert scene.world.notifier.events().count("rolled_back") == 1
    (entry,) = [e for e in scene.world.ledger.entries("alpha") if e.credential_id == scene.first.id]
    assert ROLLED_BACK in entry.notified and entry.grace_until == afternoon + timedelta(days=3)
    assert len(scene.world.ledger.history("alpha")) == 1


def test_a_failed_rollback_is_reported_the_alerts_still_go_out_and_the_next_check_finishes_it(
    scene: Scene,
) -> None:
    afternoon = scene.retired_at.replace(hour=15)
    scene.world.iam.fail("set_credential_status", AwsError("UpdateServiceSpecificCredential", "Throttling"))

    failed = scene.check(afternoon)
    later = scene.check(afternoon + timedelta(hours=1))

    assert [(o.verdict, o.reason.split(";")[0]) for o in failed.rollbacks] == [
        ("failed", "UpdateServiceSpecificCredential: Throttling")
    ]
    assert scene.store.records["alpha"]["state"] == "silent"  # recorded: the alert is not sent again
    assert [o.verdict for o in later.rollbacks] == ["finish"]
    assert scene.status() == "Active"
    assert scene.events() == ["team_silent", "rolled_back"]


def test_after_a_revoke_of_the_principal_no_key_comes_back(scene: Scene) -> None:
    scene.world.breakglass().revoke(
        ALPHA.principals[0], "token pasted in #general", "ops", False, scene.retired_at
    )

    report = scene.check(scene.retired_at.replace(hour=15))

    assert [o.verdict for o in report.rollbacks] == ["refuse"]
    assert "revoked" in report.rollbacks[0].reason
    assert scene.status() == "Inactive"
    assert "rolled_back" not in scene.world.notifier.events()


def test_a_settled_refusal_is_decided_once_not_at_every_check_of_the_silence(scene: Scene) -> None:
    thursday = scene.retired_at.replace(hour=15) + timedelta(days=2)  # far past the next working hours
    taken: list[str] = []
    acquire = scene.world.ledger.acquire

    def counted(principal: str, owner: str, now: datetime, ttl_seconds: int) -> bool:
        taken.append(principal)
        return acquire(principal, owner, now, ttl_seconds)

    scene.world.ledger.acquire = counted  # type: ignore[method-assign]
    first = scene.check(thursday)
    later = [scene.check(thursday + timedelta(hours=h)) for h in (1, 2)]

    assert [(o.verdict, "too late" in o.reason) for o in first.rollbacks] == [("refuse", True)]
    assert [r.rollbacks for r in later] == [(), ()]
    assert taken == ["alpha"]  # the lease only for the first decision
    assert scene.status() == "Inactive"


def test_the_checker_without_a_rollback_only_alerts(scene: Scene) -> None:
    plain: HealthChecker = dataclasses.replace(scene.checker, rollback=None)

    report = plain.run(ALPHA, scene.retired_at.replace(hour=15))

    assert report.rollbacks == () and scene.status() == "Inactive"


# -- before retiring, the reconciler reads the team's health -----------------------------------------


@pytest.mark.parametrize(
    ("state", "said"),
    [("silent", "already silent"), ("never_reported", "never reported"), ("healthy", None), (None, None)],
)
def test_the_run_report_says_when_a_key_is_retired_for_a_team_that_does_not_report(
    state: str | None, said: str | None
) -> None:
    world = FakeWorld(clock=FakeClock(T0))
    store = FakeHealthStore()
    reconciler = dataclasses.replace(world.reconciler(rotation_lambda_arn=None), health=store)
    reconciler.run(ALPHA, world.clock.now())
    world.clock.advance(timedelta(days=77))
    reconciler.run(ALPHA, world.clock.now())
    world.clock.advance(timedelta(days=8))
    if state is not None:
        store.records = {"alpha": {"team": "alpha", "state": state, "since": T0, "first_seen_at": T0}}
    world.notifier.published.clear()

    report = reconciler.run(ALPHA, world.clock.now())

    (outcome,) = report.outcomes
    assert "retire" in outcome.done  # retired as planned, whatever the team's health
    (summary,) = [n for n in world.notifier.published if n.event_type.value == "run_summary"]
    if said is None:
        assert outcome.notes == () and "Notes" not in summary.description
    else:
        (note,) = outcome.notes
        assert said in note and "cuts off no laptop" in note
        assert f"Notes: alpha ({note})" in summary.description


class CountedStore(FakeHealthStore):
    """A health store that counts its reads and can fail them."""

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__()
        self.loads, self.error = 0, error

    def load(self) -> dict[str, dict[str, Any]]:
        self.loads += 1
        if self.error is not None:
            raise self.error
        return super().load()


def _two_retirements(store: FakeHealthStore) -> tuple[FakeWorld, Reconciler]:
    """Two principals whose previous keys the next run retires."""
    world = FakeWorld(clock=FakeClock(T0))
    reconciler = dataclasses.replace(world.reconciler(rotation_lambda_arn=None), health=store)
    both = registry("alpha", "beta")
    reconciler.run(both, world.clock.now())
    world.clock.advance(timedelta(days=77))
    reconciler.run(both, world.clock.now())
    world.clock.advance(timedelta(days=8))
    return world, reconciler


def test_an_unreadable_health_store_never_holds_a_retirement_back() -> None:
    store = CountedStore(AwsError("TransactGetItems", "ThrottlingException"))
    world, reconciler = _two_retirements(store)

    report = reconciler.run(registry("alpha", "beta"), world.clock.now())

    assert [("retire" in o.done, o.status, o.notes) for o in report.outcomes] == [
        (True, "ok", ()),
        (True, "ok", ()),
    ]
    assert [k.status for k in world.iam.keys_of("tw-alpha") + world.iam.keys_of("tw-beta")].count(
        "Inactive"
    ) == 2
    assert store.loads == 1  # the failed read is not tried again for every key


def test_the_health_records_are_read_once_a_run_however_many_keys_are_retired() -> None:
    store = CountedStore()
    world, reconciler = _two_retirements(store)
    store.records = {
        t: {"team": t, "state": "silent", "since": T0, "first_seen_at": T0} for t in ("alpha", "beta")
    }

    report = reconciler.run(registry("alpha", "beta"), world.clock.now())

    assert [len(o.notes) for o in report.outcomes] == [1, 1]
    assert store.loads == 1


def test_tokenwarden_health_lists_what_the_rollback_did(scene: Scene) -> None:
    from tokenwarden.cli.rendering import render_health

    report = scene.check(scene.retired_at.replace(hour=15))

    text = render_health(report)
    until = scene.retired_at.replace(hour=15) + timedelta(days=3)
    assert (
        f"rollback: rollback {scene.first.id} of alpha (alpha) until {until:%Y-%m-%d %H:%M} UTC: team alpha"
        in text
    )
