"""Ownership's checks one at a time: each way a user under TokenWarden's name can be someone else's,
each fix of TokenWarden's own unfinished user, and each shape check of a deny statement."""

from __future__ import annotations

from typing import Any

import pytest

from tokenwarden.domain.ownership import (
    CHANGE_ACTIONS,
    PRINCIPAL_ARN,
    READ_ACTIONS,
    TEAM_PRINCIPAL_TAG,
    USER_CHECKS,
    Fix,
    OwnershipRules,
    UserFacts,
    denies_everyone,
    has_required_conditions,
    only_optional_conditions,
    only_statement_keys,
    user_fixes,
    user_problems,
)

API_POLICY = "arn:aws:iam::aws:policy/CloudWatchAPIKeyAccess"
BOUNDARY = "arn:aws:iam::123456789012:policy/tokenwarden-boundary"
RULES = OwnershipRules(api_key_policy_arn=API_POLICY)
BOUNDED = OwnershipRules(api_key_policy_arn=API_POLICY, permissions_boundary_arn=BOUNDARY)
TAGS = {
    "tokenwarden:managed-by": "tokenwarden",
    "tokenwarden:principal": "alpha",
    "tokenwarden:team": "alpha",
}


def user(**fields: Any) -> UserFacts:
    values: dict[str, Any] = {
        "name": "tw-alpha",
        "path": "/tokenwarden/",
        "arn": "arn:aws:iam::123456789012:user/tokenwarden/tw-alpha",
        "tags": TAGS,
        "attached_policies": (API_POLICY,),
        **fields,
    }
    return UserFacts(**values)


# -- a user: each check on its own -------------------------------------------------------------------


def test_tokenwardens_user_passes_every_check() -> None:
    assert user_problems(user(), "alpha", BOUNDED) == []
    assert user_problems(user(permissions_boundary=BOUNDARY), "alpha", BOUNDED) == []


@pytest.mark.parametrize(
    ("facts", "rules", "problem"),
    [
        (user(path="/"), RULES, "it is on path /, not /tokenwarden/"),
        (
            user(tags={**TAGS, "tokenwarden:managed-by": "someone"}),
            RULES,
            "it is not tagged tokenwarden:managed-by=tokenwarden",
        ),
        (
            user(tags={**TAGS, "tokenwarden:principal": "beta"}),
            RULES,
            "its tag tokenwarden:principal does not name alpha",
        ),
        (
            user(attached_policies=(API_POLICY, "arn:aws:iam::aws:policy/AdministratorAccess")),
            RULES,
            "managed policies other than CloudWatchAPIKeyAccess are attached: "
            "arn:aws:iam::aws:policy/AdministratorAccess",
        ),
        (user(inline_policies=("extra",)), RULES, "it has inline policies: extra"),
        (user(groups=("admins",)), RULES, "it is in groups: admins"),
        (user(access_keys=2), RULES, "it has 2 access key(s)"),
        (user(login_profile=True), RULES, "it has a console password (login profile)"),
        (
            user(permissions_boundary="arn:aws:iam::123456789012:policy/wide"),
            BOUNDED,
            f"its permissions boundary is arn:aws:iam::123456789012:policy/wide, not {BOUNDARY}",
        ),
    ],
)
def test_each_check_names_exactly_its_own_problem(
    facts: UserFacts, rules: OwnershipRules, problem: str
) -> None:
    assert user_problems(facts, "alpha", rules) == [problem]
    assert [found for check in USER_CHECKS if (found := check(facts, "alpha", rules))] == [problem]


def test_any_boundary_is_fine_when_none_is_configured() -> None:
    assert user_problems(user(permissions_boundary="arn:aws:iam::1:policy/x"), "alpha", RULES) == []


def test_problems_are_listed_in_the_order_of_the_checks() -> None:
    facts = user(path="/", login_profile=True, groups=("admins",))
    assert user_problems(facts, "alpha", RULES) == [
        "it is on path /, not /tokenwarden/",
        "it is in groups: admins",
        "it has a console password (login profile)",
    ]


# -- a user: what TokenWarden finishes on its own ----------------------------------------------------


def test_a_finished_user_needs_no_fix() -> None:
    assert user_fixes(user(permissions_boundary=BOUNDARY), "alpha", BOUNDED) == []


def test_each_unfinished_part_has_its_fix_in_order() -> None:
    unfinished = user(attached_policies=(), tags={**TAGS, "tokenwarden:team": "old"})
    assert user_fixes(unfinished, "alpha", BOUNDED) == [Fix.ATTACH_API_KEY_POLICY, Fix.PUT_BOUNDARY, Fix.TAG]


def test_without_a_team_the_team_tag_is_not_judged() -> None:
    assert user_fixes(user(tags={**TAGS, "tokenwarden:team": "old"}), None, RULES) == []


# -- a deny statement: each shape check on its own ---------------------------------------------------


def deny(**fields: Any) -> dict[str, Any]:
    return {
        "Sid": "S",
        "Effect": "Deny",
        "Principal": ["*"],
        "Action": sorted(READ_ACTIONS),
        "Resource": ["*"],
        "Condition": {},
        **fields,
    }


def test_a_statement_has_only_the_keys_tokenwarden_writes() -> None:
    assert only_statement_keys(deny())
    assert only_statement_keys({"Effect": "Deny"})
    assert not only_statement_keys(deny(NotAction=["x"]))


@pytest.mark.parametrize(
    "change",
    [
        {"Effect": "Allow"},
        {"Principal": {"AWS": ["*"]}},
        {"Action": sorted(CHANGE_ACTIONS)},
        {"Resource": ["arn:aws:secretsmanager:*"]},
    ],
)
def test_a_deny_is_of_exactly_the_actions_on_the_secret_to_everyone(change: dict[str, Any]) -> None:
    assert denies_everyone(deny(), READ_ACTIONS)
    assert not denies_everyone(deny(**change), READ_ACTIONS)


REQUIRED = {"ArnNotLike": {PRINCIPAL_ARN}}
OPTIONAL = {"StringNotEquals": {TEAM_PRINCIPAL_TAG}}


@pytest.mark.parametrize(
    ("condition", "ok"),
    [
        ({"ArnNotLike": {PRINCIPAL_ARN: ["arn:aws:iam::1:role/x"]}}, True),
        ({}, False),
        ({"ArnNotLike": None}, False),
        ({"ArnNotLike": {PRINCIPAL_ARN: None}}, False),
        ({"ArnNotLike": {PRINCIPAL_ARN: ["a"], "aws:SourceIp": ["b"]}}, False),
    ],
)
def test_the_required_conditions_are_there_on_exactly_their_keys(condition: dict[str, Any], ok: bool) -> None:
    assert has_required_conditions(condition, REQUIRED) is ok


@pytest.mark.parametrize(
    ("condition", "ok"),
    [
        ({"ArnNotLike": {"anything": None}}, True),  # required ones are another check's
        ({"StringNotEquals": {TEAM_PRINCIPAL_TAG: ["alpha"]}}, True),
        ({"StringNotEquals": {TEAM_PRINCIPAL_TAG: ["alpha", "beta"]}}, False),  # one team only
        ({"StringNotEquals": {TEAM_PRINCIPAL_TAG: None}}, False),
        ({"StringNotEquals": {"aws:PrincipalTag/other": ["alpha"]}}, False),
        ({"StringNotEquals": "alpha"}, False),
        ({"Bool": {"aws:SecureTransport": ["false"]}}, False),
    ],
)
def test_any_other_condition_is_an_allowed_optional_one(condition: dict[str, Any], ok: bool) -> None:
    assert only_optional_conditions(condition, REQUIRED, OPTIONAL) is ok
