"""Break-glass that cannot be quietly undone, against moto: revokes and restores are history
records that are appended and never rewritten, a reissued (leaked) key comes back only when forced
with a reason of its own and only for the grace it had, a restore undoes a revoke once, and the
Lambda functions record who asked as a claim next to the invoke's request id."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from tests.conftest import ROOT, T0, Env, check_invariants, days
from tokenwarden.domain.registry import Principal, parse_registry
from tokenwarden.local import iam_ssc
from tokenwarden.local.fake_context import FakeContext
from tokenwarden.local.stack import load_function
from tokenwarden.service.breakglass import Actor, BreakGlass, BreakGlassError

TWO = parse_registry("principals: [{id: alpha}, {id: beta}]", "two.yaml")
ONCALL = "arn:aws:sts::123456789012:assumed-role/Oncall/carol"


def principal(pid: str) -> Principal:
    found = TWO.get(pid)
    assert found is not None
    return found


def glass(env: Env) -> BreakGlass:
    return env.glass


def history_items(env: Env, pid: str) -> list[dict[str, Any]]:
    """The raw DynamoDB items of the principal's history, as stored."""
    answer = env.client("dynamodb").query(
        TableName=env.settings.ledger_table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :h)",
        ExpressionAttributeValues={":pk": {"S": f"P#{pid}"}, ":h": {"S": "H#"}},
        ConsistentRead=True,
    )
    return list(answer["Items"])


def history(env: Env, pid: str) -> list[dict[str, Any]]:
    return [json.loads(i["record"]["S"]) for i in history_items(env, pid)]


def statuses(env: Env, pid: str) -> dict[str, str]:
    return {c["ServiceSpecificCredentialId"]: c["Status"] for c in env.credentials(pid)}


def key_records(env: Env, pid: str) -> list[Any]:
    return sorted(env.reconciler.ledger.entries(pid), key=lambda e: e.version_id)


def working(env: Env, token: str) -> bool:
    return bool(iam_ssc.authenticate(token).accepted)


# -- the ledger is append-only ------------------------------------------------------------------


def test_a_restore_appends_its_own_record_and_leaves_the_revokes_as_written(env: Env) -> None:
    env.run(registry=TWO)
    token = env.current_token("beta")
    glass(env).revoke(principal("beta"), "laptop stolen", ONCALL, False, env.clock.now())
    before = history_items(env, "beta")
    assert [json.loads(i["record"]["S"])["kind"] for i in before] == ["revoke"]

    env.clock.advance(timedelta(hours=2))
    result = glass(env).restore(
        principal("beta"), "arn:aws:sts::123456789012:assumed-role/Lead/dan", env.clock.now()
    )

    after = history_items(env, "beta")
    assert after[: len(before)] == before  # the revoke's record, byte for byte
    revoke, restore = (json.loads(i["record"]["S"]) for i in after)
    assert revoke["reason"] == "laptop stolen" and revoke["actor"]["requester"] == ONCALL
    assert restore["kind"] == "restore" and restore["revoke"] == revoke["number"] == result.revoke
    assert restore["actor"]["requester"].endswith("Lead/dan") and restore["forced"] is False
    assert [k["credential_id"] for k in restore["keys"]] == [result.restored]
    assert restore["restored_at"] > revoke["revoked_at"]
    assert working(env, token) and check_invariants(env, TWO) == []


def test_a_revoke_is_restored_once_and_a_new_revoke_after_it_is_restorable(env: Env) -> None:
    env.run(registry=TWO)
    token = env.current_token("beta")
    beta = principal("beta")
    glass(env).revoke(beta, "laptop stolen", ONCALL, False, env.clock.now())
    glass(env).restore(beta, ONCALL, env.clock.now())
    env.messages()
    records, keys = history_items(env, "beta"), key_records(env, "beta")

    with pytest.raises(BreakGlassError, match="already restored"):
        glass(env).restore(beta, ONCALL, env.clock.now())
    assert history_items(env, "beta") == records and key_records(env, "beta") == keys
    assert env.messages() == [] and working(env, token)

    # The same reason again, at the same instant: a new revoke (the last one was undone), restorable.
    second = glass(env).revoke(beta, "laptop stolen", ONCALL, False, env.clock.now())
    assert second.revoked and not second.repeated and second.revoke == 2
    assert not working(env, token)
    again = glass(env).restore(beta, ONCALL, env.clock.now())
    assert again.revoke == 2 and working(env, token)
    assert [(r["kind"], r.get("number", r.get("revoke"))) for r in history(env, "beta")] == [
        ("revoke", 1),
        ("restore", 1),
        ("revoke", 2),
        ("restore", 2),
    ]


def test_restore_without_any_recorded_revoke_is_refused(env: Env) -> None:
    env.run(registry=TWO)
    with pytest.raises(BreakGlassError, match="no recorded revoke"):
        glass(env).restore(principal("alpha"), ONCALL, env.clock.now())
    assert history_items(env, "alpha") == []


# -- a reissued key was treated as leaked --------------------------------------------------------


def test_restore_after_a_reissue_is_refused_and_changes_nothing(env: Env) -> None:
    env.run(registry=TWO)
    leaked = env.current_token("alpha")
    alpha = principal("alpha")
    glass(env).revoke(alpha, "pasted in a public channel", ONCALL, True, env.clock.now())
    fresh = env.current_token("alpha")
    env.messages()
    records, keys, keys_in_iam = (
        history_items(env, "alpha"),
        key_records(env, "alpha"),
        statuses(env, "alpha"),
    )

    with pytest.raises(BreakGlassError, match=r"--force --reason") as refused:
        glass(env).restore(alpha, ONCALL, env.clock.now())

    assert "issued a replacement" in str(refused.value)
    assert history_items(env, "alpha") == records and key_records(env, "alpha") == keys
    assert statuses(env, "alpha") == keys_in_iam and env.messages() == []
    assert not working(env, leaked) and working(env, fresh)


def test_a_forced_restore_of_a_reissued_key_is_recorded_and_lasts_only_the_grace_it_had(env: Env) -> None:
    env.run(registry=TWO)
    leaked = env.current_token("alpha")
    alpha = principal("alpha")
    revoked_at = env.clock.now()
    glass(env).revoke(alpha, "pasted in a public channel", ONCALL, True, revoked_at)
    fresh = env.current_token("alpha")
    env.messages()
    env.run(T0 + days(3), registry=TWO)  # three days later, the report turns out to be a false alarm

    result = glass(env).restore(
        alpha, ONCALL, env.clock.now(), force_reason="the paste was a revoked demo key"
    )

    assert result.forced and result.force_reason == "the paste was a revoked demo key" and not result.current
    assert working(env, leaked) and working(env, fresh) and env.current_token("alpha") == fresh
    # The grace it had when the replacement superseded it (the revoke), not a new one from now.
    assert result.active_until is not None
    assert (
        revoked_at + days(7) - timedelta(hours=1)
        <= result.active_until
        <= revoked_at + days(7) + timedelta(hours=1)
    )
    revoke, restore = history(env, "alpha")
    assert revoke["reason"] == "pasted in a public channel" and revoke["reissue"] is True
    assert restore["forced"] is True and restore["force_reason"] == "the paste was a revoked demo key"
    notice = next(m for m in env.messages() if m["_attributes"]["event_type"] == "restored")
    assert notice["_attributes"]["severity"] == "critical"
    context = notice["metadata"]["additionalContext"]
    assert context["force_reason"] == "the paste was a revoked demo key"
    assert context["revoke_reason"] == "pasted in a public channel"
    assert context["active_until"] == result.active_until.isoformat()
    assert leaked not in json.dumps(notice) and fresh not in json.dumps(notice)

    env.run(T0 + days(6), registry=TWO)
    assert working(env, leaked)
    env.run(T0 + days(8), registry=TWO)  # the grace is over: the nightly run switches it off again
    assert not working(env, leaked) and working(env, fresh)
    assert check_invariants(env, TWO) == []


def test_a_key_held_off_by_a_revoke_then_replaced_by_a_reissue_is_treated_as_leaked(env: Env) -> None:
    env.run(registry=TWO)
    suspect = env.current_token("alpha")
    alpha = principal("alpha")
    first = glass(env).revoke(alpha, "odd traffic, checking", ONCALL, False, env.clock.now())
    (written,) = history_items(env, "alpha")
    env.clock.advance(timedelta(hours=1))

    confirmed = glass(env).revoke(alpha, "confirmed: it leaked", ONCALL, True, env.clock.now())

    assert confirmed.revoked == () and confirmed.reissued is not None and confirmed.revoke == 2
    assert history_items(env, "alpha")[0] == written  # the first revoke's record as written
    second = history(env, "alpha")[1]
    assert second["reissue"] and [k["credential_id"] for k in second["keys"]] == list(first.revoked)
    with pytest.raises(BreakGlassError, match="issued a replacement"):
        glass(env).restore(alpha, ONCALL, env.clock.now())
    assert not working(env, suspect) and working(env, env.current_token("alpha"))
    forced = glass(env).restore(alpha, ONCALL, env.clock.now(), force_reason="false alarm after all")
    assert forced.revoke == 2 and forced.restored == first.revoked[0] and not forced.current
    assert working(env, suspect)


BAD_FORCE_REASONS = [
    ("", "needs a reason"),
    ("   ", "needs a reason"),
    ("false alarm\nrm -rf /", "one line of printable text"),
    ("false alarm\x1b[2J", "one line of printable text"),
    ("false \u202ealarm", "one line of printable text"),
    ("x" * 501, "keep it to 500"),
]


def test_a_forced_restore_needs_a_bounded_printable_reason(env: Env) -> None:
    """Each refusal changes nothing, so one world serves every case."""
    env.run(registry=TWO)
    alpha = principal("alpha")
    glass(env).revoke(alpha, "leak", ONCALL, True, env.clock.now())
    records, keys_in_iam = history_items(env, "alpha"), statuses(env, "alpha")
    for force_reason, fragment in BAD_FORCE_REASONS:
        with pytest.raises(BreakGlassError, match=fragment):
            glass(env).restore(alpha, ONCALL, env.clock.now(), force_reason=force_reason)
        assert history_items(env, "alpha") == records, force_reason
        assert statuses(env, "alpha") == keys_in_iam, force_reason


def test_force_is_refused_for_a_revoke_without_a_replacement(env: Env) -> None:
    env.run(registry=TWO)
    beta = principal("beta")
    glass(env).revoke(beta, "laptop stolen", ONCALL, False, env.clock.now())
    records = history_items(env, "beta")
    with pytest.raises(BreakGlassError, match="without --force"):
        glass(env).restore(beta, ONCALL, env.clock.now(), force_reason="because")
    assert history_items(env, "beta") == records


def test_a_restore_during_a_grace_keeps_the_previous_keys_grace(env: Env) -> None:
    env.run(registry=TWO)
    env.run(T0 + days(78), registry=TWO)  # rotated: the previous key is in its 7-day grace
    rotated_at = env.clock.now()
    beta = principal("beta")
    glass(env).revoke(beta, "mistake", ONCALL, False, env.clock.now())
    env.run(T0 + days(81), registry=TWO)

    result = glass(env).restore(beta, ONCALL, env.clock.now())

    previous = next(e for e in key_records(env, "beta") if e.credential_id in result.also)
    assert previous.superseded_at is not None and abs(previous.superseded_at - rotated_at) < timedelta(
        hours=1
    )
    env.run(T0 + days(86), registry=TWO)  # 8 days after the rotation: retired, grace not restarted
    listed = statuses(env, "beta")
    assert listed[result.restored] == "Active" and listed[result.also[0]] == "Inactive"


# -- free text is bounded ------------------------------------------------------------------------


HOSTILE_REASONS = [
    ("leak\nsecond line", "one line of printable text"),
    ("leak\x00", "one line of printable text"),
    ("leak \u2028 more", "one line of printable text"),
    ("y" * 501, "keep it to 500"),
]


def test_a_hostile_reason_is_refused_before_any_key_is_touched(env: Env) -> None:
    env.run(registry=TWO)
    before = statuses(env, "alpha")
    for reason, fragment in HOSTILE_REASONS:
        with pytest.raises(BreakGlassError, match=fragment):
            glass(env).revoke(principal("alpha"), reason, ONCALL, True, env.clock.now())
        assert statuses(env, "alpha") == before and history_items(env, "alpha") == [], reason


# -- crash safety --------------------------------------------------------------------------------


class Killed(BaseException):
    """The process dies here."""


def test_a_revoke_killed_after_switching_keys_off_is_recorded_when_run_again(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.run(registry=TWO)
    token = env.current_token("beta")
    beta = principal("beta")
    ledger = glass(env).ledger

    def die(*args: Any) -> bool:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(ledger, "append_history", die)
        with pytest.raises(Killed):
            glass(env).revoke(beta, "laptop stolen", ONCALL, False, env.clock.now())
    assert not working(env, token) and history_items(env, "beta") == []
    env.clock.advance(timedelta(minutes=10))  # a dead run's lease expires by itself

    again = glass(env).revoke(beta, "laptop stolen", ONCALL, False, env.clock.now())

    assert len(again.revoked) == 1 and again.revoke == 1
    (record,) = history(env, "beta")
    assert [k["credential_id"] for k in record["keys"]] == list(again.revoked)
    assert glass(env).restore(beta, ONCALL, env.clock.now()).current and working(env, token)


def test_a_restore_killed_after_its_record_is_finished_when_run_again(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.run(registry=TWO)
    token = env.current_token("beta")
    beta = principal("beta")
    glass(env).revoke(beta, "laptop stolen", ONCALL, False, env.clock.now())
    iam = glass(env).iam

    def die(*args: Any, **kwargs: Any) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(iam, "set_credential_status", die)
        with pytest.raises(Killed):
            glass(env).restore(beta, ONCALL, env.clock.now())
    assert [r["kind"] for r in history(env, "beta")] == ["revoke", "restore"]  # recorded before it acts
    assert not working(env, token)
    env.clock.advance(timedelta(minutes=10))  # the dead run's lease expires

    finished = glass(env).restore(beta, "arn:aws:sts::123456789012:assumed-role/Lead/dan", env.clock.now())

    assert working(env, token) and finished.current
    assert finished.actor == ONCALL  # the restore is the one recorded, by who asked first
    assert [r["kind"] for r in history(env, "beta")] == ["revoke", "restore"]
    with pytest.raises(BreakGlassError, match="already restored"):
        glass(env).restore(beta, ONCALL, env.clock.now())


def test_a_history_write_retried_after_it_landed_counts_as_written(env: Env) -> None:
    ledger = glass(env).ledger
    record = {"kind": "note", "n": 1}
    assert ledger.append_history("alpha", "test#1", record)
    assert ledger.append_history("alpha", "test#1", record)  # the same write again: it is ours
    assert not ledger.append_history("alpha", "test#1", {"kind": "note", "n": 2})  # never overwritten
    assert history(env, "alpha") == [record]


# -- the Lambda functions --------------------------------------------------------------------------


def _functions(env: Env, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    env.use_handlers(monkeypatch)
    load_function("reconcile").lambda_handler(_event("reconcile.json"), FakeContext())
    return load_function("revoke"), load_function("restore")


def _event(name: str, **changes: object) -> dict[str, object]:
    return {**json.loads((ROOT / "events" / name).read_text()), **changes}


def test_the_functions_record_requested_by_as_a_claim_with_the_invokes_request_id(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    revoke, restore = _functions(env, monkeypatch)
    old = env.current_token("platform-eng")
    env.messages()
    invoked = FakeContext(function_name="tokenwarden-revoke", aws_request_id="8d9c-revoke")

    result = revoke.lambda_handler(_event("revoke.json"), invoked)

    assert result["reissued"] and not working(env, old)
    (record,) = history(env, "platform-eng")
    assert record["actor"] == {
        "acted_as": invoked.invoked_function_arn,
        "requester": None,
        "claimed_by": "alice@example.com",
        "request_id": "8d9c-revoke",
    }
    notice = next(m for m in env.messages() if m["_attributes"]["event_type"] == "revoked")
    context = notice["metadata"]["additionalContext"]
    assert context["request_id"] == "8d9c-revoke" and context["claimed_by"] == "alice@example.com"
    assert "requester" not in context and "8d9c-revoke" in notice["content"]["description"]

    with pytest.raises(ValidationError, match="restore function"):
        revoke.lambda_handler(_event("restore.json", action="restore"), invoked)
    with pytest.raises(BreakGlassError, match="--force"):
        restore.lambda_handler(_event("restore.json"), FakeContext(function_name="tokenwarden-restore"))
    assert [r["kind"] for r in history(env, "platform-eng")] == ["revoke"] and not working(env, old)

    forced = restore.lambda_handler(
        _event("restore.json", force=True, force_reason="false alarm: the paste was redacted"),
        FakeContext(function_name="tokenwarden-restore", aws_request_id="77aa-restore"),
    )

    assert forced["forced"] and forced["revoke"] == 1 and working(env, old)
    restored = history(env, "platform-eng")[1]
    assert restored["actor"]["request_id"] == "77aa-restore" and restored["actor"]["requester"] is None
    assert restored["actor"]["claimed_by"] == "alice@example.com"
    assert restored["actor"]["acted_as"].endswith(":function:tokenwarden-restore")


HOSTILE_REVOKES: list[dict[str, object]] = [
    {"requested_by": "alice\n[INFO] approved by security"},
    {"requested_by": "alice\x1b]0;pwned\x07"},
    {"requested_by": "a" * 201},
    {"requested_by": ""},
    {"reason": "leak\r\nInjected: yes"},
    {"reason": "r" * 501},
    {"reason": "   "},
    {"reason": 42},
    {"surprise": True},
]


def test_the_revoke_function_refuses_hostile_input_and_changes_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    revoke, _ = _functions(env, monkeypatch)
    before = statuses(env, "platform-eng")
    for changes in HOSTILE_REVOKES:
        with pytest.raises(ValidationError):
            revoke.lambda_handler(_event("revoke.json", **changes), FakeContext())
        assert statuses(env, "platform-eng") == before, changes
        assert history_items(env, "platform-eng") == [], changes


BAD_RESTORES: list[dict[str, object]] = [
    {"force": True},
    {"force_reason": "false alarm"},
    {"force": True, "force_reason": "x" * 501},
    {"force": True, "force_reason": "false\u0085alarm"},
    {"requested_by": "bob\u200b\u202e"},
    {"action": "revoke"},
    {"reason": "restores take no reason"},
]


def test_the_restore_function_refuses_bad_input_and_changes_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    revoke, restore = _functions(env, monkeypatch)
    revoke.lambda_handler(_event("revoke.json", reissue=False), FakeContext())
    before, records = statuses(env, "platform-eng"), history_items(env, "platform-eng")
    for changes in BAD_RESTORES:
        with pytest.raises(ValidationError):
            restore.lambda_handler(_event("restore.json", **changes), FakeContext())
        assert statuses(env, "platform-eng") == before, changes
        assert history_items(env, "platform-eng") == records, changes


def test_the_cli_records_its_callers_authenticated_identity(env: Env) -> None:
    env.run(registry=TWO)
    glass(env).revoke(principal("alpha"), "leak", Actor.caller(ONCALL), False, env.clock.now())
    (record,) = history(env, "alpha")
    assert record["actor"] == {
        "acted_as": ONCALL,
        "requester": ONCALL,
        "claimed_by": None,
        "request_id": None,
    }
    entry = next(e for e in key_records(env, "alpha") if e.revoked_at is not None)
    assert entry.revoked_by == ONCALL and entry.reason == "leak"
