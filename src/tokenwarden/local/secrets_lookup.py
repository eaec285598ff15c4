"""Secrets Manager's secrets found by name at the cost of one lookup.

moto (5.2.5) keeps secrets in a dict keyed by name but finds one (``SecretsStore.__getitem__``,
``__contains__``, ``get``) by walking every secret and comparing its ARN and its name with the id
asked for, so that an ARN finds it too: every call that names a secret costs a walk of all of them,
and a night of N principals N², a tenth of a 5,000-principal rotation night. :func:`install` looks
a name up in the dict first; an ARN, a partial ARN, or a name stored under another key still takes
moto's walk. Same secret found for the same id: only moto's bookkeeping is cheaper. Not a switch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

from moto.secretsmanager.models import SecretsStore

__all__ = ["PATCH_MARK", "by_name", "install"]

# Set on each patched method: moto's own, which it keeps.
PATCH_MARK: Final = "__tokenwarden_found_by_name__"
_lock = threading.Lock()
# What a full ARN adds to the secret's name: a dash and six random characters.
_ARN_SUFFIX: Final = "-abcdef"


def by_name(key: object, store: dict[str, Any]) -> Any | None:
    """The secret `key` names when `key` is its name or its full ARN (the name, a dash and six
    characters), else None (moto's walk decides)."""
    if not isinstance(key, str):
        return None
    if key.startswith("arn:"):
        name = key.partition(":secret:")[2][: -len(_ARN_SUFFIX)]
        secret = dict.get(store, name)
        return secret if secret is not None and getattr(secret, "arn", None) == key else None
    secret = dict.get(store, key)
    return secret if secret is not None and getattr(secret, "name", None) == key else None


def _found(moto_s: Callable[..., Any]) -> Callable[..., Any]:
    """`__getitem__` or `get`: the secret by name, else what moto's own finds (or raises)."""

    def found(store: dict[str, Any], key: str) -> Any:
        secret = by_name(key, store)
        return secret if secret is not None else moto_s(store, key)

    setattr(found, PATCH_MARK, moto_s)
    return found


def _contains(moto_s: Callable[..., bool]) -> Callable[..., bool]:
    def contains(store: dict[str, Any], key: str) -> bool:
        return by_name(key, store) is not None or moto_s(store, key)

    setattr(contains, PATCH_MARK, moto_s)
    return contains


def install() -> None:
    """Patch moto's SecretsStore (idempotent)."""
    with _lock:
        for name, patched in (("__getitem__", _found), ("__contains__", _contains), ("get", _found)):
            moto_s = getattr(SecretsStore, name)
            if not hasattr(moto_s, PATCH_MARK):
                setattr(SecretsStore, name, patched(moto_s))
