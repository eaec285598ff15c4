"""Secrets Manager: one secret per principal whose SecretString is the raw token."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tokenwarden.domain.model import AWSCURRENT, AWSPENDING, SecretState


class SecretWriteError(RuntimeError):
    """Storing a token failed. The message never carries the token or the request that held it."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _state(item: Mapping[str, Any]) -> SecretState:
    rules = item.get("RotationRules") or {}
    # ListSecrets calls it SecretVersionsToStages, DescribeSecret VersionIdsToStages.
    versions = item.get("SecretVersionsToStages") or item.get("VersionIdsToStages") or {}
    return SecretState(
        name=item["Name"],
        arn=item["ARN"],
        versions={vid: tuple(stages) for vid, stages in versions.items()},
        rotation_enabled=bool(item.get("RotationEnabled")),
        rotation_lambda_arn=item.get("RotationLambdaARN") or None,
        rotation_days=rules.get("AutomaticallyAfterDays"),
        deleted_at=item.get("DeletedDate"),
    )


class SecretsAdapter:
    def __init__(self, client: Any) -> None:
        self._sm = client

    def list_secrets(self, prefix: str) -> list[SecretState]:
        secrets: list[SecretState] = []
        paginator = self._sm.get_paginator("list_secrets")
        for page in paginator.paginate(
            Filters=[{"Key": "name", "Values": [prefix]}], IncludePlannedDeletion=True
        ):
            secrets += [_state(s) for s in page["SecretList"] if s["Name"].startswith(prefix)]
        return secrets

    def describe(self, secret_id: str) -> SecretState | None:
        try:
            return _state(self._sm.describe_secret(SecretId=secret_id))
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise

    def tags(self, secret_id: str) -> dict[str, str]:
        answer = self._sm.describe_secret(SecretId=secret_id)
        return {t["Key"]: t["Value"] for t in answer.get("Tags") or []}

    def ensure_secret(
        self, name: str, tags: Mapping[str, str], kms_key_id: str | None, description: str
    ) -> SecretState:
        tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
        existing = self.describe(name)
        if existing is None:
            kwargs: dict[str, Any] = {"Name": name, "Description": description, "Tags": tag_list}
            if kms_key_id:
                kwargs["KmsKeyId"] = kms_key_id
            try:
                self._sm.create_secret(**kwargs)
            except ClientError as exc:
                if _code(exc) != "ResourceExistsException":
                    raise
        else:
            if existing.deleted_at is not None:
                self._sm.restore_secret(SecretId=name)
            self._sm.tag_resource(SecretId=name, Tags=tag_list)
        state = self.describe(name)
        if state is None:
            raise RuntimeError(f"secret {name} vanished right after it was created")
        return state

    def version_token(self, secret_id: str, version_id: str) -> str | None:
        try:
            answer = self._sm.get_secret_value(SecretId=secret_id, VersionId=version_id)
        except ClientError as exc:
            if _code(exc) in ("ResourceNotFoundException", "InvalidRequestException"):
                return None
            raise
        value = answer.get("SecretString")
        return value if isinstance(value, str) and value else None

    def current_token(self, secret_id: str) -> str | None:
        try:
            answer = self._sm.get_secret_value(SecretId=secret_id, VersionStage=AWSCURRENT)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise
        value = answer.get("SecretString")
        return value if isinstance(value, str) and value else None

    def put_pending(self, secret_id: str, version_id: str, token: str) -> None:
        try:
            self._sm.put_secret_value(
                SecretId=secret_id,
                ClientRequestToken=version_id,
                SecretString=token,
                VersionStages=[AWSPENDING],
            )
        except (ClientError, BotoCoreError) as exc:
            # Raised without its cause: a service or client message may quote the request it refused.
            code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
            raise SecretWriteError(
                f"PutSecretValue of version {version_id} to {secret_id} failed ({code or type(exc).__name__})"
            ) from None

    def move_stage(self, secret_id: str, stage: str, to_version: str, from_version: str | None) -> None:
        kwargs: dict[str, Any] = {"SecretId": secret_id, "VersionStage": stage, "MoveToVersionId": to_version}
        if from_version:
            kwargs["RemoveFromVersionId"] = from_version
        self._sm.update_secret_version_stage(**kwargs)

    def remove_stage(self, secret_id: str, stage: str, from_version: str) -> None:
        """Take `stage` off `from_version`; done already (Secrets Manager removed the label of
        its own test version, or another run did) counts as done."""
        try:
            self._sm.update_secret_version_stage(
                SecretId=secret_id, VersionStage=stage, RemoveFromVersionId=from_version
            )
        except ClientError as exc:
            if _code(exc) not in ("InvalidParameterException", "ResourceNotFoundException"):
                raise
            state = self.describe(secret_id)
            if state is not None and stage in state.versions.get(from_version, ()):
                raise

    def configure_rotation(self, secret_id: str, lambda_arn: str, days: int) -> None:
        self._sm.rotate_secret(
            SecretId=secret_id,
            RotationLambdaARN=lambda_arn,
            RotationRules={"AutomaticallyAfterDays": days},
            RotateImmediately=False,
        )

    def rotate(self, secret_id: str, version_id: str, lambda_arn: str | None, days: int) -> None:
        kwargs: dict[str, Any] = {
            "SecretId": secret_id,
            "ClientRequestToken": version_id,
            "RotateImmediately": True,
        }
        if lambda_arn:
            kwargs["RotationLambdaARN"] = lambda_arn
            kwargs["RotationRules"] = {"AutomaticallyAfterDays": days}
        self._sm.rotate_secret(**kwargs)

    def schedule_deletion(self, secret_id: str, recovery_days: int) -> None:
        try:
            self._sm.delete_secret(SecretId=secret_id, RecoveryWindowInDays=max(7, min(30, recovery_days)))
        except ClientError as exc:
            if _code(exc) not in ("ResourceNotFoundException",):
                raise
