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
    ROLLED_BACK = "rolled_back"
    ROLLBACK_ESCALATED = "rollback_escalated"
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
    # The Slack channel (registry `notify`) of the team the message is about; set when it is routed
    # (domain/routing.py), None for run-wide messages and teams without one.
    channel: str | None = None

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
        """The SNS message attributes subscription filter policies select on: metadata only (the
        kind, a registry id, a severity, a registry channel), never a token or free text."""
        attributes = {
            "event_type": self.event_type.value,
            "principal": self.principal,
            "team": self.team,
            "severity": self.severity,
        }
        if self.channel is not None:
            attributes["channel"] = self.channel
        return attributes

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
    # A night bigger than its report names only some principals (failures first); counts are whole.
    principals = sum(v for k, v in counts.items() if k.startswith("principals_")) or len(outcomes)
    unnamed = counts.get("principals_failed", len(failed)) - len(failed)
    parts = [
        f"{principals} principal(s): "
        + ", ".join(
            f"{counts.get('principals_' + s, 0)} {s}"
            for s in ("ok", "unchanged", "failed", "locked", "deferred")
            if counts.get("principals_" + s)
        )
    ]
    if done:
        parts.append("Actions: " + ", ".join(f"{k} x{v}" for k, v in done.items()) + ".")
    if failed:
        more = f" and {unnamed} more" if unnamed > 0 else ""
        parts.append("Failed: " + "; ".join(f"{o.principal} ({o.error})" for o in failed) + more + ".")
    noted = [f"{o.principal} ({note})" for o in outcomes for note in getattr(o, "notes", ())]
    if noted:
        parts.append("Notes: " + "; ".join(noted) + ".")
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


def rolled_back(
    principal: str, team: str, key: KeyRef, retired_at: datetime, until: datetime, at: datetime
) -> Notification:
    return Notification(
        event_type=EventType.ROLLED_BACK,
        severity="warning",
        principal=principal,
        team=team,
        key=key,
        occurred_at=at,
        title=f"{team}: laptops still send with the previous key; it is active again until {until:%Y-%m-%d %H:%M} UTC",
        description=f"Team {team} went silent right after {principal}'s previous key {key.describe()} was "
        f"retired ({retired_at:%Y-%m-%d %H:%M} UTC): its laptops never picked up the new key. TokenWarden "
        f"re-activated it automatically; it is active again until {until:%Y-%m-%d %H:%M} UTC, then retired "
        "again. This happens once per key.",
        next_steps=(
            f"Run the pickup kit on the team's laptops before then: `tokenwarden pickup {principal}`.",
            "If the team is silent again after that, nothing is re-activated a second time "
            "(`rollback_escalated`).",
        ),
        context={"active_until": until.isoformat(), "retired_at": retired_at.isoformat()},
    )


def rollback_escalated(
    principal: str, team: str, key: KeyRef, rolled_back_at: datetime, at: datetime
) -> Notification:
    return Notification(
        event_type=EventType.ROLLBACK_ESCALATED,
        severity="critical",
        principal=principal,
        team=team,
        key=key,
        occurred_at=at,
        title=f"{team}: silent again after the rollback of {principal}'s previous key",
        description=f"Key {key.describe()} was re-activated once already ({rolled_back_at:%Y-%m-%d %H:%M} UTC) "
        f"because team {team}'s laptops still sent with it, and it was retired again when that grace ended. "
        "The team went silent again: the laptops still have not picked up the current key. It is not "
        "re-activated a second time.",
        next_steps=(
            f"Run the pickup kit on the team's laptops now: `tokenwarden pickup {principal}`.",
            "Find out why the laptops do not re-read the secret (settings managed by hand, the helper "
            "script not installed, no read access to the secret).",
        ),
        context={"rolled_back_at": rolled_back_at.isoformat()},
    )


class Runbook(BaseModel):
    """What one kind of notification means and what the person reading it does next.

    This is the single source of the notification catalogue (docs/notifications.md is generated
    from it), so the catalogue cannot name a kind the code does not send or miss one it does."""

    model_config = ConfigDict(frozen=True)

    severities: tuple[Severity, ...]
    meaning: str
    action: str
    # When the severity depends on what happened, which one is sent when.
    severity_rule: str = ""


RUNBOOKS: dict[EventType, Runbook] = {
    EventType.ONBOARDED: Runbook(
        severities=("info",),
        meaning="A principal got its first key, stored in `tokenwarden/<p>`.",
        action="Give the team's developers read access ([deploy.md](deploy.md#give-developers-access)), "
        "and ship the pickup kit (`tokenwarden pickup <p>`) to their laptops.",
    ),
    EventType.ROTATED: Runbook(
        severities=("info",),
        meaning="A new key is `AWSCURRENT`. The previous key stays Active for `grace_days` (7 by default), "
        "unless it was revoked (the message then says so).",
        action="Nothing for laptops with the pickup kit. Anything that copied the token (CI jobs, "
        "hand-written settings files, shells started before the rotation) must re-read it before the grace "
        "ends.",
    ),
    EventType.RETIRED: Runbook(
        severities=("info",),
        meaning="The previous key was set to `Inactive` after its grace. It is deleted `retention_days` "
        "(7 by default) later.",
        action="If someone's telemetry stopped just now, their laptop still has the old key: install the "
        "pickup kit, or have them re-read the secret. Reactivating a retired key by hand "
        "(`aws iam update-service-specific-credential --user-name tw-<p> --service-specific-credential-id "
        "<key_id> --status Active`) only helps until the next nightly run, which retires it again: fix the "
        "laptop instead. `tokenwarden restore` is for revoked keys, not retired ones.",
    ),
    EventType.DELETED: Runbook(
        severities=("info",),
        meaning="A key was deleted. The reason in the message is one of:\n\n"
        '- "its rollback window is over": the normal end of a key;\n'
        '- "it was untracked (a crash leftover)": a key on a managed user that no ledger record knows, '
        "older than `untracked_safety_hours`.",
        action="Nothing for the first reason. For an untracked key, look in the reconciler and rotation "
        "logs around the key's creation time for a crash or timeout, and check CloudTrail for someone "
        "creating keys by hand on a `/tokenwarden/` user.",
    ),
    EventType.REVOKED: Runbook(
        severities=("critical",),
        meaning="Someone ran a break-glass revoke. The message names the keys, the actor and the reason, "
        "and says whether a replacement is being issued.",
        action="If no replacement was issued, the principal has no working key until "
        "`tokenwarden revoke <p> --reason … --reissue` or `tokenwarden restore <p>`. A mistake can be "
        "undone with `restore` within `retention_days` (after `--reissue`, only with `--force --reason`).",
    ),
    EventType.RESTORED: Runbook(
        severities=("warning", "critical"),
        severity_rule="critical when the restore was forced with `--force --reason`",
        meaning="A revoked key was re-activated: the current key again, or a previous key until the end "
        "of the grace it had.",
        action="Check that the restore was intended. The ledger records who asked, and for a forced "
        "restore why.",
    ),
    EventType.REPAIRED: Runbook(
        severities=("warning",),
        meaning="The current key had been deleted, deactivated or had expired outside TokenWarden, had no "
        "expiry, or the current secret version had no ledger record; or a revoke with `--reissue` was "
        "interrupted before it issued the replacement. A new key is being issued into the secret now; "
        "`rotated` follows when it is current (`rotation_failed` if it cannot be).",
        action="Laptops with the pickup kit recover within about an hour. Others are cut off until they "
        "re-read the secret. To find out who changed the key, search CloudTrail for "
        "`DeleteServiceSpecificCredential` or `UpdateServiceSpecificCredential` on `tw-<p>`.",
    ),
    EventType.OFFBOARDED: Runbook(
        severities=("warning",),
        meaning="The principal is no longer in `teams.yaml`. Its keys were deactivated now and are deleted "
        "`retention_days` later. Its secret is scheduled for deletion with a 30-day recovery window, and "
        "the IAM user is deleted once it holds no key.",
        action="If it was a mistake, put the principal back in the registry, deploy, and run "
        "`tokenwarden apply`: the secret is restored and a new key is issued.",
    ),
    EventType.ROTATION_FAILED: Runbook(
        severities=("critical",),
        meaning="A rotation step failed. The message names the step and the error. It is sent once per "
        "rotation, however often Secrets Manager retries it. The current key is unchanged and keeps "
        "working.",
        action="Read the rotation function's log for the step. Common causes:\n\n"
        "- `testSecret: the OTLP endpoint refused the new key … (HTTP 401/403 after 8 attempt(s))`: IAM "
        "propagation took unusually long, the user lacks `CloudWatchAPIKeyAccess`, the permissions "
        "boundary does not allow `cloudwatch:CallWithBearerToken`/`cloudwatch:PutMetricData`, or "
        "`OtlpEndpoint` is wrong. HTTP 429 or 5xx after every attempt means the endpoint was throttling or "
        "failing the whole time; HTTP 599 means no answer came back at all.\n"
        "- `… the token holds characters a bearer token cannot have`: the version does not hold a usable "
        "token (someone wrote the secret by hand). It was never sent anywhere.\n"
        "- `… has two keys and both look current; refusing to delete either`: the key slots are in a "
        "state TokenWarden will not resolve on its own. Inspect them with `tokenwarden status`, and delete "
        "the wrong one by hand.\n"
        "- `… another run is working on <p>; Secrets Manager retries`: the step could not get the "
        "principal's lease within 60 s. Secrets Manager's retries or the next run usually get through.\n"
        "- `… answered AccessDenied`: the boundary, path or prefix differ from what the stack was deployed "
        "with.\n\n"
        "Secrets Manager retries the whole rotation a few times by itself. A rotation still unfinished "
        "after an hour is abandoned by the next nightly run (its `AWSPENDING` is removed and its key "
        "deleted) and started again. To retry now, run `tokenwarden apply` or invoke the reconciler.",
    ),
    EventType.EXPIRING_SOON: Runbook(
        severities=("warning",),
        meaning="The current key expires within `expiry_alert_days` (7 by default) and has not been "
        "rotated. It is sent once per key. When the key expires, that team's telemetry stops.",
        action="1. Run `tokenwarden plan` and read the principal's note, for example \"rotation waits "
        'until the previous key\'s grace ends", "rotation … in progress", or "revoked … no new key '
        'until …".\n'
        "2. Look for `rotation_failed` messages for that principal.\n"
        "3. Fix the cause, and run `tokenwarden apply` (or invoke the reconciler).\n\n"
        "If the key does expire, the next run issues a new one at once (`repaired`).",
    ),
    EventType.DRIFT: Runbook(
        severities=(),
        meaning="Reserved: not sent today. Drift shows up as findings in `run_summary` and in "
        "`tokenwarden audit`.",
        action="See the drift audit in [operate.md](operate.md#drift-audit).",
    ),
    EventType.GUARD_TRIPPED: Runbook(
        severities=("critical",),
        meaning="The run would have deactivated the keys of more than `max(2, 20 %)` of the managed "
        "principals. None of them was touched; rotations went on. `team` and `principal` are `-`.",
        action="Look for a truncated file or a bad merge in `teams.yaml`, and run `tokenwarden plan` to see "
        "what is held. If the removals are intended, run `tokenwarden apply --allow-mass-revoke`, or invoke "
        'the reconciler with `{"mode": "apply", "allow_mass_revoke": true}`.',
    ),
    EventType.TAKEOVER_REFUSED: Runbook(
        severities=("critical",),
        meaning="A user or secret under TokenWarden's names (`<UserPrefix><id>` on the user path, "
        "`<SecretPrefix><id>`) is not TokenWarden's, or was changed so that it no longer is: the secret "
        "has another KMS key, another resource policy or no `tokenwarden:managed-by` tag, or the user has "
        "another path, extra policies, a group, an access key, a console password or another boundary. "
        "Nothing was done for that principal: no key was created, stored or read. Every run refuses again "
        "until it is resolved; the other principals go on.",
        action="Find who created or changed it in CloudTrail (`CreateSecret`, `UpdateSecret`, "
        "`PutResourcePolicy`, `DeleteResourcePolicy`, `CreateUser`, `AttachUserPolicy`, `PutUserPolicy`, "
        "`AddUserToGroup`, `CreateAccessKey`). If it is not TokenWarden's, delete it (or remove what was "
        "added) and run `tokenwarden apply`, which makes the principal's own. Treat a token it may have "
        "held as leaked: `tokenwarden revoke <p> --reason '...' --reissue` once the principal is "
        "TokenWarden's again.",
    ),
    EventType.TEAM_SILENT: Runbook(
        severities=("warning",),
        meaning="No sample from the team for `silent_after_hours` working hours. The message lists the "
        "likely causes from the ledger. While the team stays silent, the alert is repeated every 24 hours "
        '(`TOKENWARDEN_HEALTH_REMINDER_HOURS`), titled "is still silent".',
        action="- If the cause is a rotation or a retired key, the laptops never picked up the new key: "
        "install the pickup kit, or have them re-read the secret.\n"
        "- If the cause is a revoke, reissue.\n"
        "- Otherwise, check a laptop: an export with the current token must be accepted.",
    ),
    EventType.TEAM_RECOVERED: Runbook(
        severities=("info",),
        meaning="Samples are arriving again after a silence (or after a `team_never_reported`).",
        action="Nothing.",
    ),
    EventType.TEAM_NEVER_REPORTED: Runbook(
        severities=("warning",),
        meaning="Since the health check first saw the team, `silent_after_hours` working hours have passed "
        "without a single sample. It is sent once.",
        action="Check the laptops' Claude Code settings: `CLAUDE_CODE_ENABLE_TELEMETRY=1`, the OTLP "
        "endpoint, and `team.id=<team>` in `OTEL_RESOURCE_ATTRIBUTES`. The pickup kit sets all three.",
    ),
    EventType.ROLLED_BACK: Runbook(
        severities=("warning",),
        meaning="A team went silent within its next working hours after a routine retirement of one of its "
        "keys, and that retirement is the likely cause: its laptops still send with the previous key. The "
        "health check re-activated the key automatically and extended its grace by "
        "`TOKENWARDEN_ROLLBACK_GRACE_DAYS` (3 by default); the nightly run retires it again when that grace "
        "ends. Never sent for a revoked or offboarded key, nor for one deleted, expired or past its "
        "retention. The rule is in [operate.md](operate.md#automatic-rollback).",
        action="Run the pickup kit on the team's laptops before the date in the message "
        "(`tokenwarden pickup <p>`), or have them re-read the secret. `team_recovered` follows once they "
        "send again.",
    ),
    EventType.ROLLBACK_ESCALATED: Runbook(
        severities=("critical",),
        meaning="The team went silent again after the second retirement of a key that was rolled back "
        "once already. Nothing was re-activated: a key is rolled back once, never in a loop.",
        action="The laptops still have not picked up the current key: run the pickup kit "
        "(`tokenwarden pickup <p>`) and find out why they do not re-read the secret (settings managed by "
        "hand, the helper script missing, no read access to the secret).",
    ),
    EventType.RUN_SUMMARY: Runbook(
        severities=("info", "warning", "critical"),
        severity_rule="warning with findings, critical with failures",
        meaning="One message per reconciler run; `team` and `principal` are `-`. It counts principals by "
        "outcome, and lists the actions taken and the number of findings:\n\n"
        "- `ok`: actions applied.\n"
        "- `unchanged`: nothing to do.\n"
        "- `failed`: a step raised an error; the message lists `principal (action: error)`.\n"
        "- `locked`: another run (or a revoke, or a rotation running in the background) held the "
        "principal's lease, or Secrets Manager was still running an earlier rotation of its secret. The "
        "run changed nothing for it. Leases expire by themselves (a run's after 5 minutes, a rotation's "
        "after about 215 s), and the next run picks the principal up.\n"
        "- `deferred`: the Lambda ran out of time, or the nightly execution stopped before it reached the "
        "principal (its round limit, or a round in which no principal finished); the next run continues.\n\n"
        "The counts cover every principal; a night with more than 200 names its failures first and "
        "counts the rest.",
        action="- **With failures:** each failed principal is retried every night, and the other principals "
        "were not affected. Read the error, fix the cause, and run `tokenwarden apply` or invoke the "
        "reconciler.\n"
        "- **With findings**, run `tokenwarden audit` and `tokenwarden plan` to see them:\n"
        "  - `user_at_key_limit` is normal for about two weeks after each rotation, while the previous key "
        "is in its grace and retention. Outside that window, look at `tokenwarden status`.\n"
        "  - `key_without_expiry`, `key_lifetime_over_90_days` and `key_outside_tokenwarden` are keys made "
        "by hand: see the drift audit in [operate.md](operate.md#drift-audit).\n"
        "  - `managed_user_not_in_registry` is expected while an offboarding runs its course.\n"
        "  - `guard_tripped`: see [`guard_tripped`](#guard_tripped).\n"
        "  - `night_stopped`: the nightly execution stopped with work left: see "
        "[operate.md](operate.md#a-night-that-stopped-early).",
    ),
}
