"""Settings validated once at cold start (or CLI start) from TOKENWARDEN_* variables."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tokenwarden.domain.naming import Naming
from tokenwarden.domain.ownership import MAX_OPERATORS, OwnershipRules, check_arn_pattern
from tokenwarden.domain.promql import MAX_LAST_SAMPLE_WINDOW


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOKENWARDEN_", frozen=True, extra="ignore")

    region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )
    user_path: str = "/tokenwarden/"
    user_prefix: str = "tw-"
    secret_prefix: str = "tokenwarden/"
    ledger_table: str = "tokenwarden-ledger"
    topic_arn: str | None = None
    rotation_lambda_arn: str | None = None
    # The nightly state machine (the stack's NightlyStateMachineArn): `apply --via-state-machine`.
    state_machine_arn: str | None = None
    secrets_kms_key_id: str | None = None
    # The shared key secrets were encrypted with before TokenWarden had its own: such secrets are
    # re-keyed to `secrets_kms_key_id` (see domain/ownership.py), never refused or left on it.
    legacy_kms_key_id: str | None = None
    # An IAM ARN pattern matching TokenWarden's own Lambda roles (ArnLike), named in every
    # secret's resource policy as allowed to read and change it.
    service_role_arn_pattern: str | None = None
    # Comma-separated IAM ARNs or patterns of the operators who run the CLI against the account.
    operator_arns: str = ""
    permissions_boundary_arn: str | None = None
    max_key_age_days: int = Field(default=90, ge=1, le=90)
    otlp_endpoint: str | None = None
    registry_path: Path = Path("teams.yaml")
    probe_attempts: int = Field(default=8, ge=1)
    promql_url: str | None = None  # default: CloudWatch's PromQL API in this region
    promql_dialect: Literal["cloudwatch", "prometheus"] = "cloudwatch"
    promql_signing: Literal["auto", "monitoring", "aps", "none"] = "auto"
    health_metrics: str = "claude_code.session.count,claude_code.token.usage"
    # CloudWatch's 7-day limit counts the query's lookback too (see domain/promql.py).
    health_window_hours: float = Field(
        default=24.0, ge=1 / 60, le=MAX_LAST_SAMPLE_WINDOW / timedelta(hours=1)
    )
    health_reminder_hours: float = Field(default=24.0, gt=0)
    # One DaysToExpiry metric per principal (template parameter PrincipalMetrics): a custom metric each.
    principal_metrics: bool = False

    @field_validator(
        "topic_arn",
        "rotation_lambda_arn",
        "state_machine_arn",
        "secrets_kms_key_id",
        "legacy_kms_key_id",
        "service_role_arn_pattern",
        "permissions_boundary_arn",
        "otlp_endpoint",
        "promql_url",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("service_role_arn_pattern")
    @classmethod
    def _service_roles(cls, value: str | None) -> str | None:
        return None if value is None else check_arn_pattern(value.strip())

    @field_validator("operator_arns")
    @classmethod
    def _operators(cls, value: str) -> str:
        listed = [item.strip() for item in value.split(",") if item.strip()]
        if len(listed) > MAX_OPERATORS:
            raise ValueError(f"at most {MAX_OPERATORS} operator ARNs")
        for item in listed:
            check_arn_pattern(item)
        return ",".join(listed)

    @property
    def operators(self) -> tuple[str, ...]:
        return tuple(item for item in self.operator_arns.split(",") if item)

    @property
    def ownership(self) -> OwnershipRules:
        """What TokenWarden's secrets and users look like in this deployment."""
        return OwnershipRules(
            secrets_kms_key_id=self.secrets_kms_key_id,
            legacy_kms_key_id=self.legacy_kms_key_id,
            service_role_pattern=self.service_role_arn_pattern,
            operator_arns=self.operators,
            user_path=self.user_path,
            api_key_policy_arn=f"arn:{self.partition}:iam::aws:policy/CloudWatchAPIKeyAccess",
            permissions_boundary_arn=self.permissions_boundary_arn,
        )

    @property
    def naming(self) -> Naming:
        return Naming(
            user_prefix=self.user_prefix, user_path=self.user_path, secret_prefix=self.secret_prefix
        )

    @property
    def otlp_metrics_endpoint(self) -> str:
        return self.otlp_endpoint or f"https://monitoring.{self.region}.amazonaws.com/v1/metrics"

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.health_metrics.split(",") if name.strip())

    @property
    def signing(self) -> str:
        if self.promql_signing != "auto":
            return self.promql_signing
        if self.promql_dialect == "cloudwatch":
            return "monitoring"
        return "aps" if self.promql_url and "aps-workspaces." in self.promql_url else "none"

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"


def load_settings() -> Settings:
    return Settings(
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    )
