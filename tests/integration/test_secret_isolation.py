"""Team isolation: every secret carries the resource policy the registry and the settings ask for,
under TokenWarden's own KMS key, and follows the registry when its readers change. moto does not
enforce policies, so the documents themselves are what is checked."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import yaml

from tests.conftest import OPERATORS, SERVICE_ROLES, T0, Env, check_invariants
from tokenwarden.domain.ownership import POLICY_TAG, policy_digest, same_policy
from tokenwarden.domain.registry import parse_registry

READER = "arn:aws:iam::123456789012:role/ci/metrics-exporter"
AUDITOR = "arn:aws:iam::123456789012:role/security/auditor"
READS = ("List", "Get", "Describe", "Scan", "Query", "Receive", "DeleteMessage")


def registry(alpha_readers: dict[str, Any]) -> Any:
    document = {
        "defaults": {"readers": {"roles": [AUDITOR]}},
        "principals": [
            {"id": "alpha", "readers": alpha_readers},
            {"id": "ana", "kind": "developer", "team": "alpha"},
            {"id": "beta", "readers": {"team_tag": False}},
        ],
    }
    return parse_registry(yaml.safe_dump(document), "isolation-test")


def policy(env: Env, principal: str) -> dict[str, Any]:
    answer = env.client("secretsmanager").get_resource_policy(SecretId=f"tokenwarden/{principal}")
    return dict(json.loads(answer["ResourcePolicy"]))


def read_condition(document: dict[str, Any]) -> dict[str, Any]:
    return dict(next(s for s in document["Statement"] if s["Sid"].endswith("ExceptReaders"))["Condition"])


def test_every_secret_gets_its_principals_policy_under_tokenwardens_key(env: Env) -> None:
    reg = registry({"roles": [READER]})
    report = env.run(registry=reg)
    assert [o.status for o in report.outcomes] == ["ok"] * 3
    assert check_invariants(env, reg) == []

    assert read_condition(policy(env, "alpha")) == {
        "ArnNotLike": {"aws:PrincipalArn": [SERVICE_ROLES, OPERATORS, READER]},
        "StringNotEquals": {"aws:PrincipalTag/tokenwarden:team": "alpha"},
    }
    # A developer's token is readable by its team's members, and the default readers.
    assert read_condition(policy(env, "ana")) == {
        "ArnNotLike": {"aws:PrincipalArn": [SERVICE_ROLES, OPERATORS, AUDITOR]},
        "StringNotEquals": {"aws:PrincipalTag/tokenwarden:team": "alpha"},
    }
    assert read_condition(policy(env, "beta")) == {
        "ArnNotLike": {"aws:PrincipalArn": [SERVICE_ROLES, OPERATORS, AUDITOR]}
    }
    sm = env.client("secretsmanager")
    rules = env.settings.ownership
    for principal in reg.principals:
        wanted = rules.policy(principal.team, principal.readers)
        assert same_policy(policy(env, principal.id), wanted)
        described = sm.describe_secret(SecretId=f"tokenwarden/{principal.id}")
        assert described["KmsKeyId"] == env.settings.secrets_kms_key_id
        tags = {t["Key"]: t["Value"] for t in described["Tags"]}
        assert tags[POLICY_TAG] == policy_digest(wanted)
        assert tags["tokenwarden:managed-by"] == "tokenwarden"


def test_a_readers_change_in_the_registry_rewrites_the_policy_at_the_next_run(env: Env) -> None:
    env.run(registry=registry({"roles": [READER]}))
    env.log.calls.clear()

    changed = registry({"team_tag": False})  # drops READER (back to the default roles) and the tag
    report = env.run(T0 + timedelta(hours=1), registry=changed)

    alpha = next(o for o in report.outcomes if o.principal == "alpha")
    assert alpha.status == "ok" and alpha.done == ("secure",)
    assert read_condition(policy(env, "alpha")) == {
        "ArnNotLike": {"aws:PrincipalArn": [SERVICE_ROLES, OPERATORS, AUDITOR]}
    }
    # Beyond the principal's lease (DynamoDB): the policy and its digest tag, and the summary.
    writes = [
        c for c in env.log.calls if not c.split(":")[1].startswith(READS) and not c.startswith("dynamodb:")
    ]
    assert sorted(writes) == ["secretsmanager:PutResourcePolicy", "secretsmanager:TagResource", "sns:Publish"]
    assert {o.principal: o.status for o in report.outcomes}["beta"] == "unchanged"

    env.log.calls.clear()
    again = env.run(T0 + timedelta(hours=2), registry=changed)
    assert {o.status for o in again.outcomes} == {"unchanged"}
    assert [c for c in env.log.calls if not c.split(":")[1].startswith(READS)] == ["sns:Publish"]


def test_a_policy_removed_out_of_band_is_put_back(env: Env) -> None:
    reg = registry({})
    env.run(registry=reg)
    token = env.current_token("alpha")
    sm = env.client("secretsmanager")
    sm.delete_resource_policy(SecretId="tokenwarden/alpha")

    # ListSecrets cannot show a policy: the next action on the principal finds and restores it.
    report = env.run(T0 + timedelta(days=77), registry=reg)

    assert next(o for o in report.outcomes if o.principal == "alpha").status == "ok"
    principal = reg.get("alpha")
    assert principal is not None
    assert same_policy(policy(env, "alpha"), env.settings.ownership.policy("alpha", principal.readers))
    assert env.current_token("alpha") != token  # the rotation that was due went ahead
    assert check_invariants(env, reg) == []
