"""Secrets Manager's ListSecrets, a page at the cost of a page.

moto (5.2.5) answers each ``ListSecrets`` page by describing every secret that matches the filters
(``FakeSecret.to_dict``: versions, stages, tags, rotation) and then keeping the page asked for. A
listing of N secrets in pages of 100 describes N²/100 secrets: 5,000 secrets took seconds per
inventory read on the embedded stack, for one page's worth of answers each call. :func:`install`
makes moto describe only the secrets on the page. Same secrets, same order, same page boundaries and
tokens: only moto's bookkeeping is cheaper. Not a switch.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from moto.secretsmanager.models import MAX_RESULTS_DEFAULT, SecretsManagerBackend, _matches

__all__ = ["install"]

_PATCH_MARK: Final = "__tokenwarden_page_at_a_time__"
_lock = threading.Lock()


def page_bounds(count: int, max_results: int | None, next_token: str | None) -> tuple[int, int, str | None]:
    """The page's first and past-the-end positions and the next page's token, as moto pages."""
    start = int(next_token or 0)
    end = start + int(max_results or MAX_RESULTS_DEFAULT)
    return start, end, str(end) if end < count else None


def list_secrets(
    self: SecretsManagerBackend,
    filters: list[dict[str, Any]],
    max_results: int = MAX_RESULTS_DEFAULT,
    next_token: str | None = None,
    include_planned_deletion: bool = False,
) -> tuple[list[dict[str, Any]], str | None]:
    """moto's ListSecrets, describing only the secrets of the page it returns."""
    matching = [
        secret
        for secret in self.secrets.values()
        if not (getattr(secret, "deleted_date", None) and not include_planned_deletion)
        and _matches(secret, filters)
    ]
    start, end, token = page_bounds(len(matching), max_results, next_token)
    return [secret.to_dict() for secret in matching[start:end]], token


setattr(list_secrets, _PATCH_MARK, True)


def install() -> None:
    """Patch moto's SecretsManagerBackend (idempotent)."""
    with _lock:
        if not getattr(SecretsManagerBackend.list_secrets, _PATCH_MARK, False):
            SecretsManagerBackend.list_secrets = list_secrets  # type: ignore[method-assign]
