"""Nothing is taken over by name: a secret or IAM user someone else made (or changed) under
TokenWarden's names is refused, announced and left alone, while what TokenWarden itself left
unfinished, or made before resource policies and its own key existed, is finished."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import T0, Crash, Env, check_invariants, open_env
from tokenwarden.adapters.secrets import SecretWriteError
from tokenwarden.domain.ownership import POLICY_TAG, NotTokenWardens, is_tokenwarden_policy
from tokenwarden.domain.registry import parse_registry
from tokenwarden.local import realism
from tokenwarden.service import reconciler as reconciler_module
from tokenwarden.wiring import build_adapters, build_custody

REGISTRY = parse_registry("principals: [{id: alpha}, {id: beta}]", "takeover-test")
API_KEY_POLICY = "arn:aws:iam::aws:policy/CloudWatchAPIKeyAccess"


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    counted: list[tuple[str, float]] = []
    monkeypatch.setattr(reconciler_module, "count", lambda name, value: counted.append((name, value)))
    return counted


@contextlib.contextmanager
def setup(env: Env) -> Iterator[None]:
    """The test's own moves (the insider's) are never faulted by the harsh world."""
    with realism.setup_calls():
        yield


def outcome(report: Any, principal: str) -> Any:
    return next(o for o in report.outcomes if o.principal == principal)


def refusals(env: Env) -> list[dict[str, Any]]:
    return [m for m in env.messages() if m["_attributes"]["event_type"] == "takeover_refused"]


def versions(env: Env, principal: str) -> dict[str, list[str]]:
    return env.secret_versions(principal)


def tokens_in(env: Env, principal: str) -> set[str]:
    sm = env.client("secretsmanager")
    found = set()
    for version in versions(env, principal):
        with contextlib.suppress(ClientError):
            found.add(
                sm.get_secret_value(SecretId=f"tokenwarden/{principal}", VersionId=version)["SecretString"]
            )
    return found


def assert_refused(env: Env, report: Any, found: str, metrics: list[tuple[str, float]]) -> None:
    alpha = outcome(report, "alpha")
    assert alpha.status == "failed"
    assert alpha.error is not None and alpha.error.startswith("refused: ") and found in alpha.error
    assert outcome(report, "beta").status == "ok"  # the run goes on with the others
    (message,) = refusals(env)
    assert message["_attributes"]["severity"] == "critical" and message["_attributes"]["principal"] == "alpha"
    assert found in message["content"]["description"]
    assert "No key was created, stored or read" in message["content"]["description"]
    assert any("tokenwarden apply" in step for step in message["content"]["nextSteps"])
    assert ("TakeoverRefused", 1) in metrics
    assert env.credentials("alpha") == []  # no key was made for it


# -- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kms", "tagged", "found"),
    [
        (None, True, "encrypted with the AWS managed key"),
        ("alias/aws/secretsmanager", True, "the AWS managed key"),
        ("own", False, "not tagged tokenwarden:managed-by=tokenwarden"),
    ],
)
def test_a_precreated_secret_is_refused_and_never_written(
    env: Env, metrics: list[tuple[str, float]], kms: str | None, tagged: bool, found: str
) -> None:
    sm = env.client("secretsmanager")
    kwargs: dict[str, Any] = {"Name": "tokenwarden/alpha"}
    if kms == "own":
        kwargs["KmsKeyId"] = env.settings.secrets_kms_key_id
    elif kms:
        kwargs["KmsKeyId"] = kms
    if tagged:
        kwargs["Tags"] = [{"Key": "tokenwarden:managed-by", "Value": "tokenwarden"}]
    with setup(env):
        sm.create_secret(**kwargs)

    report = env.run(registry=REGISTRY)

    assert_refused(env, report, found, metrics)
    assert versions(env, "alpha") == {}  # no token was written into it
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId="tokenwarden/alpha")  # nor changed
    described = sm.describe_secret(SecretId="tokenwarden/alpha")
    assert {t["Key"] for t in described.get("Tags", [])} == ({"tokenwarden:managed-by"} if tagged else set())
    assert check_invariants(env, parse_registry("principals: [{id: beta}]", "t")) == []

    again = env.run(T0 + timedelta(days=1), registry=REGISTRY)  # every run, not only the first
    assert outcome(again, "alpha").status == "failed" and len(refusals(env)) == 1
    assert env.credentials("alpha") == []


def test_a_precreated_secret_holding_a_value_is_refused(env: Env, metrics: list[tuple[str, float]]) -> None:
    with setup(env):
        env.client("secretsmanager").create_secret(
            Name="tokenwarden/alpha",
            KmsKeyId=env.settings.secrets_kms_key_id,
            SecretString="planted",
            Tags=[{"Key": "tokenwarden:managed-by", "Value": "tokenwarden"}],
        )
    report = env.run(registry=REGISTRY)
    assert_refused(env, report, "holds a value TokenWarden never recorded", metrics)
    assert tokens_in(env, "alpha") == {"planted"}


def test_a_foreign_resource_policy_is_refused(env: Env, metrics: list[tuple[str, float]]) -> None:
    sm = env.client("secretsmanager")
    foreign = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:role/x"},
                "Action": "*",
                "Resource": "*",
            }
        ],
    }
    with setup(env):
        sm.create_secret(
            Name="tokenwarden/alpha",
            KmsKeyId=env.settings.secrets_kms_key_id,
            Tags=[{"Key": "tokenwarden:managed-by", "Value": "tokenwarden"}],
        )
        sm.put_resource_policy(SecretId="tokenwarden/alpha", ResourcePolicy=json.dumps(foreign))
    report = env.run(registry=REGISTRY)
    assert_refused(env, report, "its resource policy is not TokenWarden's", metrics)
    assert json.loads(sm.get_resource_policy(SecretId="tokenwarden/alpha")["ResourcePolicy"]) == foreign


def test_a_secret_rekeyed_later_is_refused_on_the_next_run_and_by_every_token_write(
    env: Env, metrics: list[tuple[str, float]]
) -> None:
    env.run(registry=REGISTRY)
    token = env.current_token("alpha")
    env.messages()
    sm = env.client("secretsmanager")
    with setup(env):
        other = env.client("kms").create_key()["KeyMetadata"]["Arn"]
        sm.update_secret(SecretId="tokenwarden/alpha", KmsKeyId=other)

    # Nothing is due, yet the run sees the key change in ListSecrets and refuses at once.
    report = env.run(T0 + timedelta(hours=1), registry=REGISTRY)
    assert outcome(report, "alpha").status == "failed"
    assert f"encrypted with KMS key {other}" in (outcome(report, "alpha").error or "")
    assert outcome(report, "beta").status == "unchanged"
    assert len(refusals(env)) == 1

    # Whoever asks (the rotation function on Secrets Manager's own schedule, a retry), no token
    # goes into it: the adapter checks before every write.
    alpha = env.reconciler.secrets.describe("tokenwarden/alpha")
    assert alpha is not None
    with pytest.raises(SecretWriteError, match="not TokenWarden's"):
        env.reconciler.secrets.put_pending(alpha.arn, "v-later", "some-token")
    keys = {c["ServiceSpecificCredentialId"] for c in env.credentials("alpha")}
    with setup(env):
        sm.rotate_secret(SecretId="tokenwarden/alpha")
    env.settle()
    assert env.current_token("alpha") == token
    assert tokens_in(env, "alpha") == {token}
    # createSecret refuses before it makes a key: no token was issued that had nowhere safe to go.
    assert {c["ServiceSpecificCredentialId"] for c in env.credentials("alpha")} == keys


def test_accessdenied_on_a_secret_under_the_prefix_means_not_ours(
    env: Env, metrics: list[tuple[str, float]]
) -> None:
    """The roles will reach only secrets tagged as TokenWarden's: a foreign secret answers AccessDenied."""
    with setup(env):
        env.client("secretsmanager").create_secret(Name="tokenwarden/alpha")
    client = env.adapters.secrets._sm

    def deny(params: dict[str, Any], **_: Any) -> Any:
        if "tokenwarden/alpha" in str(params.get("body", "")):  # the request as it would be sent
            return (_Denied(), {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}})
        return None

    for operation in ("DescribeSecret", "GetResourcePolicy"):
        client.meta.events.register(f"before-call.secrets-manager.{operation}", deny)
    report = env.run(registry=REGISTRY)
    assert_refused(env, report, "DescribeSecret answered AccessDeniedException", metrics)


class _Denied:
    status_code = 400
    headers: dict[str, str] = {}


# -- users ------------------------------------------------------------------------------------


def _attach(iam: Any) -> None:
    iam.attach_user_policy(UserName="tw-alpha", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")


def _inline(iam: Any) -> None:
    iam.put_user_policy(
        UserName="tw-alpha",
        PolicyName="more",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )


def _group(iam: Any) -> None:
    iam.create_group(GroupName="admins")
    iam.add_user_to_group(GroupName="admins", UserName="tw-alpha")


USER_CHANGES: list[tuple[str, Callable[[Any], Any], str]] = [
    ("managed policy", _attach, "AdministratorAccess"),
    ("inline policy", _inline, "inline policies: more"),
    ("group", _group, "groups: admins"),
    ("access key", lambda iam: iam.create_access_key(UserName="tw-alpha"), "1 access key"),
    (
        "password",
        lambda iam: iam.create_login_profile(UserName="tw-alpha", Password="Pa55word!x"),
        "console password",
    ),
]


@pytest.mark.parametrize(("what", "change", "found"), USER_CHANGES, ids=[c[0] for c in USER_CHANGES])
def test_a_precreated_user_with_more_than_the_api_key_policy_is_refused(
    env: Env, metrics: list[tuple[str, float]], what: str, change: Callable[[Any], Any], found: str
) -> None:
    iam = env.client("iam")
    with setup(env):
        iam.create_user(
            UserName="tw-alpha",
            Path="/tokenwarden/",
            Tags=[
                {"Key": "tokenwarden:managed-by", "Value": "tokenwarden"},
                {"Key": "tokenwarden:principal", "Value": "alpha"},
            ],
        )
        change(iam)

    report = env.run(registry=REGISTRY)

    assert_refused(env, report, found, metrics)
    attached = [
        p["PolicyArn"] for p in iam.list_attached_user_policies(UserName="tw-alpha")["AttachedPolicies"]
    ]
    assert API_KEY_POLICY not in attached  # nothing was added to it
    with pytest.raises(ClientError):
        env.client("secretsmanager").describe_secret(SecretId="tokenwarden/alpha")  # nor a secret made


def test_a_user_changed_after_onboarding_stops_its_rotation(
    env: Env, metrics: list[tuple[str, float]]
) -> None:
    env.run(registry=REGISTRY)
    token = env.current_token("alpha")
    env.messages()
    with setup(env):
        _inline(env.client("iam"))
    # The key is due for rotation: the run verifies the user first and refuses.
    report = env.run(T0 + timedelta(days=77), registry=REGISTRY)
    assert outcome(report, "alpha").status == "failed"
    assert "inline policies: more" in (outcome(report, "alpha").error or "")
    assert env.current_token("alpha") == token
    assert len(env.credentials("alpha")) == 1
    assert ("TakeoverRefused", 1) in metrics


@pytest.mark.parametrize(
    ("path", "tags", "found"),
    [
        ("/", {"tokenwarden:managed-by": "tokenwarden", "tokenwarden:principal": "alpha"}, "on path /"),
        ("/tokenwarden/", {}, "not tagged tokenwarden:managed-by=tokenwarden"),
    ],
)
def test_a_user_on_another_path_or_untagged_is_refused(
    env: Env, metrics: list[tuple[str, float]], path: str, tags: dict[str, str], found: str
) -> None:
    with setup(env):
        env.client("iam").create_user(
            UserName="tw-alpha", Path=path, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
        )
    report = env.run(registry=REGISTRY)
    assert_refused(env, report, found, metrics)


def test_a_user_with_another_permissions_boundary_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    boundary = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    with open_env(monkeypatch, settings_overrides={"permissions_boundary_arn": boundary}) as env:
        env.run(registry=REGISTRY)
        user = env.client("iam").get_user(UserName="tw-beta")["User"]
        assert user["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
        with setup(env):
            env.client("iam").put_user_permissions_boundary(
                UserName="tw-alpha", PermissionsBoundary="arn:aws:iam::aws:policy/PowerUserAccess"
            )
        report = env.run(T0 + timedelta(days=77), registry=REGISTRY)
        assert outcome(report, "alpha").status == "failed"
        assert "permissions boundary is arn:aws:iam::aws:policy/PowerUserAccess" in (
            outcome(report, "alpha").error or ""
        )


# -- what TokenWarden left unfinished or made before ------------------------------------------


def test_a_crash_between_create_secret_and_its_policy_is_finished_by_the_next_run(env: Env) -> None:
    registry = parse_registry("principals: [{id: solo}]", "t")
    client = env.adapters.secrets._sm

    def crash(**_: Any) -> None:
        raise Crash("killed right after CreateSecret")

    client.meta.events.register("after-call.secrets-manager.CreateSecret", crash)
    with pytest.raises(Crash):
        env.run(registry=registry)
    client.meta.events.unregister("after-call.secrets-manager.CreateSecret", crash)
    sm = env.client("secretsmanager")
    left = sm.describe_secret(SecretId="tokenwarden/solo")
    assert left.get("VersionIdsToStages", {}) == {}
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId="tokenwarden/solo")
    assert env.reconciler.ledger.entries("solo") == []

    report = env.run(T0 + timedelta(hours=2), registry=registry)

    assert [o.status for o in report.outcomes] == ["ok"]
    assert check_invariants(env, registry) == []
    policy = json.loads(sm.get_resource_policy(SecretId="tokenwarden/solo")["ResourcePolicy"])
    assert is_tokenwarden_policy(policy)


def test_a_crash_between_create_user_and_its_policy_is_finished_by_the_next_run(env: Env) -> None:
    registry = parse_registry("principals: [{id: solo}]", "t")
    client = env.adapters.iam._iam

    def crash(**_: Any) -> None:
        raise Crash("killed right after CreateUser")

    client.meta.events.register("after-call.iam.CreateUser", crash)
    with pytest.raises(Crash):
        env.run(registry=registry)
    client.meta.events.unregister("after-call.iam.CreateUser", crash)
    report = env.run(T0 + timedelta(hours=2), registry=registry)
    assert [o.status for o in report.outcomes] == ["ok"]
    assert check_invariants(env, registry) == []


def test_a_secret_under_the_legacy_shared_key_is_rekeyed_and_given_its_policy(env: Env) -> None:
    """Migration: secrets TokenWarden made before it had its own key and resource policies are
    encrypted with the previous shared key and have no policy. With ledger history and the tag,
    they are brought in line (UpdateSecret to the new key, then the policy), not refused."""
    env.run(registry=REGISTRY)
    token = env.current_token("alpha")
    sm = env.client("secretsmanager")
    with setup(env):
        legacy = env.client("kms").create_key(Description="shared")["KeyMetadata"]["Arn"]
        for name in ("tokenwarden/alpha", "tokenwarden/beta"):
            sm.update_secret(SecretId=name, KmsKeyId=legacy)
            sm.delete_resource_policy(SecretId=name)
            sm.untag_resource(SecretId=name, TagKeys=[POLICY_TAG])
        # beta has no ledger history: someone else's secret under the shared key.
        ledger = env.client("dynamodb")
        for item in ledger.scan(TableName="tokenwarden-ledger")["Items"]:
            if item.get("principal", {}).get("S") == "beta":
                ledger.delete_item(TableName="tokenwarden-ledger", Key={"pk": item["pk"], "sk": item["sk"]})
    settings = env.settings.model_copy(update={"legacy_kms_key_id": legacy})
    env.reconciler.custody = build_custody(settings, build_adapters(settings, env.session))
    env.messages()

    report = env.run(T0 + timedelta(hours=1), registry=REGISTRY)

    assert outcome(report, "alpha").status == "ok"
    described = sm.describe_secret(SecretId="tokenwarden/alpha")
    assert described["KmsKeyId"] == env.settings.secrets_kms_key_id
    assert is_tokenwarden_policy(
        json.loads(sm.get_resource_policy(SecretId="tokenwarden/alpha")["ResourcePolicy"])
    )
    assert env.current_token("alpha") == token  # the same key, still readable, still current
    assert outcome(report, "beta").status == "failed"
    assert "previous shared key, but TokenWarden has no record of it" in (outcome(report, "beta").error or "")
    assert sm.describe_secret(SecretId="tokenwarden/beta")["KmsKeyId"] == legacy


def test_without_a_secrets_key_nothing_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    with open_env(monkeypatch, settings_overrides={"secrets_kms_key_id": None}) as env:
        report = env.run(registry=REGISTRY)
        assert {o.status for o in report.outcomes} == {"failed"}
        assert all("TOKENWARDEN_SECRETS_KMS_KEY_ID" in (o.error or "") for o in report.outcomes)
        assert env.client("secretsmanager").list_secrets()["SecretList"] == []
        assert env.client("iam").list_users(PathPrefix="/tokenwarden/")["Users"] == []


def test_the_rotation_functions_check_verifies_secret_and_user_as_they_are(env: Env) -> None:
    """What the rotation function can call before it creates a key (it has no registry)."""
    env.run(registry=REGISTRY)
    custody = build_custody(env.settings, build_adapters(env.settings, env.session))
    arn = env.client("secretsmanager").describe_secret(SecretId="tokenwarden/alpha")["ARN"]
    custody.verify_for_token("alpha", arn)
    with setup(env):
        _group(env.client("iam"))
    with pytest.raises(
        NotTokenWardens, match="IAM user tw-alpha is not TokenWarden's: it is in groups: admins"
    ):
        custody.verify_for_token("alpha", arn)
    with pytest.raises(NotTokenWardens, match="names another principal"):
        custody.verify_for_token("beta", arn)
