"""The embedded stack's ListSecrets (`tokenwarden.local.listings`): moto's pages, secrets and
tokens, describing only the secrets of the page asked for; and its secrets found by name
(`tokenwarden.local.secrets_lookup`) as moto finds them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.secretsmanager.models import FakeSecret, secretsmanager_backends

from tokenwarden.local import listings, secrets_lookup

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


def test_a_secret_is_found_by_name_arn_and_partial_arn_as_moto_finds_it(sm: Any) -> None:
    """tokenwarden.local.secrets_lookup: a name is looked up, not walked to; ids moto finds by
    walking (an ARN, a partial ARN) still find the same secret, and an unknown id none."""
    secrets_lookup.install()
    arn = sm.describe_secret(SecretId=f"{PREFIX}p-007")["ARN"]
    store = next(iter(secretsmanager_backends.values()))["us-east-1"].secrets
    moto_s = getattr(type(store).__getitem__, secrets_lookup.PATCH_MARK)

    for key in (f"{PREFIX}p-007", arn, arn[: -len("-abcdef")]):
        assert store[key] is moto_s(store, key), key
        assert key in store and store.get(key) is moto_s(store, key)
        assert sm.get_secret_value(SecretId=key)["Name"] == f"{PREFIX}p-007"
    assert "tokenwarden/p-999" not in store and store.get("tokenwarden/p-999") is None
    # Looked up, not walked to: a name and a full ARN; a partial ARN is left to moto's walk.
    assert secrets_lookup.by_name(f"{PREFIX}p-007", store) is secrets_lookup.by_name(arn, store) is store[arn]
    assert secrets_lookup.by_name(arn[: -len("-abcdef")], store) is None
