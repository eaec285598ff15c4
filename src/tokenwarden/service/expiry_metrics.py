"""Days to expiry as the dashboard shows them (template.yaml: Dashboard).

Every run that ends with a summary reports the fewest and the most days left on any current key
(`MinDaysToExpiry`, which the reconciler's summary sends for KeyExpiringAlarm, and
`MaxDaysToExpiry` sent here: two metrics, whatever the number of principals). The days
of each principal (`DaysToExpiry`, dimension `principal`) only when the deployment asks for them
(PrincipalMetrics=true): each principal is then a custom metric of its own, billed monthly, which
at thousands of principals costs more than the rest of TokenWarden (docs/routing.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from tokenwarden.domain.model import Inventory
from tokenwarden.domain.registry import Registry
from tokenwarden.observability import count, principal_metric

SECONDS_PER_DAY = 86400


def days_to_expiry(registry: Registry, inventory: Inventory, now: datetime) -> dict[str, float]:
    """Each registered principal's days left on its current key (principals without one, or whose
    key never expires, are left out)."""
    days: dict[str, float] = {}
    for principal in registry.principals:
        current = inventory.of(principal.id).current_credential
        if current is not None and current.expires_at is not None:
            days[principal.id] = round((current.expires_at - now).total_seconds() / SECONDS_PER_DAY, 2)
    return days


def publish_expiry(days: Mapping[str, float], per_principal: bool) -> None:
    """The aggregates always; one metric per principal only when asked for."""
    if not days:
        return
    count("MaxDaysToExpiry", max(days.values()))
    if per_principal:
        for principal, left in sorted(days.items()):
            principal_metric("DaysToExpiry", left, principal)
