"""Custody: make, verify and bring in line a principal's IAM user and secret, never adopting by name.

Every run that acts on a principal goes through `Custody.secure` first (under the principal's
lease): a user or secret that exists under TokenWarden's names is judged (domain/ownership.py)
before anything is tagged, attached, written or read, and a mismatch raises NotTokenWardens.
What TokenWarden itself left unfinished (a crash between two calls) or made before resource
policies existed is finished instead, so a crash can never lock a principal out for good.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokenwarden.domain.model import SecretState
from tokenwarden.domain.naming import Naming
from tokenwarden.domain.ownership import (
    MANAGED_TAG,
    MANAGED_VALUE,
    POLICY_TAG,
    TEAM_TAG,
    Fix,
    NotTokenWardens,
    OwnershipRules,
    SecretFacts,
    UserFacts,
    Verdict,
    judge_secret,
    judge_user,
    policy_digest,
    refusal,
    same_kms_key,
)
from tokenwarden.domain.registry import Principal
from tokenwarden.ports import IamPort, SecretsPort


@dataclass(frozen=True)
class UserRead:
    """A user as a caller inspected it under the principal's lease (`facts` None: no such user)."""

    facts: UserFacts | None


@dataclass(frozen=True)
class Secured:
    """What `secure` did: the fixes made, and the ARN of the principal's secret (None when it
    has none), so that the actions after it need not describe the secret to address it."""

    fixes: tuple[str, ...]
    secret_arn: str | None = None


@dataclass
class Custody:
    iam: IamPort
    secrets: SecretsPort
    naming: Naming
    rules: OwnershipRules

    def wanted_policy(self, principal: Principal) -> dict[str, Any]:
        return self.rules.policy(principal.team, principal.readers)

    def needs_check(self, principal: Principal, listed: SecretState | None) -> bool:
        """From ListSecrets alone (no extra call): whether a principal with nothing else to do
        must be checked this run: its secret lost TokenWarden's tag or key, or its policy is not
        the one the registry and settings want now (readers or operators changed, or the secret
        predates resource policies)."""
        if listed is None or listed.deleted_at is not None:
            return False
        return (
            listed.tags.get(MANAGED_TAG) != MANAGED_VALUE
            or not same_kms_key(self.rules.secrets_kms_key_id, listed.kms_key_id)
            or listed.tags.get(POLICY_TAG) != policy_digest(self.wanted_policy(principal))
        )

    def secure(
        self,
        principal: Principal,
        secret_tags: Mapping[str, str],
        history: bool,
        create: bool = False,
        repair: bool = True,
        description: str = "",
        described: SecretState | None = None,
        inspected: UserRead | None = None,
    ) -> Secured:
        """Verify the principal's user and secret (creating them with `create`), fix what
        TokenWarden itself left behind (with `repair`), and return the fixes made.

        `history`: the ledger has entries for the principal. `described`: the secret as the
        caller read it under the principal's lease a moment ago (its tag and key are judged from
        it; its policy is always read). `inspected`: the user as the caller inspected it under
        the lease a moment ago (judged as it is, not inspected again). Raises NotTokenWardens when either is not TokenWarden's,
        and OwnershipNotConfigured without a secrets key or service roles."""
        self.rules.require()
        user_fixes = self._secure_user(principal, create, repair, inspected)
        secret = self._secure_secret(principal, secret_tags, history, create, repair, description, described)
        return Secured(user_fixes + secret.fixes, secret.secret_arn)

    def verify_for_token(self, principal: str, secret_id: str) -> None:
        """For a step about to create or store a token without the registry (the rotation
        function): the secret and the user must be TokenWarden's as they are; nothing is fixed."""
        self.rules.require()
        self.secrets.verify_owned(secret_id, principal)
        name = self.naming.user_name(principal)
        facts = self.iam.inspect_user(name)
        if facts is None:
            raise NotTokenWardens(f"IAM user {name} does not exist")
        verdict = judge_user(facts, principal, None, self.rules)
        if not verdict.ours:
            raise NotTokenWardens(refusal("IAM user", name, verdict))

    # -- the user ---------------------------------------------------------------------------

    def _secure_user(
        self, principal: Principal, create: bool, repair: bool, inspected: UserRead | None = None
    ) -> tuple[str, ...]:
        name = self.naming.user_name(principal.id)
        if create and (inspected is None or inspected.facts is None):
            if self._create_user(name, principal):
                return ("create_user",)
            inspected = None  # made by someone else since it was read: read it now
        facts = inspected.facts if inspected is not None else self.iam.inspect_user(name)
        if facts is None:
            if create:
                raise RuntimeError(f"IAM user {name} vanished right after it was found; next run")
            return ()
        verdict = judge_user(facts, principal.id, principal.team, self.rules)
        if not verdict.ours:
            raise NotTokenWardens(refusal("IAM user", name, verdict))
        if not repair:
            return ()
        for fix in verdict.fixes:
            self._fix_user(name, principal, fix)
        return tuple(f"user_{fix.value}" for fix in verdict.fixes)

    def _create_user(self, name: str, principal: Principal) -> bool:
        """Create the user with its tags, boundary and API key policy; False when it already exists."""
        tags = {
            "tokenwarden:principal": principal.id,
            TEAM_TAG: principal.team,
            MANAGED_TAG: MANAGED_VALUE,
        }
        if not self.iam.create_user(name, self.naming.user_path, tags, self.rules.permissions_boundary_arn):
            return False
        self.iam.attach_api_key_policy(name)
        return True

    def _fix_user(self, name: str, principal: Principal, fix: Fix) -> None:
        if fix == Fix.ATTACH_API_KEY_POLICY:
            self.iam.attach_api_key_policy(name)
        elif fix == Fix.PUT_BOUNDARY and self.rules.permissions_boundary_arn:
            self.iam.put_boundary(name, self.rules.permissions_boundary_arn)
        elif fix == Fix.TAG:
            # The managed-by tag travels with every TagUser: the role allows no other.
            self.iam.tag_user(name, {TEAM_TAG: principal.team, MANAGED_TAG: MANAGED_VALUE})

    # -- the secret -------------------------------------------------------------------------

    def _secure_secret(
        self,
        principal: Principal,
        secret_tags: Mapping[str, str],
        history: bool,
        create: bool,
        repair: bool,
        description: str,
        described: SecretState | None = None,
    ) -> Secured:
        name = self.naming.secret_name(principal.id)
        wanted = self.wanted_policy(principal)
        done: list[str] = []
        arn = self._create_secret(name, secret_tags, description) if create else None
        if arn:
            done.append("create_secret")
            facts: SecretFacts | None = self._made_secret(name, arn, secret_tags)
        else:
            facts = self._inspect_secret(name, create, described)
        if facts is None:
            return Secured(())
        if facts.deleted:
            self._judged(facts, principal, wanted, history)  # tag and key, before restoring anything
            if not create:
                return Secured((), facts.arn)  # offboarding: it stays scheduled for deletion
            facts = self._restore_secret(name, facts.arn)
            done.append("restore_secret")
        verdict = self._judged(facts, principal, wanted, history)
        if not repair:
            return Secured(tuple(done), facts.arn)
        done += [self._fix_secret(facts.arn, fix, wanted) for fix in verdict.fixes]
        self._tag_secret(facts, secret_tags, wanted)
        return Secured(tuple(done), facts.arn)

    def _create_secret(self, name: str, secret_tags: Mapping[str, str], description: str) -> str | None:
        """Create the secret, tagged and under the secrets key: its ARN; None when it already exists."""
        return self.secrets.create(
            name,
            {**secret_tags, MANAGED_TAG: MANAGED_VALUE},
            self.rules.secrets_kms_key_id or "",
            description,
        )

    def _made_secret(self, name: str, arn: str, secret_tags: Mapping[str, str]) -> SecretFacts:
        """The secret CreateSecret just made, as it was asked to make it (TokenWarden's tags and
        key, no value, no policy yet): not read back, since this very call established it."""
        return SecretFacts(
            name=name,
            arn=arn,
            kms_key_id=self.rules.secrets_kms_key_id,
            tags={**secret_tags, MANAGED_TAG: MANAGED_VALUE},
        )

    def _inspect_secret(self, name: str, create: bool, described: SecretState | None) -> SecretFacts | None:
        """The secret's facts; one found by CreateSecret that is gone stops the run. `described`:
        the secret as the caller just read it (None: not found then, or not read)."""
        facts = self.secrets.inspect(name, described)
        if facts is None and create:
            raise RuntimeError(f"secret {name} vanished right after it was found; next run")
        return facts

    def _restore_secret(self, name: str, arn: str) -> SecretFacts:
        """Cancel the secret's scheduled deletion (onboarding again), and read it back."""
        self.secrets.restore(arn)
        facts = self.secrets.inspect(name)  # afresh: restoring changed what describing it says
        if facts is None:
            raise RuntimeError(f"secret {name} vanished right after it was restored; next run")
        return facts

    def _fix_secret(self, arn: str, fix: Fix, wanted: dict[str, Any]) -> str:
        if fix == Fix.REKEY_SECRET and self.rules.secrets_kms_key_id:
            self.secrets.rekey(arn, self.rules.secrets_kms_key_id)
        elif fix == Fix.PUT_POLICY:
            self.secrets.put_policy(arn, wanted)
        return f"secret_{fix.value}"

    def _tag_secret(self, facts: SecretFacts, secret_tags: Mapping[str, str], wanted: dict[str, Any]) -> None:
        """The digest last: it says the policy was verified (a crash before it only costs a re-check)."""
        tags = {**secret_tags, MANAGED_TAG: MANAGED_VALUE, POLICY_TAG: policy_digest(wanted)}
        if any(facts.tags.get(k) != v for k, v in tags.items()):
            self.secrets.tag(facts.arn, tags)

    def _judged(
        self, facts: SecretFacts, principal: Principal, wanted: dict[str, Any], history: bool
    ) -> Verdict:
        verdict = judge_secret(facts, principal.id, self.rules, wanted, history)
        if not verdict.ours:
            raise NotTokenWardens(refusal("secret", facts.name, verdict))
        return verdict
