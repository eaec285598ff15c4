"""A fuzzed corpus of malformed registries: every one is a RegistryError that names the file and,
where there is one, the entry and the field. Nothing else may escape `load_registry`.

DESIGN §2: "A malformed registry is a clear error and no action is taken."
"""

from __future__ import annotations

import copy
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tokenwarden.domain.registry import (
    MAX_FILE_BYTES,
    MAX_NESTING,
    WEEKDAYS,
    Registry,
    RegistryError,
    load_registry,
    parse_registry,
)

SOURCE = "fuzz/teams.yaml"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID: dict[str, Any] = {
    "version": 1,
    "principals": [
        {"id": "alpha", "kind": "team", "owners": ["a@example.com"], "notify": "#alpha"},
        {"id": "beta", "kind": "team", "activity": {"timezone": "Europe/Berlin"}},
        {"id": "dev", "kind": "developer", "team": "alpha", "lifecycle": {"grace_days": 5}},
    ],
}
ENTRY_KEYS = ("id", "kind", "team", "owners", "notify", "activity", "lifecycle")
LIFECYCLE_KEYS = (
    "key_age_days",
    "rotate_before_days",
    "rotation_jitter_days",
    "grace_days",
    "retention_days",
    "untracked_safety_hours",
    "expiry_alert_days",
)
ACTIVITY_KEYS = ("timezone", "working_days", "start", "end", "silent_after_hours")


def dump(document: object) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def outcome(text: str) -> Registry | RegistryError:
    """Parse; anything but a Registry or a RegistryError fails the test with the input attached."""
    try:
        return parse_registry(text, source=SOURCE)
    except RegistryError as exc:
        message = str(exc)
        assert message.startswith(SOURCE + ":"), message
        assert "Traceback (most recent call last)" not in message
        for line in message.splitlines():
            assert len(line) < 600, f"an unreadable line in the message: {line[:200]}..."
        return exc


def rejected(text: str) -> str:
    result = outcome(text)
    assert isinstance(result, RegistryError), f"accepted:\n{text[:2000]}"
    return str(result)


# -- strategies ---------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.dates(),
    st.binary(max_size=8),
)
# Anything YAML can say, nested a few levels.
structures = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=12), st.integers(), st.booleans()), inner, max_size=4),
    ),
    max_leaves=20,
)
not_a_string = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.dates(),
    st.binary(min_size=1, max_size=5),
)
odd_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
    max_size=300,
)
known_zones = sorted(zoneinfo.available_timezones())


def valid_document() -> dict[str, Any]:
    return copy.deepcopy(VALID)


# -- anything at all ---------------------------------------------------------------------------


@FUZZ
@given(structures)
def test_any_yaml_structure_is_a_registry_or_a_registry_error(document: object) -> None:
    outcome(dump(document))


@FUZZ
@given(odd_text)
@example("principals: [{id: a}]\n---\nprincipals: [{id: b}]\n")
@example("principals:\n\t- id: a\n")
@example("{principals: [")
@example("principals: [{id: a}]\n\x85\u2028\u2029")
@example("\ufeffprincipals: [{id: a}]\n")
@example("principals: [{id: !!python/object/apply:os.system [ls]}]\n")
@example("principals: [{id: !!binary aGVsbG8=}]\n")
@example("principals: !!set {a, b}\n")
@example("? [a, b]\n: 1\nprincipals: [{id: a}]\n")
@example("principals: [{id: a, activity: {[1]: 2}}]\n")
def test_any_text_is_a_registry_or_a_registry_error(text: str) -> None:
    outcome(text)


@FUZZ
@given(st.dictionaries(st.sampled_from(["version", "defaults", "principals", "extra"]), structures))
def test_any_top_level_mapping_is_a_registry_or_a_registry_error(document: dict[str, Any]) -> None:
    outcome(dump(document))


@FUZZ
@given(st.lists(st.dictionaries(st.sampled_from(ENTRY_KEYS), structures, max_size=5), max_size=4))
def test_any_list_of_entries_is_a_registry_or_a_registry_error(entries: list[dict[str, Any]]) -> None:
    outcome(dump({"principals": entries}))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
@example(b"principals:\n  - id: caf\xe9\n")
@example(b"\xff\xfep\x00r\x00")  # UTF-16 with a byte-order mark
@example(b"")
@example(b"\x00\x00\x00")
def test_any_bytes_are_a_registry_or_a_registry_error_naming_the_file(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "teams.yaml"
    path.write_bytes(data)
    try:
        load_registry(path)
    except RegistryError as exc:
        assert str(exc).startswith(str(path)), str(exc)


# -- one field broken at a time: the message names the entry and the field ------------------------


@FUZZ
@given(index=st.integers(0, 2), key=st.text(min_size=1, max_size=30), value=structures)
def test_an_unknown_key_in_an_entry_is_named(index: int, key: str, value: object) -> None:
    assume(key not in ENTRY_KEYS)
    document = valid_document()
    document["principals"][index][key] = value
    message = rejected(dump(document))
    assert f"principals[{index}]" in message
    assert "unknown key" in message or "keys must be strings" in message


@FUZZ
@given(
    index=st.integers(0, 2),
    field=st.sampled_from(["id", "team", "notify", "kind"]),
    value=not_a_string,
)
def test_a_wrong_type_names_the_entry_and_the_field(index: int, field: str, value: object) -> None:
    assume(not (field == "notify" and value is None))
    assume(not (field == "team" and value is None and index != 2))
    document = valid_document()
    document["principals"][index][field] = value
    message = rejected(dump(document))
    assert f"principals[{index}]" in message
    assert f"field {field}" in message or (field == "team" and "field team" in message), message


@FUZZ
@given(index=st.integers(0, 2), value=st.one_of(not_a_string, st.lists(not_a_string, min_size=1, max_size=3)))
def test_owners_that_are_not_a_list_of_strings_are_named(index: int, value: object) -> None:
    assume(value != [] and value is not None)
    document = valid_document()
    document["principals"][index]["owners"] = value
    message = rejected(dump(document))
    assert f"principals[{index}]" in message and "field owners" in message


@FUZZ
@given(
    index=st.integers(0, 2),
    field=st.sampled_from(LIFECYCLE_KEYS),
    value=st.one_of(
        st.integers(max_value=-1),
        st.integers(min_value=91 * 24),
        st.floats(allow_nan=True).filter(lambda f: not f.is_integer() if f == f else True),
        st.booleans(),
        st.text(max_size=5),
        st.none(),
        st.lists(st.integers(), max_size=2),
    ),
)
def test_a_bad_lifecycle_value_names_the_lifecycle_field(index: int, field: str, value: object) -> None:
    document = valid_document()
    document["principals"][index]["lifecycle"] = {field: value}
    message = rejected(dump(document))
    assert f"principals[{index}]" in message
    assert f"field lifecycle.{field}" in message, message


@FUZZ
@given(
    overrides=st.fixed_dictionaries(
        {},
        optional={key: st.integers(min_value=0, max_value=120) for key in LIFECYCLE_KEYS},
    )
)
def test_accepted_lifecycles_are_consistent_and_rejected_ones_say_so(overrides: dict[str, int]) -> None:
    document = valid_document()
    document["principals"][1]["lifecycle"] = overrides
    result = outcome(dump(document))
    if isinstance(result, RegistryError):
        assert "principals[1] (id 'beta'), field lifecycle" in str(result), str(result)
        return
    life = result.principals[1].lifecycle
    # What the planner relies on (DESIGN §2 defaults, §3 invariant 3).
    assert 1 <= life.key_age_days <= 90
    assert life.rotate_before_days + life.rotation_jitter_days < life.key_age_days
    assert life.grace_days < life.rotate_before_days
    assert life.grace_days + life.retention_days < (
        life.key_age_days - life.rotate_before_days - life.rotation_jitter_days
    )
    assert life.expiry_alert_days < life.rotate_before_days
    assert life.untracked_safety_hours >= 1


@FUZZ
@given(zone=st.one_of(st.sampled_from(known_zones), odd_text.filter(lambda t: "\x00" not in t)))
@example(zone="Europe/../UTC")
@example(zone="/etc/localtime")
@example(zone="posix")
@example(zone="utc")
@example(zone="Europe/Berlin ")
@example(zone="A" * 5000)
def test_a_time_zone_is_accepted_exactly_when_it_exists(zone: str) -> None:
    document = valid_document()
    document["principals"][1]["activity"] = {"timezone": zone}
    result = outcome(dump(document))
    try:
        zoneinfo.ZoneInfo(zone)
        exists = True
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        exists = False
    if exists:
        assert isinstance(result, Registry), str(result)
    else:
        assert isinstance(result, RegistryError)
        assert "principals[1] (id 'beta'), field activity.timezone" in str(result)
        assert "unknown time zone" in str(result)


@FUZZ
@given(
    field=st.sampled_from(ACTIVITY_KEYS),
    value=st.one_of(not_a_string, st.text(max_size=20), st.lists(st.text(max_size=4), max_size=3)),
)
def test_a_bad_activity_value_names_the_activity_field(field: str, value: object) -> None:
    document = valid_document()
    document["principals"][0]["activity"] = {field: value}
    result = outcome(dump(document))
    if isinstance(result, RegistryError):
        assert "principals[0] (id 'alpha'), field activity" in str(result), str(result)
        return
    # Accepted: then it really is a usable profile.
    profile = result.principals[0].activity
    assert profile.start < profile.end and profile.start.tzinfo is None
    assert profile.working_days and set(profile.working_days) <= set(WEEKDAYS)
    assert 0 < profile.silent_after_hours < float("inf")


@FUZZ
@given(st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True), min_size=1, max_size=6))
def test_duplicate_ids_name_the_repeated_entry(ids: list[str]) -> None:
    entries = [{"id": pid} for pid in [*ids, ids[0]]]
    message = rejected(dump({"principals": entries}))
    assert f"principals[{len(ids)}] (id {ids[0]!r}): duplicate id" in message


@FUZZ
@given(odd_text.filter(lambda t: t != "" and "\x00" not in t))
@example("Platform")
@example("a\u202eb")  # right-to-left override
@example("\U0001f600")
@example("e\u0301quipe")  # combining accent
@example("team\u200b")  # zero-width space
@example("x" * 100_000)
def test_ids_that_are_not_slugs_are_named_and_kept_short(bad_id: str) -> None:
    assume(not yaml_slug(bad_id))
    document = valid_document()
    document["principals"][1]["id"] = bad_id
    message = rejected(dump(document))
    assert "principals[1]" in message and "field id" in message
    assert len(message) < 2000


def yaml_slug(text: str) -> bool:
    from tokenwarden.domain.registry import SLUG

    return SLUG.fullmatch(text) is not None


# -- the corpus of hand-written shapes ----------------------------------------------------------

CORPUS: dict[str, tuple[str, tuple[str, ...]]] = {
    "version true": ("version: true\nprincipals: [{id: a}]\n", ("version",)),
    "version 1.0": ("version: 1.0\nprincipals: [{id: a}]\n", ("version",)),
    "key age true": ("principals: [{id: a, lifecycle: {key_age_days: true}}]\n", ("lifecycle.key_age_days",)),
    "unquoted working hours": (
        "principals: [{id: a, activity: {start: 9:00, end: 18:00}}]\n",
        ("field activity.start", "quoted", "540"),
    ),
    "time with an offset": (
        "principals: [{id: a, activity: {start: '09:00+02:00'}}]\n",
        ("field activity.start", "offset"),
    ),
    "infinite silence": (
        "principals: [{id: a, activity: {silent_after_hours: .inf}}]\n",
        ("activity.silent_after_hours", "finite"),
    ),
    "huge safety age": (
        "principals: [{id: a, lifecycle: {untracked_safety_hours: 100000000000000}}]\n",
        ("lifecycle.untracked_safety_hours",),
    ),
    "binary id": ("principals: [{id: !!binary aGVsbG8=}]\n", ("principals[0], field id",)),
    "date id": ("principals: [{id: 2024-01-01}]\n", ("principals[0] (id 2024-01-01), field id",)),
    "mapping as id": ("principals: [{id: {a: 1}}, {id: {a: 1}}]\n", ("principals[0]", "principals[1]")),
    "list as key": ("? [a, b]\n: 1\nprincipals: [{id: a}]\n", ("line 1", "cannot be a key")),
    "mapping as key in an entry": (
        "principals: [{id: a, activity: {[1]: 2}}]\n",
        ("line 1", "cannot be a key"),
    ),
    "number as key": ("1: 2\nprincipals: [{id: a}]\n", ("key '1'", "strings")),
    "entry is null": ("principals: [null]\n", ("principals[0]", "mapping")),
    "principals is a string": ("principals: everyone\n", ("principals", "must be a list")),
    "principals is a mapping": ("principals: {id: a}\n", ("principals", "must be a list")),
    "lifecycle is a list": ("principals: [{id: a, lifecycle: [1]}]\n", ("field lifecycle", "mapping")),
    "two documents": ("principals: [{id: a}]\n---\nprincipals: [{id: b}]\n", ("line 2", "single document")),
    "tab indentation": ("principals:\n\t- id: a\n", ("line 2, column 1",)),
    "NUL byte": ("principals: [{id: a\x00}]\n", ("line 1, column 20", "#x0000")),
    "python tag": ("principals:\n  - id: !!python/object/apply:os.system [ls]\n", ("line 2", "constructor")),
    "recursive alias": ("principals: &a [*a]\n", ("refers to itself",)),
    "recursive alias in an entry": (
        "principals:\n - &a {id: x, owners: *a}\n",
        ("line 2", "refers to itself"),
    ),
    "merge from a scalar": ("principals: [{<<: 5, id: a}]\n", ("line 1", "merging")),
    "unknown key behind a merge": (
        "principals: [{<<: {colour: red}, id: a}]\n",
        ("principals[0] (id 'a')", "colour"),
    ),
    "deep nesting": ("principals: " + "[" * 5000 + "]" * 5000 + "\n", (f"nested deeper than {MAX_NESTING}",)),
    "deep mapping": (
        "principals: [{id: a, lifecycle: " + "{a: " * 500 + "1" + "}" * 500 + "}]\n",
        ("nested deeper",),
    ),
}


@pytest.mark.parametrize(("text", "fragments"), list(CORPUS.values()), ids=list(CORPUS))
def test_corpus_case_is_named(text: str, fragments: tuple[str, ...]) -> None:
    message = rejected(text)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"


def test_anchors_and_merge_keys_still_work() -> None:
    text = (
        "principals:\n"
        "  - id: alpha\n"
        "    activity: &berlin {timezone: Europe/Berlin, start: '08:00'}\n"
        "  - id: beta\n"
        "    activity: *berlin\n"
        "  - id: gamma\n"
        "    activity: {<<: *berlin, start: '10:00'}\n"
    )
    registry = parse_registry(text, source=SOURCE)
    zones = [p.activity.timezone for p in registry.principals]
    assert zones == ["Europe/Berlin"] * 3
    assert [p.activity.start.hour for p in registry.principals] == [8, 8, 10]


def _bomb(levels: int = 9, width: int = 9) -> list[str]:
    """A "billion laughs": 9**9 strings if anything ever expanded the aliases."""
    lines = [f"  - id: bomb\n    owners: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"    o{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return lines


@pytest.mark.parametrize(
    "use",
    [
        "owners: *a8",
        "notify: *a8",
        "team: *a8",
        "activity: {working_days: *a8}",
        "activity: {timezone: *a8}",
        "lifecycle: {grace_days: *a8}",
        "lifecycle: {colour: *a8}",
    ],
)
def test_an_anchor_explosion_is_refused_without_expanding_it(use: str) -> None:
    text = "principals:\n" + "\n".join(_bomb()) + f"\n  - id: victim\n    kind: developer\n    {use}\n"
    message = rejected(text)
    assert "principals[" in message


def test_a_merge_key_explosion_is_refused_without_expanding_it() -> None:
    lines = ["m0: &m0 {k0: v}"]
    lines += [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}], k{i}: v}}" for i in range(1, 9)]
    message = rejected("\n".join(lines) + "\n<<: *m8\nprincipals: [{id: a}]\n")
    assert "k0: unknown key" in message


def test_a_thousand_problems_are_summarised(tmp_path: Path) -> None:
    entries = [{"id": f"p{i}", "colour": "red"} for i in range(1000)]
    message = rejected(dump({"principals": entries}))
    assert "(1000 problem(s))" in message
    assert "... and 950 more" in message
    assert len(message.splitlines()) < 60


# -- the file itself ------------------------------------------------------------------------------


def test_an_oversized_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "teams.yaml"
    with path.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 10)  # sparse: costs no disk
    with pytest.raises(RegistryError, match="larger than"):
        load_registry(path)


def test_a_directory_is_not_a_registry(tmp_path: Path) -> None:
    with pytest.raises(RegistryError) as info:
        load_registry(tmp_path)
    assert str(tmp_path) in str(info.value) and "cannot read" in str(info.value)


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "teams.yaml"
    path.write_bytes(b"version: 1\nprincipals:\n  - id: caf\xe9\n")
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert str(info.value).startswith(f"{path}: line 3: not UTF-8")


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "---\n", "...\n"])
def test_an_empty_file_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "teams.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RegistryError, match="empty"):
        load_registry(path)
