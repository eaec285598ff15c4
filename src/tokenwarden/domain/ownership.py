"""Whose secret is it? Team isolation and the refusal to take anything over by name.

Two questions, both answered here without a single AWS call (the adapters gather the facts):

- Who may read and change a principal's secret. Each secret carries a resource policy that
  DENIES `GetSecretValue` to every principal except TokenWarden's own roles, the operators named
  in the settings and the principal's readers from the registry (exact role or user ARNs, and,
  unless switched off, any caller whose principal tag `tokenwarden:team` is the principal's team),
  and DENIES every change to everyone except TokenWarden's roles and the operators. Conditions in
  one statement are ANDed, so "deny unless a listed ARN or a tagged team member" is one statement
  with two negated conditions. A missing tag makes `StringNotEquals` true: an untagged caller
  that is not listed is denied. The policy only denies: Secrets Manager's BlockPublicPolicy
  check accepts it, and access itself still comes from identity policies and the KMS key.
  Recovery: should TokenWarden's roles be gone and no operator be listed, a role created again
  on the service role path matches the pattern and can change or delete the secrets.
- Whether a secret or an IAM user found under TokenWarden's names really is TokenWarden's.
  Anyone able to create a secret or a user with the right name could otherwise have the next
  token written where they can read it (a secret under the AWS managed key, a user with extra
  policies). What TokenWarden finds is judged against what it makes; a mismatch is refused.

Crash safety and migration decide what counts as "ours but unfinished":

- a secret with no resource policy, tagged managed-by TokenWarden, under the secrets key, with no
  versions and no ledger history is the one a crash left between CreateSecret and
  PutResourcePolicy: it is finished, not refused;
- a secret made before resource policies existed (ledger history, tagged, no policy) gets one;
- a secret under the previous shared key (`TOKENWARDEN_LEGACY_KMS_KEY_ID`), tagged and with ledger
  history, is re-keyed to the secrets key and then gets its policy.

Everything else that differs is refused: a wrong key, a missing tag, a policy that is not
TokenWarden's, a secret holding a value TokenWarden never recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MANAGED_TAG = "tokenwarden:managed-by"
MANAGED_VALUE = "tokenwarden"
PRINCIPAL_TAG = "tokenwarden:principal"
TEAM_TAG = "tokenwarden:team"
# A short digest of the resource policy last written, so a run sees from ListSecrets alone which
# secrets need their policy checked (a hint only: every token write checks the policy itself).
POLICY_TAG = "tokenwarden:policy-digest"

READ_SID = "TokenWardenDenyReadExceptReaders"
CHANGE_SID = "TokenWardenDenyChangeExceptTokenWarden"
READ_ACTIONS: tuple[str, ...] = ("secretsmanager:GetSecretValue",)
CHANGE_ACTIONS: tuple[str, ...] = (
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecret",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:RotateSecret",
    "secretsmanager:CancelRotateSecret",
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:DeleteResourcePolicy",
    "secretsmanager:TagResource",
    "secretsmanager:UntagResource",
    "secretsmanager:DeleteSecret",
    "secretsmanager:RestoreSecret",
    "secretsmanager:ReplicateSecretToRegions",
    "secretsmanager:RemoveRegionsFromReplication",
    "secretsmanager:StopReplicationToReplica",
)
PRINCIPAL_ARN = "aws:PrincipalArn"
TEAM_PRINCIPAL_TAG = f"aws:PrincipalTag/{TEAM_TAG}"

MAX_READER_ROLES = 20
MAX_ARN_LENGTH = 2048
MAX_OPERATORS = 20
_PARTITION = r"aws(?:-cn|-us-gov)?"
_IAM_NAME = r"[\w+=,.@-]{1,128}"
# A reader is one exact role or user: no wildcards, the path optional.
READER_ARN = re.compile(
    rf"arn:{_PARTITION}:iam::\d{{12}}:(?:role|user)(?:/[\w+=,.@-]+)*/{_IAM_NAME}", re.ASCII
)
# Service roles and operators may be patterns (ArnLike wildcards * and ?).
ARN_PATTERN = re.compile(
    rf"arn:{_PARTITION}:iam::(?:\d{{12}}|\*):(?:role|user|root|\*)[\w+=,.@/*?-]*", re.ASCII
)
_KMS_ARN = re.compile(r"arn:[\w-]+:kms:([\w-]*):(\d{12}):(key|alias)/(.+)", re.ASCII)


class NotTokenWardens(RuntimeError):
    """A secret or user under TokenWarden's names that TokenWarden will not act on. The message
    says what was found and never holds a token."""


class OwnershipNotConfigured(RuntimeError):
    """TokenWarden cannot make or verify secrets without its settings (which ones: the message)."""


class Readers(BaseModel):
    """Who, besides TokenWarden and the operators, may read a principal's token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: tuple[str, ...] = Field(default=(), max_length=MAX_READER_ROLES)
    team_tag: bool = Field(default=True, strict=True)

    @field_validator("roles")
    @classmethod
    def _exact_arns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for arn in value:
            if not isinstance(arn, str) or len(arn) > MAX_ARN_LENGTH or READER_ARN.fullmatch(arn) is None:
                shown = arn[:64] + ("..." if len(arn) > 64 else "") if isinstance(arn, str) else "?"
                raise ValueError(
                    f"{shown!r} is not an IAM role or user ARN "
                    "(arn:aws:iam::<12-digit account>:role/<path/>name, no wildcards)"
                )
        if len(set(value)) != len(value):
            raise ValueError("a reader role is listed twice")
        return value


def check_arn_pattern(value: str) -> str:
    """An IAM ARN or ArnLike pattern for a service role or an operator (settings)."""
    if len(value) > MAX_ARN_LENGTH or ARN_PATTERN.fullmatch(value) is None:
        raise ValueError(
            f"{value[:64]!r} is not an IAM ARN or ARN pattern (arn:aws:iam::123456789012:role/path/*)"
        )
    return value


class OwnershipRules(BaseModel):
    """What TokenWarden's secrets and users look like (from the settings)."""

    model_config = ConfigDict(frozen=True)

    secrets_kms_key_id: str | None = None
    legacy_kms_key_id: str | None = None
    service_role_pattern: str | None = None
    operator_arns: tuple[str, ...] = ()
    user_path: str = "/tokenwarden/"
    api_key_policy_arn: str = "arn:aws:iam::aws:policy/CloudWatchAPIKeyAccess"
    permissions_boundary_arn: str | None = None

    def require(self) -> None:
        """Refuse to make or verify a secret without the secrets key or the service roles:
        without a key Secrets Manager falls back to the AWS managed key, which every role of the
        account with kms:Decrypt through Secrets Manager can use; without the roles the policy
        would lock TokenWarden out of its own secrets."""
        missing = [
            name
            for name, value in (
                ("TOKENWARDEN_SECRETS_KMS_KEY_ID", self.secrets_kms_key_id),
                ("TOKENWARDEN_SERVICE_ROLE_ARN_PATTERN", self.service_role_pattern),
            )
            if not value
        ]
        if missing:
            raise OwnershipNotConfigured(
                f"{' and '.join(missing)} not set: TokenWarden never stores a token without its own "
                "KMS key and a resource policy naming its roles (set them in the deployment)"
            )

    @property
    def custodians(self) -> tuple[str, ...]:
        """Who may change a secret: TokenWarden's roles, then the operators."""
        return _unique(
            ([self.service_role_pattern] if self.service_role_pattern else []) + list(self.operator_arns)
        )

    def policy(self, team: str, readers: Readers) -> dict[str, Any]:
        return secret_policy(self.custodians, team, readers)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def secret_policy(custodians: tuple[str, ...], team: str, readers: Readers) -> dict[str, Any]:
    """The resource policy of one principal's secret."""
    read_condition: dict[str, Any] = {
        "ArnNotLike": {PRINCIPAL_ARN: list(_unique(custodians + readers.roles))},
    }
    if readers.team_tag:
        read_condition["StringNotEquals"] = {TEAM_PRINCIPAL_TAG: team}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": READ_SID,
                "Effect": "Deny",
                "Principal": "*",
                "Action": list(READ_ACTIONS),
                "Resource": "*",
                "Condition": read_condition,
            },
            {
                "Sid": CHANGE_SID,
                "Effect": "Deny",
                "Principal": "*",
                "Action": list(CHANGE_ACTIONS),
                "Resource": "*",
                "Condition": {"ArnNotLike": {PRINCIPAL_ARN: list(custodians)}},
            },
        ],
    }


def policy_text(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


def policy_digest(document: Mapping[str, Any]) -> str:
    canonical = json.dumps(_normal(document), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _strings(value: object) -> list[str] | None:
    """A policy value that may be one string or a list of them, as a sorted list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(value)
    return None


def _normal(document: Mapping[str, Any]) -> Any:
    """A policy with one-or-many values as sorted lists, for comparing what AWS gives back."""
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        return {"invalid": True}
    normal = []
    for statement in statements:
        if not isinstance(statement, dict):
            return {"invalid": True}
        item = dict(statement)
        for name in ("Action", "Resource"):
            if name in item:
                item[name] = _strings(item[name])
        principal = item.get("Principal")
        if isinstance(principal, dict) and set(principal) == {"AWS"}:
            item["Principal"] = _strings(principal["AWS"])
        elif isinstance(principal, str):
            item["Principal"] = [principal]
        condition = item.get("Condition")
        if isinstance(condition, dict):
            item["Condition"] = {
                op: {k: _strings(v) for k, v in values.items()} if isinstance(values, dict) else None
                for op, values in condition.items()
            }
        normal.append(item)
    return {"Version": document.get("Version"), "Statement": sorted(normal, key=lambda s: str(s.get("Sid")))}


def is_tokenwarden_policy(document: Mapping[str, Any]) -> bool:
    """TokenWarden's two deny statements and nothing else, whoever they name as exceptions."""
    normal = _normal(document)
    statements = normal.get("Statement")
    if not isinstance(statements, list) or len(statements) != 2:
        return False
    by_sid = {s.get("Sid"): s for s in statements}
    read, change = by_sid.get(READ_SID), by_sid.get(CHANGE_SID)
    if read is None or change is None:
        return False
    return _is_deny(
        read, READ_ACTIONS, {"ArnNotLike": {PRINCIPAL_ARN}}, {"StringNotEquals": {TEAM_PRINCIPAL_TAG}}
    ) and (_is_deny(change, CHANGE_ACTIONS, {"ArnNotLike": {PRINCIPAL_ARN}}, {}))


_STATEMENT_KEYS = frozenset({"Sid", "Effect", "Principal", "Action", "Resource", "Condition"})


def only_statement_keys(statement: Mapping[str, Any]) -> bool:
    """No key beyond the ones TokenWarden writes (a NotAction or NotPrincipal would change the meaning)."""
    return not set(statement) - _STATEMENT_KEYS


def denies_everyone(statement: Mapping[str, Any], actions: tuple[str, ...]) -> bool:
    """A Deny of exactly ``actions`` on the secret, to every principal."""
    return (
        statement.get("Effect") == "Deny"
        and statement.get("Principal") == ["*"]
        and statement.get("Action") == sorted(actions)
        and statement.get("Resource") == ["*"]
    )


def has_required_conditions(condition: Mapping[str, Any], required: Mapping[str, set[str]]) -> bool:
    """Every required operator, on exactly its keys, each with a value."""
    for operator, keys in required.items():
        values = condition.get(operator)
        if not isinstance(values, dict) or set(values) != keys or any(v is None for v in values.values()):
            return False
    return True


def only_optional_conditions(
    condition: Mapping[str, Any], required: Mapping[str, set[str]], optional: Mapping[str, set[str]]
) -> bool:
    """Any other operator is an allowed optional one, on exactly its keys, each with one value."""
    for operator, values in condition.items():
        if operator in required:
            continue
        if operator not in optional or not isinstance(values, dict) or set(values) != optional[operator]:
            return False
        if any(v is None or len(v) != 1 for v in values.values()):
            return False
    return True


def _is_deny(
    statement: Mapping[str, Any],
    actions: tuple[str, ...],
    required: Mapping[str, set[str]],
    optional: Mapping[str, set[str]],
) -> bool:
    """A statement of TokenWarden's shape: denies ``actions`` to everyone under the ``required``
    conditions (the exceptions) and at most the ``optional`` ones."""
    condition = statement.get("Condition")
    return (
        only_statement_keys(statement)
        and denies_everyone(statement, actions)
        and isinstance(condition, dict)
        and has_required_conditions(condition, required)
        and only_optional_conditions(condition, required, optional)
    )


def same_policy(found: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return bool(_normal(found) == _normal(wanted))


# -- KMS keys ---------------------------------------------------------------------------------


def _key_ref(value: str) -> tuple[str, str, str | None, str | None]:
    """(kind, id or alias name, region, account) of a key id, key ARN, alias name or alias ARN."""
    match = _KMS_ARN.fullmatch(value)
    if match is not None:
        region, account, kind, name = match.groups()
        return kind, name.removeprefix("alias/") if kind == "alias" else name, region, account
    if value.startswith("alias/"):
        return "alias", value.removeprefix("alias/"), None, None
    return "key", value, None, None


def same_kms_key(configured: str | None, found: str | None) -> bool:
    """Whether a secret's KmsKeyId (as given when it was made: id, ARN or alias) is the configured
    key. An alias never equals a key id: without KMS there is no telling, so it counts as another
    key (configure the key as an ARN, as the template does). No KmsKeyId is the AWS managed key."""
    if not configured or not found:
        return False
    a, b = _key_ref(configured), _key_ref(found)
    if a[0] != b[0] or a[1] != b[1]:
        return False
    return all(x == y for x, y in zip(a[2:], b[2:], strict=True) if x is not None and y is not None)


def describe_key(kms_key_id: str | None) -> str:
    if not kms_key_id:
        return "the AWS managed key (no KmsKeyId)"
    if _key_ref(kms_key_id)[1] == "aws/secretsmanager":
        return "the AWS managed key aws/secretsmanager"
    return f"KMS key {kms_key_id[:160]}"


# -- facts and verdicts -----------------------------------------------------------------------


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True)


class SecretFacts(_Value):
    """What DescribeSecret and GetResourcePolicy say about a secret (never its value)."""

    name: str
    arn: str
    kms_key_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    has_versions: bool = False
    deleted: bool = False
    policy: dict[str, Any] | None = None
    # False when the policy could not be read (a secret scheduled for deletion): not judged.
    policy_read: bool = True


class UserFacts(_Value):
    """What IAM says about a user and everything attached to it."""

    name: str
    path: str
    arn: str
    tags: dict[str, str] = Field(default_factory=dict)
    attached_policies: tuple[str, ...] = ()
    inline_policies: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    access_keys: int = 0
    login_profile: bool = False
    permissions_boundary: str | None = None


class Fix(StrEnum):
    """A step that brings TokenWarden's own resource in line (never someone else's)."""

    REKEY_SECRET = "rekey_secret"
    PUT_POLICY = "put_policy"
    ATTACH_API_KEY_POLICY = "attach_api_key_policy"
    PUT_BOUNDARY = "put_boundary"
    TAG = "tag"


class Verdict(_Value):
    problems: tuple[str, ...] = ()
    fixes: tuple[Fix, ...] = ()

    @property
    def ours(self) -> bool:
        return not self.problems


def _shown(names: Iterable[str]) -> str:
    listed = sorted(names)
    text = ", ".join(n[:128] for n in listed[:5])
    return text + (f" and {len(listed) - 5} more" if len(listed) > 5 else "")


def judge_secret(
    facts: SecretFacts,
    principal: str | None,
    rules: OwnershipRules,
    wanted_policy: Mapping[str, Any] | None,
    history: bool,
) -> Verdict:
    """Whether TokenWarden may act on this secret, and what it must fix first.

    `history`: the ledger holds entries for the principal (TokenWarden made keys for it).
    `wanted_policy` None: judge whether a token may be written (any TokenWarden policy will do:
    the reconciler, which knows the registry, keeps the readers up to date)."""
    problems: list[str] = []
    fixes: list[Fix] = []
    if facts.tags.get(MANAGED_TAG) != MANAGED_VALUE:
        problems.append(f"it is not tagged {MANAGED_TAG}={MANAGED_VALUE}")
    if principal is not None and facts.tags.get(PRINCIPAL_TAG) not in (None, principal):
        problems.append(f"its tag {PRINCIPAL_TAG} names another principal")
    if not same_kms_key(rules.secrets_kms_key_id, facts.kms_key_id):
        legacy = same_kms_key(rules.legacy_kms_key_id, facts.kms_key_id)
        if legacy and history and not problems and wanted_policy is not None:
            fixes.append(Fix.REKEY_SECRET)
        else:
            why = (
                " (made under the previous shared key, but TokenWarden has no record of it)" if legacy else ""
            )
            problems.append(
                f"it is encrypted with {describe_key(facts.kms_key_id)}, not TokenWarden's secrets key{why}"
            )
    if facts.policy_read:
        problems += _judge_policy(facts, wanted_policy, history, fixes)
    return Verdict(problems=tuple(problems), fixes=tuple(fixes))


def _judge_policy(
    facts: SecretFacts, wanted: Mapping[str, Any] | None, history: bool, fixes: list[Fix]
) -> list[str]:
    if facts.policy is None:
        if wanted is None:
            return ["it has no resource policy yet"]
        if history or not facts.has_versions:
            fixes.append(
                Fix.PUT_POLICY
            )  # made by TokenWarden before policies, or just now by a run that crashed
            return []
        return ["it has no resource policy and holds a value TokenWarden never recorded"]
    if not is_tokenwarden_policy(facts.policy):
        return ["its resource policy is not TokenWarden's"]
    if wanted is not None and not same_policy(facts.policy, wanted):
        fixes.append(Fix.PUT_POLICY)  # TokenWarden's, for readers (or operators) that changed
    return []


def _off_path(facts: UserFacts, principal: str, rules: OwnershipRules) -> str | None:
    if facts.path != rules.user_path:
        return f"it is on path {facts.path[:128]}, not {rules.user_path}"
    return None


def _not_managed(facts: UserFacts, principal: str, rules: OwnershipRules) -> str | None:
    if facts.tags.get(MANAGED_TAG) != MANAGED_VALUE:
        return f"it is not tagged {MANAGED_TAG}={MANAGED_VALUE}"
    return None


def _another_principal(facts: UserFacts, principal: str, rules: OwnershipRules) -> str | None:
    if facts.tags.get(PRINCIPAL_TAG) != principal:
        return f"its tag {PRINCIPAL_TAG} does not name {principal}"
    return None


def _extra_managed_policies(facts: UserFacts, principal: str, rules: OwnershipRules) -> str | None:
    extra = [p for p in facts.attached_policies if p != rules.api_key_policy_arn]
    if extra:
        return f"managed policies other than CloudWatchAPIKeyAccess are attached: {_shown(extra)}"
    return None


def _inline_policies(facts: UserFacts, principal: str, rules: OwnershipRules) -> str | None:
    return f"it has inline policies: {_shown(facts.inline_policies)}" if facts.inline_policies else None


def _in_groups(facts: UserFacts, principal: str, rules: OwnershipRules) -> str | None:
    return f"it is in groups: {_shown(facts.groups)}" if facts.groups else None


def _access_keys(facts: UserFacts, principal: str, rules: OwnershipRules) -> str | None:
    return f"it has {facts.access_keys} access key(s)" if facts.access_keys else None


def _console_password(facts: UserFacts, principal: str, rules: OwnershipRules) -> str | None:
    return "it has a console password (login profile)" if facts.login_profile else None


def _other_boundary(facts: UserFacts, principal: str, rules: OwnershipRules) -> str | None:
    wanted = rules.permissions_boundary_arn
    if wanted and facts.permissions_boundary not in (None, wanted):
        return f"its permissions boundary is {facts.permissions_boundary[:160]}, not {wanted}"
    return None


UserCheck = Callable[[UserFacts, str, OwnershipRules], str | None]

USER_CHECKS: tuple[UserCheck, ...] = (
    _off_path,
    _not_managed,
    _another_principal,
    _extra_managed_policies,
    _inline_policies,
    _in_groups,
    _access_keys,
    _console_password,
    _other_boundary,
)
"""What makes a user under TokenWarden's name someone else's, in the order a refusal lists it."""


def user_problems(facts: UserFacts, principal: str, rules: OwnershipRules) -> list[str]:
    return [problem for check in USER_CHECKS if (problem := check(facts, principal, rules)) is not None]


def user_fixes(facts: UserFacts, team: str | None, rules: OwnershipRules) -> list[Fix]:
    """What TokenWarden left unfinished on its own user."""
    fixes: list[Fix] = []
    if rules.api_key_policy_arn not in facts.attached_policies:
        fixes.append(Fix.ATTACH_API_KEY_POLICY)  # a run that crashed between CreateUser and AttachUserPolicy
    if rules.permissions_boundary_arn and facts.permissions_boundary is None:
        fixes.append(Fix.PUT_BOUNDARY)  # made before a boundary was configured: it only narrows
    if team is not None and facts.tags.get(TEAM_TAG) != team:
        fixes.append(Fix.TAG)
    return fixes


def judge_user(facts: UserFacts, principal: str, team: str | None, rules: OwnershipRules) -> Verdict:
    """Whether a user under TokenWarden's name is the one TokenWarden made: on its path, tagged,
    with the API key policy and nothing else that could use or widen a token's reach.
    `team` None: only verify (the rotation function does not know the registry)."""
    problems = user_problems(facts, principal, rules)
    if problems:
        return Verdict(problems=tuple(problems))
    return Verdict(fixes=tuple(user_fixes(facts, team, rules)))


def refusal(kind: str, name: str, verdict: Verdict) -> str:
    """One line: what was found (never a token)."""
    return f"{kind} {name} is not TokenWarden's: " + "; ".join(verdict.problems)
