"""Secrets Manager's default version, as AWS keeps it: moto forgets to follow AWSCURRENT.

On AWS, `GetSecretValue` without `VersionId` or `VersionStage` returns the version labelled
AWSCURRENT, so the seed's recipe (`get-secret-value --secret-id ... --query SecretString`) always
reads the current token. moto (5.2.5) answers from a "default version" that
`UpdateSecretVersionStage` does not move when it moves AWSCURRENT: after the finish step of a
rotation the recipe would read the previous token. This patch moves moto's default version with
the AWSCURRENT label, and lets AWSCURRENT be attached to a secret none of whose versions has it
yet (moto fails with an IndexError there). It is not a switch: it makes the stack agree with AWS,
never kinder.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend

__all__ = ["install"]

_PATCH_MARK: Final = "__tokenwarden_follow_awscurrent__"
_lock = threading.Lock()


def _following_awscurrent(original: Any) -> Any:
    def update_secret_version_stage(
        self: SecretsManagerBackend,
        secret_id: str,
        version_stage: str,
        remove_from_version_id: str,
        move_to_version_id: str,
    ) -> tuple[str, str]:
        secret = self.secrets[secret_id]
        if (
            version_stage == "AWSCURRENT"
            and move_to_version_id
            and not remove_from_version_id
            and isinstance(secret, FakeSecret)
            and move_to_version_id in secret.versions
            and not any("AWSCURRENT" in v["version_stages"] for v in secret.versions.values())
        ):
            # No version is current yet: AWS attaches the label; moto fails looking for the old one.
            secret.versions[move_to_version_id]["version_stages"].append("AWSCURRENT")
            secret.set_default_version_id(move_to_version_id)
            return secret.arn, secret.name
        result: tuple[str, str] = original(
            self, secret_id, version_stage, remove_from_version_id, move_to_version_id
        )
        if version_stage == "AWSCURRENT" and move_to_version_id and isinstance(secret, FakeSecret):
            secret.set_default_version_id(move_to_version_id)
        return result

    setattr(update_secret_version_stage, _PATCH_MARK, True)
    return update_secret_version_stage


def install() -> None:
    """Patch moto's SecretsManagerBackend (idempotent)."""
    with _lock:
        current = SecretsManagerBackend.update_secret_version_stage
        if not getattr(current, _PATCH_MARK, False):
            SecretsManagerBackend.update_secret_version_stage = _following_awscurrent(current)  # type: ignore[method-assign]
