"""The embedded stack's ListSecrets (`tokenwarden.local.listings`): moto's pages, secrets and
tokens, describing only the secrets of the page asked for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.secretsmanager.models import FakeSecret

from tokenwarden.local import listings

PREFIX = "tokenwarden/"


@pytest.fixture
def sm() -> Iterator[Any]:
    listings.install()
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        for i in range(250):
            client.create_secret(Name=f"{PREFIX}p-{i:03d}", SecretString="x")
        client.create_secret(Name="elsewhere/p-000", SecretString="x")
        yield client


def names(sm: Any, **kwargs: Any) -> list[str]:
    pages = sm.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": [PREFIX]}], PaginationConfig={"PageSize": 100}, **kwargs
    )
    return [s["Name"] for page in pages for s in page["SecretList"]]


def test_every_matching_secret_is_listed_once_in_order(sm: Any) -> None:
    assert names(sm) == [f"{PREFIX}p-{i:03d}" for i in range(250)]


def test_a_secret_scheduled_for_deletion_is_listed_only_when_asked(sm: Any) -> None:
    sm.delete_secret(SecretId=f"{PREFIX}p-007", RecoveryWindowInDays=7)
    assert f"{PREFIX}p-007" not in names(sm)
    assert f"{PREFIX}p-007" in names(sm, IncludePlannedDeletion=True)


def test_a_page_describes_only_its_own_secrets(sm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    described: list[str] = []
    real = FakeSecret.to_dict

    def counted(self: FakeSecret) -> dict[str, Any]:
        described.append(self.name)
        return real(self)

    monkeypatch.setattr(FakeSecret, "to_dict", counted)
    first = sm.list_secrets(Filters=[{"Key": "name", "Values": [PREFIX]}], MaxResults=100)
    last = sm.list_secrets(
        Filters=[{"Key": "name", "Values": [PREFIX]}], MaxResults=100, NextToken=first["NextToken"]
    )
    assert len(first["SecretList"]) == 100 and len(last["SecretList"]) == 100
    assert len(described) == 200  # moto alone describes every matching secret for each page: 500
