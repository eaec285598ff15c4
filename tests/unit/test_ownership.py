"""Team isolation and takeover refusal, judged without AWS: the secrets' resource policy, the KMS
key comparison, and the verdicts on secrets and users found under TokenWarden's names."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from tokenwarden.domain.ownership import (
    CHANGE_ACTIONS,
    CHANGE_SID,
    READ_SID,
    Fix,
    OwnershipNotConfigured,
    OwnershipRules,
    Readers,
    SecretFacts,
    UserFacts,
    is_tokenwarden_policy,
    judge_secret,
    judge_user,
    policy_digest,
    same_kms_key,
    same_policy,
)

ACCOUNT = "123456789012"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
LEGACY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/99999999-8888-7777-6666-555555555555"
SERVICE = f"arn:aws:iam::{ACCOUNT}:role/tokenwarden/prod/*"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/platform-admin"
READER = f"arn:aws:iam::{ACCOUNT}:role/ci/metrics-exporter"
API_POLICY = "arn:aws:iam::aws:policy/CloudWatchAPIKeyAccess"
RULES = OwnershipRules(
    secrets_kms_key_id=KEY,
    legacy_kms_key_id=LEGACY,
    service_role_pattern=SERVICE,
    operator_arns=(ADMIN,),
    api_key_policy_arn=API_POLICY,
)
TAGS = {"tokenwarden:managed-by": "tokenwarden", "tokenwarden:principal": "alpha"}


def statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in document["Statement"] if s["Sid"] == sid)


def wanted(readers: Readers | None = None, team: str = "alpha") -> dict[str, Any]:
    return RULES.policy(team, readers or Readers())


def secret(**fields: Any) -> SecretFacts:
    values: dict[str, Any] = {
        "name": "tokenwarden/alpha",
        "arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:tokenwarden/alpha-AbCdEf",
        "kms_key_id": KEY,
        "tags": TAGS,
        "has_versions": True,
        "policy": wanted(),
    }
    values.update(fields)
    return SecretFacts(**values)


def user(**fields: Any) -> UserFacts:
    values: dict[str, Any] = {
        "name": "tw-alpha",
        "path": "/tokenwarden/",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/tokenwarden/tw-alpha",
        "tags": {**TAGS, "tokenwarden:team": "alpha"},
        "attached_policies": (API_POLICY,),
    }
    values.update(fields)
    return UserFacts(**values)


# -- the resource policy ----------------------------------------------------------------------


def test_reading_is_denied_to_all_but_tokenwarden_operators_listed_readers_and_the_team() -> None:
    document = wanted(Readers(roles=(READER,)))
    read = statement(document, READ_SID)

    assert read["Effect"] == "Deny" and read["Principal"] == "*"
    assert read["Action"] == ["secretsmanager:GetSecretValue"]
    # Both negated conditions must hold for the deny to apply (conditions are ANDed): a listed
    # ARN or a caller tagged with the principal's team escapes it.
    assert read["Condition"] == {
        "ArnNotLike": {"aws:PrincipalArn": [SERVICE, ADMIN, READER]},
        "StringNotEquals": {"aws:PrincipalTag/tokenwarden:team": "alpha"},
    }


def test_every_change_is_denied_to_all_but_tokenwarden_and_operators_never_to_readers() -> None:
    change = statement(wanted(Readers(roles=(READER,))), CHANGE_SID)

    assert change["Effect"] == "Deny" and change["Principal"] == "*"
    assert set(change["Action"]) == {
        f"secretsmanager:{name}"
        for name in (
            "PutSecretValue",
            "UpdateSecret",
            "UpdateSecretVersionStage",
            "RotateSecret",
            "CancelRotateSecret",
            "PutResourcePolicy",
            "DeleteResourcePolicy",
            "TagResource",
            "UntagResource",
            "DeleteSecret",
            "RestoreSecret",
            "ReplicateSecretToRegions",
            "RemoveRegionsFromReplication",
            "StopReplicationToReplica",
        )
    }
    assert change["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": [SERVICE, ADMIN]}}


def test_without_the_team_tag_only_listed_arns_may_read() -> None:
    read = statement(wanted(Readers(roles=(READER,), team_tag=False)), READ_SID)
    assert read["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": [SERVICE, ADMIN, READER]}}


def test_a_developer_secret_is_readable_by_its_team_tag() -> None:
    read = statement(wanted(team="platform-eng"), READ_SID)
    assert read["Condition"]["StringNotEquals"] == {"aws:PrincipalTag/tokenwarden:team": "platform-eng"}


def test_the_policy_only_denies() -> None:
    assert {s["Effect"] for s in wanted()["Statement"]} == {"Deny"}


def test_tokenwardens_policy_is_recognised_as_aws_gives_it_back() -> None:
    document = wanted(Readers(roles=(READER,)))
    echoed = json.loads(json.dumps(document))
    # AWS may give one-element lists back as strings and reorder statements and values.
    echoed["Statement"].reverse()
    read = statement(echoed, READ_SID)
    read["Action"] = "secretsmanager:GetSecretValue"
    read["Principal"] = {"AWS": "*"}
    read["Condition"]["ArnNotLike"]["aws:PrincipalArn"].reverse()

    assert is_tokenwarden_policy(echoed)
    assert same_policy(echoed, document)
    assert policy_digest(echoed) == policy_digest(document)


def _with(change: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(wanted()))
    change(document)
    return document


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d["Statement"].append({"Sid": "x", "Effect": "Allow"}), id="extra statement"),
        pytest.param(lambda d: d["Statement"].pop(), id="change deny missing"),
        pytest.param(lambda d: d["Statement"][0].update(Effect="Allow"), id="allow"),
        pytest.param(
            lambda d: d["Statement"][1].update(Action=list(CHANGE_ACTIONS[:-1])), id="fewer actions"
        ),
        pytest.param(lambda d: d["Statement"][0].update(Principal={"AWS": ADMIN}), id="not everyone"),
        pytest.param(
            lambda d: d["Statement"][0]["Condition"].update(Bool={"aws:SecureTransport": "true"}), id="cond"
        ),
        pytest.param(lambda d: d["Statement"][1]["Condition"].pop("ArnNotLike"), id="no exception list"),
        pytest.param(lambda d: d.update(Statement="nonsense"), id="garbage"),
    ],
)
def test_anything_else_is_not_tokenwardens_policy(change: Any) -> None:
    assert not is_tokenwarden_policy(_with(change))


def test_readers_changing_changes_the_digest() -> None:
    assert policy_digest(wanted()) != policy_digest(wanted(Readers(roles=(READER,))))
    assert policy_digest(wanted()) != policy_digest(wanted(Readers(team_tag=False)))


# -- readers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role",
    [
        f"arn:aws:iam::{ACCOUNT}:role/*",
        f"arn:aws:iam::{ACCOUNT}:role/ci/exporter?",
        "arn:aws:iam::12345:role/x",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/x/session",
        f"arn:aws:iam::{ACCOUNT}:group/x",
        "*",
        f"arn:aws:iam::{ACCOUNT}:role/" + "x" * 3000,
    ],
)
def test_a_reader_is_one_exact_role_or_user_arn(role: str) -> None:
    with pytest.raises(ValidationError, match="not an IAM role or user ARN"):
        Readers(roles=(role,))


def test_readers_are_bounded_and_unique() -> None:
    roles = tuple(f"arn:aws:iam::{ACCOUNT}:role/r{i}" for i in range(21))
    with pytest.raises(ValidationError):
        Readers(roles=roles)
    with pytest.raises(ValidationError, match="twice"):
        Readers(roles=(READER, READER))
    assert Readers(roles=(READER, f"arn:aws:iam::{ACCOUNT}:user/people/bob")).team_tag is True


def test_nothing_is_made_without_a_secrets_key_or_service_roles() -> None:
    with pytest.raises(OwnershipNotConfigured, match="TOKENWARDEN_SECRETS_KMS_KEY_ID"):
        OwnershipRules(service_role_pattern=SERVICE).require()
    with pytest.raises(OwnershipNotConfigured, match="TOKENWARDEN_SERVICE_ROLE_ARN_PATTERN"):
        OwnershipRules(secrets_kms_key_id=KEY).require()
    RULES.require()


# -- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "found", "same"),
    [
        (KEY, KEY, True),
        (KEY, "11111111-2222-3333-4444-555555555555", True),
        ("11111111-2222-3333-4444-555555555555", KEY, True),
        (KEY, KEY.replace("us-east-1", "eu-west-1"), False),
        (KEY, LEGACY, False),
        (KEY, None, False),
        (KEY, "alias/aws/secretsmanager", False),
        ("alias/tokenwarden", f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/tokenwarden", True),
        ("alias/tokenwarden", "11111111-2222-3333-4444-555555555555", False),
        (None, KEY, False),
    ],
)
def test_kms_keys_compare_by_arn_id_or_alias(configured: str | None, found: str | None, same: bool) -> None:
    assert same_kms_key(configured, found) is same


# -- secrets ----------------------------------------------------------------------------------


def test_tokenwardens_secret_passes_as_it_is() -> None:
    verdict = judge_secret(secret(), "alpha", RULES, wanted(), history=True)
    assert verdict.ours and verdict.fixes == ()


def test_a_fresh_secret_a_crash_left_without_its_policy_is_finished() -> None:
    fresh = secret(policy=None, has_versions=False)
    verdict = judge_secret(fresh, "alpha", RULES, wanted(), history=False)
    assert verdict.ours and verdict.fixes == (Fix.PUT_POLICY,)


def test_a_secret_made_before_policies_existed_gets_one() -> None:
    verdict = judge_secret(secret(policy=None), "alpha", RULES, wanted(), history=True)
    assert verdict.ours and verdict.fixes == (Fix.PUT_POLICY,)


def test_a_policyless_secret_holding_a_value_nobody_recorded_is_refused() -> None:
    verdict = judge_secret(secret(policy=None), "alpha", RULES, wanted(), history=False)
    assert not verdict.ours
    assert "holds a value TokenWarden never recorded" in verdict.problems[0]


def test_a_legacy_secret_with_history_is_rekeyed_then_given_its_policy() -> None:
    legacy = secret(kms_key_id=LEGACY, policy=None)
    verdict = judge_secret(legacy, "alpha", RULES, wanted(), history=True)
    assert verdict.ours and verdict.fixes == (Fix.REKEY_SECRET, Fix.PUT_POLICY)


def test_a_legacy_secret_without_history_is_refused() -> None:
    verdict = judge_secret(secret(kms_key_id=LEGACY, policy=None), "alpha", RULES, wanted(), history=False)
    assert not verdict.ours and "previous shared key" in " ".join(verdict.problems)


@pytest.mark.parametrize(
    ("facts", "found"),
    [
        (secret(kms_key_id=None), "the AWS managed key"),
        (secret(kms_key_id="alias/aws/secretsmanager"), "aws/secretsmanager"),
        (secret(kms_key_id=LEGACY.replace("9999", "0000")), "not TokenWarden's secrets key"),
        (secret(tags={}), "not tagged tokenwarden:managed-by=tokenwarden"),
        (secret(tags={**TAGS, "tokenwarden:principal": "beta"}), "names another principal"),
        (secret(policy={"Version": "2012-10-17", "Statement": []}), "resource policy is not TokenWarden's"),
        (secret(policy={"unparsable": True}), "resource policy is not TokenWarden's"),
    ],
)
def test_a_secret_that_is_not_tokenwardens_is_refused_saying_what_was_found(
    facts: SecretFacts, found: str
) -> None:
    verdict = judge_secret(facts, "alpha", RULES, wanted(), history=True)
    assert not verdict.ours and verdict.fixes == ()
    assert found in " ".join(verdict.problems)


def test_tokenwardens_policy_for_other_readers_is_rewritten() -> None:
    old = secret(policy=wanted(Readers(roles=(READER,))))
    verdict = judge_secret(old, "alpha", RULES, wanted(), history=True)
    assert verdict.ours and verdict.fixes == (Fix.PUT_POLICY,)


def test_a_token_is_written_only_under_the_key_tag_and_a_tokenwarden_policy() -> None:
    # No registry at hand (the rotation function): any TokenWarden policy will do, nothing is fixed.
    assert judge_secret(secret(policy=wanted(Readers(roles=(READER,)))), None, RULES, None, False).ours
    for facts in (secret(policy=None), secret(kms_key_id=LEGACY), secret(kms_key_id=None)):
        assert not judge_secret(facts, None, RULES, None, history=True).ours


def test_a_secret_scheduled_for_deletion_is_judged_on_tag_and_key_only() -> None:
    deleted = secret(deleted=True, policy=None, policy_read=False)
    assert judge_secret(deleted, "alpha", RULES, wanted(), history=True).ours
    assert not judge_secret(
        deleted.model_copy(update={"kms_key_id": None}), "alpha", RULES, wanted(), True
    ).ours


# -- users ------------------------------------------------------------------------------------


def test_tokenwardens_user_passes_as_it_is() -> None:
    verdict = judge_user(user(), "alpha", "alpha", RULES)
    assert verdict.ours and verdict.fixes == ()


def test_a_user_a_crash_left_without_its_policy_is_finished() -> None:
    verdict = judge_user(user(attached_policies=()), "alpha", "alpha", RULES)
    assert verdict.ours and verdict.fixes == (Fix.ATTACH_API_KEY_POLICY,)


def test_a_boundary_configured_later_is_put_and_a_team_change_retagged() -> None:
    rules = RULES.model_copy(
        update={"permissions_boundary_arn": f"arn:aws:iam::{ACCOUNT}:policy/tw-boundary"}
    )
    verdict = judge_user(user(), "alpha", "platform-eng", rules)
    assert verdict.ours and verdict.fixes == (Fix.PUT_BOUNDARY, Fix.TAG)


@pytest.mark.parametrize(
    ("facts", "found"),
    [
        (user(path="/"), "on path /, not /tokenwarden/"),
        (user(tags={}), "not tagged"),
        (user(tags={**TAGS, "tokenwarden:principal": "beta"}), "does not name alpha"),
        (
            user(attached_policies=(API_POLICY, "arn:aws:iam::aws:policy/AdministratorAccess")),
            "AdministratorAccess",
        ),
        (user(inline_policies=("extra",)), "inline policies: extra"),
        (user(groups=("admins",)), "groups: admins"),
        (user(access_keys=1), "1 access key"),
        (user(login_profile=True), "console password"),
        (user(permissions_boundary=f"arn:aws:iam::{ACCOUNT}:policy/other"), "permissions boundary"),
    ],
)
def test_a_user_that_is_not_tokenwardens_is_refused_saying_what_was_found(
    facts: UserFacts, found: str
) -> None:
    rules = RULES.model_copy(
        update={"permissions_boundary_arn": f"arn:aws:iam::{ACCOUNT}:policy/tw-boundary"}
    )
    verdict = judge_user(facts, "alpha", "alpha", rules)
    assert not verdict.ours and verdict.fixes == ()
    assert found in " ".join(verdict.problems)


def test_a_reader_arn_is_ascii_like_every_iam_name() -> None:
    with pytest.raises(ValidationError, match="not an IAM role or user ARN"):
        Readers(roles=(f"arn:aws:iam::{ACCOUNT}:role/équipe",))
