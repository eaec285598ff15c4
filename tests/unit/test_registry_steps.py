"""Resolving the registry one step at a time: parsing each entry, duplicate ids, a principal's team,
its policy merged over the defaults, and the principal that results."""

from __future__ import annotations

from typing import Any

import pytest

from tokenwarden.domain.registry import (
    Defaults,
    Lifecycle,
    PrincipalSpec,
    RegistryFile,
    duplicate_ids,
    effective_policy,
    parse_entries,
    resolve_principal,
    team_problem,
)

WHERE = "principals[0] (id 'alpha')"


def spec(pid: str = "alpha", **fields: Any) -> PrincipalSpec:
    return PrincipalSpec.model_validate({"id": pid, **fields})


def test_entries_parse_on_their_own_and_the_broken_ones_are_named() -> None:
    parsed = RegistryFile.model_validate(
        {"principals": [{"id": "alpha"}, {"id": "Beta!"}, {"id": "gamma", "colour": "red"}, {"kind": "team"}]}
    )
    specs, unparsed, problems = parse_entries(parsed)
    assert [(index, s.id) for index, s in specs] == [(0, "alpha")]
    assert unparsed == {"Beta!", "gamma"}  # an entry without an id has nothing to remember
    assert len(problems) == 3
    assert problems[1] == "principals[2] (id 'gamma'), field colour: unknown key"
    assert problems[2] == "principals[3], field id: Field required"


def test_a_duplicate_id_names_the_first_entry_with_it() -> None:
    specs = [(0, spec("alpha")), (1, spec("beta")), (3, spec("alpha")), (4, spec("alpha"))]
    assert duplicate_ids(specs) == [
        "principals[3] (id 'alpha'): duplicate id, first at principals[0]",
        "principals[4] (id 'alpha'): duplicate id, first at principals[0]",
    ]
    assert duplicate_ids(specs[:2]) == []


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (spec("dev", kind="developer"), "a developer must name its team"),
        (spec("alpha", kind="team", team="beta"), "a team's `team`, if given, must be its own id"),
        (spec("dev", kind="developer", team="nobody"), "names unknown team 'nobody'"),
        (spec("dev", kind="developer", team="alpha"), None),
        (spec("dev", kind="developer", team="broken"), None),  # its team failed to parse: said there
        (spec("alpha", kind="team", team="alpha"), None),
        (spec("alpha"), None),
    ],
)
def test_a_principals_team(entry: PrincipalSpec, problem: str | None) -> None:
    assert team_problem(entry, teams={"alpha"}, unparsed={"broken"}) == problem


def test_the_policy_is_merged_field_by_field_over_the_defaults() -> None:
    defaults = Defaults(lifecycle=Lifecycle(key_age_days=60))
    policy, problems = effective_policy(WHERE, spec(lifecycle={"grace_days": 3}), defaults)
    assert problems == [] and policy is not None
    lifecycle, activity, readers = policy
    assert (lifecycle.key_age_days, lifecycle.grace_days) == (60, 3)
    assert activity == defaults.activity and readers == defaults.readers


@pytest.mark.parametrize(
    ("section", "value", "field"),
    [
        ("lifecycle", {"key_age_days": 0}, "lifecycle.key_age_days"),
        ("activity", {"timezone": "Mars/Olympus"}, "activity.timezone"),
        ("readers", {"team_tag": "yes"}, "readers.team_tag"),
    ],
)
def test_an_invalid_section_is_named_with_its_field(section: str, value: dict[str, Any], field: str) -> None:
    fields: dict[str, Any] = {section: value}
    policy, problems = effective_policy(WHERE, spec(**fields), Defaults())
    assert policy is None
    assert [p.split(":")[0] for p in problems] == [f"{WHERE}, field {field}"]


def test_the_first_invalid_section_stops_the_entry() -> None:
    both = spec(lifecycle={"key_age_days": 0}, activity={"timezone": "Mars/Olympus"})
    _, problems = effective_policy(WHERE, both, Defaults())
    assert all("lifecycle." in p for p in problems)


def test_a_principal_takes_its_own_id_as_team_and_the_merged_policy() -> None:
    principal, problems = resolve_principal(0, spec(owners=["a@example.com"]), Defaults(), {"alpha"}, set())
    assert problems == [] and principal is not None
    assert (principal.id, principal.kind, principal.team, principal.owners) == (
        "alpha",
        "team",
        "alpha",
        ("a@example.com",),
    )
    assert principal.lifecycle == Defaults().lifecycle


def test_a_principal_with_a_wrong_team_is_not_judged_further() -> None:
    broken = spec("dev", kind="developer", team="nobody", lifecycle={"key_age_days": 0})
    principal, problems = resolve_principal(2, broken, Defaults(), {"alpha"}, set())
    assert principal is None
    assert problems == ["principals[2] (id 'dev'), field team: names unknown team 'nobody'"]
