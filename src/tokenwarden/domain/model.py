"""What TokenWarden knows about the world: keys, secrets, ledger records, inventory.

These are plain values. Adapters build them from AWS answers; the planner reads them.
None of them ever holds a bearer token.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AWSCURRENT = "AWSCURRENT"
AWSPENDING = "AWSPENDING"
AWSPREVIOUS = "AWSPREVIOUS"
SERVICE_NAME = "cloudwatch.amazonaws.com"

KeyStatus = Literal["Active", "Inactive", "Expired"]

MAX_TOKEN_LENGTH = 4096
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class MalformedToken(ValueError):
    """A value that is not a bearer token. The message says why, never what."""


def check_token_syntax(token: object) -> None:
    """Raise MalformedToken unless `token` is a well-formed bearer token (RFC 6750 b64token).

    Checked before a token is used anywhere: a value with CR/LF, quotes or spaces would make
    an HTTP library raise an error that quotes the header, and so the token.
    """
    if not isinstance(token, str) or not token:
        raise MalformedToken("the token is empty or not text")
    if len(token) > MAX_TOKEN_LENGTH:
        raise MalformedToken(f"the token is longer than {MAX_TOKEN_LENGTH} characters")
    if _B64TOKEN.fullmatch(token) is None:
        raise MalformedToken("the token holds characters a bearer token cannot have")


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True)


class Credential(_Value):
    """An IAM service-specific credential as IAM lists it (never with its secret)."""

    id: str
    user_name: str
    alias: str
    status: KeyStatus
    created_at: datetime
    expires_at: datetime | None
    service_name: str = SERVICE_NAME

    def usable(self, now: datetime) -> bool:
        return self.status == "Active" and self.expires_at is not None and self.expires_at > now


class IssuedCredential(_Value):
    """A freshly created credential. `token` is the bearer token: it goes to Secrets Manager only."""

    credential: Credential
    token: str = Field(repr=False)

    def __str__(self) -> str:
        return f"IssuedCredential({self.credential.id})"


class User(_Value):
    name: str
    path: str
    arn: str


class SecretState(_Value):
    """A secret as `ListSecrets` describes it (versions, labels, key and tags, never the value)."""

    name: str
    arn: str
    versions: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    rotation_enabled: bool = False
    rotation_lambda_arn: str | None = None
    rotation_days: int | None = None
    deleted_at: datetime | None = None
    kms_key_id: str | None = None  # None: the AWS managed key
    tags: dict[str, str] = Field(default_factory=dict)

    def version_with(self, stage: str) -> str | None:
        return next((vid for vid, stages in self.versions.items() if stage in stages), None)

    @property
    def current_version(self) -> str | None:
        return self.version_with(AWSCURRENT)

    @property
    def pending_version(self) -> str | None:
        return self.version_with(AWSPENDING)


class LedgerState(StrEnum):
    """Where one secret version's key is in its life."""

    CREATING = "creating"  # intent recorded, key may or may not exist yet
    PENDING = "pending"  # key exists and its token is the AWSPENDING version
    CURRENT = "current"  # its token is AWSCURRENT
    PREVIOUS = "previous"  # superseded; still Active through the grace
    RETIRED = "retired"  # deactivated; reversible until deleted
    DELETED = "deleted"  # key deleted
    ABANDONED = "abandoned"  # a rotation that never completed; its key (if any) is deleted


class LedgerEntry(_Value):
    """Which IAM key one secret version holds, and what happened to it."""

    principal: str
    version_id: str
    state: LedgerState
    created_at: datetime
    credential_id: str | None = None
    alias: str | None = None
    expires_at: datetime | None = None
    activated_at: datetime | None = None
    superseded_at: datetime | None = None
    deactivated_at: datetime | None = None
    deleted_at: datetime | None = None
    notified: frozenset[str] = frozenset()
    reason: str | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    # The key age TokenWarden asked IAM for: with CreateDate it gives the expiry when IAM's
    # answer has no ExpirationDate (documented only for Bedrock and CloudWatch Logs keys).
    requested_age_days: int | None = None
    # A revoke asked for a replacement: a run that finds this key broken issues one, even if
    # the revoke itself was interrupted before it could.
    reissue_requested: bool = False
    # An automatic rollback re-activated this retired key (domain/rollback.py): it stays a previous
    # key, Active until then, and the nightly run retires it again when that extended grace ends.
    grace_until: datetime | None = None


def with_known_expiry(cred: Credential, entry: LedgerEntry | None) -> Credential:
    """The credential with its expiry filled in from TokenWarden's record when IAM left it out."""
    if cred.expires_at is not None or entry is None:
        return cred
    if entry.expires_at is not None:
        return cred.model_copy(update={"expires_at": entry.expires_at})
    if entry.requested_age_days is not None:
        return cred.model_copy(
            update={"expires_at": cred.created_at + timedelta(days=entry.requested_age_days)}
        )
    return cred


class PrincipalInventory(_Value):
    principal: str
    user: User | None = None
    credentials: tuple[Credential, ...] = ()
    secret: SecretState | None = None
    ledger: tuple[LedgerEntry, ...] = ()

    def entry(self, version_id: str | None) -> LedgerEntry | None:
        if version_id is None:
            return None
        return next((e for e in self.ledger if e.version_id == version_id), None)

    def entry_for_credential(self, credential_id: str) -> LedgerEntry | None:
        return next((e for e in self.ledger if e.credential_id == credential_id), None)

    def credential(self, credential_id: str | None) -> Credential | None:
        if credential_id is None:
            return None
        return next((c for c in self.credentials if c.id == credential_id), None)

    @property
    def current_entry(self) -> LedgerEntry | None:
        return self.entry(self.secret.current_version if self.secret else None)

    @property
    def current_credential(self) -> Credential | None:
        entry = self.current_entry
        return self.credential(entry.credential_id if entry else None)


class Inventory(_Value):
    """Everything TokenWarden manages, read in a few paged calls."""

    principals: dict[str, PrincipalInventory]
    foreign_credentials: tuple[Credential, ...] = ()

    def of(self, principal: str) -> PrincipalInventory:
        return self.principals.get(principal) or PrincipalInventory(principal=principal)
