"""Settings validated once at cold start (or CLI start) from TOKENWARDEN_* variables.

Read from the environment by pydantic alone: pydantic-settings would cost a Lambda cold start
about a fifth of a bare Powertools handler's import, for the few lines of `environment_settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic.fields import FieldInfo

from tokenwarden.domain.naming import Naming
from tokenwarden.domain.ownership import MAX_OPERATORS, OwnershipRules, check_arn_pattern
from tokenwarden.domain.promql_limits import MAX_LAST_SAMPLE_WINDOW

ENV_PREFIX = "TOKENWARDEN_"


class Settings(BaseModel):
    """Each field not given is read from its variable (:func:`environment_settings`); a value given
    wins over the environment's. Defaults are validated like given values."""

    model_config = ConfigDict(frozen=True, extra="ignore", validate_default=True, validate_by_name=True)

    def __init__(self, **given: Any) -> None:
        super().__init__(**{**environment_settings(os.environ), **given})

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
    # How long a key the health check re-activates automatically stays active (domain/rollback.py);
    # 0 turns the automatic rollback off.
    rollback_grace_days: int = Field(default=3, ge=0, le=14)
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


def _variables(name: str, field: FieldInfo) -> tuple[str, ...]:
    """The variables that set a field, lower-cased: its alias choices, else TOKENWARDEN_<FIELD>."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice).lower() for choice in alias.choices)
    return (f"{ENV_PREFIX}{name}".lower(),)


def environment_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings `environ` sets, by field name, as text for the model to validate. Variable names
    are matched in any case; of a field's alias choices the first one set wins; other variables are
    ignored."""
    lowered = {variable.lower(): value for variable, value in environ.items()}
    found: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        value = next((lowered[v] for v in _variables(name, field) if v in lowered), None)
        if value is not None:
            found[name] = value
    return found


def load_settings() -> Settings:
    return Settings(
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    )
