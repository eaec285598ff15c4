"""`tokenwarden status` shows what is in the account, not only what the registry file lists: a
principal being offboarded, and a user on TokenWarden's path that no registry ever listed, appear
marked as such, so an operator can see where a key went."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, Env
from tokenwarden.cli.main import main
from tokenwarden.domain.registry import load_registry

CLOUDWATCH = "cloudwatch.amazonaws.com"


@pytest.fixture
def world(env: Env, monkeypatch: pytest.MonkeyPatch) -> Env:
    """The CLI configured for this moto world, and the shipped registry onboarded."""
    for name, value in env.settings_environment().items():
        monkeypatch.setenv(name, value)
    env.run()
    return env


def registry_without(tmp_path: Path, *removed: str) -> Path:
    document = yaml.safe_load((ROOT / "teams.yaml").read_text(encoding="utf-8"))
    document["principals"] = [p for p in document["principals"] if p["id"] not in removed]
    path = tmp_path / "teams.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def status(env: Env, registry: Path, *extra: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    at = env.clock.now().isoformat()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["status", "--registry", str(registry), "--at", at, *extra])
    assert code == 0, err.getvalue()
    return out.getvalue(), err.getvalue()


def rows(env: Env, registry: Path) -> dict[str, dict[str, Any]]:
    out, _ = status(env, registry, "--json")
    return {row["principal"]: row for row in json.loads(out)}


def later(env: Env, days: float) -> datetime:
    return env.clock.now() + timedelta(days=days)


def test_a_principal_removed_from_the_registry_stays_visible_until_it_is_gone(
    world: Env, tmp_path: Path
) -> None:
    registry = registry_without(tmp_path, "mobile")
    mobile_key = world.credentials("mobile")[0]["ServiceSpecificCredentialId"]

    # Before the next run: still whole in the account, and due to be offboarded.
    before = rows(world, registry)
    assert [r["principal"] for r in before.values() if r["in_registry"]] == [
        "platform-eng",
        "data-science",
        "jdoe",
    ]
    mobile = before["mobile"]
    assert (mobile["state"], mobile["in_registry"], mobile["team"]) == ("offboarding", False, None)
    assert mobile["pending_actions"][0] == "offboard"
    assert [(c["id"], c["status"]) for c in mobile["credentials"]] == [(mobile_key, "Active")]
    assert (mobile["secret_id"], mobile["user_name"], mobile["user_exists"]) == (
        "tokenwarden/mobile",
        "tw-mobile",
        True,
    )
    assert mobile["current_credential_id"] is None  # nothing is current for a principal being removed
    assert all(r["state"] == "registered" for p, r in before.items() if p != "mobile")

    # The run offboards it: the key is deactivated, kept through the retention, the secret scheduled.
    former = load_registry(registry)
    world.run(later(world, 1), registry=former)
    mobile = rows(world, registry)["mobile"]
    assert mobile["state"] == "offboarding"
    assert [(c["id"], c["status"], c["role"]) for c in mobile["credentials"]] == [
        (mobile_key, "Inactive", "offboarded")
    ]
    assert mobile["next_action"]["kind"] == "delete"
    assert mobile["last_event"]["kind"] == "offboarded"
    assert mobile["secret_deleted_at"] is not None

    table, _ = status(world, registry)
    section = table.split(f"In the account but not in {registry}:", 1)
    assert len(section) == 2, table
    line = next(line for line in section[1].splitlines() if line.startswith("mobile "))
    assert "offboarding" in line and "I:offboarded" in line and "delete " in line
    assert "IAM user tw-mobile" in line and "secret tokenwarden/mobile (deletion scheduled" in line
    assert "mobile " not in section[0]  # not among the registered principals

    # After the retention the key and then the user go; the scheduled secret is all that is left.
    world.run(later(world, 8), registry=former)
    world.run(later(world, 1), registry=former)
    assert world.credentials("mobile") == []
    after = rows(world, registry)
    if "mobile" in after:  # listed while Secrets Manager's recovery window runs
        assert after["mobile"]["state"] == "offboarded"
        assert (after["mobile"]["credentials"], after["mobile"]["user_exists"]) == ([], False)
        assert after["mobile"]["secret_deleted_at"] is not None


def test_a_user_on_the_path_that_no_registry_lists_is_shown_with_its_key(world: Env, tmp_path: Path) -> None:
    iam = world.client("iam")
    iam.create_user(UserName="tw-handmade", Path="/tokenwarden/")
    iam.create_user(UserName="tw-empty", Path="/tokenwarden/")
    world.clock.advance(timedelta(minutes=5))  # past IAM's propagation delay for a new user
    key = iam.create_service_specific_credential(
        UserName="tw-handmade", ServiceName=CLOUDWATCH, CredentialAgeDays=30
    )["ServiceSpecificCredential"]["ServiceSpecificCredentialId"]
    registry = ROOT / "teams.yaml"

    listed = rows(world, registry)
    handmade = listed["handmade"]
    assert (handmade["state"], handmade["in_registry"], handmade["secret_id"]) == (
        "not in registry",
        False,
        None,
    )
    assert [(c["id"], c["status"], c["role"]) for c in handmade["credentials"]] == [
        (key, "Active", "untracked")
    ]
    assert "offboard" in handmade["pending_actions"]
    assert (listed["empty"]["state"], listed["empty"]["credentials"]) == ("not in registry", [])
    assert [p for p, r in listed.items() if r["in_registry"]] == [
        "platform-eng",
        "data-science",
        "mobile",
        "jdoe",
    ]

    table, _ = status(world, registry)
    assert f"In the account but not in {registry}:" in table
    line = next(line for line in table.splitlines() if line.startswith("handmade "))
    assert "not in registry" in line and "A:untracked" in line and "now: offboard" in line
    assert "IAM user tw-handmade, 1 key(s)" in line


def test_a_registry_that_matches_the_account_shows_no_extra_section(world: Env) -> None:
    table, _ = status(world, ROOT / "teams.yaml")
    assert "not in" not in table
    listed = rows(world, ROOT / "teams.yaml")
    assert {r["state"] for r in listed.values()} == {"registered"}
