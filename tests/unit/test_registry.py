"""The registry: the example loads as documented, and every malformed input is a RegistryError
that names the file, the entry and the field (DESIGN §2 "A malformed registry is a clear error")."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tokenwarden.domain.plan import rotation_due_at
from tokenwarden.domain.registry import (
    Lifecycle,
    Principal,
    Registry,
    RegistryError,
    load_registry,
    parse_registry,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "teams.yaml"
SOURCE = "conf/teams.yaml"

# A small valid registry that each failing case breaks in exactly one place.
VALID: dict[str, Any] = {
    "version": 1,
    "defaults": {"lifecycle": {"key_age_days": 90}},
    "principals": [
        {"id": "alpha", "kind": "team", "owners": ["a@example.com"]},
        {"id": "beta", "kind": "team"},
        {"id": "dev", "kind": "developer", "team": "alpha"},
    ],
}


def document(**top: Any) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    doc.update(top)
    return doc


def with_entry(index: int, **fields: Any) -> dict[str, Any]:
    doc = document()
    doc["principals"][index].update(fields)
    return doc


def rejected(doc: dict[str, Any] | str) -> str:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
    with pytest.raises(RegistryError) as info:
        parse_registry(text, source=SOURCE)
    return str(info.value)


def present(registry: Registry, principal_id: str) -> Principal:
    """The principal the test relies on being in the registry."""
    found = registry.get(principal_id)
    assert found is not None, principal_id
    return found


def assert_names(message: str, *fragments: str) -> None:
    assert message.startswith(SOURCE), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"


# -- the example --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> Registry:
    return load_registry(EXAMPLE)


def test_example_loads_its_four_principals_in_order(example: Registry) -> None:
    assert [p.id for p in example.principals] == ["platform-eng", "data-science", "mobile", "jdoe"]
    assert example.source == str(EXAMPLE)
    assert example.ids == {"platform-eng", "data-science", "mobile", "jdoe"}


def test_example_developer_rolls_up_to_its_team(example: Registry) -> None:
    jdoe = example.get("jdoe")
    assert jdoe is not None
    assert (jdoe.kind, jdoe.team) == ("developer", "platform-eng")
    assert example.teams == {"platform-eng", "data-science", "mobile"}
    # A team's team is itself.
    assert present(example, "mobile").team == "mobile"


def test_example_overrides_apply_only_where_written(example: Registry) -> None:
    mobile = present(example, "mobile").lifecycle
    assert (mobile.key_age_days, mobile.rotate_before_days) == (60, 10)
    # Fields mobile does not override come from the defaults.
    assert (mobile.grace_days, mobile.retention_days, mobile.rotation_jitter_days) == (7, 7, 3)
    for pid in ("platform-eng", "data-science", "jdoe"):
        assert present(example, pid).lifecycle == Lifecycle(), pid
    assert Lifecycle().key_age_days == 90
    assert Lifecycle().rotate_before_days == 14


def test_example_activity_profiles(example: Registry) -> None:
    berlin = present(example, "platform-eng").activity
    assert (berlin.timezone, berlin.start, berlin.end) == ("Europe/Berlin", time(8), time(18))
    new_york = present(example, "data-science").activity
    assert (new_york.timezone, new_york.start, new_york.end) == ("America/New_York", time(9), time(18))
    assert present(example, "mobile").activity.timezone == "UTC"
    assert present(example, "mobile").notify is None
    assert present(example, "platform-eng").notify == "#platform-eng"
    assert present(example, "jdoe").owners == ("jdoe@example.com",)


def test_get_unknown_principal_is_none(example: Registry) -> None:
    assert example.get("nobody") is None


def test_the_minimal_document_is_valid() -> None:
    registry = parse_registry(yaml.safe_dump(VALID), source=SOURCE)
    assert [p.id for p in registry.principals] == ["alpha", "beta", "dev"]
    assert present(registry, "dev").team == "alpha"


def test_boundary_values_are_accepted() -> None:
    doc = with_entry(0, id="a", lifecycle={"key_age_days": 90})
    doc["principals"][1]["id"] = "b" * 48
    doc["principals"][2]["team"] = "a"
    registry = parse_registry(yaml.safe_dump(doc), source=SOURCE)
    assert registry.ids == {"a", "b" * 48, "dev"}


# -- unknown keys -------------------------------------------------------------------------------


def test_unknown_top_level_key() -> None:
    message = rejected(document(principles=[]))
    assert_names(message, "principles", "unknown key")


def test_unknown_key_inside_an_entry() -> None:
    message = rejected(with_entry(1, colour="blue"))
    assert_names(message, "principals[1] (id 'beta')", "field colour", "unknown key")


def test_unknown_key_inside_lifecycle_overrides() -> None:
    message = rejected(with_entry(1, lifecycle={"grace_dayz": 3}))
    assert_names(message, "principals[1] (id 'beta')", "field lifecycle.grace_dayz", "unknown key")


def test_unknown_key_inside_default_lifecycle() -> None:
    doc = document(defaults={"lifecycle": {"grace_dayz": 3}})
    assert_names(rejected(doc), "defaults.lifecycle.grace_dayz", "unknown key")


def test_unknown_key_inside_activity() -> None:
    message = rejected(with_entry(0, activity={"timezone": "UTC", "lunch": "12:00"}))
    assert_names(message, "principals[0] (id 'alpha')", "field activity.lunch", "unknown key")


# -- identity and structure ---------------------------------------------------------------------


def test_duplicate_ids_name_both_entries() -> None:
    doc = document()
    doc["principals"].append({"id": "alpha", "kind": "team"})
    message = rejected(doc)
    assert_names(message, "principals[3] (id 'alpha')", "duplicate id", "principals[0]")


def test_developer_naming_an_unknown_team() -> None:
    message = rejected(with_entry(2, team="ghost"))
    assert_names(message, "principals[2] (id 'dev')", "field team", "'ghost'")


def test_developer_naming_another_developer_as_team() -> None:
    doc = document()
    doc["principals"].append({"id": "dev2", "kind": "developer", "team": "dev"})
    assert_names(rejected(doc), "principals[3] (id 'dev2')", "field team", "'dev'")


def test_developer_without_team_names_the_entry() -> None:
    doc = document()
    del doc["principals"][2]["team"]
    message = rejected(doc)
    assert_names(message, "principals[2] (id 'dev')", "must name its team")


def test_developer_without_team_names_the_field() -> None:
    doc = document()
    del doc["principals"][2]["team"]
    message = rejected(doc)
    assert_names(message, "principals[2] (id 'dev'), field team")


def test_team_whose_team_field_is_another_id() -> None:
    message = rejected(with_entry(1, team="alpha"))
    assert_names(message, "principals[1] (id 'beta')", "must be its own id")


def test_unknown_kind() -> None:
    message = rejected(with_entry(1, kind="robot"))
    assert_names(message, "principals[1] (id 'beta')", "field kind")


@pytest.mark.parametrize(
    "bad_id",
    ["Platform", "-lead", "trail-", "a_b", "with space", "a" * 49, "", "é-team", "a.b"],
)
def test_bad_slug_ids(bad_id: str) -> None:
    message = rejected(with_entry(0, id=bad_id))
    assert_names(message, "principals[0]", "field id", "not a slug")


def test_slug_with_trailing_newline_is_rejected() -> None:
    message = rejected(with_entry(1, id="beta\n"))
    assert_names(message, "principals[1]", "field id", "not a slug")


def test_non_integer_id_is_rejected() -> None:
    assert_names(rejected(with_entry(1, id=42)), "principals[1] (id 42)", "field id")


def test_entry_that_is_not_a_mapping() -> None:
    doc = document()
    doc["principals"][1] = "beta"
    assert_names(rejected(doc), "principals[1]")


def test_wrong_version() -> None:
    assert_names(rejected(document(version=2)), "version")


def test_every_problem_is_reported_at_once() -> None:
    doc = with_entry(0, colour="red")
    doc["principals"][1]["activity"] = {"timezone": "Mars/Olympus"}
    message = rejected(doc)
    assert_names(message, "2 problem(s)", "principals[0] (id 'alpha')", "principals[1] (id 'beta')")


# -- lifecycle bounds -----------------------------------------------------------------------------


@pytest.mark.parametrize("age", [0, 91, -5])
def test_key_age_days_out_of_range_in_an_override(age: int) -> None:
    message = rejected(with_entry(1, lifecycle={"key_age_days": age}))
    assert_names(message, "principals[1] (id 'beta')", "field lifecycle.key_age_days")


@pytest.mark.parametrize("age", [0, 91])
def test_key_age_days_out_of_range_in_defaults(age: int) -> None:
    message = rejected(document(defaults={"lifecycle": {"key_age_days": age}}))
    assert_names(message, "defaults.lifecycle.key_age_days")


def test_wrong_type_in_lifecycle_override() -> None:
    message = rejected(with_entry(1, lifecycle={"grace_days": "a week"}))
    assert_names(message, "principals[1] (id 'beta')", "field lifecycle.grace_days")


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        # The previous key would expire during its grace.
        ({"grace_days": 14}, ("grace_days (14)", "rotate_before_days (14)")),
        ({"grace_days": 20, "rotate_before_days": 14}, ("grace_days (20)",)),
        # Grace + retention would run into the next rotation (30 - 14 - 3 jitter = 13 days later).
        (
            {"key_age_days": 30, "rotate_before_days": 14, "grace_days": 7, "retention_days": 9},
            ("grace_days + retention_days (16)", "as early as 13 days"),
        ),
        # Rotation would be due before the key is even created.
        ({"key_age_days": 16, "rotate_before_days": 14, "rotation_jitter_days": 2}, ("key_age_days (16)",)),
        # The expiry alert would fire before the rotation could prevent it.
        ({"expiry_alert_days": 14}, ("expiry_alert_days (14)",)),
    ],
)
def test_inconsistent_lifecycle_override(overrides: dict[str, int], fragments: tuple[str, ...]) -> None:
    message = rejected(with_entry(1, lifecycle=overrides))
    assert_names(message, "principals[1] (id 'beta')", "field lifecycle", *fragments)


def test_inconsistent_default_lifecycle() -> None:
    message = rejected(document(defaults={"lifecycle": {"grace_days": 14}}))
    assert_names(message, "defaults.lifecycle", "grace_days (14)")


def test_lifecycle_just_inside_the_bounds_is_accepted() -> None:
    life = Lifecycle(
        key_age_days=30, rotate_before_days=14, rotation_jitter_days=0, grace_days=7, retention_days=8
    )
    assert life.grace_days + life.retention_days == 15


def test_grace_and_retention_must_end_before_a_jittered_rotation() -> None:
    overrides: dict[str, Any] = {
        "key_age_days": 30,
        "rotate_before_days": 10,
        "rotation_jitter_days": 3,
        "grace_days": 5,
        "retention_days": 14,
    }
    # Precondition: for some principals the next rotation (key created at t0, due at
    # t0 + 30 - 10 - jitter days) comes before the previous key's deletion at t0 + 5 + 14 days.
    unchecked = Lifecycle.model_construct(**overrides)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    cut_short = [
        pid
        for pid in (f"team-{i}" for i in range(50))
        if rotation_due_at(pid, unchecked, t0 + timedelta(days=30)) < t0 + timedelta(days=19)
    ]
    assert cut_short
    with pytest.raises(ValueError, match="retention"):
        Lifecycle(**overrides)


# -- activity -----------------------------------------------------------------------------------


def test_unknown_time_zone_in_an_entry() -> None:
    message = rejected(with_entry(1, activity={"timezone": "Mars/Olympus"}))
    assert_names(message, "principals[1] (id 'beta')", "field activity.timezone", "'Mars/Olympus'")


@pytest.mark.parametrize("zone", ["America", "../etc/passwd", ""])
def test_zone_like_but_invalid_time_zones(zone: str) -> None:
    message = rejected(with_entry(1, activity={"timezone": zone}))
    assert_names(message, "field activity.timezone", "unknown time zone")


def test_unknown_time_zone_in_defaults() -> None:
    message = rejected(document(defaults={"activity": {"timezone": "Europe/Atlantis"}}))
    assert_names(message, "defaults.activity.timezone", "'Europe/Atlantis'")


@pytest.mark.parametrize(("start", "end"), [("18:00", "09:00"), ("09:00", "09:00")])
def test_end_not_after_start(start: str, end: str) -> None:
    message = rejected(with_entry(0, activity={"start": start, "end": end}))
    assert_names(message, "principals[0] (id 'alpha')", "field activity", "end must be after start")


def test_unknown_weekday() -> None:
    message = rejected(with_entry(0, activity={"working_days": ["mon", "funday"]}))
    assert_names(message, "principals[0] (id 'alpha')", "field activity.working_days", "funday")


def test_no_working_days() -> None:
    message = rejected(with_entry(0, activity={"working_days": []}))
    assert_names(message, "field activity.working_days", "at least one")


def test_activity_override_merges_with_the_defaults() -> None:
    doc = document(
        defaults={
            "activity": {
                "start": "07:00",
                "end": "15:00",
                "working_days": ["mon", "tue"],
                "silent_after_hours": 2,
            }
        }
    )
    doc["principals"][0]["activity"] = {"timezone": "Europe/Berlin"}
    alpha = present(parse_registry(yaml.safe_dump(doc), source=SOURCE), "alpha").activity
    assert alpha.timezone == "Europe/Berlin"
    assert (alpha.start, alpha.end, alpha.working_days, alpha.silent_after_hours) == (
        time(7),
        time(15),
        ("mon", "tue"),
        2,
    )


def test_entries_without_activity_get_the_default_profile() -> None:
    doc = document(defaults={"activity": {"timezone": "Asia/Tokyo", "start": "10:00", "end": "19:00"}})
    beta = present(parse_registry(yaml.safe_dump(doc), source=SOURCE), "beta").activity
    assert (beta.timezone, beta.start, beta.end) == ("Asia/Tokyo", time(10), time(19))


# -- the file itself ------------------------------------------------------------------------------


def test_unparsable_yaml_names_line_and_column() -> None:
    text = "version: 1\nprincipals:\n\t- id: alpha\n"
    message = rejected(text)
    assert_names(message, "line 3, column 1")


def test_unclosed_flow_sequence_names_a_position() -> None:
    message = rejected("principals:\n  - id: alpha\n    owners: [a@example.com\n")
    assert_names(message, "line ", "column ")


def test_control_character_names_its_position() -> None:
    message = rejected("principals:\n  - id: alpha\x07\n")
    assert "::" not in message
    assert_names(message, "#x0007")


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing but a comment\n", "---\n"])
def test_empty_file(text: str) -> None:
    assert_names(rejected(text), "empty")


def test_empty_principals() -> None:
    assert_names(rejected("version: 1\nprincipals: []\n"), "`principals` is empty")


def test_null_principals() -> None:
    assert_names(rejected("version: 1\nprincipals:\n"), "principals")


def test_missing_principals() -> None:
    assert_names(rejected("version: 1\n"), "principals")


def test_top_level_must_be_a_mapping() -> None:
    assert_names(rejected("- id: alpha\n"), "mapping")


def test_duplicate_mapping_keys_are_rejected() -> None:
    text = "version: 1\nprincipals:\n  - id: alpha\nprincipals:\n  - id: beta\n"
    assert_names(rejected(text), "principals", "line 4")


def test_load_registry_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "teams.yaml"
    with pytest.raises(RegistryError) as info:
        load_registry(missing)
    assert str(missing) in str(info.value)
    assert "cannot read" in str(info.value)


def test_load_registry_names_the_path_in_validation_errors(tmp_path: Path) -> None:
    path = tmp_path / "teams.yaml"
    path.write_text(yaml.safe_dump(with_entry(1, colour="blue")), encoding="utf-8")
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert str(info.value).startswith(str(path))
    assert "principals[1] (id 'beta'), field colour" in str(info.value)


def test_load_registry_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "teams.yaml"
    path.write_bytes(b"principals:\n  - id: caf\xe9\n")
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert str(path) in str(info.value)
