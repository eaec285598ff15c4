"""What the rotation function calls in a whole rotation (Secrets Manager invoking it in the
background, as on AWS) is what its role in template.yaml allows, and nothing more."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT, Env

# DynamoDB authorises each item of a transaction by its own action (TransactWriteItems holding Puts
# needs dynamodb:PutItem); every other call is authorised by the IAM action of the same name.
AUTHORISED_AS = {"dynamodb:TransactWriteItems": "dynamodb:PutItem"}


class _Template(yaml.SafeLoader):
    """CloudFormation's short-form intrinsics (!Sub, !GetAtt, !If...) read as plain values."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    assert isinstance(node, yaml.MappingNode)
    return loader.construct_mapping(node, deep=True)


_Template.add_multi_constructor("!", _intrinsic)


def rotation_role_actions(template: Path) -> set[str]:
    resources = yaml.load(template.read_text(), Loader=_Template)["Resources"]
    actions: set[str] = set()
    for policy in resources["RotateSecretFunction"]["Properties"]["Policies"]:
        for statement in policy.get("Statement", []):
            if isinstance(statement, dict) and statement.get("Effect") == "Allow":
                listed = statement["Action"]
                actions |= {listed} if isinstance(listed, str) else set(listed)
    return actions


def test_a_whole_rotation_calls_only_what_the_rotation_role_allows(env: Env) -> None:
    env.run()
    env.messages()
    before = env.current_token("platform-eng")
    env.log.calls.clear()

    env.client("secretsmanager").rotate_secret(SecretId="tokenwarden/platform-eng", RotateImmediately=True)
    env.settle()

    assert env.current_token("platform-eng") != before, "the rotation did not happen"
    made = {AUTHORISED_AS.get(call, call) for call in env.log.calls[1:]}  # after the test's RotateSecret
    allowed = rotation_role_actions(ROOT / "template.yaml")
    assert made <= allowed, f"called but not granted: {sorted(made - allowed)}"
    assert {
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
        "iam:CreateServiceSpecificCredential",
        "sns:Publish",
    } <= made
