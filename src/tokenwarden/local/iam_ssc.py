"""IAM service-specific credentials (CloudWatch metrics API keys) for moto, which lacks them.

Why this exists: moto 5.2.5 implements none of the five IAM service-specific-credential (SSC)
operations (CreateServiceSpecificCredential, ListServiceSpecificCredentials,
UpdateServiceSpecificCredential, DeleteServiceSpecificCredential, ResetServiceSpecificCredential):
they raise ``NotImplementedError`` in decorator mode and answer HTTP 500 in server mode. TokenWarden's
whole job is the life of those credentials, so its tests and its embedded local stack need them.

How: moto dispatches the query action ``Action=Foo`` to a method ``foo`` on
:class:`moto.iam.responses.IamResponse` and serialises the returned :class:`ActionResult` from the
botocore model, so :func:`install` attaches five methods there and the answers are wire-exact in both
``mock_aws`` and server mode (XML, error codes and HTTP statuses included). The credentials live in an
attribute of the moto IAM backend object (``iam_backends[account_id]["aws"]``), so ``mock_aws``'s
reset wipes them together with the users. This module's name must not start with ``moto``: moto
derives a service name from the module path of a raising frame.

Behaviour (AWS's documented rules, plus the assumptions the project makes where AWS says nothing; see
docs/develop.md, "moto and service-specific credentials"):

- Create: the user must exist (``NoSuchEntity``, 404). ``CredentialAgeDays`` is 1..36600
  (``ValidationError``, 400; botocore only checks the minimum client-side); when omitted the key has no
  ``ExpirationDate``. At most 2 credentials per user per service, whatever their status: a third gives
  ``LimitExceeded`` (409). ``ServiceName`` must be one of :data:`SUPPORTED_SERVICES`
  (``NotSupportedService``, 404). API-key services (Bedrock, CloudWatch, CloudWatch Logs) answer with
  ``ServiceCredentialAlias`` (public) and ``ServiceCredentialSecret`` (the bearer token); the
  password services (CodeCommit, Keyspaces) with ``ServiceUserName`` and ``ServicePassword`` and
  take no ``CredentialAgeDays`` (``ValidationError``).
- Status is ``Expired`` whenever the clock is at or past ``ExpirationDate`` (computed at read time).
  Expired is read-only: Update on an expired key gives ``ValidationError``; Update accepts only
  ``Active`` or ``Inactive``.
- List: ``UserName`` (the user must exist) or ``AllUsers=true`` (together: ``ValidationError``);
  without either, the caller's own IAM user (none for the root/default test credentials → empty
  list). Optional ``ServiceName`` filter, ``Marker``/``MaxItems`` (1..1000, default 100) pagination
  with ``IsTruncated``; items come in creation order. The secret is never listed.
- Update/Delete/Reset find the credential by id in the caller's account (``UserName`` optional; when
  given, the user must exist and own the key), else ``NoSuchEntity``. Reset issues a new secret and the
  old one stops authenticating at once.
- DeleteUser on a user that still has credentials gives ``DeleteConflict`` (409), as on AWS: the
  extension wraps ``IAMBackend.delete_user``. Renaming a user (UpdateUser) does not carry credentials
  over (nothing in TokenWarden renames users).

IAM's eventual consistency and documented gaps, off unless :func:`configure` turns them on (the
embedded stack's :mod:`tokenwarden.local.realism` does, from its switches):

- a new key (or a reset secret) is not known to the service for ``key_propagation_seconds`` of stack
  time after it is issued: :func:`authenticate` answers ``propagating`` (the OTLP endpoint: 401);
- CreateServiceSpecificCredential for a user created less than ``new_user_delay_seconds`` ago (stack
  time, recorded by a wrapper of ``IAMBackend.create_user`` on the backend object) answers
  ``NoSuchEntity`` as if the user did not exist yet;
- for the services in ``omit_expiration_for``, Create and List answer without ``ExpirationDate``
  (documented only for Bedrock and CloudWatch Logs keys); the key still expires, and ``Status`` and
  :func:`authenticate` still say so.

Beyond the API: :func:`authenticate` is what the local OTLP endpoint uses to accept or refuse a bearer
token, and :func:`issued_secrets` lists every token issued in this process so leak tests can search
captured output for all of them. Tokens are never logged or put in exception messages; only SHA-256
digests are kept on the credentials.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from moto.core.responses import ActionResult, EmptyResult
from moto.iam.exceptions import (
    DeleteConflictException,
    IAMException,
    LimitExceededException,
    NoSuchEntity,
    ValidationError,
)
from moto.iam.models import IAMBackend, iam_backends
from moto.iam.responses import IamResponse

from tokenwarden.local.clock import StackClock, default_clock

__all__ = [
    "API_KEY_SERVICES",
    "CLOUDWATCH_SERVICE",
    "MAX_CREDENTIALS_PER_USER_PER_SERVICE",
    "PASSWORD_SERVICES",
    "SUPPORTED_SERVICES",
    "AuthOutcome",
    "AuthResult",
    "Consistency",
    "authenticate",
    "configure",
    "consistency",
    "install",
    "is_installed",
    "issued_secrets",
]

CLOUDWATCH_SERVICE: Final = "cloudwatch.amazonaws.com"
#: Services whose credentials are API keys: an alias (public) and a secret (bearer token), optional expiry.
API_KEY_SERVICES: Final = frozenset({"bedrock.amazonaws.com", CLOUDWATCH_SERVICE, "logs.amazonaws.com"})
#: Services whose credentials are a generated user name and password.
PASSWORD_SERVICES: Final = frozenset({"codecommit.amazonaws.com", "cassandra.amazonaws.com"})
SUPPORTED_SERVICES: Final = API_KEY_SERVICES | PASSWORD_SERVICES
MAX_CREDENTIALS_PER_USER_PER_SERVICE: Final = 2
MIN_AGE_DAYS: Final = 1
MAX_AGE_DAYS: Final = 36600
MAX_ITEMS_LIMIT: Final = 1000
DEFAULT_MAX_ITEMS: Final = 100

_STATE_ATTR: Final = "tokenwarden_service_specific_credentials"
_USERS_ATTR: Final = "tokenwarden_user_created_at"
_ID_PREFIX: Final = "ACCA"
_ID_ALPHABET: Final = string.ascii_uppercase + string.digits
_ALIAS_ALPHABET: Final = string.ascii_lowercase
_MARKER_PREFIX: Final = "tw1:"
_STATUSES: Final = ("Active", "Inactive", "Expired")
_SETTABLE_STATUSES: Final = ("Active", "Inactive")
_OPERATIONS: Final = (
    "create_service_specific_credential",
    "list_service_specific_credentials",
    "update_service_specific_credential",
    "delete_service_specific_credential",
    "reset_service_specific_credential",
)

_lock = threading.RLock()
_clock_provider: Callable[[], StackClock] = default_clock
_issued: list[str] = []
_original_delete_user: Callable[[IAMBackend, str], None] | None = None
_original_create_user: Callable[..., Any] | None = None
_original_create_user_response: Callable[[IamResponse], ActionResult] | None = None


@dataclass(frozen=True)
class Consistency:
    """How far the extension departs from read-after-write (all zero/empty: it does not)."""

    key_propagation_seconds: float = 0.0
    new_user_delay_seconds: float = 0.0
    omit_expiration_for: frozenset[str] = frozenset()


_consistency = Consistency()


class NotSupportedService(IAMException):
    """IAM's error for a service that has no service-specific credentials (HTTP 404)."""

    code = "NotSupportedService"


class AuthOutcome(StrEnum):
    """What the local OTLP endpoint should do with a bearer token."""

    ACCEPTED = "accepted"
    INACTIVE = "inactive"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    PROPAGATING = "propagating"


@dataclass(frozen=True)
class AuthResult:
    """The verdict on a bearer token; names the credential, never the token."""

    outcome: AuthOutcome
    credential_id: str | None = None
    user_name: str | None = None
    account_id: str | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome is AuthOutcome.ACCEPTED

    @property
    def reason(self) -> str:
        """The outcome as text: ``accepted``, ``inactive``, ``expired``, ``unknown`` or ``propagating``."""
        return self.outcome.value


@dataclass
class _Credential:
    credential_id: str
    user_name: str
    service_name: str
    create_date: datetime
    expiration_date: datetime | None
    sequence: int
    secret_digest: bytes = field(repr=False)
    alias: str | None = None
    service_user_name: str | None = None
    status: str = "Active"
    #: When the service starts accepting the secret (IAM is eventually consistent).
    known_from: datetime | None = None

    def status_at(self, now: datetime) -> str:
        if self.expiration_date is not None and now >= self.expiration_date:
            return "Expired"
        return self.status

    def metadata(self, now: datetime) -> dict[str, Any]:
        shape: dict[str, Any] = {
            "UserName": self.user_name,
            "Status": self.status_at(now),
            "CreateDate": self.create_date,
            "ServiceSpecificCredentialId": self.credential_id,
            "ServiceName": self.service_name,
        }
        if self.alias is not None:
            shape["ServiceCredentialAlias"] = self.alias
        if self.service_user_name is not None:
            shape["ServiceUserName"] = self.service_user_name
        if self.expiration_date is not None and self.service_name not in _consistency.omit_expiration_for:
            shape["ExpirationDate"] = self.expiration_date
        return shape

    def with_secret(self, secret: str, now: datetime) -> dict[str, Any]:
        shape = self.metadata(now)
        if self.service_name in API_KEY_SERVICES:
            shape["ServiceCredentialSecret"] = secret
        else:
            shape["ServicePassword"] = secret
        return shape


@dataclass
class _Store:
    credentials: dict[str, _Credential] = field(default_factory=dict)
    next_sequence: int = 0


# --------------------------------------------------------------------------------------------------
# State and helpers


def _now() -> datetime:
    return _clock_provider().now()


def _store(backend: IAMBackend) -> _Store:
    with _lock:
        store = getattr(backend, _STATE_ATTR, None)
        if not isinstance(store, _Store):
            store = _Store()
            setattr(backend, _STATE_ATTR, store)
        return store


def _existing_store(backend: object) -> _Store | None:
    store = getattr(backend, _STATE_ATTR, None)
    return store if isinstance(store, _Store) else None


def _known_from(now: datetime) -> datetime:
    return now + timedelta(seconds=_consistency.key_propagation_seconds)


def _require_settled_user(backend: IAMBackend, user_name: str, now: datetime) -> None:
    """IAM is eventually consistent: a user created a moment ago may not be visible yet."""
    created = getattr(backend, _USERS_ATTR, {}).get(user_name)
    delay = timedelta(seconds=_consistency.new_user_delay_seconds)
    if created is not None and now < created + delay:
        raise NoSuchEntity(f"The user with name {user_name} cannot be found.")


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _new_secret() -> str:
    secret = secrets.token_urlsafe(45)
    with _lock:
        _issued.append(secret)
    return secret


def _new_id(store: _Store) -> str:
    while True:
        candidate = _ID_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))
        if candidate not in store.credentials:
            return candidate


def _new_alias(store: _Store, user_name: str, account_id: str) -> str:
    taken = {c.alias for c in store.credentials.values()}
    while True:
        suffix = "".join(secrets.choice(_ALIAS_ALPHABET) for _ in range(6))
        candidate = f"{user_name}-at-{account_id}-{suffix}"
        if candidate not in taken:
            return candidate


def _constraint_error(value: object, member: str, constraint: str) -> ValidationError:
    return ValidationError(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
        f"{constraint}"
    )


def _required(value: object, member: str) -> None:
    if value is None or value == "":
        raise ValidationError(
            f"1 validation error detected: Value null at '{member}' failed to satisfy constraint: "
            "Member must not be null"
        )


def _as_int(value: object, member: str) -> int:
    if isinstance(value, bool):
        raise _constraint_error(value, member, "Member must be an integer")
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise _constraint_error(value, member, "Member must be an integer") from None


def _not_found(credential_id: str) -> NoSuchEntity:
    return NoSuchEntity(f"The service-specific credential with ID {credential_id} cannot be found.")


def _find(backend: IAMBackend, credential_id: str, user_name: str | None) -> _Credential:
    _required(credential_id, "serviceSpecificCredentialId")
    if user_name:
        backend.get_user(user_name)  # NoSuchEntity for an unknown user, as moto words it
    credential = _store(backend).credentials.get(credential_id)
    if credential is None or (user_name and credential.user_name != user_name):
        raise _not_found(credential_id)
    return credential


def _encode_marker(sequence: int) -> str:
    return base64.urlsafe_b64encode(f"{_MARKER_PREFIX}{sequence}".encode()).decode("ascii")


def _decode_marker(marker: str) -> int:
    try:
        text = base64.urlsafe_b64decode(marker.encode("ascii")).decode("ascii")
        if not text.startswith(_MARKER_PREFIX):
            raise ValueError(marker)
        return int(text[len(_MARKER_PREFIX) :])
    except (ValueError, UnicodeError, binascii.Error):
        raise ValidationError("Invalid Marker.") from None


# --------------------------------------------------------------------------------------------------
# Operations on a backend (the IamResponse methods below only parse and wrap)


def _create(
    backend: IAMBackend, account_id: str, user_name: str, service_name: str, age_days: object
) -> dict[str, Any]:
    _required(user_name, "userName")
    _required(service_name, "serviceName")
    age: int | None = None
    if age_days is not None:
        age = _as_int(age_days, "credentialAgeDays")
        if age < MIN_AGE_DAYS:
            raise _constraint_error(
                age, "credentialAgeDays", f"Member must have value greater than or equal to {MIN_AGE_DAYS}"
            )
        if age > MAX_AGE_DAYS:
            raise _constraint_error(
                age, "credentialAgeDays", f"Member must have value less than or equal to {MAX_AGE_DAYS}"
            )
    backend.get_user(user_name)
    _require_settled_user(backend, user_name, _now())
    if service_name not in SUPPORTED_SERVICES:
        raise NotSupportedService(f"The specified service {service_name} is not supported.")
    if age is not None and service_name not in API_KEY_SERVICES:
        raise ValidationError(f"CredentialAgeDays is not supported for service {service_name}.")

    with _lock:
        store = _store(backend)
        held = sum(
            1
            for c in store.credentials.values()
            if c.user_name == user_name and c.service_name == service_name
        )
        if held >= MAX_CREDENTIALS_PER_USER_PER_SERVICE:
            raise LimitExceededException(
                "Cannot exceed quota for ServiceSpecificCredentialsPerUserPerService: "
                f"{MAX_CREDENTIALS_PER_USER_PER_SERVICE}"
            )
        now = _now()
        created = now.replace(microsecond=0)
        secret = _new_secret()
        is_api_key = service_name in API_KEY_SERVICES
        credential = _Credential(
            credential_id=_new_id(store),
            user_name=user_name,
            service_name=service_name,
            create_date=created,
            expiration_date=created + timedelta(days=age) if age is not None else None,
            sequence=store.next_sequence,
            secret_digest=_digest(secret),
            alias=_new_alias(store, user_name, account_id) if is_api_key else None,
            service_user_name=None if is_api_key else f"{user_name}-at-{account_id}",
            known_from=_known_from(now),
        )
        store.next_sequence += 1
        store.credentials[credential.credential_id] = credential
        return credential.with_secret(secret, now)


def _list(
    backend: IAMBackend,
    user_name: str | None,
    all_users: bool,
    service_name: str | None,
    marker: str | None,
    max_items: object,
) -> dict[str, Any]:
    if all_users and user_name:
        raise ValidationError("UserName and AllUsers cannot be specified together.")
    limit = DEFAULT_MAX_ITEMS
    if max_items is not None:
        limit = _as_int(max_items, "maxItems")
        if not 1 <= limit <= MAX_ITEMS_LIMIT:
            raise _constraint_error(
                limit, "maxItems", f"Member must have value between 1 and {MAX_ITEMS_LIMIT}"
            )
    if user_name:
        backend.get_user(user_name)
    start = _decode_marker(marker) if marker else 0
    now = _now()
    with _lock:
        matching = sorted(
            (
                c
                for c in _store(backend).credentials.values()
                if (all_users or c.user_name == user_name)
                and (not service_name or c.service_name == service_name)
                and c.sequence >= start
            ),
            key=lambda c: c.sequence,
        )
        page = [c.metadata(now) for c in matching[:limit]]
    result: dict[str, Any] = {"ServiceSpecificCredentials": page, "IsTruncated": len(matching) > limit}
    if len(matching) > limit:
        result["Marker"] = _encode_marker(matching[limit].sequence)
    return result


def _update(backend: IAMBackend, credential_id: str, user_name: str | None, status: str | None) -> None:
    _required(status, "status")
    if status not in _STATUSES:
        raise _constraint_error(
            status, "status", f"Member must satisfy enum value set: [{', '.join(_STATUSES)}]"
        )
    if status not in _SETTABLE_STATUSES:
        raise ValidationError("Status Expired is read-only: it cannot be set.")
    with _lock:
        credential = _find(backend, credential_id, user_name)
        if credential.status_at(_now()) == "Expired":
            raise ValidationError(
                f"The service-specific credential with ID {credential_id} has expired; "
                "an expired credential cannot be activated or deactivated."
            )
        credential.status = status


def _delete(backend: IAMBackend, credential_id: str, user_name: str | None) -> None:
    with _lock:
        credential = _find(backend, credential_id, user_name)
        del _store(backend).credentials[credential.credential_id]


def _reset(backend: IAMBackend, credential_id: str, user_name: str | None) -> dict[str, Any]:
    with _lock:
        credential = _find(backend, credential_id, user_name)
        secret = _new_secret()
        now = _now()
        credential.secret_digest = _digest(secret)
        credential.known_from = _known_from(now)
        return credential.with_secret(secret, now)


# --------------------------------------------------------------------------------------------------
# The five IamResponse methods


def _caller_user_name(response: IamResponse) -> str | None:
    user = response.backend.get_user_from_access_key_id(response.get_access_key())
    return user.name if user is not None else None


def create_service_specific_credential(self: IamResponse) -> ActionResult:
    credential = _create(
        self.backend,
        self.current_account,
        self._get_param("UserName"),
        self._get_param("ServiceName"),
        self._get_param("CredentialAgeDays"),
    )
    return ActionResult({"ServiceSpecificCredential": credential})


def list_service_specific_credentials(self: IamResponse) -> ActionResult:
    user_name = self._get_param("UserName")
    all_users = self._get_bool_param("AllUsers", False) is True
    if not user_name and not all_users:
        user_name = _caller_user_name(self)
        if user_name is None:
            return ActionResult({"ServiceSpecificCredentials": [], "IsTruncated": False})
    result = _list(
        self.backend,
        user_name,
        all_users,
        self._get_param("ServiceName"),
        self._get_param("Marker"),
        self._get_param("MaxItems"),
    )
    return ActionResult(result)


def update_service_specific_credential(self: IamResponse) -> ActionResult:
    _update(
        self.backend,
        self._get_param("ServiceSpecificCredentialId"),
        self._get_param("UserName"),
        self._get_param("Status"),
    )
    return EmptyResult()


def delete_service_specific_credential(self: IamResponse) -> ActionResult:
    _delete(self.backend, self._get_param("ServiceSpecificCredentialId"), self._get_param("UserName"))
    return EmptyResult()


def reset_service_specific_credential(self: IamResponse) -> ActionResult:
    credential = _reset(
        self.backend, self._get_param("ServiceSpecificCredentialId"), self._get_param("UserName")
    )
    return ActionResult({"ServiceSpecificCredential": credential})


_METHODS: Final[dict[str, Callable[[IamResponse], ActionResult]]] = {
    "create_service_specific_credential": create_service_specific_credential,
    "list_service_specific_credentials": list_service_specific_credentials,
    "update_service_specific_credential": update_service_specific_credential,
    "delete_service_specific_credential": delete_service_specific_credential,
    "reset_service_specific_credential": reset_service_specific_credential,
}


# Users' permissions boundaries, which moto 5.2.5 ignores (CreateUser drops the parameter,
# Put/DeleteUserPermissionsBoundary are not implemented). Kept on moto's user object, so its
# reset wipes them with the user, and GetUser answers with them as AWS does.


def _set_boundary(backend: IAMBackend, user_name: str, boundary_arn: str | None) -> None:
    user = backend.get_user(user_name)  # NoSuchEntity (404) when there is no such user
    user.permissions_boundary = (  # type: ignore[attr-defined]
        {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": boundary_arn}
        if boundary_arn
        else None
    )


def _create_user_with_boundary(self: IamResponse) -> ActionResult:
    assert _original_create_user_response is not None
    result = _original_create_user_response(self)
    boundary = self._get_param("PermissionsBoundary")
    if boundary:
        _set_boundary(self.backend, self._get_param("UserName"), boundary)
    return result


def put_user_permissions_boundary(self: IamResponse) -> ActionResult:
    boundary = self._get_param("PermissionsBoundary")
    _required(boundary, "permissionsBoundary")
    _set_boundary(self.backend, self._get_param("UserName"), boundary)
    return EmptyResult()


def delete_user_permissions_boundary(self: IamResponse) -> ActionResult:
    _set_boundary(self.backend, self._get_param("UserName"), None)
    return EmptyResult()


def _create_user_recorded(self: IAMBackend, *args: Any, **kwargs: Any) -> Any:
    """moto's create_user, remembering when (stack time) the user came to be."""
    assert _original_create_user is not None
    user = _original_create_user(self, *args, **kwargs)
    with _lock:
        created: dict[str, datetime] = getattr(self, _USERS_ATTR, None) or {}
        created[user.name] = _now()
        setattr(self, _USERS_ATTR, created)
    return user


def _delete_user_guarded(self: IAMBackend, user_name: str) -> None:
    store = _existing_store(self)
    if store is not None and any(c.user_name == user_name for c in list(store.credentials.values())):
        raise DeleteConflictException("Cannot delete entity, must delete service specific credentials first.")
    assert _original_delete_user is not None
    _original_delete_user(self, user_name)


# --------------------------------------------------------------------------------------------------
# Public API


def install(clock: StackClock | None = None) -> None:
    """Teach moto's IAM the five SSC operations and users' permissions boundaries (idempotent) and
    set the clock they read.

    ``clock=None`` reads :func:`tokenwarden.local.clock.default_clock` at every call, so
    ``set_default_clock`` takes effect; a given clock is used until the next ``install``.
    """
    global _clock_provider, _original_delete_user, _original_create_user, _original_create_user_response
    with _lock:
        _clock_provider = (lambda: clock) if clock is not None else default_clock
        for name, method in _METHODS.items():
            setattr(IamResponse, name, method)
        IamResponse.put_user_permissions_boundary = put_user_permissions_boundary  # type: ignore[attr-defined]
        IamResponse.delete_user_permissions_boundary = delete_user_permissions_boundary  # type: ignore[attr-defined]
        if IamResponse.create_user is not _create_user_with_boundary:  # type: ignore[comparison-overlap]
            _original_create_user_response = IamResponse.create_user
            IamResponse.create_user = _create_user_with_boundary  # type: ignore[method-assign]
        if IAMBackend.delete_user is not _delete_user_guarded:  # type: ignore[comparison-overlap]
            _original_delete_user = IAMBackend.delete_user
            IAMBackend.delete_user = _delete_user_guarded  # type: ignore[method-assign]
        if IAMBackend.create_user is not _create_user_recorded:  # type: ignore[comparison-overlap]
            _original_create_user = IAMBackend.create_user
            IAMBackend.create_user = _create_user_recorded  # type: ignore[method-assign]


def configure(
    *,
    key_propagation_seconds: float = 0.0,
    new_user_delay_seconds: float = 0.0,
    omit_expiration_for: frozenset[str] | set[str] | tuple[str, ...] = (),
) -> None:
    """Set IAM's eventual consistency as the extension models it; no arguments: read-after-write.

    Takes effect at once for every account; a key keeps the propagation time it was issued with.
    """
    if key_propagation_seconds < 0 or new_user_delay_seconds < 0:
        raise ValueError("delays cannot be negative")
    global _consistency
    with _lock:
        _consistency = Consistency(
            key_propagation_seconds=key_propagation_seconds,
            new_user_delay_seconds=new_user_delay_seconds,
            omit_expiration_for=frozenset(omit_expiration_for),
        )


def consistency() -> Consistency:
    """The eventual-consistency settings in force."""
    return _consistency


def is_installed() -> bool:
    """Whether :func:`install` has run in this process."""
    return all(getattr(IamResponse, name, None) is _METHODS[name] for name in _OPERATIONS)


def authenticate(token: str, service_name: str = CLOUDWATCH_SERVICE) -> AuthResult:
    """Judge a bearer token against every account's credentials, as the service would.

    ``accepted`` only for an Active, unexpired credential of ``service_name``; ``inactive`` or
    ``expired`` for a known key of that service in those states; ``propagating`` for a key issued
    less than the configured propagation time ago (the service does not know it yet); ``unknown``
    otherwise (including a key of another service). The result never carries the token.
    """
    digest = _digest(token)
    now = _now()
    with _lock:
        for account_id, account_backends in list(iam_backends.items()):
            for backend in list(account_backends.values()):
                store = _existing_store(backend)
                if store is None:
                    continue
                for credential in list(store.credentials.values()):
                    if not hmac.compare_digest(credential.secret_digest, digest):
                        continue
                    if credential.service_name != service_name:
                        return AuthResult(AuthOutcome.UNKNOWN)
                    if credential.known_from is not None and now < credential.known_from:
                        return AuthResult(
                            AuthOutcome.PROPAGATING,
                            credential.credential_id,
                            credential.user_name,
                            account_id,
                        )
                    status = credential.status_at(now)
                    outcome = {
                        "Active": AuthOutcome.ACCEPTED,
                        "Inactive": AuthOutcome.INACTIVE,
                        "Expired": AuthOutcome.EXPIRED,
                    }[status]
                    return AuthResult(outcome, credential.credential_id, credential.user_name, account_id)
    return AuthResult(AuthOutcome.UNKNOWN)


def issued_secrets() -> list[str]:
    """Every secret (token or password) issued in this process so far, for leak tests."""
    with _lock:
        return list(_issued)
