"""Settings read from the environment: TOKENWARDEN_<FIELD> in any case, the region from AWS_REGION or
AWS_DEFAULT_REGION, a given value over the environment's, and a bad value named by its field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tokenwarden.settings import Settings, environment_settings, load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(variable, raising=False)


def test_each_field_is_read_from_its_variable_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENWARDEN_LEDGER_TABLE", "team-ledger")
    monkeypatch.setenv("tokenwarden_max_key_age_days", "30")
    monkeypatch.setenv("TokenWarden_Registry_Path", "/var/task/teams.yaml")
    settings = Settings()
    assert settings.ledger_table == "team-ledger"
    assert settings.max_key_age_days == 30
    assert settings.registry_path == Path("/var/task/teams.yaml")


def test_the_region_comes_from_aws_region_before_aws_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENWARDEN_REGION", "ap-south-1")
    assert Settings().region == "us-east-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert Settings().region == "eu-central-1"
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert Settings().region == load_settings().region == "eu-west-1"


def test_a_given_value_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENWARDEN_USER_PREFIX", "env-")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    settings = Settings(user_prefix="given-", region="us-west-2")
    assert (settings.user_prefix, settings.region) == ("given-", "us-west-2")


def test_a_blank_variable_is_no_value_and_others_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENWARDEN_TOPIC_ARN", "  ")
    monkeypatch.setenv("TOKENWARDEN_NOT_A_SETTING", "x")
    assert Settings().topic_arn is None
    assert environment_settings({"TOKENWARDEN_NOT_A_SETTING": "x", "HOME": "/root"}) == {}


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("TOKENWARDEN_MAX_KEY_AGE_DAYS", "91", "max_key_age_days"),
        ("TOKENWARDEN_PROBE_ATTEMPTS", "many", "probe_attempts"),
        ("TOKENWARDEN_PROMQL_DIALECT", "graphite", "promql_dialect"),
        ("TOKENWARDEN_HEALTH_WINDOW_HOURS", "169", "health_window_hours"),
    ],
)
def test_a_bad_value_is_refused_naming_its_field(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert [error["loc"] for error in refused.value.errors()] == [(field,)]


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.user_prefix = "other-"  # type: ignore[misc]
