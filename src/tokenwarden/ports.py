"""The ports the domain services talk through. Adapters implement them against AWS;
tests implement them in memory. Nothing here imports boto3."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from tokenwarden.domain.model import Credential, IssuedCredential, LedgerEntry, SecretState, User
from tokenwarden.domain.notifications import Notification
from tokenwarden.domain.ownership import SecretFacts, UserFacts


class Clock(Protocol):
    def now(self) -> datetime: ...


class IamPort(Protocol):
    def list_users(self, path: str) -> list[User]: ...

    def get_user(self, name: str) -> User | None: ...

    def list_all_credentials(self) -> list[Credential]:
        """Every CloudWatch key of the account (`AllUsers`), paged."""
        ...

    def list_user_credentials(self, user_name: str) -> list[Credential]: ...

    def create_user(
        self, name: str, path: str, tags: Mapping[str, str], permissions_boundary: str | None
    ) -> bool:
        """Create; False when a user by that name exists (never adopted: judge it first)."""
        ...

    def inspect_user(self, name: str) -> UserFacts | None:
        """Path, tags, policies, groups, access keys, login profile and boundary; None: no user."""
        ...

    def attach_api_key_policy(self, user_name: str) -> None: ...

    def put_boundary(self, user_name: str, boundary_arn: str) -> None: ...

    def tag_user(self, user_name: str, tags: Mapping[str, str]) -> None: ...

    def create_credential(self, user_name: str, age_days: int) -> IssuedCredential: ...

    def set_credential_status(self, user_name: str, credential_id: str, active: bool) -> None: ...

    def delete_credential(self, user_name: str, credential_id: str) -> bool:
        """Delete; False when it was already gone."""
        ...

    def delete_user(self, user_name: str) -> bool:
        """Detach TokenWarden's policy and delete the user; False when it was already gone."""
        ...

    def caller(self) -> str:
        """The ARN of the identity making the calls (who revoked)."""
        ...


class SecretsPort(Protocol):
    def list_secrets(self, prefix: str) -> list[SecretState]: ...

    def describe(self, secret_id: str) -> SecretState | None: ...

    def tags(self, secret_id: str) -> dict[str, str]: ...

    def inspect(self, secret_id: str, described: SecretState | None = None) -> SecretFacts | None:
        """Key, tags, versions and resource policy; None: no secret. Raises NotTokenWardens when
        Secrets Manager answers AccessDenied (TokenWarden's roles reach only its own secrets).
        `described`: the secret as the caller just described it (only the policy is read)."""
        ...

    def create(self, name: str, tags: Mapping[str, str], kms_key_id: str, description: str) -> str | None:
        """Create without a value: its ARN; None when a secret by that name exists (never adopted)."""
        ...

    def put_policy(self, secret_id: str, document: Mapping[str, Any]) -> None: ...

    def rekey(self, secret_id: str, kms_key_id: str) -> None: ...

    def restore(self, secret_id: str) -> None: ...

    def tag(self, secret_id: str, tags: Mapping[str, str]) -> None: ...

    def verify_owned(
        self, secret_id: str, principal: str | None = None, described: SecretState | None = None
    ) -> None:
        """Raise NotTokenWardens unless a token may be written into the secret (TokenWarden's
        tag, key and resource policy). `described`: the secret as the caller's step just
        described it, judged for its tag and key instead of describing it again."""
        ...

    def version_token(self, secret_id: str, version_id: str) -> str | None:
        """The token stored in one version, or None when that version holds no value."""
        ...

    def put_pending(self, secret_id: str, version_id: str, token: str) -> None:
        """Store a token as AWSPENDING, after `verify_owned` (SecretWriteError when refused)."""
        ...

    def move_stage(self, secret_id: str, stage: str, to_version: str, from_version: str | None) -> None: ...

    def remove_stage(self, secret_id: str, stage: str, from_version: str) -> None: ...

    def configure_rotation(self, secret_id: str, lambda_arn: str, days: int) -> None: ...

    def rotate(self, secret_id: str, version_id: str, lambda_arn: str | None, days: int) -> None: ...

    def schedule_deletion(self, secret_id: str, recovery_days: int) -> None: ...


class LedgerPort(Protocol):
    def scan(self) -> list[LedgerEntry]: ...

    def entries(self, principal: str) -> list[LedgerEntry]: ...

    def get(self, principal: str, version_id: str) -> LedgerEntry | None: ...

    def create(self, entry: LedgerEntry) -> LedgerEntry:
        """Record an entry unless one exists for that version; return the stored one."""
        ...

    def save(self, entry: LedgerEntry) -> None: ...

    def save_all(self, entries: list[LedgerEntry]) -> None:
        """Write several entries atomically."""
        ...

    def acquire(self, principal: str, owner: str, now: datetime, ttl_seconds: int) -> bool:
        """Take the principal's lease (free, expired, or already ours); False when another holds it."""
        ...

    def keep(self, principal: str, owner: str, now: datetime, ttl_seconds: int) -> bool:
        """Renew the lease only if `owner` holds it and it has not expired; False (nothing written)
        otherwise."""
        ...

    def hand_over(self, principal: str, owner: str, to_owner: str, now: datetime, ttl_seconds: int) -> bool:
        """Give a held (or expired) lease to another owner."""
        ...

    def release(self, principal: str, owner: str) -> None: ...


class Notifier(Protocol):
    def publish(self, notification: Notification) -> None: ...


class TokenProbe(Protocol):
    def check(self, token: str) -> int:
        """Send an empty OTLP export with the token; return the HTTP status."""
        ...
