"""Slack through AWS Chatbot (template.yaml, docs/routing.md): the platform channel on the topic
as it is, a team channel on a topic of its own fed by a subscription filtered on the attribute
the code sets, and nothing in Slack that can act on the account."""

from __future__ import annotations

from typing import Any

from tokenwarden.domain.routing import CHANNEL_ATTRIBUTE

DENY_ALL = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSDenyAll"}


def resources(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in cfn["Resources"].items() if r["Type"] == kind}


def test_every_slack_channel_is_optional_and_can_do_nothing_in_the_account(cfn: dict[str, Any]) -> None:
    channels = resources(cfn, "AWS::Chatbot::SlackChannelConfiguration")
    assert set(channels) == {"PlatformSlackChannel", "TeamSlackChannel"}
    for channel in channels.values():
        assert channel["Condition"] in ("HasPlatformSlackChannel", "HasTeamSlackChannel")
        assert channel["Properties"]["GuardrailPolicies"] == [DENY_ALL]
        assert channel["Properties"]["UserRoleRequired"] is False
        assert channel["Properties"]["IamRoleArn"] == {"Fn::GetAtt": ["ChatbotRole", "Arn"]}
    role = cfn["Resources"]["ChatbotRole"]["Properties"]
    assert "Policies" not in role and "ManagedPolicyArns" not in role, "notifications need no permission"
    assert "Path" not in role, "the functions' path is trusted by every secret's policy"
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "chatbot.amazonaws.com"}


def test_the_platform_channel_gets_the_topic_unfiltered(cfn: dict[str, Any]) -> None:
    platform = cfn["Resources"]["PlatformSlackChannel"]["Properties"]
    assert platform["SnsTopicArns"] == [{"Ref": "Topic"}]


def test_a_team_channel_gets_only_messages_whose_channel_is_its_notify_value(cfn: dict[str, Any]) -> None:
    subscription = cfn["Resources"]["TeamChannelSubscription"]["Properties"]
    assert subscription["TopicArn"] == {"Ref": "Topic"}
    assert subscription["FilterPolicyScope"] == "MessageAttributes"
    assert subscription["FilterPolicy"] == {CHANNEL_ATTRIBUTE: [{"Ref": "TeamNotifyChannel"}]}
    assert subscription["RawMessageDelivery"] in (True, "true"), "the pipe passes the Chatbot body on as is"
    pipe = cfn["Resources"]["TeamChannelPipe"]["Properties"]
    assert pipe["Source"] == {"Fn::GetAtt": ["TeamChannelQueue", "Arn"]}
    assert pipe["Target"] == {"Ref": "TeamChannelTopic"}
    assert cfn["Resources"]["TeamSlackChannel"]["Properties"]["SnsTopicArns"] == [{"Ref": "TeamChannelTopic"}]
    queue_policy = cfn["Resources"]["TeamChannelQueuePolicy"]["Properties"]["PolicyDocument"]
    (statement,) = queue_policy["Statement"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "Topic"}}}


def test_the_pipe_role_moves_messages_and_nothing_else(cfn: dict[str, Any]) -> None:
    role = cfn["Resources"]["TeamChannelPipeRole"]["Properties"]
    assert "Path" not in role and "ManagedPolicyArns" not in role
    actions = {
        action
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert actions == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sns:Publish",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
    for policy in role["Policies"]:
        assert all(statement["Resource"] != "*" for statement in policy["PolicyDocument"]["Statement"])
    (kms,) = [
        statement
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if "kms:Decrypt" in statement["Action"]
    ]
    # The key protects the ledger and secrets too: the pipe may use it only through SNS.
    assert kms["Condition"] == {
        "StringEquals": {"kms:ViaService": {"Fn::Sub": "sns.${AWS::Region}.amazonaws.com"}}
    }


def test_a_team_channel_without_its_notify_value_is_refused_before_deploying(cfn: dict[str, Any]) -> None:
    rule = cfn["Rules"]["TeamChannelNeedsItsNotifyValueAndWorkspace"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "TeamSlackChannelId"}, ""]}]}
    assert "PlatformChannelNeedsAWorkspace" in cfn["Rules"]
