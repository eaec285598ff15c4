"""The configuration side of ownership: registry readers and bounded free text, the new settings,
the blast-radius guard counting deletions, and the clock a stale stack URL must not change."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.unit.builders import CONFIG, NOW, healthy, inventory, registry, secret, user
from tokenwarden.domain.model import PrincipalInventory
from tokenwarden.domain.ownership import Readers
from tokenwarden.domain.plan import ActionKind, build_plan
from tokenwarden.domain.registry import RegistryError, parse_registry
from tokenwarden.settings import Settings

READER = "arn:aws:iam::123456789012:role/ci/metrics-exporter"
AUDITOR = "arn:aws:iam::123456789012:role/security/auditor"


def parse(document: dict[str, Any]) -> Any:
    return parse_registry(yaml.safe_dump(document), "teams.yaml")


# -- registry ---------------------------------------------------------------------------------


def test_readers_default_to_the_team_tag_only() -> None:
    reg = parse({"principals": [{"id": "alpha"}]})
    alpha = reg.get("alpha")
    assert alpha is not None and alpha.readers == Readers(roles=(), team_tag=True)


def test_readers_merge_field_by_field_over_the_defaults() -> None:
    reg = parse(
        {
            "defaults": {"readers": {"roles": [AUDITOR]}},
            "principals": [
                {"id": "alpha"},
                {"id": "beta", "readers": {"team_tag": False}},
                {"id": "gamma", "readers": {"roles": [READER]}},
            ],
        }
    )
    assert [(p.id, p.readers.roles, p.readers.team_tag) for p in reg.principals] == [
        ("alpha", (AUDITOR,), True),
        ("beta", (AUDITOR,), False),
        ("gamma", (READER,), True),
    ]
    assert reg.former("gone").readers.roles == (AUDITOR,)


@pytest.mark.parametrize(
    ("readers", "fragment"),
    [
        ({"roles": ["arn:aws:iam::123456789012:role/*"]}, "field readers.roles: "),
        ({"roles": "not-a-list"}, "field readers.roles: "),
        ({"team_tag": "yes"}, "field readers.team_tag: "),
        ({"groups": []}, "field readers.groups: unknown key"),
        ({"roles": [f"arn:aws:iam::123456789012:role/r{i}" for i in range(21)]}, "field readers.roles: "),
    ],
)
def test_bad_readers_name_the_entry_and_the_field(readers: dict[str, Any], fragment: str) -> None:
    with pytest.raises(RegistryError) as raised:
        parse({"principals": [{"id": "alpha"}, {"id": "beta", "readers": readers}]})
    assert "principals[1] (id 'beta')" in str(raised.value) and fragment in str(raised.value)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"owners": ["x" * 257]}, "owners.0"),
        ({"owners": [f"o{i}@example.com" for i in range(21)]}, "owners"),
        ({"notify": "#" + "x" * 300}, "notify"),
        ({"kind": "developer", "team": "x" * 300}, "team"),
    ],
)
def test_free_text_is_bounded(entry: dict[str, Any], field: str) -> None:
    with pytest.raises(RegistryError) as raised:
        parse({"principals": [{"id": "alpha"}, {"id": "beta", **entry}]})
    message = str(raised.value)
    assert f"principals[1] (id 'beta'), field {field}:" in message
    assert len(message) < 400  # the long value is not repeated back


def test_the_shipped_registry_still_loads() -> None:
    from pathlib import Path

    from tokenwarden.domain.registry import load_registry

    reg = load_registry(Path(__file__).resolve().parents[2] / "teams.yaml")
    assert all(p.readers.team_tag for p in reg.principals)


# -- settings ---------------------------------------------------------------------------------


def test_operators_and_service_roles_are_parsed_and_validated() -> None:
    settings = Settings(
        service_role_arn_pattern="arn:aws:iam::123456789012:role/tokenwarden/prod/*",
        operator_arns=" arn:aws:iam::123456789012:role/admin/* , arn:aws:iam::123456789012:user/ops ,",
        legacy_kms_key_id="",
    )
    assert settings.operators == (
        "arn:aws:iam::123456789012:role/admin/*",
        "arn:aws:iam::123456789012:user/ops",
    )
    assert settings.legacy_kms_key_id is None
    rules = settings.ownership
    assert rules.custodians == ("arn:aws:iam::123456789012:role/tokenwarden/prod/*", *settings.operators)
    assert rules.api_key_policy_arn == "arn:aws:iam::aws:policy/CloudWatchAPIKeyAccess"
    assert Settings(service_role_arn_pattern="").service_role_arn_pattern is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("service_role_arn_pattern", "tokenwarden-*"),
        ("service_role_arn_pattern", "arn:aws:s3:::bucket"),
        ("operator_arns", "arn:aws:iam::123456789012:role/admin,alice"),
    ],
)
def test_a_malformed_arn_setting_is_refused_at_start(name: str, value: str) -> None:
    setting: dict[str, Any] = {name: value}
    with pytest.raises(ValueError, match="not an IAM ARN"):
        Settings(**setting)


def test_the_variables_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENWARDEN_SERVICE_ROLE_ARN_PATTERN", "arn:aws:iam::123456789012:role/tw/*")
    monkeypatch.setenv("TOKENWARDEN_OPERATOR_ARNS", "arn:aws:iam::123456789012:role/admin")
    monkeypatch.setenv("TOKENWARDEN_LEGACY_KMS_KEY_ID", "arn:aws:kms:us-east-1:123456789012:key/old")
    settings = Settings()
    assert settings.ownership.custodians == (
        "arn:aws:iam::123456789012:role/tw/*",
        "arn:aws:iam::123456789012:role/admin",
    )
    assert settings.ownership.legacy_kms_key_id == "arn:aws:kms:us-east-1:123456789012:key/old"


# -- the blast-radius guard -------------------------------------------------------------------


def _leftovers(*names: str, what: str) -> list[PrincipalInventory]:
    """Former principals whose keys are gone: only a user, or only a secret, is left to delete."""
    if what == "user":
        return [PrincipalInventory(principal=n, user=user(n)) for n in names]
    return [PrincipalInventory(principal=n, secret=secret(n)) for n in names]


@pytest.mark.parametrize(
    ("what", "kind"), [("user", ActionKind.DELETE_USER), ("secret", ActionKind.DELETE_SECRET)]
)
def test_the_guard_counts_user_and_secret_deletions(what: str, kind: ActionKind) -> None:
    kept = [f"p{i}" for i in range(5)]
    gone = ("x1", "x2", "x3")
    world = inventory(*(healthy(n) for n in kept), *_leftovers(*gone, what=what))

    plan = build_plan(registry(*kept), world, NOW, CONFIG)

    assert plan.guard is not None and plan.guard.tripped  # 3 of 8 managed, limit 2
    assert plan.guard.would_deactivate == gone
    assert not any(a.kind == kind for a in plan.actions)
    assert "delete the user or secret" in plan.findings[0].detail

    forced = build_plan(registry(*kept), world, NOW, CONFIG.model_copy(update={"allow_mass_revoke": True}))
    assert sum(a.kind == kind for a in forced.actions) == 3


def test_deletions_within_the_limit_go_ahead() -> None:
    kept = [f"p{i}" for i in range(5)]
    world = inventory(*(healthy(n) for n in kept), *_leftovers("x1", "x2", what="user"))
    plan = build_plan(registry(*kept), world, NOW, CONFIG)
    assert plan.guard is not None and not plan.guard.tripped
    assert sum(a.kind == ActionKind.DELETE_USER for a in plan.actions) == 2
