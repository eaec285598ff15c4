"""The drift audit is read-only and names every kind of drift it knows."""

from __future__ import annotations

from tests.unit.builders import NOW, credential, days, healthy, inventory, registry, rotated
from tokenwarden.domain.audit import audit
from tokenwarden.domain.outcomes import Finding


def kinds(findings: tuple[Finding, ...]) -> list[tuple[str, str | None]]:
    return [(f.kind, f.principal) for f in findings]


def test_a_clean_account_has_no_findings() -> None:
    assert audit(registry("alpha", "beta"), inventory(healthy("alpha"), healthy("beta")), NOW) == ()


def test_keys_on_users_outside_the_path_are_reported_with_expiry_problems() -> None:
    forever = credential("F1", "console-user", age_days=None)
    long = credential("L1", "other-user", age_days=365)
    expired = credential("E1", "old-user", created_at=NOW - days(100), age_days=30)
    found = kinds(
        audit(registry("alpha"), inventory(healthy("alpha"), foreign=(forever, long, expired)), NOW)
    )
    assert ("key_without_expiry", None) in found
    assert ("key_lifetime_over_90_days", None) in found
    assert found.count(("key_outside_tokenwarden", None)) == 2  # the expired one is no live risk


def test_managed_users_missing_from_the_registry_and_full_users() -> None:
    found = kinds(
        audit(registry("alpha"), inventory(healthy("alpha"), rotated("ghost", superseded=days(2))), NOW)
    )
    assert ("managed_user_not_in_registry", "ghost") in found
    assert ("user_at_key_limit", "ghost") in found
    assert ("user_at_key_limit", "alpha") not in found
