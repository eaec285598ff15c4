"""Settings validated once at cold start (or CLI start) from TOKENWARDEN_* variables."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tokenwarden.domain.naming import Naming
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
    secrets_kms_key_id: str | None = None
    permissions_boundary_arn: str | None = None
    max_key_age_days: int = Field(default=90, ge=1, le=90)
    otlp_endpoint: str | None = None
    registry_path: Path = Path("teams.yaml")
    probe_attempts: int = Field(default=8, ge=1)
    stack_url: str | None = None  # the embedded local stack's control URL, when running against it
    promql_url: str | None = None  # default: CloudWatch's PromQL API in this region
    promql_dialect: Literal["cloudwatch", "prometheus"] = "cloudwatch"
    promql_signing: Literal["auto", "monitoring", "aps", "none"] = "auto"
    health_metrics: str = "claude_code.session.count,claude_code.token.usage"
    # CloudWatch's 7-day limit counts the query's lookback too (see domain/promql.py).
    health_window_hours: float = Field(
        default=24.0, ge=1 / 60, le=MAX_LAST_SAMPLE_WINDOW / timedelta(hours=1)
    )
    health_reminder_hours: float = Field(default=24.0, gt=0)

    @field_validator(
        "topic_arn",
        "rotation_lambda_arn",
        "secrets_kms_key_id",
        "permissions_boundary_arn",
        "otlp_endpoint",
        "stack_url",
        "promql_url",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

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
