"""Custody's steps one at a time, against IAM and Secrets Manager ports specced from their Protocols
(a call the port does not have, or with the wrong arguments, fails): creating, judging, restoring,
fixing and tagging a principal's user and secret."""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock, call, create_autospec

import pytest

from tokenwarden.domain.model import SecretState
from tokenwarden.domain.naming import Naming
from tokenwarden.domain.ownership import (
    POLICY_TAG,
    Fix,
    NotTokenWardens,
    OwnershipRules,
    SecretFacts,
    UserFacts,
    policy_digest,
)
from tokenwarden.domain.registry import ActivityProfile, Lifecycle, Principal
from tokenwarden.ports import IamPort, SecretsPort
from tokenwarden.service.ownership import Custody, UserRead

ACCOUNT = "123456789012"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
LEGACY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/99999999-8888-7777-6666-555555555555"
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/tokenwarden-boundary"
API_POLICY = "arn:aws:iam::aws:policy/CloudWatchAPIKeyAccess"
RULES = OwnershipRules(
    secrets_kms_key_id=KEY,
    legacy_kms_key_id=LEGACY,
    service_role_pattern=f"arn:aws:iam::{ACCOUNT}:role/tokenwarden/*",
    api_key_policy_arn=API_POLICY,
    permissions_boundary_arn=BOUNDARY,
)
ALPHA = Principal(
    id="alpha",
    kind="team",
    team="alpha",
    owners=(),
    notify=None,
    activity=ActivityProfile(),
    lifecycle=Lifecycle(),
)
SECRET_TAGS = {"tokenwarden:principal": "alpha", "tokenwarden:team": "alpha"}
USER_TAGS = {
    "tokenwarden:managed-by": "tokenwarden",
    "tokenwarden:principal": "alpha",
    "tokenwarden:team": "alpha",
}
ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:tokenwarden/alpha-AbCdEf"


def custody() -> tuple[Custody, MagicMock, MagicMock]:
    iam = create_autospec(IamPort, instance=True)
    secrets = create_autospec(SecretsPort, instance=True)
    return Custody(iam=iam, secrets=secrets, naming=Naming(), rules=RULES), iam, secrets


def user(**fields: Any) -> UserFacts:
    values: dict[str, Any] = {
        "name": "tw-alpha",
        "path": "/tokenwarden/",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/tokenwarden/tw-alpha",
        "tags": USER_TAGS,
        "attached_policies": (API_POLICY,),
        "permissions_boundary": BOUNDARY,
        **fields,
    }
    return UserFacts(**values)


def secret(**fields: Any) -> SecretFacts:
    wanted = RULES.policy("alpha", ALPHA.readers)
    values: dict[str, Any] = {
        "name": "tokenwarden/alpha",
        "arn": ARN,
        "kms_key_id": KEY,
        "tags": {
            **SECRET_TAGS,
            "tokenwarden:managed-by": "tokenwarden",
            POLICY_TAG: policy_digest(wanted),
        },
        "has_versions": True,
        "policy": wanted,
        **fields,
    }
    return SecretFacts(**values)


# -- the user ------------------------------------------------------------------------------------------


def test_a_new_user_is_created_with_its_policy_and_not_inspected() -> None:
    keeper, iam, _ = custody()
    iam.create_user.return_value = True
    assert keeper._secure_user(ALPHA, create=True, repair=True) == ("create_user",)
    iam.create_user.assert_called_once_with(
        "tw-alpha",
        "/tokenwarden/",
        {
            "tokenwarden:principal": "alpha",
            "tokenwarden:team": "alpha",
            "tokenwarden:managed-by": "tokenwarden",
        },
        BOUNDARY,
    )
    iam.attach_api_key_policy.assert_called_once_with("tw-alpha")
    iam.inspect_user.assert_not_called()


def test_a_user_found_by_create_is_judged_and_a_vanished_one_stops_the_run() -> None:
    keeper, iam, _ = custody()
    iam.create_user.return_value = False
    iam.inspect_user.return_value = user()
    assert keeper._secure_user(ALPHA, create=True, repair=True) == ()
    iam.attach_api_key_policy.assert_not_called()
    iam.inspect_user.return_value = None
    with pytest.raises(RuntimeError, match="IAM user tw-alpha vanished right after it was found"):
        keeper._secure_user(ALPHA, create=True, repair=True)
    assert keeper._secure_user(ALPHA, create=False, repair=True) == ()  # nothing to verify yet


def test_a_user_that_is_not_tokenwardens_is_refused_before_anything_is_fixed() -> None:
    keeper, iam, _ = custody()
    iam.inspect_user.return_value = user(login_profile=True, attached_policies=())
    with pytest.raises(NotTokenWardens, match="console password"):
        keeper._secure_user(ALPHA, create=False, repair=True)
    iam.attach_api_key_policy.assert_not_called()


def test_a_users_fixes_are_made_only_when_repairing() -> None:
    keeper, iam, _ = custody()
    iam.inspect_user.return_value = user(attached_policies=(), permissions_boundary=None)
    assert keeper._secure_user(ALPHA, create=False, repair=False) == ()
    assert iam.method_calls == [call.inspect_user("tw-alpha")]
    done = keeper._secure_user(ALPHA, create=False, repair=True)
    assert done == ("user_attach_api_key_policy", "user_put_boundary")
    iam.attach_api_key_policy.assert_called_once_with("tw-alpha")
    iam.put_boundary.assert_called_once_with("tw-alpha", BOUNDARY)


@pytest.mark.parametrize(
    ("fix", "expected"),
    [
        (Fix.ATTACH_API_KEY_POLICY, [call.attach_api_key_policy("tw-alpha")]),
        (Fix.PUT_BOUNDARY, [call.put_boundary("tw-alpha", BOUNDARY)]),
        (
            Fix.TAG,
            [
                call.tag_user(
                    "tw-alpha", {"tokenwarden:team": "alpha", "tokenwarden:managed-by": "tokenwarden"}
                )
            ],
        ),
        (Fix.PUT_POLICY, []),  # a secret's fix: nothing to do on a user
    ],
)
def test_each_user_fix_is_one_call(fix: Fix, expected: list[Any]) -> None:
    keeper, iam, _ = custody()
    keeper._fix_user("tw-alpha", ALPHA, fix)
    assert iam.method_calls == expected


def test_no_boundary_is_put_when_none_is_configured() -> None:
    keeper, iam, _ = custody()
    keeper.rules = RULES.model_copy(update={"permissions_boundary_arn": None})
    keeper._fix_user("tw-alpha", ALPHA, Fix.PUT_BOUNDARY)
    assert iam.method_calls == []


def test_a_user_inspected_under_the_lease_is_judged_without_reading_it_again() -> None:
    keeper, iam, _ = custody()
    assert keeper._secure_user(ALPHA, create=True, repair=True, inspected=UserRead(user())) == ()
    assert iam.method_calls == []  # neither made again nor inspected again


def test_a_user_read_as_missing_is_made_and_one_made_meanwhile_is_read() -> None:
    keeper, iam, _ = custody()
    iam.create_user.return_value = False
    iam.inspect_user.return_value = user()
    assert keeper._secure_user(ALPHA, create=True, repair=True, inspected=UserRead(None)) == ()
    assert [c[0] for c in iam.method_calls] == ["create_user", "inspect_user"]


# -- the secret ----------------------------------------------------------------------------------------


def secure_secret(
    keeper: Custody, create: bool = False, repair: bool = True, history: bool = True
) -> tuple[str, ...]:
    return keeper._secure_secret(ALPHA, SECRET_TAGS, history, create, repair, "alpha's token").fixes


def test_a_new_secret_is_created_tagged_and_under_the_secrets_key() -> None:
    keeper, _, secrets = custody()
    secrets.create.return_value = ARN
    secured = keeper._secure_secret(ALPHA, SECRET_TAGS, True, True, True, "alpha's token")
    assert secured.fixes == ("create_secret", "secret_put_policy")
    assert secured.secret_arn == ARN  # for the actions after it, which need not describe it
    secrets.create.assert_called_once_with(
        "tokenwarden/alpha", {**SECRET_TAGS, "tokenwarden:managed-by": "tokenwarden"}, KEY, "alpha's token"
    )


def test_a_secret_just_created_is_not_read_back_but_given_its_policy_and_digest() -> None:
    keeper, _, secrets = custody()
    secrets.create.return_value = ARN
    secure_secret(keeper, create=True)
    wanted = RULES.policy("alpha", ALPHA.readers)
    assert [c[0] for c in secrets.method_calls] == ["create", "put_policy", "tag"]
    secrets.put_policy.assert_called_once_with(ARN, wanted)
    assert secrets.tag.call_args.args[1][POLICY_TAG] == policy_digest(wanted)


def test_a_secret_read_under_the_lease_is_judged_without_describing_it_again() -> None:
    keeper, _, secrets = custody()
    described = SecretState(name="tokenwarden/alpha", arn=ARN, kms_key_id=KEY)
    secrets.inspect.return_value = secret()
    keeper._secure_secret(ALPHA, SECRET_TAGS, True, False, True, "", described)
    secrets.inspect.assert_called_once_with("tokenwarden/alpha", described)


def test_a_missing_secret_is_nothing_to_verify_but_one_just_created_must_be_there() -> None:
    keeper, _, secrets = custody()
    secrets.inspect.return_value = None
    assert secure_secret(keeper) == ()
    secrets.create.return_value = None
    with pytest.raises(RuntimeError, match="secret tokenwarden/alpha vanished right after it was found"):
        secure_secret(keeper, create=True)


def test_a_secret_scheduled_for_deletion_stays_so_when_offboarding() -> None:
    keeper, _, secrets = custody()
    secrets.inspect.return_value = secret(deleted=True, policy_read=False)
    assert secure_secret(keeper) == ()
    secrets.restore.assert_not_called()


def test_a_deleted_secret_under_another_key_is_refused_before_it_is_restored() -> None:
    keeper, _, secrets = custody()
    secrets.create.return_value = None
    secrets.inspect.return_value = secret(deleted=True, policy_read=False, kms_key_id=None)
    with pytest.raises(NotTokenWardens, match="AWS managed key"):
        secure_secret(keeper, create=True)
    secrets.restore.assert_not_called()


def test_a_deleted_secret_is_restored_when_onboarding_again_and_read_back() -> None:
    keeper, _, secrets = custody()
    secrets.create.return_value = None
    secrets.inspect.side_effect = [secret(deleted=True, policy_read=False), secret()]
    assert secure_secret(keeper, create=True) == ("restore_secret",)
    secrets.restore.assert_called_once_with(ARN)
    secrets.inspect.side_effect = [secret(deleted=True, policy_read=False), None]
    with pytest.raises(RuntimeError, match="vanished right after it was restored"):
        secure_secret(keeper, create=True)


def test_a_secrets_fixes_are_made_only_when_repairing_and_the_digest_tag_comes_last() -> None:
    keeper, _, secrets = custody()
    secrets.inspect.return_value = secret(
        kms_key_id=LEGACY, policy=None, tags={**SECRET_TAGS, "tokenwarden:managed-by": "tokenwarden"}
    )
    assert secure_secret(keeper, repair=False) == ()
    assert [c[0] for c in secrets.method_calls] == ["inspect"]
    assert secure_secret(keeper) == ("secret_rekey_secret", "secret_put_policy")
    wanted = RULES.policy("alpha", ALPHA.readers)
    assert secrets.method_calls[-3:] == [
        call.rekey(ARN, KEY),
        call.put_policy(ARN, wanted),
        call.tag(
            ARN, {**SECRET_TAGS, "tokenwarden:managed-by": "tokenwarden", POLICY_TAG: policy_digest(wanted)}
        ),
    ]


def test_a_secret_tagged_as_wanted_is_not_tagged_again() -> None:
    keeper, _, secrets = custody()
    secrets.inspect.return_value = secret()
    assert secure_secret(keeper) == ()
    secrets.tag.assert_not_called()


@pytest.mark.parametrize(
    ("fix", "expected"),
    [
        (Fix.REKEY_SECRET, [call.rekey(ARN, KEY)]),
        (Fix.PUT_POLICY, [call.put_policy(ARN, {"Statement": []})]),
        (Fix.TAG, []),  # a user's fix: named, but nothing to do on a secret
    ],
)
def test_each_secret_fix_is_one_call_and_named(fix: Fix, expected: list[Any]) -> None:
    keeper, _, secrets = custody()
    assert keeper._fix_secret(ARN, fix, {"Statement": []}) == f"secret_{fix.value}"
    assert secrets.method_calls == expected
