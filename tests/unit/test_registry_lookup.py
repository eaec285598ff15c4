"""`Registry.get`, `ids` and `teams` come from an index built once, not from a scan of the registry
on each call, and stay right for a copy with other principals."""

from __future__ import annotations

from tests.unit.builders import registry


def test_every_principal_is_found_by_its_id_and_no_other() -> None:
    reg = registry("alpha", "beta", "gamma")
    assert [reg.get(p) for p in ("alpha", "beta", "gamma")] == list(reg.principals)
    assert reg.get("delta") is None


def test_a_copy_with_other_principals_finds_its_own() -> None:
    reg = registry("alpha", "beta")
    assert reg.get("beta") is not None
    assert reg.ids == {"alpha", "beta"}
    fewer = reg.model_copy(update={"principals": reg.principals[:1]})
    assert fewer.get("beta") is None
    assert fewer.get("alpha") == reg.principals[0]
    assert fewer.ids == {"alpha"} and fewer.teams == {reg.principals[0].team}


def test_looking_up_leaves_the_registry_equal_to_an_untouched_one() -> None:
    looked_up = registry("alpha", "beta")
    looked_up.get("alpha")
    assert looked_up.teams == {p.team for p in looked_up.principals}
    assert looked_up == registry("alpha", "beta")
    assert looked_up.model_dump() == registry("alpha", "beta").model_dump()
