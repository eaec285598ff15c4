"""Units of what real AWS asks of the code: the documented probe, throttled probes, keys listed
without ExpirationDate, leases, and a replacement that a revoke asked for."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from tests.unit.builders import NOW, credential, entry, healthy, principal
from tokenwarden.adapters.otlp_probe import OtlpProbe
from tokenwarden.domain.model import (
    LedgerEntry,
    LedgerState,
    MalformedToken,
    check_token_syntax,
    with_known_expiry,
)
from tokenwarden.domain.plan import ActionKind, PlanConfig, plan_principal
from tokenwarden.domain.registry import Registry
from tokenwarden.service.lease import Leases, PrincipalBusy
from tokenwarden.service.rotation import ProbePolicy, RotationEngine, RotationError

TOKEN = "cw-token-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"


class Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Recorder.seen.append((dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def endpoint() -> Iterator[str]:
    Recorder.seen.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/metrics"
    server.shutdown()
    server.server_close()


def test_the_probe_sends_the_documented_empty_json_export(endpoint: str) -> None:
    assert OtlpProbe(endpoint).check(TOKEN) == 200
    ((headers, body),) = Recorder.seen
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"resourceMetrics": []}
    assert headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    "hostile",
    [TOKEN + "\r\nX-Injected: 1", '"' + TOKEN + '"', TOKEN + " " + TOKEN, "A" * 5000, "", "tök€n"],
)
def test_a_malformed_token_is_refused_before_use_without_quoting_it(endpoint: str, hostile: str) -> None:
    with pytest.raises(MalformedToken) as caught:
        OtlpProbe(endpoint).check(hostile)
    assert Recorder.seen == []
    if hostile:
        assert hostile not in str(caught.value) and hostile[:20] not in str(caught.value)


def test_a_well_formed_token_passes_the_syntax_check() -> None:
    check_token_syntax(TOKEN)
    check_token_syntax("abc+/_-.~09==")


class ScriptedProbe:
    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.calls = 0

    def check(self, token: str) -> int:
        self.calls += 1
        return self.statuses.pop(0)


class OneVersionSecrets:
    """Just enough of SecretsPort for testSecret."""

    def describe(self, secret_id: str) -> Any:
        from tokenwarden.domain.model import SecretState

        return SecretState(name="tokenwarden/alpha", arn="arn:secret", versions={"v1": ("AWSPENDING",)})

    def version_token(self, secret_id: str, version_id: str) -> str | None:
        return TOKEN


def engine(probe: ScriptedProbe) -> RotationEngine:
    from tokenwarden.domain.naming import Naming

    waits: list[float] = []
    unused: Any = None  # IAM, the ledger, the notifier and the clock are not reached by a probe's verdict
    built = RotationEngine(
        iam=unused,
        secrets=OneVersionSecrets(),  # type: ignore[arg-type]  # only the two reads the verdict makes
        ledger=unused,
        notifier=unused,
        probe=probe,
        naming=Naming(user_prefix="tw-", user_path="/tokenwarden/", secret_prefix="tokenwarden/"),
        clock=unused,
        probe_policy=ProbePolicy(attempts=5),
        sleep=waits.append,
    )
    return built


def test_test_secret_waits_through_throttling_and_propagation() -> None:
    probe = ScriptedProbe(401, 429, 503, 200)
    engine(probe).test_secret("tokenwarden/alpha", "v1")
    assert probe.calls == 4


@pytest.mark.parametrize("final", [400, 404, 422])
def test_test_secret_does_not_wait_on_a_final_answer(final: int) -> None:
    probe = ScriptedProbe(final, 200)
    with pytest.raises(RotationError, match=f"HTTP {final}"):
        engine(probe).test_secret("tokenwarden/alpha", "v1")
    assert probe.calls == 1


def test_the_rotation_bound_covers_every_probe_wait_and_timeout() -> None:
    policy = ProbePolicy()
    assert policy.delays() == [2.0, 4.0, 8.0, 15.0, 15.0, 15.0, 15.0]
    assert policy.worst_case_seconds() == sum(policy.delays()) + 8 * policy.timeout_seconds
    assert policy.rotation_bound_seconds() > policy.worst_case_seconds()


# -- keys listed without ExpirationDate --------------------------------------------------------------


def test_a_key_without_expiration_date_takes_its_expiry_from_the_record() -> None:
    listed = credential("K1", created_at=NOW - timedelta(days=10)).model_copy(update={"expires_at": None})
    recorded = entry("v1", LedgerState.CURRENT, cred=listed).model_copy(
        update={"expires_at": None, "requested_age_days": 90}
    )
    assert with_known_expiry(listed, recorded).expires_at == NOW + timedelta(days=80)
    kept = recorded.model_copy(update={"expires_at": NOW + timedelta(days=5)})
    assert with_known_expiry(listed, kept).expires_at == NOW + timedelta(days=5)
    assert with_known_expiry(listed, None).expires_at is None


def test_a_revoke_that_asked_for_a_replacement_is_finished_by_the_next_run() -> None:
    inv = healthy()
    cur = inv.current_entry
    assert cur is not None
    key = inv.credentials[0].model_copy(update={"status": "Inactive"})
    revoked = cur.model_copy(update={"revoked_at": NOW - timedelta(hours=1), "revoked_by": "x"})
    base = inv.model_copy(
        update={"credentials": (key,), "ledger": tuple(e if e is not cur else revoked for e in inv.ledger)}
    )
    registry = Registry(source="t", principals=(principal("alpha"),))
    config = PlanConfig(rotation_lambda_arn="arn:aws:lambda:us-east-1:1:function:r")

    without = plan_principal(registry, "alpha", base, NOW, config)
    assert ActionKind.REPAIR not in [a.kind for a in without.actions]
    assert without.note and "--reissue" in without.note

    wanted = base.model_copy(
        update={
            "ledger": tuple(
                e
                if e.version_id != cur.version_id
                else revoked.model_copy(update={"reissue_requested": True})
                for e in base.ledger
            )
        }
    )
    repair = [
        a
        for a in plan_principal(registry, "alpha", wanted, NOW, config).actions
        if a.kind == ActionKind.REPAIR
    ]
    assert len(repair) == 1 and "--reissue" in repair[0].reason


# -- leases ------------------------------------------------------------------------------------------


class MemoryLeases:
    """The ledger's lease semantics in memory: free, expired, or the same owner may take it."""

    def __init__(self) -> None:
        self.held: dict[str, tuple[str, datetime]] = {}

    def acquire(self, principal: str, owner: str, now: datetime, ttl_seconds: int) -> bool:
        return self.hand_over(principal, owner, owner, now, ttl_seconds)

    def hand_over(self, principal: str, owner: str, to_owner: str, now: datetime, ttl_seconds: int) -> bool:
        holder = self.held.get(principal)
        if holder is not None and holder[1] > now and holder[0] not in (owner, to_owner):
            return False
        self.held[principal] = (to_owner, now + timedelta(seconds=ttl_seconds))
        return True

    def release(self, principal: str, owner: str) -> None:
        if self.held.get(principal, ("", NOW))[0] == owner:
            self.held[principal] = ("", datetime.min.replace(tzinfo=UTC))


class Clock:
    def __init__(self) -> None:
        self.at = NOW

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def leases() -> tuple[Leases, Clock, MemoryLeases]:
    clock, store = Clock(), MemoryLeases()
    leases = Leases(store, clock, ttl_seconds=300, sleep=clock.sleep)  # type: ignore[arg-type]  # leases only
    return leases, clock, store


def test_a_second_holder_waits_then_is_told_the_principal_is_busy() -> None:
    lease, clock, _ = leases()
    assert lease.acquire("alpha", "run-1")
    assert not lease.acquire("alpha", "run-2", wait_seconds=30)
    assert clock.at >= NOW + timedelta(seconds=30)
    with pytest.raises(PrincipalBusy, match="nothing was changed"), lease.held("alpha", "run-2"):
        pass


def test_a_crashed_holders_lease_expires_by_itself() -> None:
    lease, clock, _ = leases()
    assert lease.acquire("alpha", "killed-run")
    clock.at += timedelta(seconds=301)
    assert lease.acquire("alpha", "next-run")


def test_a_lease_handed_to_a_rotation_is_its_own() -> None:
    lease, _, store = leases()
    assert lease.acquire("alpha", "run-1")
    assert lease.hand_over("alpha", "run-1", "rotation:v2", 200)
    lease.release("alpha", "run-1")  # the run lets go of what it no longer holds: nothing happens
    assert store.held["alpha"][0] == "rotation:v2"
    assert not lease.acquire("alpha", "breakglass:1")
    assert lease.acquire("alpha", "rotation:v2")
    lease.release("alpha", "rotation:v2")
    assert lease.acquire("alpha", "breakglass:1")


def test_ledger_entries_keep_the_age_asked_for() -> None:
    record = LedgerEntry(
        principal="alpha", version_id="v", state=LedgerState.PENDING, created_at=NOW, requested_age_days=30
    )
    assert record.requested_age_days == 30 and not record.reissue_requested


def test_a_principal_added_back_before_its_offboarding_finished_is_repaired_not_resumed() -> None:
    inv = healthy()
    cur = inv.current_entry
    assert cur is not None
    key = inv.credentials[0].model_copy(update={"status": "Inactive"})
    offboarded = cur.model_copy(
        update={
            "state": LedgerState.RETIRED,
            "deactivated_at": NOW - timedelta(days=1),
            "reason": "offboarded",
        }
    )
    back = inv.model_copy(
        update={"credentials": (key,), "ledger": tuple(e if e is not cur else offboarded for e in inv.ledger)}
    )
    registry = Registry(source="t", principals=(principal("alpha"),))
    kinds = [a.kind for a in plan_principal(registry, "alpha", back, NOW, PlanConfig()).actions]
    assert ActionKind.RESUME_FINISH not in kinds
    assert ActionKind.REPAIR in kinds
