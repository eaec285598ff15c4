"""`tokenwarden status` rows: typed models whose JSON keeps the shape scripts read."""

from __future__ import annotations

import json

import pytest

from tests.unit.builders import CONFIG, NOW, days, inventory, principal, registry, rotated
from tokenwarden.cli.rendering import render_selection, render_status
from tokenwarden.cli.views import STATES, RowFilter, StatusRow, selected, status_rows
from tokenwarden.domain.naming import Naming
from tokenwarden.domain.plan import build_plan

KEYS = [
    "principal",
    "state",
    "in_registry",
    "team",
    "kind",
    "secret_id",
    "secret_deleted_at",
    "user_name",
    "user_exists",
    "current_credential_id",
    "current_alias",
    "current_expires_at",
    "days_to_expiry",
    "credentials",
    "pending_actions",
    "next_action",
    "note",
    "last_event",
    "snoozed_until",
    "snooze_reason",
]


def test_a_registered_principals_row_keeps_its_json_shape() -> None:
    reg, inv = registry("alpha"), inventory(rotated("alpha", superseded=days(2)))
    [status] = status_rows(reg, inv, build_plan(reg, inv, NOW, CONFIG), Naming())
    row = json.loads(json.dumps(status.model_dump(mode="json")))
    assert list(row) == KEYS
    assert row["state"] == "registered" and row["in_registry"] is True
    assert row["current_credential_id"] == "K2"
    assert row["last_event"] == {"kind": "rotated", "at": "2025-05-31T03:00:00+00:00"}
    assert [c["role"] for c in row["credentials"]] == ["previous", "current"]
    assert row["credentials"][0]["created_at"].endswith("+00:00")
    assert row["days_to_expiry"] == 88.0


def test_a_principal_only_in_the_account_is_listed_after_the_registered_ones() -> None:
    reg = registry("alpha")
    inv = inventory(rotated("alpha", superseded=days(2)), rotated("beta", superseded=days(2)))
    rows = status_rows(reg, inv, build_plan(reg, inv, NOW, CONFIG), Naming())
    assert [(r.principal, r.state) for r in rows] == [("alpha", "registered"), ("beta", "offboarding")]
    assert rows[1].current_credential_id is None
    text = render_status(rows, "teams.yaml")
    assert "In the account but not in teams.yaml:" in text
    assert "IAM user tw-beta, secret tokenwarden/beta, 2 key(s)" in text


def _rows() -> list[StatusRow]:
    reg = registry(
        principal("alpha", team="red"), principal("bravo", team="blue"), principal("carol", team="red")
    )
    inv = inventory(*(rotated(p, superseded=days(2)) for p in ("alpha", "bravo", "carol", "delta")))
    return status_rows(reg, inv, build_plan(reg, inv, NOW, CONFIG), Naming())


@pytest.mark.parametrize(
    ("wanted", "kept"),
    [
        (RowFilter.of(), ["alpha", "bravo", "carol", "delta"]),
        (RowFilter.of(principals=["bravo"]), ["bravo"]),
        (RowFilter.of(principals=["bravo", "delta"]), ["bravo", "delta"]),
        (RowFilter.of(teams=["red"]), ["alpha", "carol"]),
        (RowFilter.of(states=["offboarding"]), ["delta"]),
        (RowFilter.of(teams=["red"], states=["offboarding"]), []),
        (RowFilter.of(principals=["alpha", "bravo"], teams=["red"]), ["alpha"]),
        (RowFilter.of(principals=["nobody"]), []),
    ],
)
def test_a_filter_keeps_the_rows_every_given_set_allows_in_their_order(
    wanted: RowFilter, kept: list[str]
) -> None:
    assert [r.principal for r in selected(_rows(), wanted)] == kept
    assert wanted.narrows is (kept != ["alpha", "bravo", "carol", "delta"])


def test_a_filtered_table_says_how_many_of_all_it_shows() -> None:
    rows = _rows()
    text = render_selection(selected(rows, RowFilter.of(teams=["red"])), len(rows))
    assert text.splitlines()[2].startswith("alpha") and text.endswith("2 of 4 principals shown")
    assert (
        render_selection([], len(rows))
        == "no principal matches (0 of 4); `tokenwarden status` lists them all"
    )


def test_every_state_a_row_can_have_is_a_state_the_filter_offers() -> None:
    assert {r.state for r in _rows()} <= set(STATES)
