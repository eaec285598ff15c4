"""Principal `p` <-> IAM user `<user_prefix>p` on `<user_path>` <-> secret `<secret_prefix>p`."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, field_validator

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?")
"""A principal id: what the registry accepts, and what every name above is made from."""


class Naming(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_prefix: str = "tw-"
    user_path: str = "/tokenwarden/"
    secret_prefix: str = "tokenwarden/"

    @field_validator("user_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not (value.startswith("/") and value.endswith("/")):
            raise ValueError("an IAM path starts and ends with '/'")
        return value

    def user_name(self, principal: str) -> str:
        return f"{self.user_prefix}{principal}"

    def secret_name(self, principal: str) -> str:
        return f"{self.secret_prefix}{principal}"

    def principal_of_user(self, user_name: str) -> str | None:
        if user_name.startswith(self.user_prefix) and len(user_name) > len(self.user_prefix):
            return user_name[len(self.user_prefix) :]
        return None

    def principal_of_secret(self, secret_name: str) -> str | None:
        if secret_name.startswith(self.secret_prefix) and len(secret_name) > len(self.secret_prefix):
            return secret_name[len(self.secret_prefix) :]
        return None
