"""Small builders for the planner's input values (registry, inventory, ledger).

Every datetime is tz-aware UTC. Defaults describe a healthy principal: one Active key that is
AWSCURRENT, recorded in the ledger as CURRENT, with rotation configured as the plan expects.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tokenwarden.domain.model import (
    AWSCURRENT,
    AWSPENDING,
    AWSPREVIOUS,
    Credential,
    Inventory,
    KeyStatus,
    LedgerEntry,
    LedgerState,
    PrincipalInventory,
    SecretState,
    User,
)
from tokenwarden.domain.plan import PlanConfig, rotation_days
from tokenwarden.domain.registry import ActivityProfile, Lifecycle, Principal, Registry

NOW = datetime(2025, 6, 2, 3, 0, tzinfo=UTC)  # a Monday night, when the reconciler runs
ROTATION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:tokenwarden-rotation"
CONFIG = PlanConfig(rotation_lambda_arn=ROTATION_ARN)
DEFAULT_LIFECYCLE = Lifecycle()


def days(n: float) -> timedelta:
    return timedelta(days=n)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def user_name(principal: str) -> str:
    return f"tw-{principal}"


# -- registry ---------------------------------------------------------------------------------


def principal(
    pid: str = "alpha",
    *,
    kind: str = "team",
    team: str | None = None,
    lifecycle: Lifecycle | None = None,
    **lifecycle_overrides: Any,
) -> Principal:
    life = lifecycle or Lifecycle(**lifecycle_overrides)
    return Principal(
        id=pid,
        kind=kind,
        team=team or pid,
        owners=(f"{pid}@example.com",),
        notify=f"#{pid}",
        activity=ActivityProfile(),
        lifecycle=life,
    )


def registry(*principals: Principal | str) -> Registry:
    built = tuple(p if isinstance(p, Principal) else principal(p) for p in principals)
    return Registry(source="teams.yaml", principals=built)


# -- inventory values -------------------------------------------------------------------------


def credential(
    cid: str,
    principal: str = "alpha",
    *,
    status: KeyStatus = "Active",
    created_at: datetime | None = None,
    expires_at: datetime | None = None,
    age_days: int | None = 90,
    alias: str | None = None,
) -> Credential:
    """A key created `created_at` (default 10 days ago) that expires `age_days` later unless given."""
    created = created_at or NOW - days(10)
    if expires_at is None and age_days is not None:
        expires_at = created + days(age_days)
    return Credential(
        id=cid,
        user_name=user_name(principal),
        alias=alias or f"alias-{cid.lower()}",
        status=status,
        created_at=created,
        expires_at=expires_at,
    )


def entry(
    version_id: str,
    state: LedgerState,
    principal: str = "alpha",
    *,
    cred: Credential | None = None,
    created_at: datetime | None = None,
    **fields: Any,
) -> LedgerEntry:
    """A ledger record; with `cred`, it holds that key (id, alias, expiry, creation time)."""
    values: dict[str, Any] = {
        "principal": principal,
        "version_id": version_id,
        "state": state,
        "created_at": created_at or (cred.created_at if cred else NOW - days(10)),
    }
    if cred is not None:
        values.update(credential_id=cred.id, alias=cred.alias, expires_at=cred.expires_at)
    values.update(fields)
    return LedgerEntry(**values)


def secret(
    principal: str = "alpha",
    versions: dict[str, tuple[str, ...]] | None = None,
    *,
    lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
    rotation_enabled: bool = True,
    rotation_days_: int | None = None,
    rotation_lambda_arn: str | None = ROTATION_ARN,
    deleted_at: datetime | None = None,
) -> SecretState:
    """A secret whose rotation is configured exactly as the plan wants it unless told otherwise."""
    return SecretState(
        name=f"tokenwarden/{principal}",
        arn=f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:tokenwarden/{principal}-AbCdEf",
        versions=versions if versions is not None else {"v1": (AWSCURRENT,)},
        rotation_enabled=rotation_enabled,
        rotation_lambda_arn=rotation_lambda_arn,
        rotation_days=rotation_days_ if rotation_days_ is not None else rotation_days(lifecycle),
        deleted_at=deleted_at,
    )


def user(principal: str = "alpha") -> User:
    return User(
        name=user_name(principal),
        path="/tokenwarden/",
        arn=f"arn:aws:iam::123456789012:user/tokenwarden/{user_name(principal)}",
    )


def healthy(
    principal: str = "alpha",
    *,
    age: timedelta = timedelta(days=10),
    expires_in: timedelta | None = None,
    lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
    status: KeyStatus = "Active",
    notified: frozenset[str] = frozenset(),
) -> PrincipalInventory:
    """One current key K1 (version v1) created `age` ago; it expires `expires_in` from NOW
    (default: created + key_age_days)."""
    created = NOW - age
    expires = NOW + expires_in if expires_in is not None else created + days(lifecycle.key_age_days)
    k1 = credential("K1", principal, status=status, created_at=created, expires_at=expires)
    return PrincipalInventory(
        principal=principal,
        user=user(principal),
        credentials=(k1,),
        secret=secret(principal, {"v1": (AWSCURRENT,)}, lifecycle=lifecycle),
        ledger=(
            entry("v1", LedgerState.CURRENT, principal, cred=k1, activated_at=created, notified=notified),
        ),
    )


def rotated(
    principal: str = "alpha",
    *,
    superseded: timedelta,
    previous_status: KeyStatus = "Active",
    previous_state: LedgerState = LedgerState.PREVIOUS,
    deactivated: timedelta | None = None,
    current_expires_in: timedelta | None = None,
    lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
) -> PrincipalInventory:
    """After a rotation `superseded` ago: K2 (v2) is current, K1 (v1) is the previous key,
    optionally deactivated `deactivated` ago."""
    switched = NOW - superseded
    k1 = credential("K1", principal, status=previous_status, created_at=switched - days(76))
    expires = (
        NOW + current_expires_in
        if current_expires_in is not None
        else switched + days(lifecycle.key_age_days)
    )
    k2 = credential("K2", principal, created_at=switched, expires_at=expires)
    previous = entry(
        "v1",
        previous_state,
        principal,
        cred=k1,
        activated_at=k1.created_at,
        superseded_at=switched,
        deactivated_at=NOW - deactivated if deactivated is not None else None,
    )
    current = entry("v2", LedgerState.CURRENT, principal, cred=k2, activated_at=switched)
    return PrincipalInventory(
        principal=principal,
        user=user(principal),
        credentials=(k1, k2),
        secret=secret(principal, {"v1": (AWSPREVIOUS,), "v2": (AWSCURRENT,)}, lifecycle=lifecycle),
        ledger=(previous, current),
    )


def with_key(
    inv: PrincipalInventory,
    cred: Credential,
    ledger_entry: LedgerEntry | None = None,
    *,
    pending: bool = False,
) -> PrincipalInventory:
    """Add a key (and its ledger record); with `pending`, its version carries AWSPENDING."""
    update: dict[str, Any] = {"credentials": (*inv.credentials, cred)}
    if ledger_entry is not None:
        update["ledger"] = (*inv.ledger, ledger_entry)
        if pending:
            update["secret"] = with_stage(inv, ledger_entry.version_id, AWSPENDING).secret
    return inv.model_copy(update=update)


def with_stage(inv: PrincipalInventory, version_id: str, stage: str) -> PrincipalInventory:
    assert inv.secret is not None
    versions = dict(inv.secret.versions)
    versions[version_id] = (*versions.get(version_id, ()), stage)
    return inv.model_copy(update={"secret": inv.secret.model_copy(update={"versions": versions})})


def inventory(*principals: PrincipalInventory, foreign: tuple[Credential, ...] = ()) -> Inventory:
    return Inventory(principals={p.principal: p for p in principals}, foreign_credentials=foreign)
