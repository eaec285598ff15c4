"""IAM: users on TokenWarden's path and their CloudWatch service-specific credentials."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from tokenwarden.adapters.aws import translating
from tokenwarden.domain.model import SERVICE_NAME, Credential, IssuedCredential, User
from tokenwarden.domain.ownership import UserFacts
from tokenwarden.errors import AwsError

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import (
        ListServiceSpecificCredentialsRequestTypeDef,
        ListServiceSpecificCredentialsResponseTypeDef,
    )
    from mypy_boto3_sts import STSClient

API_KEY_POLICY = "arn:{partition}:iam::aws:policy/CloudWatchAPIKeyAccess"


def _credential(item: Mapping[str, Any]) -> Credential:
    return Credential(
        id=item["ServiceSpecificCredentialId"],
        user_name=item["UserName"],
        alias=item.get("ServiceCredentialAlias")
        or item.get("ServiceUserName")
        or item["ServiceSpecificCredentialId"],
        status=item["Status"],
        created_at=item["CreateDate"],
        expires_at=item.get("ExpirationDate"),
        service_name=item.get("ServiceName", SERVICE_NAME),
    )


# IAM is eventually consistent: a user created a moment ago may answer NoSuchEntity to
# CreateServiceSpecificCredential for a short while. Waits between attempts, in seconds: the
# first is about how long a new user usually takes to be seen (a shorter one mostly buys one
# more refused call), and the total (about 24 s) still fits a step's margin.
NEW_USER_WAITS = (2.0, 2.0, 4.0, 8.0, 8.0)


# The listings of what else a user has, each read to its last page.
UserListing = Literal[
    "list_attached_user_policies", "list_user_policies", "list_groups_for_user", "list_access_keys"
]


class IamAdapter:
    def __init__(
        self,
        client: IAMClient,
        partition: str = "aws",
        sts: STSClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._iam = translating(client)
        self._sts = translating(sts) if sts is not None else None
        self._policy_arn = API_KEY_POLICY.format(partition=partition)
        self.sleep = sleep

    def get_user(self, name: str) -> User | None:
        try:
            user = self._iam.get_user(UserName=name)["User"]
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                return None
            raise
        return User(name=user["UserName"], path=user["Path"], arn=user["Arn"])

    def caller(self) -> str:
        if self._sts is None:
            return "unknown"
        return str(self._sts.get_caller_identity()["Arn"])

    def delete_user(self, user_name: str) -> bool:
        try:
            self._iam.detach_user_policy(UserName=user_name, PolicyArn=self._policy_arn)
        except AwsError as exc:
            if exc.code != "NoSuchEntity":
                raise
        try:
            self._iam.delete_user(UserName=user_name)
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                return False
            raise
        return True

    def list_users(self, path: str) -> list[User]:
        users: list[User] = []
        # IAM's largest page (the default is 100): a quiet night reads as few pages as it can.
        pages = self._iam.get_paginator("list_users").paginate(
            PathPrefix=path, PaginationConfig={"PageSize": 1000}
        )
        for page in pages:
            users += [User(name=u["UserName"], path=u["Path"], arn=u["Arn"]) for u in page["Users"]]
        return users

    def _pages(self, user_name: str | None) -> Iterator[ListServiceSpecificCredentialsResponseTypeDef]:
        """The pages of one user's keys, or of every user's (None). boto3 has no paginator for
        ListServiceSpecificCredentials: Marker is followed by hand."""
        request: ListServiceSpecificCredentialsRequestTypeDef = {
            "ServiceName": SERVICE_NAME,
            "MaxItems": 1000,
        }
        if user_name is None:
            request["AllUsers"] = True
        else:
            request["UserName"] = user_name
        while True:
            page = self._iam.list_service_specific_credentials(**request)
            yield page
            marker = page.get("Marker")
            if not page.get("IsTruncated") or not marker:
                return
            request["Marker"] = marker

    def list_all_credentials(self) -> list[Credential]:
        return [_credential(c) for page in self._pages(None) for c in page["ServiceSpecificCredentials"]]

    def list_user_credentials(self, user_name: str) -> list[Credential]:
        try:
            return [
                _credential({"UserName": user_name, **c})
                for page in self._pages(user_name)
                for c in page["ServiceSpecificCredentials"]
            ]
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                return []
            raise

    def create_user(
        self, name: str, path: str, tags: Mapping[str, str], permissions_boundary: str | None
    ) -> bool:
        """Create the user; False when one by that name exists already (which the caller must
        then judge: an existing user is never adopted, tagged or given a policy here)."""
        kwargs: dict[str, Any] = {
            "UserName": name,
            "Path": path,
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        }
        if permissions_boundary:
            kwargs["PermissionsBoundary"] = permissions_boundary
        try:
            self._iam.create_user(**kwargs)
        except AwsError as exc:
            if exc.code == "EntityAlreadyExists":
                return False
            raise
        return True

    def inspect_user(self, name: str) -> UserFacts | None:
        """The user with everything that could let its keys do more: policies, groups, access
        keys, console password, boundary. None when there is no such user."""
        try:
            user = self._iam.get_user(UserName=name)["User"]
            facts = UserFacts(
                name=user["UserName"],
                path=user["Path"],
                arn=user["Arn"],
                tags={t["Key"]: t["Value"] for t in user.get("Tags") or []},
                permissions_boundary=(user.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
                attached_policies=tuple(
                    p["PolicyArn"] for p in self._all("list_attached_user_policies", "AttachedPolicies", name)
                ),
                inline_policies=tuple(self._all("list_user_policies", "PolicyNames", name)),
                groups=tuple(g["GroupName"] for g in self._all("list_groups_for_user", "Groups", name)),
                access_keys=len(self._all("list_access_keys", "AccessKeyMetadata", name)),
                login_profile=self._has_login_profile(name),
            )
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                return None
            raise
        return facts

    def _all(self, operation: UserListing, key: str, user_name: str) -> list[Any]:
        items: list[Any] = []
        for page in self._iam.get_paginator(operation).paginate(UserName=user_name):
            items += page[key]
        return items

    def _has_login_profile(self, user_name: str) -> bool:
        try:
            self._iam.get_login_profile(UserName=user_name)
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                return False
            raise
        return True

    def attach_api_key_policy(self, user_name: str) -> None:
        self._iam.attach_user_policy(UserName=user_name, PolicyArn=self._policy_arn)

    def put_boundary(self, user_name: str, boundary_arn: str) -> None:
        self._iam.put_user_permissions_boundary(UserName=user_name, PermissionsBoundary=boundary_arn)

    def tag_user(self, user_name: str, tags: Mapping[str, str]) -> None:
        self._iam.tag_user(UserName=user_name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def create_credential(self, user_name: str, age_days: int) -> IssuedCredential:
        if not 1 <= age_days <= 36600:
            raise ValueError(f"credential age {age_days} is outside 1-36600 days")
        answer = self._create_when_visible(user_name, age_days)
        token = answer.get("ServiceCredentialSecret")
        if not isinstance(token, str) or not token:
            # Checked here, not by pydantic: a validation error would quote the value it refused.
            raise RuntimeError(f"CreateServiceSpecificCredential for {user_name} returned no usable secret")
        return IssuedCredential(credential=_credential(answer), token=token)

    def _create_when_visible(self, user_name: str, age_days: int) -> dict[str, Any]:
        for wait in (*NEW_USER_WAITS, None):
            try:
                answer: dict[str, Any] = dict(
                    self._iam.create_service_specific_credential(
                        UserName=user_name, ServiceName=SERVICE_NAME, CredentialAgeDays=age_days
                    )["ServiceSpecificCredential"]
                )
            except AwsError as exc:
                if exc.code != "NoSuchEntity" or wait is None:
                    raise
                self.sleep(wait)  # a new user is not visible everywhere yet
                continue
            return answer
        raise AssertionError("unreachable")

    def set_credential_status(self, user_name: str, credential_id: str, active: bool) -> None:
        self._iam.update_service_specific_credential(
            UserName=user_name,
            ServiceSpecificCredentialId=credential_id,
            Status="Active" if active else "Inactive",
        )

    def delete_credential(self, user_name: str, credential_id: str) -> bool:
        try:
            self._iam.delete_service_specific_credential(
                UserName=user_name, ServiceSpecificCredentialId=credential_id
            )
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                return False
            raise
        return True
