"""The view models the CLI prints: typed rows built from the registry, the account and the plan.

`tokenwarden status --json` prints these rows as they are; the text table renders the same rows.
Times appear in JSON as ISO-8601 with a `+00:00` offset, as they always have.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer

from tokenwarden.domain.ledger_view import last_event
from tokenwarden.domain.model import Credential, Inventory, LedgerState, PrincipalInventory
from tokenwarden.domain.naming import Naming
from tokenwarden.domain.plan import Plan, PrincipalPlan
from tokenwarden.domain.registry import Registry
from tokenwarden.domain.snooze import Snooze

Time = Annotated[datetime, PlainSerializer(lambda at: at.isoformat(), return_type=str)]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class CredentialRow(_View):
    """One key of a principal, and the part it plays (current, untracked, or its ledger state)."""

    id: str
    alias: str
    status: str
    created_at: Time
    expires_at: Time | None
    role: str


class Scheduled(_View):
    kind: str
    at: Time


class StatusRow(_View):
    """One principal as `tokenwarden status` shows it: registered, or found only in the account."""

    principal: str
    state: str
    in_registry: bool
    team: str | None
    kind: str | None
    secret_id: str | None
    secret_deleted_at: Time | None
    user_name: str | None
    user_exists: bool
    current_credential_id: str | None
    current_alias: str | None
    current_expires_at: Time | None
    days_to_expiry: float | None
    credentials: tuple[CredentialRow, ...]
    pending_actions: tuple[str, ...]
    next_action: Scheduled | None
    note: str | None
    last_event: Scheduled | None
    snoozed_until: Time | None = None
    """When the team's health snooze ends (`tokenwarden health snooze`); None: not snoozed."""
    snooze_reason: str | None = None


# What a status row's `state` can be: registered, or found only in the account (unregistered_state).
STATES = ("registered", "offboarding", "offboarded", "not in registry")


@dataclass(frozen=True)
class RowFilter:
    """Which status rows to show: each given set narrows the rows (empty: no narrowing)."""

    principals: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()
    states: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, principals: Iterable[str] = (), teams: Iterable[str] = (), states: Iterable[str] = ()
    ) -> RowFilter:
        return cls(frozenset(principals), frozenset(teams), frozenset(states))

    @property
    def narrows(self) -> bool:
        return bool(self.principals or self.teams or self.states)

    def keeps(self, row: StatusRow) -> bool:
        return (
            (not self.principals or row.principal in self.principals)
            and (not self.teams or row.team in self.teams)
            and (not self.states or row.state in self.states)
        )


def selected(rows: Sequence[StatusRow], wanted: RowFilter) -> list[StatusRow]:
    """The rows `wanted` keeps, in their order."""
    return [row for row in rows if wanted.keeps(row)]


class Identity(_View):
    """Who a row is about, as far as the registry (or else the account) says."""

    principal: str
    state: str
    team: str | None
    kind: str | None
    secret_id: str | None
    user_name: str | None


def status_rows(registry: Registry, inventory: Inventory, plan: Plan, naming: Naming) -> list[StatusRow]:
    """One row per registered principal, then one per principal found only in the account.

    The account holds principals the registry no longer lists (being offboarded) and users on
    TokenWarden's path that no registry ever listed: an operator looking for a key finds it here.
    """
    rows = [
        status_row(_registered(p.id, p.team, p.kind, naming), inventory.of(p.id), plan)
        for p in registry.principals
    ]
    rows += [
        status_row(_unregistered(name, inv), inv, plan)
        for name, inv in sorted(inventory.principals.items())
        if name not in registry.ids
    ]
    return rows


def _registered(principal: str, team: str, kind: str, naming: Naming) -> Identity:
    return Identity(
        principal=principal,
        state="registered",
        team=team,
        kind=kind,
        secret_id=naming.secret_name(principal),
        user_name=naming.user_name(principal),
    )


def _unregistered(principal: str, inv: PrincipalInventory) -> Identity:
    return Identity(
        principal=principal,
        state=unregistered_state(inv),
        team=None,
        kind=None,
        secret_id=inv.secret.name if inv.secret else None,
        user_name=inv.user.name if inv.user else None,
    )


def unregistered_state(inv: PrincipalInventory) -> str:
    """`offboarding`: TokenWarden managed it (a secret or ledger records) and is taking it down;
    `offboarded`: only records and a secret scheduled for deletion are left; `not in registry`:
    a user on TokenWarden's path that TokenWarden never issued a key to (made by hand, or a gap)."""
    if inv.secret is None and not inv.ledger:
        return "not in registry"
    secret_live = inv.secret is not None and inv.secret.deleted_at is None
    if inv.user is None and not inv.credentials and not secret_live:
        return "offboarded"
    return "offboarding"


def status_row(who: Identity, inv: PrincipalInventory, plan: Plan) -> StatusRow:
    current = inv.current_credential if who.state == "registered" else None
    pplan = plan.for_principal(who.principal)
    expires_at = current.expires_at if current else None
    event = last_event(inv.ledger)
    return StatusRow(
        **who.model_dump(),
        in_registry=who.state == "registered",
        secret_deleted_at=inv.secret.deleted_at if inv.secret else None,
        user_exists=inv.user is not None,
        current_credential_id=current.id if current else None,
        current_alias=current.alias if current else None,
        current_expires_at=expires_at,
        days_to_expiry=_days_between(plan.generated_at, expires_at),
        credentials=tuple(
            credential_row(c, inv, current) for c in sorted(inv.credentials, key=lambda c: c.created_at)
        ),
        pending_actions=tuple(a.kind.value for a in pplan.actions) if pplan else (),
        next_action=_upcoming(pplan),
        note=pplan.note if pplan else None,
        last_event=Scheduled(kind=event.kind, at=event.at) if event else None,
    )


def _days_between(now: datetime, then: datetime | None) -> float | None:
    return round((then - now).total_seconds() / 86400, 1) if then is not None else None


def _upcoming(pplan: PrincipalPlan | None) -> Scheduled | None:
    if pplan is None or pplan.upcoming is None:
        return None
    return Scheduled(kind=pplan.upcoming.kind.value, at=pplan.upcoming.at)


def credential_row(cred: Credential, inv: PrincipalInventory, current: Credential | None) -> CredentialRow:
    return CredentialRow(
        id=cred.id,
        alias=cred.alias,
        status=cred.status,
        created_at=cred.created_at,
        expires_at=cred.expires_at,
        role=credential_role(cred, inv, current),
    )


def credential_role(cred: Credential, inv: PrincipalInventory, current: Credential | None) -> str:
    entry = inv.entry_for_credential(cred.id)
    if current is not None and cred.id == current.id:
        return "current"
    if entry is None:
        return "untracked"
    if entry.reason == "offboarded" and entry.state is LedgerState.RETIRED:
        return "offboarded"
    return entry.state.value


def with_snoozes(rows: Sequence[StatusRow], snoozes: Mapping[str, Snooze]) -> list[StatusRow]:
    """The rows with their team's snooze in force, if any (every principal of a snoozed team)."""
    return [
        row.model_copy(update={"snoozed_until": snooze.until, "snooze_reason": snooze.reason})
        if row.team is not None and (snooze := snoozes.get(row.team)) is not None
        else row
        for row in rows
    ]
