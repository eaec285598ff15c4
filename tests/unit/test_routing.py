"""Each team hears about its own keys: the `channel` attribute a notification leaves with, the
registry values SNS would refuse, the filter policies `tokenwarden channels` prints, and the
notifier that routes with the registry shipped with a function."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fakes import FakeNotifier
from tokenwarden.cli.main import EXIT_OK, main
from tokenwarden.domain import notifications as notes
from tokenwarden.domain.registry import Registry, RegistryError, load_registry, parse_registry
from tokenwarden.domain.routing import (
    MAX_ATTRIBUTES,
    Routes,
    channel_problem,
    channel_table,
    filter_policy,
    routed,
    routes_of,
)
from tokenwarden.service.routing import RegistryRoutes, RoutedNotifier

AT = datetime(2027, 3, 1, 2, 15, tzinfo=UTC)
TOKEN = "tw-9f1c2e7d5b3a4c6e8f0a1b2c3d4e5f60"
# What SNS accepts as a message attribute name (and does not reserve for itself).
ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_\-]{1,256}")

REGISTRY = """
principals:
  - id: alpha
    notify: "#alpha"
  - id: beta
  - id: gamma
    notify: "#shared"
  - id: delta
    notify: "#shared"
  - id: ann
    kind: developer
    team: alpha
  - id: bob
    kind: developer
    team: beta
    notify: "@bob"
"""


def registry() -> Registry:
    return parse_registry(REGISTRY, source="teams.yaml")


def key() -> notes.KeyRef:
    return notes.KeyRef(credential_id="ACCA1", alias="tw-alpha-at-1", expires_at=AT)


def test_a_team_message_carries_its_team_channel_and_a_developer_falls_back_to_the_team() -> None:
    routes = routes_of(registry())
    assert routed(notes.retired("alpha", "alpha", key(), 7, AT), routes).channel == "#alpha"
    assert routed(notes.retired("ann", "alpha", key(), 7, AT), routes).channel == "#alpha"
    assert routed(notes.retired("bob", "beta", key(), 7, AT), routes).channel == "@bob", "its own wins"
    assert routed(notes.retired("beta", "beta", key(), 7, AT), routes).channel is None


def test_run_wide_and_unknown_messages_carry_no_channel_attribute() -> None:
    routes = routes_of(registry())
    summary = routed(notes.run_summary([], [], {}, AT), routes)
    guard = routed(notes.guard_tripped(["alpha", "beta"], 6, 2, AT), routes)
    gone = routed(notes.offboarded("old-team", "tokenwarden/old-team", 7, AT), routes)
    for message in (summary, guard, gone):
        assert message.channel is None and "channel" not in message.attributes()


def test_attributes_are_metadata_within_sns_limits_and_never_a_token() -> None:
    message = routed(
        notes.revoked("alpha", "alpha", [key()], f"leaked {TOKEN}", "alice", 7, True, AT),
        routes_of(registry()),
    )
    message = message.model_copy(update={"context": {**message.context, "token": TOKEN}})
    attributes = message.attributes()
    assert set(attributes) == {"event_type", "principal", "team", "severity", "channel"}
    assert len(attributes) <= MAX_ATTRIBUTES
    assert all(ATTRIBUTE_NAME.fullmatch(name) for name in attributes)
    assert attributes["channel"] == "#alpha"
    assert TOKEN in message.body(), "the test must put the token where a careless attribute would copy it"
    assert not any(TOKEN in value for value in attributes.values())


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (" #alpha", "spaces"),
        ("#alpha\n", "spaces"),
        ("#al\x07pha", "control character"),
        ("#al\tpha", "control character"),
        ("#al\ufffepha", "SNS refuses"),
    ],
)
def test_a_channel_sns_would_refuse_is_named(value: str, said: str) -> None:
    problem = channel_problem(value)
    assert problem is not None and said in problem


@pytest.mark.parametrize("value", ["#platform-eng", "C0123ABCD", "@bob", "#équipe-données", "ops 🚨"])
def test_usual_channel_names_are_accepted(value: str) -> None:
    assert channel_problem(value) is None


def test_the_registry_refuses_a_notify_value_sns_would_refuse_naming_the_team() -> None:
    text = REGISTRY.replace('notify: "#alpha"', 'notify: "#alpha "')
    with pytest.raises(RegistryError) as refused:
        parse_registry(text, source="teams.yaml")
    assert "principals[0] (id 'alpha'), field notify:" in str(refused.value)
    assert "spaces" in str(refused.value)


def test_each_channel_lists_the_teams_and_principals_it_serves_with_its_filter_policy() -> None:
    table = channel_table(registry())
    by_channel = {route.channel: route for route in table.channels}
    assert sorted(by_channel) == ["#alpha", "#shared", "@bob"]
    assert by_channel["#alpha"].teams == ("alpha",)
    assert by_channel["#alpha"].principals == ("alpha", "ann")
    assert by_channel["#shared"].teams == ("delta", "gamma")
    assert by_channel["@bob"].teams == () and by_channel["@bob"].principals == ("bob",)
    assert by_channel["#shared"].filter_policy == filter_policy("#shared") == {"channel": ["#shared"]}
    assert table.unrouted_teams == ("beta",)


def test_tokenwarden_channels_prints_the_policies_as_json_and_text(tmp_path: Path) -> None:
    path = tmp_path / "teams.yaml"
    path.write_text(REGISTRY)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["channels", "--registry", str(path), "--format", "json"]) == EXIT_OK
    printed = json.loads(out.getvalue())
    assert printed["platform"] == {"receives": "everything", "filter_policy": None}
    assert printed["filter_policy_scope"] == "MessageAttributes"
    shared = next(c for c in printed["channels"] if c["channel"] == "#shared")
    assert shared["filter_policy"] == {"channel": ["#shared"]} and shared["teams"] == ["delta", "gamma"]
    assert printed["unrouted_teams"] == ["beta"]
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["channels", "--registry", str(path)]) == EXIT_OK
    assert '{"channel": ["#alpha"]}' in text.getvalue()
    assert "platform channel: every message" in text.getvalue()


def test_the_routed_notifier_sets_the_channel_before_publishing() -> None:
    inner = FakeNotifier()
    RoutedNotifier(inner, lambda: routes_of(registry())).publish(
        notes.retired("gamma", "gamma", key(), 7, AT)
    )
    (sent,) = inner.published
    assert sent.attributes()["channel"] == "#shared"


def test_registry_routes_follow_the_file_and_fall_back_to_no_channel(tmp_path: Path) -> None:
    path = tmp_path / "teams.yaml"
    routes = RegistryRoutes(path)
    assert routes() == Routes(), "no registry: every message goes to the platform channel only"
    path.write_text(REGISTRY)
    assert routes().channel_for("alpha", "alpha") == "#alpha"
    path.write_text(REGISTRY.replace('"#alpha"', '"#alpha-team"'))
    os.utime(path, ns=(1, 1))  # a new stamp even on a coarse file-system clock
    assert routes().channel_for("alpha", "alpha") == "#alpha-team"
    path.write_text("principals: [")
    assert routes() == Routes(), "a registry that does not load routes nothing, and stops nothing"


def test_the_shipped_registry_routes_its_teams() -> None:
    routes = routes_of(load_registry(ROOT / "teams.yaml"))
    assert routes.channel_for("jdoe", "platform-eng") == "#platform-eng"
    assert routes.channel_for("mobile", "mobile") is None


def test_the_routing_page_shows_what_tokenwarden_channels_prints_for_the_shipped_registry() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["channels", "--registry", str(ROOT / "teams.yaml")]) == EXIT_OK
    page = (ROOT / "docs" / "routing.md").read_text(encoding="utf-8")
    assert f"$ tokenwarden channels\n{out.getvalue()}```" in page
