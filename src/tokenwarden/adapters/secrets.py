"""Secrets Manager: one secret per principal whose SecretString is the raw token."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tokenwarden.adapters.aws import translating
from tokenwarden.domain.model import AWSCURRENT, AWSPENDING, SecretState
from tokenwarden.domain.ownership import (
    NotTokenWardens,
    OwnershipRules,
    SecretFacts,
    judge_secret,
    policy_text,
    refusal,
)
from tokenwarden.errors import AwsError, AwsUnavailable

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


class SecretWriteError(RuntimeError):
    """Storing a token failed. The message never carries the token or the request that held it."""


def _denied(secret_id: str, exc: AwsError) -> NotTokenWardens:
    """Roles reach only secrets tagged as TokenWarden's (aws:ResourceTag conditions): a secret under
    the prefix that answers AccessDenied is someone else's."""
    return NotTokenWardens(
        f"secret {secret_id} is not TokenWarden's: {exc.operation} answered {exc.code} "
        "(TokenWarden's roles reach only secrets tagged as its own)"
    )


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
        kms_key_id=item.get("KmsKeyId") or None,
        tags={t["Key"]: t["Value"] for t in item.get("Tags") or []},
    )


class SecretsAdapter:
    """With `rules`, no token is ever written into a secret that is not verifiably TokenWarden's
    (its key, its tag, its resource policy), whoever asks for the write."""

    def __init__(self, client: SecretsManagerClient, rules: OwnershipRules | None = None) -> None:
        self._sm = translating(client)
        self._rules = rules

    def list_secrets(self, prefix: str) -> list[SecretState]:
        secrets: list[SecretState] = []
        paginator = self._sm.get_paginator("list_secrets")
        for page in paginator.paginate(
            Filters=[{"Key": "name", "Values": [prefix]}],
            IncludePlannedDeletion=True,
            PaginationConfig={"PageSize": 100},  # Secrets Manager's largest page
        ):
            secrets += [_state(s) for s in page["SecretList"] if s["Name"].startswith(prefix)]
        return secrets

    def _describe_raw(self, secret_id: str) -> dict[str, Any] | None:
        try:
            answer: dict[str, Any] = dict(self._sm.describe_secret(SecretId=secret_id))
        except AwsError as exc:
            if exc.code == "ResourceNotFoundException":
                return None
            if exc.access_denied:
                raise _denied(secret_id, exc) from None
            raise
        return answer

    def describe(self, secret_id: str) -> SecretState | None:
        answer = self._describe_raw(secret_id)
        return None if answer is None else _state(answer)

    def tags(self, secret_id: str) -> dict[str, str]:
        answer = self._describe_raw(secret_id) or {}
        return {t["Key"]: t["Value"] for t in answer.get("Tags") or []}

    def inspect(self, secret_id: str, described: SecretState | None = None) -> SecretFacts | None:
        """Key, tags, versions and resource policy of a secret; None when there is none.

        `described`: what a DescribeSecret of this same step already answered; only the policy
        is read then (one call instead of two)."""
        state = described
        if state is None:
            answer = self._describe_raw(secret_id)
            if answer is None:
                return None
            state = _state(answer)
        policy: dict[str, Any] | None = None
        policy_read = state.deleted_at is None  # a secret scheduled for deletion answers nothing more
        if policy_read:
            try:
                raw = self._sm.get_resource_policy(SecretId=state.arn).get("ResourcePolicy")
            except AwsError as exc:
                if exc.access_denied:
                    raise _denied(secret_id, exc) from None
                raise
            policy = _parsed_policy(raw)
        return SecretFacts(
            name=state.name,
            arn=state.arn,
            kms_key_id=state.kms_key_id,
            tags=state.tags,
            has_versions=bool(state.versions),
            deleted=state.deleted_at is not None,
            policy=policy,
            policy_read=policy_read,
        )

    def create(self, name: str, tags: Mapping[str, str], kms_key_id: str, description: str) -> str | None:
        """Create the secret (no value yet): its ARN; None when one by that name exists already
        (which the caller must then judge: it is never adopted here)."""
        try:
            answer = self._sm.create_secret(
                Name=name,
                Description=description,
                KmsKeyId=kms_key_id,
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
        except AwsError as exc:
            if exc.code == "ResourceExistsException":
                return None
            raise
        return str(answer["ARN"])

    def put_policy(self, secret_id: str, document: Mapping[str, Any]) -> None:
        self._sm.put_resource_policy(
            SecretId=secret_id, ResourcePolicy=policy_text(document), BlockPublicPolicy=True
        )

    def rekey(self, secret_id: str, kms_key_id: str) -> None:
        """Encrypt the secret with another key (Secrets Manager re-encrypts its labelled versions)."""
        self._sm.update_secret(SecretId=secret_id, KmsKeyId=kms_key_id)

    def restore(self, secret_id: str) -> None:
        self._sm.restore_secret(SecretId=secret_id)

    def tag(self, secret_id: str, tags: Mapping[str, str]) -> None:
        self._sm.tag_resource(SecretId=secret_id, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def verify_owned(
        self, secret_id: str, principal: str | None = None, described: SecretState | None = None
    ) -> None:
        """Raise NotTokenWardens unless a token may be written into this secret: TokenWarden's
        tag, TokenWarden's secrets key and a resource policy of TokenWarden's. Without rules
        (tests of other parts) there is nothing to compare with and nothing is checked.
        `described`: the secret as this same step just described it (its tag and key are judged
        from it; the policy is always read)."""
        if self._rules is None:
            return
        self._rules.require()
        facts = self.inspect(secret_id, described)
        if facts is None:
            raise NotTokenWardens(f"secret {secret_id} does not exist")
        verdict = judge_secret(facts, principal, self._rules, wanted_policy=None, history=False)
        if not verdict.ours:
            raise NotTokenWardens(refusal("secret", facts.name, verdict))

    def version_token(self, secret_id: str, version_id: str) -> str | None:
        try:
            answer = self._sm.get_secret_value(SecretId=secret_id, VersionId=version_id)
        except AwsError as exc:
            if exc.code in ("ResourceNotFoundException", "InvalidRequestException"):
                return None
            raise
        value = answer.get("SecretString")
        return value if isinstance(value, str) and value else None

    def current_token(self, secret_id: str) -> str | None:
        try:
            answer = self._sm.get_secret_value(SecretId=secret_id, VersionStage=AWSCURRENT)
        except AwsError as exc:
            if exc.code == "ResourceNotFoundException":
                return None
            raise
        value = answer.get("SecretString")
        return value if isinstance(value, str) and value else None

    def put_pending(self, secret_id: str, version_id: str, token: str) -> None:
        try:
            self.verify_owned(secret_id)
        except NotTokenWardens as exc:
            raise SecretWriteError(f"refusing to store version {version_id}: {exc}") from None
        try:
            self._sm.put_secret_value(
                SecretId=secret_id,
                ClientRequestToken=version_id,
                SecretString=token,
                VersionStages=[AWSPENDING],
            )
        except (AwsError, AwsUnavailable) as exc:
            # Raised without its cause: a service or client message may quote the request it refused.
            code = exc.code if isinstance(exc, AwsError) else exc.kind
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
        except AwsError as exc:
            if exc.code not in ("InvalidParameterException", "ResourceNotFoundException"):
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
        except AwsError as exc:
            if exc.code not in ("ResourceNotFoundException",):
                raise


def _parsed_policy(raw: object) -> dict[str, Any] | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        document = json.loads(raw)
    except ValueError:
        return {"unparsable": True}  # judged "not TokenWarden's"
    return document if isinstance(document, dict) else {"unparsable": True}
