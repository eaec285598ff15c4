"""`Registry.require`: the registered principal, or an error that says where to look."""

from __future__ import annotations

import pytest

from tests.unit.builders import registry
from tokenwarden.domain.registry import RegistryError


def test_a_registered_principal_is_returned() -> None:
    assert registry("alpha", "beta").require("beta").id == "beta"


def test_an_unknown_principal_names_the_registry_and_what_it_lists() -> None:
    with pytest.raises(RegistryError) as refused:
        registry("alpha", "beta").require("gamma")
    message = str(refused.value)
    assert message.startswith("unknown principal 'gamma': not in teams.yaml (it has: alpha, beta)")
    assert "`tokenwarden status`" in message


def test_a_huge_or_many_listed_principal_is_cut() -> None:
    many = registry(*(f"p{n:02d}" for n in range(30)))
    with pytest.raises(RegistryError) as refused:
        many.require("x" * 10_000)
    message = str(refused.value)
    assert len(message) < 600
    assert "p19, ..." in message and "p20" not in message
