"""The drift audit: read-only findings about every CloudWatch API key of the account.

It never proposes a change to anything TokenWarden does not manage; it tells a person.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from tokenwarden.domain.model import Credential, Inventory
from tokenwarden.domain.outcomes import Finding
from tokenwarden.domain.plan import MAX_KEYS_PER_USER
from tokenwarden.domain.registry import MAX_KEY_AGE_DAYS, Registry


def audit(registry: Registry, inventory: Inventory, now: datetime) -> tuple[Finding, ...]:
    findings: list[Finding] = []
    managed = [c for inv in inventory.principals.values() for c in inv.credentials]
    every_key = managed + list(inventory.foreign_credentials)
    owner = {c.id: p for p, inv in inventory.principals.items() for c in inv.credentials}

    for cred in sorted(every_key, key=lambda c: (c.user_name, c.created_at)):
        who = owner.get(cred.id)
        if cred.expires_at is None:
            findings.append(
                Finding(
                    principal=who,
                    kind="key_without_expiry",
                    detail=f"{_name(cred)}: IAM reports no expiry and TokenWarden did not make it "
                    "(made without --credential-age-days it never expires; CloudWatch keys may also be "
                    "listed without one)",
                )
            )
        elif cred.expires_at - cred.created_at > timedelta(days=MAX_KEY_AGE_DAYS, hours=1):
            days = (cred.expires_at - cred.created_at).days
            findings.append(
                Finding(
                    principal=who, kind="key_lifetime_over_90_days", detail=f"{_name(cred)} lives {days} days"
                )
            )
    for cred in inventory.foreign_credentials:
        if cred.status == "Active" and (cred.expires_at is None or cred.expires_at > now):
            findings.append(
                Finding(
                    principal=None,
                    kind="key_outside_tokenwarden",
                    detail=f"{_name(cred)} is on a user outside TokenWarden's path (made by hand or by the "
                    "console's Generate API key); nothing rotates or revokes it",
                )
            )
    for name, inv in sorted(inventory.principals.items()):
        if name not in registry.ids and inv.user is not None:
            findings.append(
                Finding(
                    principal=name,
                    kind="managed_user_not_in_registry",
                    detail=f"IAM user {inv.user.name} is on TokenWarden's path but not in the registry "
                    "(offboarding or a registry gap)",
                )
            )
    per_user = Counter(c.user_name for c in every_key)
    for user, count in sorted(per_user.items()):
        if count >= MAX_KEYS_PER_USER:
            findings.append(
                Finding(
                    principal=next(
                        (owner[c.id] for c in every_key if c.user_name == user and c.id in owner), None
                    ),
                    kind="user_at_key_limit",
                    detail=f"IAM user {user} holds {count} of {MAX_KEYS_PER_USER} keys: the next create fails",
                )
            )
    return tuple(findings)


def _name(cred: Credential) -> str:
    expiry = f", expires {cred.expires_at:%Y-%m-%d}" if cred.expires_at else ""
    return f"key {cred.alias} ({cred.id}) of IAM user {cred.user_name}, {cred.status}{expiry}"
