"""Notifications as people read them: AWS Chatbot custom-notification JSON plus SNS
message attributes for subscription filter policies. A notification names a key by its
alias and expiry; it never carries a token."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["info", "warning", "critical"]


class EventType(StrEnum):
    ONBOARDED = "onboarded"
    ROTATED = "rotated"
    RETIRED = "retired"
    DELETED = "deleted"
    REVOKED = "revoked"
    RESTORED = "restored"
    REPAIRED = "repaired"
    OFFBOARDED = "offboarded"
    ROTATION_FAILED = "rotation_failed"
    EXPIRING_SOON = "expiring_soon"
    DRIFT = "drift"
    GUARD_TRIPPED = "guard_tripped"
    TAKEOVER_REFUSED = "takeover_refused"
    TEAM_SILENT = "team_silent"
    TEAM_RECOVERED = "team_recovered"
    TEAM_NEVER_REPORTED = "team_never_reported"
    RUN_SUMMARY = "run_summary"


ICONS = {
    "info": ":information_source:",
    "warning": ":warning:",
    "critical": ":rotating_light:",
}


class KeyRef(BaseModel):
    """How a message names a key: public alias, id and expiry."""

    model_config = ConfigDict(frozen=True)

    credential_id: str
    alias: str
    expires_at: datetime | None = None

    def describe(self) -> str:
        expiry = f"expires {self.expires_at:%Y-%m-%d %H:%M} UTC" if self.expires_at else "never expires"
        return f"`{self.alias}` ({expiry})"


class Notification(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_type: EventType
    severity: Severity
    title: str
    description: str
    principal: str = "-"
    team: str = "-"
    next_steps: tuple[str, ...] = ()
    key: KeyRef | None = None
    context: dict[str, str] = Field(default_factory=dict)
    occurred_at: datetime

    def chatbot_message(self) -> dict[str, Any]:
        additional = {"principal": self.principal, "team": self.team, **self.context}
        if self.key is not None:
            additional["key_alias"] = self.key.alias
            additional["key_id"] = self.key.credential_id
            if self.key.expires_at is not None:
                additional["key_expires_at"] = self.key.expires_at.isoformat()
        return {
            "version": "1.0",
            "source": "custom",
            "id": f"tokenwarden-{self.event_type.value}-{self.principal}-{int(self.occurred_at.timestamp())}",
            "content": {
                "textType": "client-markdown",
                "title": f"{ICONS[self.severity]} TokenWarden: {self.title}",
                "description": self.description,
                "nextSteps": list(self.next_steps),
                "keywords": [self.event_type.value, self.team, self.severity],
            },
            "metadata": {
                "threadId": f"tokenwarden-{self.principal}",
                "summary": self.title,
                "eventType": self.event_type.value,
                "additionalContext": additional,
            },
        }

    def body(self) -> str:
        return json.dumps(self.chatbot_message(), sort_keys=True)

    def attributes(self) -> dict[str, str]:
        return {
            "event_type": self.event_type.value,
            "principal": self.principal,
            "team": self.team,
            "severity": self.severity,
        }

    def render_text(self) -> str:
        """The message as a person reads it in Slack, for the terminal."""
        lines = [f"[{self.severity.upper()}] {self.title}", f"  {self.description}"]
        lines += [f"  -> {step}" for step in self.next_steps]
        return "\n".join(lines)


def secret_recipe(secret_name: str) -> str:
    return f"aws secretsmanager get-secret-value --secret-id {secret_name} --query SecretString --output text"


def onboarded(principal: str, team: str, secret_name: str, key: KeyRef, at: datetime) -> Notification:
    return Notification(
        event_type=EventType.ONBOARDED,
        severity="info",
        principal=principal,
        team=team,
        key=key,
        occurred_at=at,
        title=f"{principal} has a CloudWatch metrics API key",
        description=f"Key {key.describe()} is now stored in secret `{secret_name}`. "
        "TokenWarden rotates it before it expires.",
        next_steps=(
            f"Set laptops up once with `tokenwarden pickup {principal}`: they then follow every rotation by themselves.",
            f"Anything else reads the token from Secrets Manager: `{secret_recipe(secret_name)}`",
        ),
    )


def rotated(
    principal: str,
    team: str,
    secret_name: str,
    key: KeyRef,
    previous: KeyRef | None,
    grace_days: int,
    at: datetime,
    previous_revoked: bool = False,
) -> Notification:
    if previous is None:
        old = ""
    elif previous_revoked:
        old = f" The previous key {previous.describe()} was revoked and no longer works."
    else:
        old = f" The previous key {previous.describe()} keeps working for {grace_days} more days."
    return Notification(
        event_type=EventType.ROTATED,
        severity="info",
        principal=principal,
        team=team,
        key=key,
        occurred_at=at,
        title=f"{principal}: key rotated",
        description=f"New key {key.describe()} is now current in secret `{secret_name}`.{old}",
        next_steps=(
            "Laptops set up with `tokenwarden pickup` switch to the new key by themselves.",
            f"Anything configured by hand must re-read the secret before the grace ends: `{secret_recipe(secret_name)}`",
        ),
    )


def retired(principal: str, team: str, key: KeyRef, retention_days: int, at: datetime) -> Notification:
    return Notification(
        event_type=EventType.RETIRED,
        severity="info",
        principal=principal,
        team=team,
        key=key,
        occurred_at=at,
        title=f"{principal}: previous key deactivated",
        description=f"Key {key.describe()} was deactivated after its grace. It can be re-activated for "
        f"{retention_days} days, then it is deleted.",
        next_steps=(
            "If a team member's telemetry stopped, their laptop still has the old key: re-read the secret.",
        ),
    )


def deleted(principal: str, team: str, key: KeyRef, reason: str, at: datetime) -> Notification:
    return Notification(
        event_type=EventType.DELETED,
        severity="info",
        principal=principal,
        team=team,
        key=key,
        occurred_at=at,
        title=f"{principal}: key deleted",
        description=f"Key {key.describe()} was deleted: {reason}.",
    )


def rotation_failed(principal: str, team: str, secret_name: str, error: str, at: datetime) -> Notification:
    return Notification(
        event_type=EventType.ROTATION_FAILED,
        severity="critical",
        principal=principal,
        team=team,
        occurred_at=at,
        title=f"{principal}: rotation failed",
        description=f"Rotating the key in `{secret_name}` failed: {error}. The current key is unchanged.",
        next_steps=(
            "Check the rotation function's logs; the next nightly run retries.",
            f"To retry now: `tokenwarden apply` (or `aws secretsmanager rotate-secret --secret-id {secret_name}`).",
        ),
    )


def expiring_soon(principal: str, team: str, secret_name: str, key: KeyRef, at: datetime) -> Notification:
    return Notification(
        event_type=EventType.EXPIRING_SOON,
        severity="warning",
        principal=principal,
        team=team,
        key=key,
        occurred_at=at,
        title=f"{principal}: current key expires soon",
        description=f"Key {key.describe()} in `{secret_name}` has not been rotated yet. When it expires, "
        "telemetry from this team stops silently.",
        next_steps=("Look for rotation_failed alerts for this principal and run `tokenwarden apply`.",),
    )


def repaired(
    principal: str, team: str, secret_name: str, broken: KeyRef | None, reason: str, at: datetime
) -> Notification:
    return Notification(
        event_type=EventType.REPAIRED,
        severity="warning",
        principal=principal,
        team=team,
        key=broken,
        occurred_at=at,
        title=f"{principal}: key reissued out of schedule",
        description=f"{reason[:1].upper()}{reason[1:]}, so a new key is being issued into `{secret_name}` now; "
        "a `rotated` message follows when it is current.",
        next_steps=(
            "Laptops set up with `tokenwarden pickup` recover by themselves within their refresh interval.",
            f"Anything configured by hand must re-read the secret: `{secret_recipe(secret_name)}`",
            "Find out who changed the key outside TokenWarden (CloudTrail: iam:*ServiceSpecificCredential).",
        ),
    )


def run_summary(
    outcomes: Sequence[Any], findings: Sequence[Any], counts: Mapping[str, int], at: datetime
) -> Notification:
    failed = [o for o in outcomes if o.status == "failed"]
    done = {k: v for k, v in sorted(counts.items()) if not k.startswith("principals_")}
    parts = [
        f"{len(outcomes)} principal(s): "
        + ", ".join(
            f"{counts.get('principals_' + s, 0)} {s}"
            for s in ("ok", "unchanged", "failed", "locked", "deferred")
            if counts.get("principals_" + s)
        )
    ]
    if done:
        parts.append("Actions: " + ", ".join(f"{k} x{v}" for k, v in done.items()) + ".")
    if failed:
        parts.append("Failed: " + "; ".join(f"{o.principal} ({o.error})" for o in failed) + ".")
    if findings:
        shown = [f"- {f.kind}: {f.detail}" for f in findings[:10]]
        more = f"\n- ... and {len(findings) - 10} more (`tokenwarden audit`)" if len(findings) > 10 else ""
        parts.append(f"\nDrift and findings ({len(findings)}):\n" + "\n".join(shown) + more)
    return Notification(
        event_type=EventType.RUN_SUMMARY,
        severity="critical" if failed else ("warning" if findings else "info"),
        occurred_at=at,
        title="nightly run " + ("had failures" if failed else "completed"),
        description=" ".join(parts),
        next_steps=(
            "Re-run `tokenwarden apply` after fixing the cause; failed principals are retried every night.",
        )
        if failed
        else (),
        context={k: str(v) for k, v in done.items()},
    )


def offboarded(principal: str, secret_name: str, retention_days: int, at: datetime) -> Notification:
    return Notification(
        event_type=EventType.OFFBOARDED,
        severity="warning",
        principal=principal,
        team=principal,
        occurred_at=at,
        title=f"{principal}: offboarded",
        description=f"{principal} is no longer in the registry. Its keys are deactivated now and deleted after "
        f"{retention_days} days; secret `{secret_name}` is scheduled for deletion.",
        next_steps=(
            f"A mistake? Put {principal} back in the registry and run `tokenwarden apply`: the secret is restored "
            "and a new key is issued.",
        ),
    )


def guard_tripped(principals: Sequence[str], managed: int, limit: int, at: datetime) -> Notification:
    return Notification(
        event_type=EventType.GUARD_TRIPPED,
        severity="critical",
        occurred_at=at,
        title="blast-radius guard held a mass deactivation",
        description=f"This run would have taken keys from (or deleted the user or secret of) {len(principals)} "
        f"of {managed} managed principals "
        f"(limit {limit}): {', '.join(principals)}. None of them was touched; rotations went on.",
        next_steps=(
            "Check the registry for a truncated file or a bad merge (`tokenwarden plan`).",
            "If the removals are intended: `tokenwarden apply --allow-mass-revoke` "
            '(or invoke the reconciler with {"allow_mass_revoke": true}).',
        ),
    )


def revoked(
    principal: str,
    team: str,
    keys: Sequence[KeyRef],
    reason: str,
    actor: str,
    retention_days: int,
    reissue: bool,
    at: datetime,
) -> Notification:
    names = ", ".join(k.describe() for k in keys)
    follow = (
        "A replacement key is being issued and verified; laptops must re-read the secret."
        if reissue
        else "No replacement was issued: telemetry from this principal stops until one is."
    )
    return Notification(
        event_type=EventType.REVOKED,
        severity="critical",
        principal=principal,
        team=team,
        key=keys[0] if keys else None,
        occurred_at=at,
        title=f"{principal}: keys revoked",
        description=f"{actor} deactivated {names}. Reason: {reason}. {follow}",
        next_steps=(
            f"Reissue: `tokenwarden revoke {principal} --reason '...' --reissue`",
            (
                f"A mistake? `tokenwarden restore {principal} --force --reason '...'` re-activates the "
                f"leaked key within {retention_days} days; only if it did not leak after all."
                if reissue
                else f"A mistake? `tokenwarden restore {principal}` re-activates the key within {retention_days} days."
            ),
        ),
        context={"revoked_by": actor, "reason": reason},
    )


def restored(principal: str, team: str, key: KeyRef, actor: str, current: bool, at: datetime) -> Notification:
    role = "the current key again" if current else "active again through a new grace period"
    return Notification(
        event_type=EventType.RESTORED,
        severity="warning",
        principal=principal,
        team=team,
        key=key,
        occurred_at=at,
        title=f"{principal}: revoked key restored",
        description=f"{actor} re-activated key {key.describe()}; it is {role}.",
    )


def takeover_refused(principal: str, team: str, found: str, at: datetime) -> Notification:
    """A user or secret under TokenWarden's names that is not TokenWarden's: nothing was done."""
    return Notification(
        event_type=EventType.TAKEOVER_REFUSED,
        severity="critical",
        principal=principal,
        team=team,
        occurred_at=at,
        title=f"{principal}: refused to act on a user or secret that is not TokenWarden's",
        description=f"{found}. No key was created, stored or read for {principal}; every run refuses "
        "again until this is resolved. Someone may have created or changed it to read the next token.",
        next_steps=(
            "Find out who created or changed it (CloudTrail: CreateSecret, UpdateSecret, PutResourcePolicy, "
            "DeleteResourcePolicy, CreateUser, AttachUserPolicy, PutUserPolicy, AddUserToGroup, CreateAccessKey).",
            f"If it is not TokenWarden's, delete it (or remove what was added) and run `tokenwarden apply`: "
            f"TokenWarden then makes {principal}'s own.",
            "Treat any token it held as leaked: `tokenwarden revoke "
            f"{principal} --reason '...' --reissue` once it is TokenWarden's again.",
        ),
    )
