"""Who can read a token, and how far the roles reach: the keys' policies, the roles' tag
conditions and the parameters that scope them, read from the translated template."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infra.test_template import (
    MANAGED_TAG,
    SECRET_ARN,
    USER_ARN,
    all_roles,
    allowing,
    as_list,
    branches,
    env,
    functions,
    props,
    resources,
    role_of,
    statements,
    text,
)

pytestmark = pytest.mark.infra

ROOT = "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"
ROLE_PATH = "/tokenwarden/${AWS::StackName}/"
ROLE_PATTERN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/tokenwarden/${AWS::StackName}/*"
VIA_SECRETS_MANAGER = "secretsmanager.${AWS::Region}.amazonaws.com"
USE_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt", "kms:CreateGrant")


def key_statements(cfn: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [s for raw in props(cfn, key)["KeyPolicy"]["Statement"] for s in branches(raw)]


def uses(statement: dict[str, Any]) -> set[str]:
    """The cryptographic (or grant-making) actions a key policy statement allows."""
    found = set()
    for action in as_list(statement["Action"]):
        for use in USE_ACTIONS:
            if action == "kms:*" or action.startswith(use) or use.startswith(action.rstrip("*")):
                found.add(use)
    return found


# ------------------------------------------------------------------------------ the secrets' key
def test_secrets_have_a_key_of_their_own_that_nothing_else_uses(cfn: dict[str, Any]) -> None:
    assert props(cfn, "SecretsKey")["EnableKeyRotation"] is True
    assert cfn["Resources"]["SecretsKey"]["DeletionPolicy"] == "Retain"
    for resource in cfn["Resources"].values():
        if resource["Type"] in ("AWS::SNS::Topic", "AWS::DynamoDB::Table", "AWS::SQS::Queue"):
            assert "SecretsKey" not in str(resource["Properties"]), resource["Type"]


def test_an_administrator_with_kms_star_on_everything_cannot_decrypt_a_token(cfn: dict[str, Any]) -> None:
    """The account root principal delegates to IAM: any statement for it that allows a use of the key
    without conditions would let every IAM policy with kms:Decrypt on "*" read every team's token."""
    for statement in key_statements(cfn, "SecretsKey"):
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"AWS": {"Fn::Sub": ROOT}}, statement["Sid"]
        if not uses(statement):
            continue
        condition = statement["Condition"]
        assert condition["StringEquals"]["kms:ViaService"] == {"Fn::Sub": VIA_SECRETS_MANAGER}, statement[
            "Sid"
        ]
        assert condition["StringEquals"]["kms:CallerAccount"] == {"Ref": "AWS::AccountId"}, statement["Sid"]
        assert text(condition["StringLike"]["kms:EncryptionContext:SecretARN"]) == SECRET_ARN, statement[
            "Sid"
        ]
        # ...and only for named principals: TokenWarden's roles, operators, readers, or team-tagged callers.
        assert "ArnLike" in condition or condition.get("Null") == {
            "aws:PrincipalTag/tokenwarden:team": "false"
        }
        assert uses(statement) <= {"kms:Decrypt", "kms:GenerateDataKey"}, statement["Sid"]


def test_only_tokenwardens_roles_and_operators_encrypt_and_readers_only_decrypt(cfn: dict[str, Any]) -> None:
    encrypting = [s for s in key_statements(cfn, "SecretsKey") if "kms:GenerateDataKey" in uses(s)]
    assert len(encrypting) == 1
    principals = encrypting[0]["Condition"]["ArnLike"]["aws:PrincipalArn"]
    with_operators, without = principals["Fn::If"][1:]
    assert principals["Fn::If"][0] == "HasOperators"
    assert without == {"Fn::Sub": ROLE_PATTERN}
    joined = with_operators["Fn::Split"][1]["Fn::Join"][1]
    assert joined == [{"Fn::Sub": ROLE_PATTERN}, {"Fn::Join": [",", {"Ref": "OperatorPrincipalArns"}]}]
    readers = [s for s in key_statements(cfn, "SecretsKey") if uses(s) == {"kms:Decrypt"}]
    assert {s["Sid"] for s in readers} == {
        "TeamTaggedReadersDecryptThroughSecretsManager",
        "NamedReadersDecryptThroughSecretsManager",
    }
    named = next(s for s in readers if s["Sid"].startswith("Named"))
    assert named["Condition"]["ArnLike"] == {"aws:PrincipalArn": {"Ref": "ReaderPrincipalArns"}}
    assert props(cfn, "SecretsKey")["KeyPolicy"]["Statement"][-1]["Fn::If"][0] == "HasReaders"


def test_the_functions_roles_live_on_the_path_the_policies_trust(cfn: dict[str, Any]) -> None:
    for name in functions(cfn):
        role = role_of(cfn, name)
        assert props(cfn, role)["Path"] == {"Fn::Sub": ROLE_PATH}, name
        assert env(cfn, name)["TOKENWARDEN_SERVICE_ROLE_ARN_PATTERN"] == {"Fn::Sub": ROLE_PATTERN}, name
        assert env(cfn, name)["TOKENWARDEN_OPERATOR_ARNS"] == {
            "Fn::Join": [",", {"Ref": "OperatorPrincipalArns"}]
        }, name


def test_cloudwatch_alarms_use_the_topic_key_from_this_account_only(cfn: dict[str, Any]) -> None:
    (grant,) = [
        s for s in key_statements(cfn, "KmsKey") if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert grant["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    assert not any("Service" in s["Principal"] for s in key_statements(cfn, "SecretsKey")), (
        "no service principal uses the secrets' key directly"
    )


# ------------------------------------------------------------------------------ nothing taken over by name
def test_every_change_to_a_user_or_secret_needs_tokenwardens_tag(cfn: dict[str, Any]) -> None:
    """A user or secret someone else made under TokenWarden's names answers AccessDenied."""
    creating = {"iam:CreateUser", "secretsmanager:CreateSecret", "iam:TagUser", "secretsmanager:TagResource"}
    seen = 0
    for role_id in all_roles(cfn):
        for statement in statements(cfn, role_id):
            if statement["Effect"] != "Allow":
                continue
            resources_ = [text(r) for r in as_list(statement["Resource"])]
            if resources_ not in ([USER_ARN], [SECRET_ARN]):
                continue
            actions = set(as_list(statement["Action"]))
            reads = {
                a
                for a in actions
                if a.split(":")[1].startswith(("Get", "List", "Describe"))
                and a != "secretsmanager:GetSecretValue"
            }
            if actions <= reads:
                continue
            seen += 1
            condition = statement["Condition"]
            if actions & creating:
                assert actions <= creating, (role_id, statement["Sid"])
                assert condition["StringEquals"]["aws:RequestTag/tokenwarden:managed-by"] == "tokenwarden"
            else:
                assert condition["StringEquals"][MANAGED_TAG] == "tokenwarden", (role_id, statement["Sid"])
    assert seen >= 15


def test_secrets_are_created_with_their_key_and_never_re_keyed_elsewhere(cfn: dict[str, Any]) -> None:
    for action in ("secretsmanager:CreateSecret", "secretsmanager:UpdateSecret"):
        for role_id in all_roles(cfn):
            for statement in allowing(cfn, role_id, action):
                assert statement["Condition"]["StringEquals"]["secretsmanager:KmsKeyArn"] == {
                    "Fn::GetAtt": ["SecretsKey", "Arn"]
                }, (role_id, action)
    (put,) = allowing(cfn, "ReconcileFunctionRole", "secretsmanager:PutResourcePolicy")
    assert put["Condition"]["Bool"] == {"secretsmanager:BlockPublicPolicy": "true"}
    for role_id in all_roles(cfn):
        for statement in allowing(cfn, role_id, "secretsmanager:RotateSecret"):
            assert statement["Condition"]["StringEquals"]["secretsmanager:RotationLambdaARN"] == {
                "Fn::GetAtt": ["RotateSecretFunction", "Arn"]
            }, role_id
        if role_id != "ReconcileFunctionRole":
            for action in (
                "secretsmanager:PutResourcePolicy",
                "secretsmanager:DeleteResourcePolicy",
                "secretsmanager:UpdateSecret",
            ):
                assert not allowing(cfn, role_id, action), (role_id, action)


# ------------------------------------------------------------------------------ parameters
def pattern(cfn: dict[str, Any], name: str) -> re.Pattern[str]:
    return re.compile(cfn["Parameters"][name]["AllowedPattern"])


@pytest.mark.parametrize(
    ("name", "accepted", "refused"),
    [
        (
            "UserPath",
            ["/tokenwarden/", "/org/tokenwarden/", "/tw_2/"],
            ["/", "", "/*/", "/token?warden/", "tokenwarden/", "/tokenwarden", "//", "/a b/"],
        ),
        ("UserPrefix", ["tw-", "x", "cw.key_"], ["", "tw*", "tw?", "a" * 33, "tw /"]),
        (
            "SecretPrefix",
            ["tokenwarden/", "org/tokenwarden/", "tw-keys/"],
            ["", "tokenwarden", "tokenwarden/*", "/", "/tokenwarden/", "token?/", "a//"],
        ),
        (
            "PermissionsBoundaryArn",
            ["", "arn:aws:iam::123456789012:policy/boundary", "arn:aws-cn:iam::aws:policy/x"],
            ["boundary", "arn:aws:iam::123456789012:role/x", "arn:aws:s3:::bucket"],
        ),
    ],
)
def test_parameters_cannot_widen_what_the_roles_reach(
    cfn: dict[str, Any], name: str, accepted: list[str], refused: list[str]
) -> None:
    """CloudFormation matches AllowedPattern against the whole value."""
    allowed = pattern(cfn, name)
    for value in accepted:
        assert allowed.fullmatch(value), (name, value)
    for value in refused:
        assert not allowed.fullmatch(value), (name, value)


def test_the_user_boundary_ships_with_the_stack(cfn: dict[str, Any]) -> None:
    (boundary,) = resources(cfn, "AWS::IAM::ManagedPolicy").values()
    assert boundary["Properties"]["Path"] == {"Fn::Sub": ROLE_PATH}
    outputs = cfn["Outputs"]
    assert outputs["UserBoundaryPolicyArn"]["Value"] == {"Ref": "UserBoundaryPolicy"}
    assert outputs["SecretsKeyArn"]["Value"] == {"Fn::GetAtt": ["SecretsKey", "Arn"]}
    assert outputs["RestoreFunctionName"]["Value"] == {"Ref": "RestoreFunction"}
