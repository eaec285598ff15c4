"""Revoke, restore, offboarding, the blast-radius guard and the audit, against moto."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import T0, Env, check_invariants, days
from tokenwarden.domain.audit import audit
from tokenwarden.domain.registry import parse_registry
from tokenwarden.local import iam_ssc
from tokenwarden.service.breakglass import BreakGlass, BreakGlassError

TWO = parse_registry("principals: [{id: alpha}, {id: beta}]", "two.yaml")
SIX = parse_registry("principals: [" + ", ".join(f"{{id: p{i}}}" for i in range(6)) + "]", "six.yaml")


def glass(env: Env) -> BreakGlass:
    return env.glass


def events(env: Env) -> list[str]:
    return [m["_attributes"]["event_type"] for m in env.messages()]


def test_revoke_with_reissue_refuses_the_old_token_at_once_and_serves_a_new_one(env: Env) -> None:
    env.run(registry=TWO)
    old = env.current_token("alpha")
    env.messages()
    alpha = TWO.get("alpha")
    assert alpha is not None

    result = glass(env).revoke(
        alpha, "pasted in a public channel", "arn:aws:iam::123:user/oncall", True, env.clock.now()
    )

    assert len(result.revoked) == 1 and result.reissued is not None
    assert iam_ssc.authenticate(old).reason == "inactive"
    new = env.current_token("alpha")
    assert new != old and iam_ssc.authenticate(new).accepted
    assert check_invariants(env, TWO) == []
    kinds = events(env)
    assert "revoked" in kinds and "rotated" in kinds
    record = next(e for e in env.reconciler.ledger.entries("alpha") if e.revoked_at is not None)
    assert (
        record.revoked_by == "arn:aws:iam::123:user/oncall" and record.reason == "pasted in a public channel"
    )
    (revoke,) = glass(env).ledger.history("alpha")
    assert revoke["reissue"] and revoke["actor"]["requester"] == "arn:aws:iam::123:user/oncall"
    assert [k["credential_id"] for k in revoke["keys"]] == list(result.revoked)

    again = glass(env).revoke(
        alpha, "pasted in a public channel", "oncall", True, env.clock.now() + timedelta(minutes=5)
    )
    assert again.revoked == () and again.reissued is None and again.repeated and again.revoke == 1
    assert env.current_token("alpha") == new and iam_ssc.authenticate(new).accepted
    assert glass(env).ledger.history("alpha") == [revoke]  # a repeat records nothing new

    with pytest.raises(BreakGlassError, match="issued a replacement"):
        glass(env).restore(alpha, "oncall", env.clock.now())
    assert iam_ssc.authenticate(old).reason == "inactive"


def test_revoke_without_reissue_is_not_undone_by_the_nightly_run_and_restore_brings_it_back(env: Env) -> None:
    env.run(registry=TWO)
    token = env.current_token("beta")
    beta = TWO.get("beta")
    assert beta is not None
    glass(env).revoke(beta, "laptop stolen", "oncall", False, env.clock.now())
    report = env.run(T0 + days(1), registry=TWO)
    assert "repair" not in next(o for o in report.outcomes if o.principal == "beta").done
    assert iam_ssc.authenticate(token).reason == "inactive"

    revoked = glass(env).ledger.history("beta")

    glass(env).restore(beta, "oncall", env.clock.now())
    assert iam_ssc.authenticate(token).accepted
    assert check_invariants(env, TWO) == []
    recorded = glass(env).ledger.history("beta")
    assert recorded[:1] == revoked and recorded[1]["kind"] == "restore"  # appended; the revoke as written
    with pytest.raises(BreakGlassError, match="already restored"):
        glass(env).restore(beta, "oncall", env.clock.now())


def test_restore_during_a_grace_brings_back_the_current_key_and_the_previous_one(env: Env) -> None:
    env.run(registry=TWO)
    env.run(T0 + days(78), registry=TWO)  # rotated: two Active keys, the previous in its grace
    current = env.current_token("beta")
    beta = TWO.get("beta")
    assert beta is not None
    keys = {k["ServiceSpecificCredentialId"] for k in env.credentials("beta")}
    assert len(keys) == 2
    revoked = glass(env).revoke(beta, "mistake", "oncall", False, env.clock.now())
    assert set(revoked.revoked) == keys and not iam_ssc.authenticate(current).accepted

    restored = glass(env).restore(beta, "oncall", env.clock.now())

    assert restored.current and iam_ssc.authenticate(current).accepted
    assert {restored.restored, *restored.also} == keys
    assert [k["Status"] for k in env.credentials("beta")] == ["Active", "Active"]
    assert check_invariants(env, TWO) == []


def test_revoked_keys_are_deleted_when_the_retention_ends(env: Env) -> None:
    env.run(registry=TWO)
    alpha = TWO.get("alpha")
    assert alpha is not None
    glass(env).revoke(alpha, "leak", "oncall", True, env.clock.now())
    assert len(env.credentials("alpha")) == 2
    env.run(T0 + days(3), registry=TWO)
    assert len(env.credentials("alpha")) == 2
    env.run(T0 + days(8), registry=TWO)
    assert len(env.credentials("alpha")) == 1
    with pytest.raises(BreakGlassError, match="retention"):
        glass(env).restore(alpha, "oncall", env.clock.now(), force_reason="too late")


def test_revoke_needs_a_reason_and_changes_nothing_without_one(env: Env) -> None:
    env.run(registry=TWO)
    alpha = TWO.get("alpha")
    assert alpha is not None
    with pytest.raises(BreakGlassError, match="reason"):
        glass(env).revoke(alpha, "  ", "oncall", True, env.clock.now())
    with pytest.raises(BreakGlassError, match="printable"):
        glass(env).revoke(alpha, "leak\n[INFO] approved", "oncall", True, env.clock.now())
    assert [c["Status"] for c in env.credentials("alpha")] == ["Active"]
    assert glass(env).ledger.history("alpha") == []


def test_offboarding_deactivates_then_deletes_keys_then_the_user_and_readding_restores(env: Env) -> None:
    env.run(registry=TWO)
    beta_token = env.current_token("beta")
    only_alpha = parse_registry("principals: [{id: alpha}]", "one.yaml")
    env.messages()

    env.run(T0 + days(1), registry=only_alpha)
    assert iam_ssc.authenticate(beta_token).reason == "inactive"
    assert "offboarded" in events(env)
    sm = env.client("secretsmanager")
    assert "DeletedDate" in sm.describe_secret(SecretId="tokenwarden/beta")

    env.run(T0 + days(9), registry=only_alpha)
    assert env.credentials("beta") == []
    env.run(T0 + days(10), registry=only_alpha)
    users = [u["UserName"] for u in env.client("iam").list_users(PathPrefix="/tokenwarden/")["Users"]]
    assert users == ["tw-alpha"]

    env.run(T0 + days(11), registry=TWO)
    assert "DeletedDate" not in sm.describe_secret(SecretId="tokenwarden/beta")
    assert check_invariants(env, TWO) == []


def test_the_guard_holds_a_truncated_registry_but_rotations_go_on(env: Env) -> None:
    env.run(registry=SIX)
    truncated = parse_registry("principals: [{id: p0}, {id: p1}]", "bad-merge.yaml")
    tokens = {f"p{i}": env.current_token(f"p{i}") for i in range(6)}
    env.messages()

    report = env.run(T0 + days(80), registry=truncated)

    assert all(iam_ssc.authenticate(tokens[f"p{i}"]).accepted for i in range(2, 6))
    assert {o.principal for o in report.outcomes if "rotate" in o.done} == {"p0", "p1"}
    kinds = events(env)
    assert "guard_tripped" in kinds and "offboarded" not in kinds
    assert any(f.kind == "guard_tripped" for f in report.findings)

    forced = env.reconciler.run(
        truncated, env.clock.advance_to(T0 + days(80) + timedelta(hours=1)), allow_mass_revoke=True
    )
    assert sum("offboard" in o.done for o in forced.outcomes) == 4
    assert not any(iam_ssc.authenticate(tokens[f"p{i}"]).accepted for i in range(2, 6))


def test_audit_reports_hand_made_keys_and_leaves_them_alone(env: Env) -> None:
    env.run(registry=TWO)
    iam = env.client("iam")
    iam.create_user(UserName="console-made")
    env.wait(10)  # IAM is eventually consistent: a new user is not usable everywhere at once
    outside = iam.create_service_specific_credential(
        UserName="console-made", ServiceName="cloudwatch.amazonaws.com"
    )["ServiceSpecificCredential"]
    findings = audit(TWO, env.reconciler.inventory(), env.clock.now())
    kinds = {(f.kind, f.detail.split(" (")[0]) for f in findings}
    assert ("key_without_expiry", f"key {outside['ServiceCredentialAlias']}") in kinds
    assert any(f.kind == "key_outside_tokenwarden" for f in findings)

    env.run(T0 + days(2), registry=TWO)
    listed = iam.list_service_specific_credentials(UserName="console-made")["ServiceSpecificCredentials"]
    assert [c["Status"] for c in listed] == ["Active"]
