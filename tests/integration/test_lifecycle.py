"""The real reconciler and rotation handler against moto plus the project's SSC extension."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import T0, Env, check_invariants, days
from tokenwarden.domain.registry import parse_registry
from tokenwarden.local import iam_ssc

READS = ("List", "Get", "Describe", "Scan", "Query", "Receive", "DeleteMessage")


def mutations(calls: list[str]) -> list[str]:
    return [c for c in calls if not c.split(":")[1].startswith(READS)]


def test_onboarding_creates_user_secret_and_a_verified_key(env: Env) -> None:
    report = env.run()

    assert [o.status for o in report.outcomes] == ["ok"] * 4
    assert check_invariants(env) == []
    iam = env.client("iam")
    for principal in env.registry.principals:
        user = iam.get_user(UserName=f"tw-{principal.id}")["User"]
        assert user["Path"] == "/tokenwarden/"
        tags = {t["Key"]: t["Value"] for t in user.get("Tags", [])}
        assert tags["tokenwarden:team"] == principal.team
        policies = iam.list_attached_user_policies(UserName=f"tw-{principal.id}")["AttachedPolicies"]
        assert [p["PolicyName"] for p in policies] == ["CloudWatchAPIKeyAccess"]
        (cred,) = env.credentials(principal.id)
        lifetime = cred["_Expires"] - cred["CreateDate"]
        assert lifetime == timedelta(days=principal.lifecycle.key_age_days)
        secret = env.client("secretsmanager").describe_secret(SecretId=f"tokenwarden/{principal.id}")
        assert secret["RotationEnabled"] is True
        assert secret["KmsKeyId"] == env.settings.secrets_kms_key_id
    onboarded = [m for m in env.messages() if m["_attributes"]["event_type"] == "onboarded"]
    assert sorted(m["_attributes"]["principal"] for m in onboarded) == [
        "data-science",
        "jdoe",
        "mobile",
        "platform-eng",
    ]
    jdoe = next(m for m in onboarded if m["_attributes"]["principal"] == "jdoe")
    assert jdoe["_attributes"]["team"] == "platform-eng"
    assert jdoe["version"] == "1.0" and jdoe["source"] == "custom"
    assert "tokenwarden/jdoe" in jdoe["content"]["description"]


def test_a_second_run_changes_nothing(env: Env) -> None:
    env.run()
    env.log.calls.clear()

    report = env.run(T0 + timedelta(hours=1))

    assert {o.status for o in report.outcomes} == {"unchanged"}
    assert mutations(env.log.calls) == ["sns:Publish"]  # the run summary, nothing else
    assert len(env.log.calls) <= 8


def test_two_hundred_nights_hold_the_invariants(env: Env) -> None:
    env.run()
    seen_active_in_grace: set[str] = set()
    for night in range(1, 201):
        report = env.run(T0 + days(night))
        assert report.failed == (), report.failed
        assert check_invariants(env) == [], f"night {night}"
        for principal in env.registry.principals:
            creds = env.credentials(principal.id)
            assert len(creds) <= 2
            for entry in env.reconciler.ledger.entries(principal.id):
                if entry.state.value == "previous" and entry.superseded_at is not None:
                    in_grace = env.clock.now() < entry.superseded_at + days(principal.lifecycle.grace_days)
                    status = next(
                        (
                            c["Status"]
                            for c in creds
                            if c["ServiceSpecificCredentialId"] == entry.credential_id
                        ),
                        None,
                    )
                    if in_grace:
                        assert status == "Active", f"{principal.id} previous key cut off during its grace"
                        seen_active_in_grace.add(principal.id)
    assert "LimitExceeded" not in " ".join(env.log.errors)
    assert seen_active_in_grace == {p.id for p in env.registry.principals}
    kinds = [m["_attributes"]["event_type"] for m in env.messages()]
    for kind in ("onboarded", "rotated", "retired", "deleted", "run_summary"):
        assert kind in kinds


def test_one_principals_failure_does_not_stop_the_others(env: Env) -> None:
    env.run()
    # Someone attached a third key by hand... no: IAM allows two. Break data-science's secret instead.
    env.client("secretsmanager").delete_secret(
        SecretId="tokenwarden/data-science", ForceDeleteWithoutRecovery=True
    )
    env.client("iam").create_service_specific_credential(
        UserName="tw-data-science", ServiceName="cloudwatch.amazonaws.com", CredentialAgeDays=5
    )
    report = env.run(T0 + days(80))
    statuses = {o.principal: o.status for o in report.outcomes}
    assert statuses["platform-eng"] == "ok" and statuses["jdoe"] == "ok" and statuses["mobile"] == "ok"
    assert check_invariants(env, parse_registry("principals: [{id: platform-eng}]", "t")) == []


def test_untracked_key_is_deleted_after_the_safety_age_and_current_key_never(env: Env) -> None:
    env.run()
    iam = env.client("iam")
    leftover = iam.create_service_specific_credential(
        UserName="tw-mobile", ServiceName="cloudwatch.amazonaws.com", CredentialAgeDays=30
    )["ServiceSpecificCredential"]["ServiceSpecificCredentialId"]
    env.run(T0 + timedelta(hours=12))
    assert leftover in [c["ServiceSpecificCredentialId"] for c in env.credentials("mobile")]
    env.run(T0 + timedelta(hours=25))
    ids = [c["ServiceSpecificCredentialId"] for c in env.credentials("mobile")]
    assert leftover not in ids and len(ids) == 1
    assert check_invariants(env) == []


def test_out_of_band_deletion_of_the_current_key_is_repaired_at_once(env: Env) -> None:
    env.run()
    (cred,) = env.credentials("jdoe")
    env.client("iam").delete_service_specific_credential(
        UserName="tw-jdoe", ServiceSpecificCredentialId=cred["ServiceSpecificCredentialId"]
    )
    env.messages()
    report = env.run(T0 + days(1))
    assert "repair" in next(o for o in report.outcomes if o.principal == "jdoe").done
    assert check_invariants(env) == []
    assert "repaired" in [m["_attributes"]["event_type"] for m in env.messages()]


def test_no_token_reaches_logs_messages_results_or_errors(
    env: Env, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    results = [env.run()]
    for night in range(1, 120):
        results.append(env.run(T0 + days(night)))
    env.client("iam").delete_service_specific_credential(
        UserName="tw-mobile",
        ServiceSpecificCredentialId=env.credentials("mobile")[0]["ServiceSpecificCredentialId"],
    )
    results.append(env.run(T0 + days(121)))
    r = env.reconciler
    glass = env.glass  # as build_breakglass composes it
    jdoe = env.registry.get("jdoe")
    assert jdoe is not None
    results.append(glass.revoke(jdoe, "leak drill", "oncall", True, env.clock.now()))
    results.append(glass.restore(jdoe, "oncall", env.clock.now(), force_reason="leak drill over"))
    probe = r.engine.probe
    try:  # a failing rotation: the error path must not carry the token either
        env.reconciler.engine.probe = _Refusing()
        env.run(T0 + days(122), registry=parse_registry("principals: [{id: newcomer}]", "one.yaml"))
    finally:
        env.reconciler.engine.probe = probe
    captured = capsys.readouterr()
    haystack = "\n".join(
        [captured.out, captured.err, caplog.text]
        + [r.model_dump_json() for r in results]
        + [str(m) for m in env.messages()]
    )
    tokens = iam_ssc.issued_secrets()
    assert len(tokens) >= 8
    leaked = [t[:6] + "…" for t in tokens if t in haystack]
    assert leaked == []


class _Refusing:
    def check(self, token: str) -> int:
        return 403
