"""In-memory fakes of the ports (tokenwarden/ports.py), as harsh as AWS where the contract says so.

IAM keeps two CloudWatch keys per user and turns a key Expired at its expiry; Secrets Manager
keeps each staging label on one version, makes the first version written AWSCURRENT whatever it
was asked, refuses a rotation while another is unfinished and refuses to store into a secret that
is not TokenWarden's; the ledger writes conditionally, as DynamoDB does, and its transactions are
all or nothing. AWS's refusals are the adapters' own errors (tokenwarden/errors.py).

Every fake can be told to fail a call (`fail`), to try the branches a real AWS takes rarely.
The `_: Port = Fake()` lines at the end make mypy hold each fake to its port.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tokenwarden import ports
from tokenwarden.adapters.secrets import SecretWriteError
from tokenwarden.domain.model import (
    AWSCURRENT,
    AWSPENDING,
    AWSPREVIOUS,
    Credential,
    IssuedCredential,
    KeyStatus,
    LedgerEntry,
    SecretState,
    User,
)
from tokenwarden.domain.naming import Naming
from tokenwarden.domain.notifications import Notification
from tokenwarden.domain.ownership import (
    MANAGED_TAG,
    MANAGED_VALUE,
    PRINCIPAL_TAG,
    TEAM_TAG,
    NotTokenWardens,
    OwnershipRules,
    Readers,
    SecretFacts,
    UserFacts,
    judge_secret,
    refusal,
)
from tokenwarden.domain.promql import MAX_SERIES, Dialect, PromQLQuerier, QueryResult, TeamSample
from tokenwarden.domain.snooze import SnoozeRecord
from tokenwarden.errors import AwsError
from tokenwarden.service.breakglass import BreakGlass, BreakGlassLedger
from tokenwarden.service.health import HealthChecker, HealthStore
from tokenwarden.service.lease import Leases
from tokenwarden.service.ownership import Custody
from tokenwarden.service.reconciler import Reconciler
from tokenwarden.service.rotation import RotationEngine
from tokenwarden.service.snooze import SnoozeLog

ACCOUNT = "123456789012"
REGION = "eu-west-1"
API_KEY_POLICY = "arn:aws:iam::aws:policy/CloudWatchAPIKeyAccess"
KEYS_PER_USER = 2  # IAM's quota of service-specific credentials per user and service


class FakeClock:
    """Time that moves only when told (or when the code under test waits)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class Faults:
    """Failures to raise on chosen calls: `fail("create_credential", AwsError(...))` fails the next one."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._failures: dict[str, list[Exception]] = {}

    def fail(self, operation: str, error: Exception, times: int = 1) -> None:
        self._failures.setdefault(operation, []).extend([error] * times)

    def _call(self, operation: str) -> None:
        self.calls.append(operation)
        pending = self._failures.get(operation)
        if pending:
            raise pending.pop(0)

    def count(self, operation: str) -> int:
        return self.calls.count(operation)


# -- IAM ----------------------------------------------------------------------------------------


@dataclass
class FakeUser:
    name: str
    path: str
    tags: dict[str, str]
    attached_policies: list[str] = field(default_factory=list)
    inline_policies: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    access_keys: int = 0
    login_profile: bool = False
    permissions_boundary: str | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:user{self.path}{self.name}"


@dataclass
class FakeKey:
    id: str
    user_name: str
    alias: str
    token: str
    created_at: datetime
    expires_at: datetime
    status: KeyStatus = "Active"


class FakeIam(Faults):
    """IAM's users and CloudWatch keys. `lists_expiry`: whether listings carry ExpirationDate
    (IAM may leave it out for CloudWatch keys)."""

    def __init__(self, clock: FakeClock, caller_arn: str = f"arn:aws:iam::{ACCOUNT}:role/operator") -> None:
        super().__init__()
        self.clock = clock
        self.caller_arn = caller_arn
        self.users: dict[str, FakeUser] = {}
        self.keys: dict[str, FakeKey] = {}
        self.lists_expiry = True
        # Tokens to hand out before made-up ones (a malformed one, say).
        self.tokens: list[str] = []
        self._ids = itertools.count(1)

    # -- what the tests arrange and read ---------------------------------------------------

    def add_user(self, name: str, path: str = "/tokenwarden/", **facts: Any) -> FakeUser:
        user = FakeUser(name=name, path=path, tags=dict(facts.pop("tags", {})), **facts)
        self.users[name] = user
        return user

    def key(self, credential_id: str) -> FakeKey:
        return self.keys[credential_id]

    def keys_of(self, user_name: str) -> list[FakeKey]:
        self._expire()
        return [k for k in self.keys.values() if k.user_name == user_name]

    def accepts(self, token: str) -> bool:
        """Whether the OTLP endpoint would take this token now: an Active, unexpired key."""
        self._expire()
        return any(k.token == token and k.status == "Active" for k in self.keys.values())

    def _expire(self) -> None:
        for key in self.keys.values():
            if key.expires_at <= self.clock.now():
                key.status = "Expired"

    def _user(self, operation: str, name: str) -> FakeUser:
        user = self.users.get(name)
        if user is None:
            raise AwsError(operation, "NoSuchEntity", f"The user with name {name} cannot be found.", 404)
        return user

    def _credential(self, key: FakeKey) -> Credential:
        return Credential(
            id=key.id,
            user_name=key.user_name,
            alias=key.alias,
            status=key.status,
            created_at=key.created_at,
            expires_at=key.expires_at if self.lists_expiry else None,
        )

    # -- the port ---------------------------------------------------------------------------

    def list_users(self, path: str) -> list[User]:
        self._call("list_users")
        return [
            User(name=u.name, path=u.path, arn=u.arn) for u in self.users.values() if u.path.startswith(path)
        ]

    def get_user(self, name: str) -> User | None:
        self._call("get_user")
        user = self.users.get(name)
        return User(name=user.name, path=user.path, arn=user.arn) if user else None

    def list_all_credentials(self) -> list[Credential]:
        self._call("list_all_credentials")
        self._expire()
        return [self._credential(k) for k in self.keys.values()]

    def list_user_credentials(self, user_name: str) -> list[Credential]:
        self._call("list_user_credentials")
        return [self._credential(k) for k in self.keys_of(user_name)]

    def create_user(
        self, name: str, path: str, tags: Mapping[str, str], permissions_boundary: str | None
    ) -> bool:
        self._call("create_user")
        if name in self.users:
            return False
        self.add_user(name, path, tags=dict(tags), permissions_boundary=permissions_boundary)
        return True

    def inspect_user(self, name: str) -> UserFacts | None:
        self._call("inspect_user")
        user = self.users.get(name)
        if user is None:
            return None
        return UserFacts(
            name=user.name,
            path=user.path,
            arn=user.arn,
            tags=dict(user.tags),
            attached_policies=tuple(user.attached_policies),
            inline_policies=user.inline_policies,
            groups=user.groups,
            access_keys=user.access_keys,
            login_profile=user.login_profile,
            permissions_boundary=user.permissions_boundary,
        )

    def attach_api_key_policy(self, user_name: str) -> None:
        self._call("attach_api_key_policy")
        user = self._user("AttachUserPolicy", user_name)
        if API_KEY_POLICY not in user.attached_policies:
            user.attached_policies.append(API_KEY_POLICY)

    def put_boundary(self, user_name: str, boundary_arn: str) -> None:
        self._call("put_boundary")
        self._user("PutUserPermissionsBoundary", user_name).permissions_boundary = boundary_arn

    def tag_user(self, user_name: str, tags: Mapping[str, str]) -> None:
        self._call("tag_user")
        self._user("TagUser", user_name).tags.update(tags)

    def create_credential(self, user_name: str, age_days: int) -> IssuedCredential:
        self._call("create_credential")
        if not 1 <= age_days <= 36600:
            raise ValueError(f"credential age {age_days} is outside 1-36600 days")
        self._user("CreateServiceSpecificCredential", user_name)
        if len(self.keys_of(user_name)) >= KEYS_PER_USER:
            raise AwsError(
                "CreateServiceSpecificCredential",
                "LimitExceeded",
                f"Cannot exceed quota for ServiceSpecificCredentialsPerUserPerService: {KEYS_PER_USER}",
                409,
            )
        number = next(self._ids)
        now = self.clock.now()
        key = FakeKey(
            id=f"ACCA{number:017d}",
            user_name=user_name,
            alias=f"{user_name}-at-{number}",
            token=self.tokens.pop(0)
            if self.tokens
            else f"cw-token-{number:04d}-{user_name}-0123456789abcdefghij",
            created_at=now,
            expires_at=now + timedelta(days=age_days),
        )
        self.keys[key.id] = key
        return IssuedCredential(credential=self._credential(key), token=key.token)

    def set_credential_status(self, user_name: str, credential_id: str, active: bool) -> None:
        self._call("set_credential_status")
        key = self.keys.get(credential_id)
        if key is None or key.user_name != user_name:
            raise AwsError("UpdateServiceSpecificCredential", "NoSuchEntity", "No such credential", 404)
        self._expire()
        if key.status == "Expired":
            raise AwsError(
                "UpdateServiceSpecificCredential", "InvalidInput", "The credential has expired", 400
            )
        key.status = "Active" if active else "Inactive"

    def delete_credential(self, user_name: str, credential_id: str) -> bool:
        self._call("delete_credential")
        key = self.keys.get(credential_id)
        if key is None or key.user_name != user_name:
            return False
        del self.keys[credential_id]
        return True

    def delete_user(self, user_name: str) -> bool:
        self._call("delete_user")
        user = self.users.get(user_name)
        if user is None:
            return False
        if API_KEY_POLICY in user.attached_policies:
            user.attached_policies.remove(API_KEY_POLICY)
        if self.keys_of(user_name) or user.attached_policies:
            raise AwsError(
                "DeleteUser",
                "DeleteConflict",
                "Cannot delete entity, must remove referenced objects first.",
                409,
            )
        del self.users[user_name]
        return True

    def caller(self) -> str:
        self._call("caller")
        return self.caller_arn


# -- Secrets Manager ----------------------------------------------------------------------------


@dataclass
class FakeSecret:
    name: str
    arn: str
    kms_key_id: str | None
    tags: dict[str, str]
    # version id -> (its staging labels, its value or None)
    stages: dict[str, set[str]] = field(default_factory=dict)
    values: dict[str, str | None] = field(default_factory=dict)
    rotation_enabled: bool = False
    rotation_lambda_arn: str | None = None
    rotation_days: int | None = None
    deleted_at: datetime | None = None
    policy: dict[str, Any] | None = None

    def version_with(self, stage: str) -> str | None:
        return next((v for v, stages in self.stages.items() if stage in stages), None)

    def label(self, stage: str, version: str) -> None:
        """Attach `stage` to `version`, taking it off whichever version had it (labels are unique)."""
        for stages in self.stages.values():
            stages.discard(stage)
        self.stages.setdefault(version, set()).add(stage)


class FakeSecrets(Faults):
    """Secrets Manager's secrets. With `rules`, nothing is written into a secret that is not
    TokenWarden's, as the adapter refuses. `on_rotate(arn, version)` stands for the rotation
    function Secrets Manager invokes in the background after RotateSecret."""

    def __init__(self, clock: FakeClock, rules: OwnershipRules | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.rules = rules
        self.secrets: dict[str, FakeSecret] = {}
        self.on_rotate: Callable[[str, str], None] | None = None

    # -- what the tests arrange and read ---------------------------------------------------

    def add(
        self, name: str, kms_key_id: str | None = None, tags: Mapping[str, str] | None = None
    ) -> FakeSecret:
        secret = FakeSecret(
            name=name,
            arn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf",
            kms_key_id=kms_key_id,
            tags=dict(tags or {}),
        )
        self.secrets[name] = secret
        return secret

    def secret(self, secret_id: str) -> FakeSecret:
        return self._find("DescribeSecret", secret_id)

    def value(self, secret_id: str, stage: str = AWSCURRENT) -> str | None:
        secret = self.secret(secret_id)
        version = secret.version_with(stage)
        return secret.values.get(version) if version else None

    def _lookup(self, secret_id: str) -> FakeSecret | None:
        return self.secrets.get(secret_id) or next(
            (s for s in self.secrets.values() if s.arn == secret_id), None
        )

    def _find(self, operation: str, secret_id: str) -> FakeSecret:
        secret = self._lookup(secret_id)
        if secret is None:
            raise AwsError(
                operation,
                "ResourceNotFoundException",
                "Secrets Manager can't find the specified secret.",
                400,
            )
        return secret

    def _live(self, operation: str, secret_id: str) -> FakeSecret:
        secret = self._find(operation, secret_id)
        if secret.deleted_at is not None:
            raise AwsError(
                operation,
                "InvalidRequestException",
                "You can't perform this operation on a secret marked for deletion.",
                400,
            )
        return secret

    def _state(self, secret: FakeSecret) -> SecretState:
        return SecretState(
            name=secret.name,
            arn=secret.arn,
            versions={v: tuple(sorted(s)) for v, s in secret.stages.items()},
            rotation_enabled=secret.rotation_enabled,
            rotation_lambda_arn=secret.rotation_lambda_arn,
            rotation_days=secret.rotation_days,
            deleted_at=secret.deleted_at,
            kms_key_id=secret.kms_key_id,
            tags=dict(secret.tags),
        )

    # -- the port ---------------------------------------------------------------------------

    def list_secrets(self, prefix: str) -> list[SecretState]:
        self._call("list_secrets")
        return [self._state(s) for s in self.secrets.values() if s.name.startswith(prefix)]

    def describe(self, secret_id: str) -> SecretState | None:
        self._call("describe")
        secret = self._lookup(secret_id)
        return self._state(secret) if secret else None

    def tags(self, secret_id: str) -> dict[str, str]:
        self._call("tags")
        secret = self._lookup(secret_id)
        return dict(secret.tags) if secret else {}

    def inspect(self, secret_id: str, described: SecretState | None = None) -> SecretFacts | None:
        self._call("inspect")
        secret = self._lookup(secret_id)
        if secret is None:
            return None
        readable = secret.deleted_at is None
        known = described or self._state(secret)
        return SecretFacts(
            name=known.name,
            arn=known.arn,
            kms_key_id=known.kms_key_id,
            tags=dict(known.tags),
            has_versions=bool(known.versions),
            deleted=known.deleted_at is not None,
            policy=secret.policy if readable else None,
            policy_read=readable,
        )

    def create(self, name: str, tags: Mapping[str, str], kms_key_id: str, description: str) -> str | None:
        self._call("create")
        existing = self.secrets.get(name)
        if existing is not None and existing.deleted_at is not None:
            raise AwsError(
                "CreateSecret",
                "InvalidRequestException",
                "A secret with this name is already scheduled for deletion.",
                400,
            )
        if existing is not None:
            return None
        return self.add(name, kms_key_id or None, tags).arn

    def put_policy(self, secret_id: str, document: Mapping[str, Any]) -> None:
        self._call("put_policy")
        self._live("PutResourcePolicy", secret_id).policy = dict(document)

    def rekey(self, secret_id: str, kms_key_id: str) -> None:
        self._call("rekey")
        self._live("UpdateSecret", secret_id).kms_key_id = kms_key_id

    def restore(self, secret_id: str) -> None:
        self._call("restore")
        self._find("RestoreSecret", secret_id).deleted_at = None

    def tag(self, secret_id: str, tags: Mapping[str, str]) -> None:
        self._call("tag")
        self._find("TagResource", secret_id).tags.update(tags)

    def verify_owned(
        self, secret_id: str, principal: str | None = None, described: SecretState | None = None
    ) -> None:
        self._call("verify_owned")
        if self.rules is None:
            return
        self.rules.require()
        facts = self.inspect(secret_id, described)
        if facts is None:
            raise NotTokenWardens(f"secret {secret_id} does not exist")
        verdict = judge_secret(facts, principal, self.rules, wanted_policy=None, history=False)
        if not verdict.ours:
            raise NotTokenWardens(refusal("secret", facts.name, verdict))

    def version_token(self, secret_id: str, version_id: str) -> str | None:
        self._call("version_token")
        secret = self._lookup(secret_id)
        return secret.values.get(version_id) if secret else None

    def put_pending(self, secret_id: str, version_id: str, token: str) -> None:
        try:
            self.verify_owned(secret_id)
        except NotTokenWardens as exc:
            raise SecretWriteError(f"refusing to store version {version_id}: {exc}") from None
        self._call("put_pending")
        secret = self._live("PutSecretValue", secret_id)
        stored = secret.values.get(version_id)
        if stored is not None and stored != token:
            raise AwsError(
                "PutSecretValue", "ResourceExistsException", "A version with this token exists.", 400
            )
        first = (
            not any(v is not None for v in secret.values.values()) and secret.version_with(AWSCURRENT) is None
        )
        secret.values[version_id] = token
        secret.label(AWSPENDING, version_id)
        if first:  # Secrets Manager makes a secret's first version AWSCURRENT, whatever it was asked
            secret.label(AWSCURRENT, version_id)

    def move_stage(self, secret_id: str, stage: str, to_version: str, from_version: str | None) -> None:
        self._call("move_stage")
        secret = self._live("UpdateSecretVersionStage", secret_id)
        if to_version not in secret.stages:
            raise AwsError("UpdateSecretVersionStage", "ResourceNotFoundException", "No such version.", 400)
        holder = secret.version_with(stage)
        if holder is not None and holder != to_version and holder != from_version:
            raise AwsError(
                "UpdateSecretVersionStage",
                "InvalidParameterException",
                f"The parameter RemoveFromVersionId can't be empty: {stage} is attached to another version.",
                400,
            )
        if from_version is not None and stage not in secret.stages.get(from_version, set()):
            raise AwsError(
                "UpdateSecretVersionStage", "InvalidParameterException", "Stage not on that version.", 400
            )
        secret.label(stage, to_version)
        if stage == AWSCURRENT and holder is not None and holder != to_version:
            secret.label(AWSPREVIOUS, holder)  # as Secrets Manager does when AWSCURRENT moves

    def remove_stage(self, secret_id: str, stage: str, from_version: str) -> None:
        self._call("remove_stage")
        secret = self._live("UpdateSecretVersionStage", secret_id)
        if stage == AWSCURRENT and stage in secret.stages.get(from_version, set()):
            raise AwsError(
                "UpdateSecretVersionStage",
                "InvalidParameterException",
                "You can't remove AWSCURRENT; move it.",
                400,
            )
        secret.stages.get(from_version, set()).discard(stage)

    def configure_rotation(self, secret_id: str, lambda_arn: str, days: int) -> None:
        self._call("configure_rotation")
        secret = self._live("RotateSecret", secret_id)
        secret.rotation_enabled, secret.rotation_lambda_arn, secret.rotation_days = True, lambda_arn, days

    def rotate(self, secret_id: str, version_id: str, lambda_arn: str | None, days: int) -> None:
        self._call("rotate")
        secret = self._live("RotateSecret", secret_id)
        pending = secret.version_with(AWSPENDING)
        if pending is not None and AWSCURRENT not in secret.stages[pending]:
            raise AwsError(
                "RotateSecret",
                "InvalidRequestException",
                "A previous rotation isn't complete. That rotation will be reattempted.",
                400,
            )
        if lambda_arn:
            secret.rotation_enabled, secret.rotation_lambda_arn, secret.rotation_days = True, lambda_arn, days
        if not secret.rotation_enabled:
            raise AwsError(
                "RotateSecret",
                "InvalidRequestException",
                "No Lambda rotation function ARN is associated.",
                400,
            )
        secret.values.setdefault(version_id, None)
        secret.label(AWSPENDING, version_id)
        if self.on_rotate is not None:
            self.on_rotate(secret.arn, version_id)

    def schedule_deletion(self, secret_id: str, recovery_days: int) -> None:
        self._call("schedule_deletion")
        secret = self._lookup(secret_id)
        if secret is None:
            return
        if secret.deleted_at is not None:
            raise AwsError(
                "DeleteSecret",
                "InvalidRequestException",
                "The secret is already scheduled for deletion.",
                400,
            )
        secret.deleted_at = self.clock.now()


# -- the ledger ---------------------------------------------------------------------------------

MAX_TRANSACTION_ITEMS = 100


class FakeLedger(Faults):
    """The ledger table: key records, the append-only history and the per-principal leases, with
    DynamoDB's conditional writes (lease expiry compared in whole seconds, as stored)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[tuple[str, str], LedgerEntry] = {}
        self.history_records: dict[tuple[str, str], dict[str, Any]] = {}
        self.leases: dict[str, tuple[str, int]] = {}

    def scan(self) -> list[LedgerEntry]:
        self._call("scan")
        return list(self.records.values())

    def entries(self, principal: str) -> list[LedgerEntry]:
        self._call("entries")
        return [e for (p, _), e in sorted(self.records.items()) if p == principal]

    def get(self, principal: str, version_id: str) -> LedgerEntry | None:
        self._call("get")
        return self.records.get((principal, version_id))

    def create(self, entry: LedgerEntry) -> LedgerEntry:
        self._call("create")
        return self.records.setdefault((entry.principal, entry.version_id), entry)

    def save(self, entry: LedgerEntry) -> None:
        self._call("save")
        self.records[(entry.principal, entry.version_id)] = entry

    def save_all(self, entries: list[LedgerEntry]) -> None:
        self._call("save_all")
        keys = [(e.principal, e.version_id) for e in entries]
        if len(set(keys)) != len(keys) or len(keys) > MAX_TRANSACTION_ITEMS:
            raise AwsError(
                "TransactWriteItems",
                "ValidationException",
                "Transaction request cannot include multiple operations on one item",
                400,
            )
        for key, entry in zip(keys, entries, strict=True):
            self.records[key] = entry

    def append_history(self, principal: str, key: str, record: Mapping[str, Any]) -> bool:
        self._call("append_history")
        stored = self.history_records.setdefault((principal, key), dict(record))
        return stored == dict(record)

    def append_history_and_save(
        self, principal: str, key: str, record: Mapping[str, Any], entry: LedgerEntry
    ) -> bool:
        self._call("append_history_and_save")
        if (principal, key) in self.history_records:
            return self.history_records[principal, key] == dict(record)
        self.history_records[principal, key] = dict(record)
        self.records[entry.principal, entry.version_id] = entry
        return True

    def history(self, principal: str) -> list[dict[str, Any]]:
        self._call("history")
        return [dict(r) for (p, _), r in sorted(self.history_records.items()) if p == principal]

    def acquire(self, principal: str, owner: str, now: datetime, ttl_seconds: int) -> bool:
        return self._put_lease("acquire", principal, owner, owner, now, ttl_seconds)

    def hand_over(self, principal: str, owner: str, to_owner: str, now: datetime, ttl_seconds: int) -> bool:
        return self._put_lease("hand_over", principal, owner, to_owner, now, ttl_seconds)

    def keep(self, principal: str, owner: str, now: datetime, ttl_seconds: int) -> bool:
        self._call("keep")
        held, expires = self.leases.get(principal, ("", 0))
        seconds = int(now.timestamp())
        if held != owner or expires < seconds:
            return False
        self.leases[principal] = (owner, seconds + ttl_seconds)
        return True

    def _put_lease(
        self, operation: str, principal: str, holder: str, new_owner: str, now: datetime, ttl_seconds: int
    ) -> bool:
        self._call(operation)
        current = self.leases.get(principal)
        seconds = int(now.timestamp())
        if current is not None and current[1] >= seconds and current[0] not in (holder, new_owner):
            return False
        self.leases[principal] = (new_owner, seconds + ttl_seconds)
        return True

    def release(self, principal: str, owner: str) -> None:
        self._call("release")
        if self.leases.get(principal, ("", 0))[0] == owner:
            self.leases[principal] = ("", 0)

    def holder(self, principal: str) -> str:
        """Who holds the principal's lease ("" when nobody ever did or it was let go)."""
        return self.leases.get(principal, ("", 0))[0]


# -- notifications, the probe, the health store, PromQL ----------------------------------------


class FakeNotifier(Faults):
    def __init__(self) -> None:
        super().__init__()
        self.published: list[Notification] = []

    def publish(self, notification: Notification) -> None:
        self._call("publish")
        self.published.append(notification)

    def events(self) -> list[str]:
        return [n.event_type.value for n in self.published]


class FakeProbe:
    """The OTLP endpoint: 200 for a token IAM would accept now, 401 otherwise. `answers` are
    given first, one per check (propagation delay, throttling)."""

    def __init__(self, iam: FakeIam, *answers: int) -> None:
        self.iam = iam
        self.answers = list(answers)
        self.checked = 0

    def check(self, token: str) -> int:
        self.checked += 1
        if self.answers:
            return self.answers.pop(0)
        return 200 if self.iam.accepts(token) else 401


class FakeHealthStore:
    def __init__(self, records: dict[str, dict[str, Any]] | None = None) -> None:
        self.records = dict(records or {})
        self.saves = 0

    def load(self) -> dict[str, dict[str, Any]]:
        return {team: dict(record) for team, record in self.records.items()}

    def save(self, records: dict[str, dict[str, Any]]) -> None:
        self.saves += 1
        self.records = {team: dict(record) for team, record in records.items()}


class FakeSnoozeLog:
    """Snooze records in memory; like the ledger, a record is written once under its team and time."""

    def __init__(self) -> None:
        self.written: list[SnoozeRecord] = []
        self.reads = 0

    def append(self, record: SnoozeRecord) -> bool:
        if any(r.team == record.team and r.at == record.at for r in self.written):
            return record in self.written
        self.written.append(record)
        return True

    def records(self) -> list[SnoozeRecord]:
        self.reads += 1
        return sorted(self.written, key=lambda r: (r.team, r.at))


class FakePromQL:
    """Answers a last-sample query with each team's newest sample time: from `by_metric` for a query
    naming that metric, else from `last_seen`; `unattributed` is a series without a team label.

    Like CloudWatch, it applies the query's team matcher (read from the query text and run as a
    regular expression, fully anchored) and answers at most `max_series` series, with a warning when
    it cut the rest."""

    def __init__(
        self,
        last_seen: Mapping[str, datetime] | None = None,
        by_metric: Mapping[str, Mapping[str, datetime]] | None = None,
        *,
        unattributed: datetime | None = None,
        max_series: int = MAX_SERIES,
    ) -> None:
        self.last_seen = dict(last_seen or {})
        self.by_metric = {metric: dict(seen) for metric, seen in (by_metric or {}).items()}
        self.unattributed = unattributed
        self.max_series = max_series
        self.queries: list[tuple[str, datetime | None]] = []

    def query(self, query: str, *, time: datetime | None = None) -> QueryResult:
        self.queries.append((query, time))
        at = time or datetime.now(UTC)
        teams = next((s for metric, s in self.by_metric.items() if metric in query), self.last_seen)
        seen: list[tuple[str | None, datetime]] = list(teams.items())
        if self.unattributed is not None:
            seen.append((None, self.unattributed))
        selected = [(team, when) for team, when in seen if _team_matches(query, team)]
        samples = tuple(
            TeamSample(
                team=team,
                value=when.timestamp(),
                timestamp=at,
                labels={} if team is None else {"team.id": team},
            )
            for team, when in selected[: self.max_series]
        )
        if len(selected) <= self.max_series:
            return QueryResult(samples=samples)
        warning = f"the answer was limited to {self.max_series} series"
        return QueryResult(samples=samples, warnings=(warning,), truncated=True)


_TEAM_MATCHER = re.compile(r'"(?:@resource\.)?team\.id"=~"((?:[^"\\]|\\.)*)"')


def _team_matches(query: str, team: str | None) -> bool:
    """Whether a series with this team label (None: without one) passes the query's team matcher."""
    matcher = _TEAM_MATCHER.search(query)
    if matcher is None:
        return True
    pattern = re.sub(r"\\(.)", r"\1", matcher.group(1))  # the PromQL string's escapes
    return re.fullmatch(pattern, team or "") is not None


# -- a whole world of fakes, and the services built on it ---------------------------------------

KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
SERVICE_ROLES = f"arn:aws:iam::{ACCOUNT}:role/tokenwarden/*"
ROTATION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:tokenwarden-rotation"
RULES = OwnershipRules(secrets_kms_key_id=KMS_KEY, service_role_pattern=SERVICE_ROLES)
NAMING = Naming(user_prefix="tw-", user_path="/tokenwarden/", secret_prefix="tokenwarden/")


@dataclass
class FakeWorld:
    """One account's worth of fakes sharing a clock; every wait of the services moves the clock."""

    clock: FakeClock
    rules: OwnershipRules = RULES
    naming: Naming = NAMING
    iam: FakeIam = field(init=False)
    secrets: FakeSecrets = field(init=False)
    ledger: FakeLedger = field(default_factory=FakeLedger)
    notifier: FakeNotifier = field(default_factory=FakeNotifier)
    probe: FakeProbe = field(init=False)

    def __post_init__(self) -> None:
        self.iam = FakeIam(self.clock)
        self.secrets = FakeSecrets(self.clock, self.rules)
        self.probe = FakeProbe(self.iam)

    def leases(self) -> Leases:
        return Leases(self.ledger, self.clock, sleep=self.clock.sleep)

    def engine(self, leases: bool = True, **options: Any) -> RotationEngine:
        return RotationEngine(
            iam=self.iam,
            secrets=self.secrets,
            ledger=self.ledger,
            notifier=self.notifier,
            probe=self.probe,
            naming=self.naming,
            clock=self.clock,
            sleep=self.clock.sleep,
            leases=self.leases() if leases else None,
            **options,
        )

    def _services(self, rotation_lambda_arn: str | None) -> dict[str, Any]:
        """What the reconciler and break-glass share: the ports, one engine and its leases."""
        engine = self.engine()
        return {
            "iam": self.iam,
            "secrets": self.secrets,
            "ledger": self.ledger,
            "notifier": self.notifier,
            "engine": engine,
            "naming": self.naming,
            "rotation_lambda_arn": rotation_lambda_arn,
            "leases": engine.leases,
        }

    def reconciler(self, rotation_lambda_arn: str | None = ROTATION_ARN, custody: bool = True) -> Reconciler:
        rules = Custody(self.iam, self.secrets, self.naming, self.rules) if custody else None
        return Reconciler(**self._services(rotation_lambda_arn), custody=rules)

    def health(self, querier: FakePromQL, store: FakeHealthStore | None = None) -> HealthChecker:
        return HealthChecker(
            querier=querier,
            dialect=Dialect.CLOUDWATCH,
            store=store or FakeHealthStore(),
            ledger=self.ledger,
            iam=self.iam,
            notifier=self.notifier,
            naming=self.naming,
        )

    def breakglass(self, rotation_lambda_arn: str | None = None) -> BreakGlass:
        return BreakGlass(**self._services(rotation_lambda_arn), sleep=self.clock.sleep)

    def rotate_in_background(self, engine: RotationEngine) -> list[str]:
        """Make RotateSecret run the four steps at once, as the rotation function would (as
        invoked by Secrets Manager); returns the steps' failures, by type, as they happen."""
        failures: list[str] = []

        def run(arn: str, version: str) -> None:
            for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
                try:
                    engine.run_invoked(step, arn, version, ROTATION_ARN)
                except Exception as exc:
                    failures.append(f"{step}: {exc}")
                    return

        self.secrets.on_rotate = run
        return failures

    def principal_resources(self, principal: str, team: str | None = None) -> FakeSecret:
        """A principal's user and secret as TokenWarden makes them, with no key yet."""
        self.iam.add_user(
            self.naming.user_name(principal),
            self.naming.user_path,
            tags={MANAGED_TAG: MANAGED_VALUE, PRINCIPAL_TAG: principal, TEAM_TAG: team or principal},
            attached_policies=[API_KEY_POLICY],
        )
        secret = self.secrets.add(
            self.naming.secret_name(principal),
            self.rules.secrets_kms_key_id,
            {MANAGED_TAG: MANAGED_VALUE, PRINCIPAL_TAG: principal, TEAM_TAG: team or principal},
        )
        secret.policy = self.rules.policy(team or principal, Readers())
        secret.rotation_enabled, secret.rotation_lambda_arn, secret.rotation_days = True, ROTATION_ARN, 30
        return secret


def conformance() -> None:
    """Never called: mypy holds each fake to its port through these assignments."""
    clock = FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    iam = FakeIam(clock)
    _clock: ports.Clock = clock
    _iam: ports.IamPort = iam
    _secrets: ports.SecretsPort = FakeSecrets(clock)
    _ledger: ports.LedgerPort = FakeLedger()
    _history: BreakGlassLedger = FakeLedger()
    _notifier: ports.Notifier = FakeNotifier()
    _probe: ports.TokenProbe = FakeProbe(iam)
    _store: HealthStore = FakeHealthStore()
    _querier: PromQLQuerier = FakePromQL()
    _snoozes: SnoozeLog = FakeSnoozeLog()
