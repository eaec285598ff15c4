"""The reconciler: inventory in a few paged calls, a pure plan, then apply per principal.

Each principal is applied under its own lease and in isolation: one principal's failure is
reported and the run goes on with the others. Before anything is done for a principal, its IAM
user and secret are verified to be TokenWarden's own (service/ownership.py); one that is not is
refused, announced (`takeover_refused`) and left alone, run after run, until a person resolves it. Under the lease the principal is read again
and planned again, so a run that overlaps another (or a revoke, or a rotation running in
the background) acts on what is there now, not on what was there when the run started.
A principal whose lease another run holds is skipped ("locked") and left to that run.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tokenwarden.domain import notifications as notes
from tokenwarden.domain.audit import audit
from tokenwarden.domain.journal import RepairRecord, TakeoverRefusedRecord
from tokenwarden.domain.model import (
    AWSPENDING,
    Credential,
    Inventory,
    LedgerEntry,
    LedgerState,
    PrincipalInventory,
    SecretState,
    User,
    with_known_expiry,
)
from tokenwarden.domain.naming import Naming
from tokenwarden.domain.outcomes import Finding, PrincipalOutcome, RunReport, Status
from tokenwarden.domain.ownership import NotTokenWardens, OwnershipNotConfigured, UserFacts
from tokenwarden.domain.plan import (
    Action,
    ActionKind,
    Plan,
    PlanConfig,
    PrincipalPlan,
    build_plan,
    plan_principal,
    rotation_days,
)
from tokenwarden.domain.registry import Principal, Registry
from tokenwarden.domain.rollback import retirement_note, team_record
from tokenwarden.errors import AwsError
from tokenwarden.observability import count, logger
from tokenwarden.ports import IamPort, LedgerPort, Notifier, SecretsPort
from tokenwarden.service.expiry_metrics import days_to_expiry, publish_expiry
from tokenwarden.service.journal import Journal, write_record
from tokenwarden.service.lease import Leases, PrincipalBusy, rotation_owner
from tokenwarden.service.ownership import Custody, Secured, UserRead
from tokenwarden.service.rotation import (
    TAG_GRACE,
    TAG_KEY_AGE,
    TAG_MANAGED,
    TAG_PRINCIPAL,
    TAG_TEAM,
    RotationEngine,
    describe_error,
)

SECRET_RECOVERY_DAYS = 30
MIN_SECONDS_TO_START = 60


class HealthRecords(Protocol):
    """The health check's saved team records (service/health.py writes them)."""

    def load(self) -> dict[str, dict[str, Any]]: ...


@dataclass
class Reconciler:
    iam: IamPort
    secrets: SecretsPort
    ledger: LedgerPort
    notifier: Notifier
    engine: RotationEngine
    naming: Naming
    rotation_lambda_arn: str | None = None
    custody: Custody | None = None
    leases: Leases | None = None
    # Read before a previous key is retired: the run report says when the team was silent already.
    health: HealthRecords | None = None
    # Where repairs and refused takeovers are recorded for the evidence report (the ledger's history).
    journal: Journal | None = None
    # One DaysToExpiry metric per principal at each summary (PrincipalMetrics; aggregates always).
    principal_metrics: bool = False
    # Principals whose `offboarded` message this run already sent (one message, however many keys).
    _offboard_announced: set[str] = field(default_factory=set, init=False, repr=False)
    # The health records as read for the run of this id (empty when the read failed): one read a run.
    _health_read: tuple[str, Mapping[str, Mapping[str, Any]]] | None = field(
        default=None, init=False, repr=False
    )

    # -- read ------------------------------------------------------------------------------

    def inventory(self) -> Inventory:
        users = self.iam.list_users(self.naming.user_path)
        credentials = self.iam.list_all_credentials()
        secrets = self.secrets.list_secrets(self.naming.secret_prefix)
        ledger = self.ledger.scan()

        by_principal: dict[str, dict[str, object]] = defaultdict(dict)
        managed_users: dict[str, str] = {}
        for user in users:
            principal = self.naming.principal_of_user(user.name)
            if principal is not None:
                by_principal[principal]["user"] = user
                managed_users[user.name] = principal
        creds: dict[str, list[Credential]] = defaultdict(list)
        foreign: list[Credential] = []
        for cred in credentials:
            if cred.user_name in managed_users:
                creds[managed_users[cred.user_name]].append(cred)
            else:
                foreign.append(cred)
        for secret in secrets:
            principal = self.naming.principal_of_secret(secret.name)
            if principal is not None:
                by_principal[principal]["secret"] = secret
        entries: dict[str, list[LedgerEntry]] = defaultdict(list)
        for entry in ledger:
            entries[entry.principal].append(entry)
        creds = {name: _known_expiry(found, entries.get(name, [])) for name, found in creds.items()}

        names = set(by_principal) | set(creds) | {p for p, e in entries.items() if _live(e)}
        principals = {
            name: PrincipalInventory(
                principal=name,
                user=by_principal[name].get("user"),  # type: ignore[arg-type]
                secret=by_principal[name].get("secret"),  # type: ignore[arg-type]
                credentials=tuple(creds.get(name, ())),
                ledger=tuple(entries.get(name, ())),
            )
            for name in sorted(names)
        }
        return Inventory(principals=principals, foreign_credentials=tuple(foreign))

    def principal_inventory(self, principal: str) -> PrincipalInventory:
        """One principal's resources, read afresh (under its lease)."""
        return self._read_principal(principal, self.iam.get_user(self.naming.user_name(principal)))

    def _read_principal(self, principal: str, user: User | None) -> PrincipalInventory:
        """The principal's resources, its user as just read."""
        if user is not None and user.path != self.naming.user_path:
            user = None  # not TokenWarden's: the inventory by path would not list it either
        entries = self.ledger.entries(principal)
        credentials = self.iam.list_user_credentials(user.name) if user is not None else []
        return PrincipalInventory(
            principal=principal,
            user=user,
            secret=self.secrets.describe(self.naming.secret_name(principal)),
            credentials=tuple(_known_expiry(credentials, entries)),
            ledger=tuple(entries),
        )

    def plan(
        self,
        registry: Registry,
        now: datetime,
        inventory: Inventory | None = None,
        allow_mass_revoke: bool = False,
    ) -> Plan:
        return build_plan(
            registry,
            inventory if inventory is not None else self.inventory(),
            now,
            PlanConfig(rotation_lambda_arn=self.rotation_lambda_arn, allow_mass_revoke=allow_mass_revoke),
        )

    def run(
        self,
        registry: Registry,
        now: datetime,
        remaining_seconds: Callable[[], float] | None = None,
        progress: Callable[[PrincipalOutcome], None] | None = None,
        allow_mass_revoke: bool = False,
    ) -> RunReport:
        """One reconciler run: inventory, plan, apply."""
        inventory = self.inventory()
        plan = self.plan(registry, now, inventory, allow_mass_revoke)
        return self.apply(registry, plan, now, inventory, remaining_seconds, progress)

    # -- write -----------------------------------------------------------------------------

    def apply(
        self,
        registry: Registry,
        plan: Plan,
        now: datetime,
        inventory: Inventory | None = None,
        remaining_seconds: Callable[[], float] | None = None,
        progress: Callable[[PrincipalOutcome], None] | None = None,
    ) -> RunReport:
        run_id = uuid.uuid4().hex
        outcomes: list[PrincipalOutcome] = []
        counts: Counter[str] = Counter()
        if plan.guard is not None and plan.guard.tripped:
            self.notifier.publish(
                notes.guard_tripped(plan.guard.would_deactivate, plan.guard.managed, plan.guard.limit, now)
            )
            count("GuardTripped", 1)
        self._offboard_announced.clear()
        for principal_plan in plan.principals:
            principal = registry.get(principal_plan.principal) or registry.former(principal_plan.principal)
            if not principal_plan.actions and not self._needs_check(registry, principal, inventory):
                outcome = PrincipalOutcome(principal=principal.id, status="unchanged")
            elif remaining_seconds is not None and remaining_seconds() < MIN_SECONDS_TO_START:
                outcome = PrincipalOutcome(
                    principal=principal.id, status="deferred", error="out of time; next run"
                )
            else:
                outcome = self._apply_principal(registry, principal, now, run_id, plan.config)
            counts.update(outcome.done)
            counts[f"principals_{outcome.status}"] += 1
            outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
        changed = any(o.done for o in outcomes)
        final = self.inventory() if changed or inventory is None else inventory
        report = RunReport(
            started_at=now,
            outcomes=tuple(outcomes),
            findings=plan.findings + audit(registry, final, now),
            counts=dict(counts),
            min_days_to_expiry=_min_days_to_expiry(registry, final, now),
        )
        publish_expiry(days_to_expiry(registry, final, now), self.principal_metrics)
        self._summarise(report, now)
        return report

    # -- one principal at a time (the steps of the nightly state machine) --------------------

    def has_work(self, registry: Registry, principal_plan: PrincipalPlan, inventory: Inventory) -> bool:
        """Whether `apply` would work on this principal rather than report it unchanged."""
        principal = registry.get(principal_plan.principal) or registry.former(principal_plan.principal)
        return bool(principal_plan.actions) or self._needs_check(registry, principal, inventory)

    def apply_principal(
        self,
        registry: Registry,
        principal_id: str,
        now: datetime,
        run_id: str,
        allow_mass_revoke: bool = False,
    ) -> PrincipalOutcome:
        """One principal's share of a night, exactly as `apply` does it: under its lease, read
        afresh, planned again and applied, a failure reported in the outcome, never raised.

        The state machine's per-principal task calls this with the run's id; the principal's
        `offboarded` message is sent once per call, so a warm container announces it again on a
        later night."""
        principal = registry.get(principal_id) or registry.former(principal_id)
        config = PlanConfig(rotation_lambda_arn=self.rotation_lambda_arn, allow_mass_revoke=allow_mass_revoke)
        self._offboard_announced.discard(principal.id)
        return self._apply_principal(registry, principal, now, run_id, config)

    def close_run(
        self,
        registry: Registry,
        started_at: datetime,
        now: datetime,
        outcomes: tuple[PrincipalOutcome, ...],
        findings: tuple[Finding, ...],
        final: Inventory | None = None,
        counts: Mapping[str, int] | None = None,
    ) -> RunReport:
        """The report of a run whose principals were applied elsewhere (the state machine's items):
        counted (or `counts` given, when `outcomes` name only some of the run's principals), audited
        against the account as it is now (`final`, read here when not given), summarised in one
        `run_summary` with the run's metrics."""
        counted: Counter[str] = Counter()
        for outcome in outcomes:
            counted.update(outcome.done)
            counted[f"principals_{outcome.status}"] += 1
        final = final if final is not None else self.inventory()
        report = RunReport(
            started_at=started_at,
            outcomes=outcomes,
            findings=findings + audit(registry, final, now),
            counts=dict(counts if counts is not None else counted),
            min_days_to_expiry=_min_days_to_expiry(registry, final, now),
        )
        publish_expiry(days_to_expiry(registry, final, now), self.principal_metrics)
        self._summarise(report, now)
        return report

    def _apply_principal(
        self, registry: Registry, principal: Principal, now: datetime, run_id: str, config: PlanConfig
    ) -> PrincipalOutcome:
        if self.leases is not None and not self.leases.acquire(principal.id, run_id):
            return PrincipalOutcome(
                principal=principal.id,
                status="locked",
                error="another run is working on it (its lease expires by itself)",
            )
        progress = _Progress()
        try:
            self._apply_actions(registry, principal, now, run_id, config, progress)
        except RotationInProgress as exc:
            return PrincipalOutcome(
                principal=principal.id, status="locked", done=tuple(progress.done), error=str(exc)
            )
        except Exception as exc:
            # Whatever one principal's work raised is reported (a foreign exception by its type
            # only: its text may quote a response, token included) and the run goes on.
            return self._failed(principal, exc, progress, now)
        finally:
            # A lease handed to a rotation is the rotation's to release: releasing it as this
            # run's could only be refused (its owner is no longer this run), at the cost of a call.
            if self.leases is not None and not progress.lease_handed_over:
                self.leases.release(principal.id, run_id)
        status: Status = "ok" if progress.done else "unchanged"
        return PrincipalOutcome(
            principal=principal.id, status=status, done=tuple(progress.done), notes=tuple(progress.notes)
        )

    def _apply_actions(
        self,
        registry: Registry,
        principal: Principal,
        now: datetime,
        run_id: str,
        config: PlanConfig,
        progress: _Progress,
    ) -> None:
        """Read the principal afresh, plan it, secure its user and secret, apply the actions."""
        inspected = self._inspect_user(principal.id)
        inv = (
            self.principal_inventory(principal.id)
            if inspected is None
            else self._read_principal(principal.id, _user_of(inspected.facts))
        )
        actions = plan_principal(registry, principal.id, inv, now, config).actions
        known = _Known(self.ledger, self.iam, self.secrets, self.naming, inv)
        if actions or self._needs_check(registry, principal, None, inv.secret):
            progress.step = "secure"
            secured = self._secure(
                principal,
                bool(inv.ledger),
                actions,
                registered=registry.get(principal.id) is not None,
                described=inv.secret,
                inspected=inspected,
            )
            progress.done += ["secure"] if secured.fixes else []
            known.secret_arn = secured.secret_arn
        try:
            for action in actions:
                progress.step = action.kind.value
                self._apply(principal, action, now, run_id, known)
                progress.done.append(action.kind.value)
                count(f"Action_{action.kind.value}", 1)
        finally:
            progress.lease_handed_over = known.lease_handed_over
            progress.notes += known.notes

    def _inspect_user(self, principal: str) -> UserRead | None:
        """With ownership rules, the user is read once under the lease with everything custody
        judges (GetUser and the listings of what else it has), for the plan and the verification
        alike; without them (nothing is verified) a GetUser is all the plan needs."""
        if self.custody is None:
            return None
        return UserRead(self.iam.inspect_user(self.naming.user_name(principal)))

    def _failed(
        self, principal: Principal, exc: Exception, progress: _Progress, now: datetime
    ) -> PrincipalOutcome:
        """One principal's failure, reported; a user or secret that is not TokenWarden's is also
        announced, since a person must look at it before any run acts on the principal again."""
        if isinstance(exc, NotTokenWardens):
            return self._refused(principal, str(exc), tuple(progress.done), now)
        # Our own messages name what to do; a foreign exception is named by its code or type only.
        error = str(exc) if isinstance(exc, OwnershipNotConfigured) else describe_error(exc)
        logger.error(
            "principal failed", extra={"principal": principal.id, "action": progress.step, "error": error}
        )
        count("PrincipalFailed", 1)
        return PrincipalOutcome(
            principal=principal.id,
            status="failed",
            done=tuple(progress.done),
            error=f"{progress.step}: {error}",
        )

    def _needs_check(
        self,
        registry: Registry,
        principal: Principal,
        inventory: Inventory | None,
        listed: SecretState | None = None,
    ) -> bool:
        """A registered principal with nothing to do is still checked when its listed secret lost
        TokenWarden's tag or key, or carries an outdated policy (ListSecrets tells; no extra call)."""
        if self.custody is None or registry.get(principal.id) is None:
            return False
        if listed is None and inventory is not None:
            listed = inventory.of(principal.id).secret
        return self.custody.needs_check(principal, listed)

    def _secure(
        self,
        principal: Principal,
        history: bool,
        actions: tuple[Action, ...],
        *,
        registered: bool,
        described: SecretState | None,
        inspected: UserRead | None,
    ) -> Secured:
        """Verify (and for an onboarding, make) the user and the secret before any action.
        `described`, `inspected`: the secret and the user as read under the lease a moment ago
        (the secret's policy is read again)."""
        if self.custody is None:
            raise OwnershipNotConfigured("the reconciler was built without ownership rules")
        secured = self.custody.secure(
            principal,
            self._secret_tags(principal),
            history=history,
            create=any(a.kind == ActionKind.ONBOARD for a in actions),
            repair=registered,
            described=described,
            inspected=inspected,
            description=f"CloudWatch metrics API key (bearer token) of {principal.kind} {principal.id}; "
            "managed by TokenWarden",
        )
        if secured.fixes:
            logger.info("secured", extra={"principal": principal.id, "fixes": list(secured.fixes)})
        return secured

    def _refused(
        self, principal: Principal, found: str, done: tuple[str, ...], now: datetime
    ) -> PrincipalOutcome:
        """Not TokenWarden's: nothing more is done for this principal, and people are told."""
        logger.error("takeover refused", extra={"principal": principal.id, "error": found})
        count("TakeoverRefused", 1)
        count("PrincipalFailed", 1)
        self.notifier.publish(notes.takeover_refused(principal.id, principal.team, found, now))
        write_record(
            self.journal, principal.id, TakeoverRefusedRecord(principal=principal.id, at=now, finding=found)
        )
        return PrincipalOutcome(principal=principal.id, status="failed", done=done, error=f"refused: {found}")

    def _apply(self, principal: Principal, action: Action, now: datetime, run_id: str, known: _Known) -> None:
        logger.info(
            "applying",
            extra={"principal": principal.id, "action": action.kind.value, "reason": action.reason},
        )
        handler = {
            ActionKind.ONBOARD: self._onboard,
            ActionKind.CONFIGURE_ROTATION: self._configure_rotation,
            ActionKind.ABANDON_PENDING: self._abandon,
            ActionKind.RESUME_FINISH: self._resume,
            ActionKind.ROTATE: lambda p, a, n, k: self._rotate(p, a, n, k, run_id),
            ActionKind.REPAIR: lambda p, a, n, k: self._rotate(p, a, n, k, run_id),
            ActionKind.RETIRE: lambda p, a, n, k: self._retire(p, a, n, k, run_id),
            ActionKind.DELETE: self._delete,
            ActionKind.DELETE_UNTRACKED: self._delete,
            ActionKind.EXPIRING_SOON: self._expiring_soon,
            ActionKind.OFFBOARD: self._offboard,
            ActionKind.DELETE_SECRET: self._delete_secret,
            ActionKind.DELETE_USER: self._delete_user,
        }[action.kind]
        handler(principal, action, now, known)

    def _secret_tags(self, principal: Principal) -> dict[str, str]:
        return {
            TAG_PRINCIPAL: principal.id,
            TAG_TEAM: principal.team,
            TAG_MANAGED: "tokenwarden",
            TAG_KEY_AGE: str(principal.lifecycle.key_age_days),
            TAG_GRACE: str(principal.lifecycle.grace_days),
        }

    def _onboard(self, principal: Principal, action: Action, now: datetime, known: _Known) -> None:
        """The user and the secret were made (or verified) by `_secure` just before."""
        arn = known.arn()
        token = action.version_id or str(uuid.uuid4())
        known.forget()  # the rotation steps write keys and records of their own
        self.engine.run_all(arn, token)
        self._configure_rotation(principal, action, now, known)

    def _configure_rotation(self, principal: Principal, action: Action, now: datetime, known: _Known) -> None:
        arn = known.arn()
        if self.rotation_lambda_arn is None:
            return
        self.secrets.configure_rotation(arn, self.rotation_lambda_arn, rotation_days(principal.lifecycle))

    def _abandon(self, principal: Principal, action: Action, now: datetime, known: _Known) -> None:
        secret = self._describe(principal)  # afresh: its labels decide what is taken off
        version = action.version_id or ""
        if AWSPENDING in secret.versions.get(version, ()) and version != secret.current_version:
            self.secrets.remove_stage(secret.arn, AWSPENDING, from_version=version)
        entry = known.entry(version)
        if entry is None:
            return
        if entry.credential_id and version != secret.current_version:
            self.iam.delete_credential(self.naming.user_name(principal.id), entry.credential_id)
        known.save(
            entry.model_copy(
                update={"state": LedgerState.ABANDONED, "deleted_at": now, "reason": action.reason}
            )
        )

    def _resume(self, principal: Principal, action: Action, now: datetime, known: _Known) -> None:
        """AWSCURRENT already holds this version (the first version of a secret is current as
        soon as it is written): prove the key before it is recorded as current and announced."""
        arn = known.arn()
        known.forget()
        self.engine.run_step("testSecret", arn, action.version_id or "", leased=True)
        self.engine.run_step("finishSecret", arn, action.version_id or "", leased=True)

    def _rotate(
        self, principal: Principal, action: Action, now: datetime, known: _Known, run_id: str
    ) -> None:
        arn, name = known.arn(), self.naming.secret_name(principal.id)
        if action.kind == ActionKind.REPAIR:
            # Said before the rotation starts: on AWS it runs in the background and reports itself.
            broken = known.entry_for(action.credential_id) if action.credential_id else None
            key = _key(broken) if broken else None
            self.notifier.publish(notes.repaired(principal.id, principal.team, name, key, action.reason, now))
            write_record(self.journal, principal.id, _repair_record(principal.id, broken, action.reason, now))
        token = str(uuid.uuid4())
        known.forget()
        if self.rotation_lambda_arn is None:
            self.engine.run_all(arn, token)
            return
        bound = int(self.engine.probe_policy.rotation_bound_seconds())
        if self.leases is not None and not self.leases.hand_over(
            principal.id, run_id, rotation_owner(token), bound
        ):
            raise PrincipalBusy(f"lost the lease of {principal.id} before the rotation started")
        known.lease_handed_over = True
        try:
            self.secrets.rotate(arn, token, self.rotation_lambda_arn, rotation_days(principal.lifecycle))
        except AwsError as exc:
            if self.leases is not None:
                self.leases.release(principal.id, rotation_owner(token))
            if _rotation_already_running(exc):
                raise RotationInProgress(
                    f"Secrets Manager is still running an earlier rotation of {name}; "
                    "a later run finishes or abandons it"
                ) from None
            raise

    def _retire(
        self, principal: Principal, action: Action, now: datetime, known: _Known, run_id: str
    ) -> None:
        user = self.naming.user_name(principal.id)
        cred_id = action.credential_id or ""
        before = known.entry_for(cred_id)
        note = self._team_before_retirement(principal, before.alias if before else None, cred_id, run_id)
        if note is not None:
            known.notes.append(note)
        self.iam.set_credential_status(user, cred_id, active=False)
        entry = known.entry_for(cred_id)
        if entry is not None:
            known.save(entry.model_copy(update={"state": LedgerState.RETIRED, "deactivated_at": now}))
            self.notifier.publish(
                notes.retired(
                    principal.id, principal.team, _key(entry), principal.lifecycle.retention_days, now
                )
            )

    def _team_before_retirement(
        self, principal: Principal, alias: str | None, cred_id: str, run_id: str
    ) -> str | None:
        """The team's health before its previous key is retired: a team already silent, or that never
        reported, is not made worse by it (the key is retired as planned, and the report says so); a
        team that reports is protected by the automatic rollback (service/rollback.py)."""
        if self.health is None:
            return None
        note = retirement_note(
            principal.team, alias or cred_id, team_record(self._health(run_id), principal.team)
        )
        if note is not None:
            logger.info(
                "retiring for a team that does not report", extra={"principal": principal.id, "note": note}
            )
        return note

    def _health(self, run_id: str) -> Mapping[str, Mapping[str, Any]]:
        """The health records, read once for the run. They only add a note to the report, so a failed
        read never holds a retirement back: the key is retired as planned, without the note."""
        if self._health_read is None or self._health_read[0] != run_id:
            assert self.health is not None
            try:
                records: Mapping[str, Mapping[str, Any]] = self.health.load()
            except Exception as exc:
                error = f"{exc.operation}: {exc.code}" if isinstance(exc, AwsError) else type(exc).__name__
                logger.warning("health records unreadable; retiring without the note", extra={"error": error})
                records = {}
            self._health_read = (run_id, records)
        return self._health_read[1]

    def _delete(self, principal: Principal, action: Action, now: datetime, known: _Known) -> None:
        user = self.naming.user_name(principal.id)
        cred_id = action.credential_id or ""
        listed = known.credential(cred_id)
        self.iam.delete_credential(user, cred_id)
        entry = known.entry_for(cred_id)
        if entry is not None and entry.state != LedgerState.DELETED:
            known.save(entry.model_copy(update={"state": LedgerState.DELETED, "deleted_at": now}))
        key = (
            _key(entry)
            if entry
            else notes.KeyRef(
                credential_id=cred_id,
                alias=listed.alias if listed else cred_id,
                expires_at=listed.expires_at if listed else None,
            )
        )
        reason = (
            "its rollback window is over"
            if action.kind == ActionKind.DELETE
            else "it was untracked (a crash leftover)"
        )
        self.notifier.publish(notes.deleted(principal.id, principal.team, key, reason, now))

    def _expiring_soon(self, principal: Principal, action: Action, now: datetime, known: _Known) -> None:
        entry = known.entry_for(action.credential_id or "")
        if entry is None:
            return
        secret_name = self.naming.secret_name(principal.id)
        self.notifier.publish(
            notes.expiring_soon(principal.id, principal.team, secret_name, _key(entry), now)
        )
        known.save(entry.model_copy(update={"notified": entry.notified | {"expiring_soon"}}))

    def _offboard(self, principal: Principal, action: Action, now: datetime, known: _Known) -> None:
        user = self.naming.user_name(principal.id)
        cred_id = action.credential_id or ""
        listed = known.credential(cred_id)
        self.iam.set_credential_status(user, cred_id, active=False)
        entry = known.entry_for(cred_id)
        if entry is None:
            # An untracked key gets a record now, so its rollback window is kept like any other.
            entry = LedgerEntry(
                principal=principal.id,
                version_id=f"offboard-{cred_id}",
                state=LedgerState.RETIRED,
                created_at=now,
                credential_id=cred_id,
                alias=listed.alias if listed else cred_id,
                expires_at=listed.expires_at if listed else None,
            )
        known.save(
            entry.model_copy(
                update={"state": LedgerState.RETIRED, "deactivated_at": now, "reason": "offboarded"}
            )
        )
        if principal.id not in self._offboard_announced:
            self._offboard_announced.add(principal.id)
            self.notifier.publish(
                notes.offboarded(
                    principal.id,
                    self.naming.secret_name(principal.id),
                    principal.lifecycle.retention_days,
                    now,
                )
            )

    def _delete_secret(self, principal: Principal, action: Action, now: datetime, known: _Known) -> None:
        self.secrets.schedule_deletion(self.naming.secret_name(principal.id), SECRET_RECOVERY_DAYS)

    def _delete_user(self, principal: Principal, action: Action, now: datetime, known: _Known) -> None:
        self.iam.delete_user(self.naming.user_name(principal.id))

    def _describe(self, principal: Principal) -> SecretState:
        secret = self.secrets.describe(self.naming.secret_name(principal.id))
        if secret is None:
            raise RuntimeError(f"secret {self.naming.secret_name(principal.id)} does not exist")
        return secret

    def _summarise(self, report: RunReport, now: datetime) -> None:
        if report.min_days_to_expiry is not None:
            count("MinDaysToExpiry", report.min_days_to_expiry)
        count("RunFailures", report.counts.get("principals_failed", len(report.failed)))
        self.notifier.publish(notes.run_summary(report.outcomes, report.findings, report.counts, now))


@dataclass
class _Progress:
    """How far one principal got: the steps done, and the one under way (named if it fails)."""

    done: list[str] = field(default_factory=list)
    step: str = "read"
    lease_handed_over: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class _Known:
    """What one principal's apply read under its lease, reused by its actions instead of read
    again: the ledger entries (kept in step with the records the actions write), the user's keys
    and the secret's name and ARN. An action that runs rotation steps (which write keys and
    records of their own) forgets entries and keys, and the next action that needs them reads
    them again."""

    ledger: LedgerPort
    iam: IamPort
    secrets: SecretsPort
    naming: Naming
    read: PrincipalInventory
    _entries: list[LedgerEntry] | None = None
    _credentials: list[Credential] | None = None
    # The ARN `_secure` verified (or made) the secret under; it never changes while the lease is held.
    secret_arn: str | None = None
    # The principal's lease was handed to a rotation (which releases it).
    lease_handed_over: bool = False
    # What the run report should say about this principal's actions.
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._entries = list(self.read.ledger)
        self._credentials = list(self.read.credentials) if self.read.user is not None else None
        self.secret_arn = self.read.secret.arn if self.read.secret is not None else None

    def arn(self) -> str:
        """The secret's ARN as `_secure` (or the read under the lease) found it; described otherwise."""
        if self.secret_arn is None:
            name = self.naming.secret_name(self.read.principal)
            secret = self.secrets.describe(name)
            if secret is None:
                raise RuntimeError(f"secret {name} does not exist")
            self.secret_arn = secret.arn
        return self.secret_arn

    def entries(self) -> list[LedgerEntry]:
        if self._entries is None:
            self._entries = self.ledger.entries(self.read.principal)
        return self._entries

    def entry(self, version_id: str) -> LedgerEntry | None:
        return next((e for e in self.entries() if e.version_id == version_id), None)

    def entry_for(self, credential_id: str) -> LedgerEntry | None:
        return next((e for e in self.entries() if e.credential_id == credential_id), None)

    def credential(self, credential_id: str) -> Credential | None:
        if self._credentials is None:
            self._credentials = self.iam.list_user_credentials(self.naming.user_name(self.read.principal))
        return next((c for c in self._credentials if c.id == credential_id), None)

    def save(self, entry: LedgerEntry) -> None:
        """Write the record, and remember it as written."""
        self.ledger.save(entry)
        self._entries = [e for e in self.entries() if e.version_id != entry.version_id] + [entry]

    def forget(self) -> None:
        self._entries = None
        self._credentials = None


class RotationInProgress(RuntimeError):
    """Secrets Manager refused to start a rotation because one is still running."""


def _rotation_already_running(exc: AwsError) -> bool:
    message = exc.message.lower()
    return exc.code == "InvalidRequestException" and (
        "previous rotation" in message or "in progress" in message
    )


def _user_of(facts: UserFacts | None) -> User | None:
    return None if facts is None else User(name=facts.name, path=facts.path, arn=facts.arn)


def _known_expiry(credentials: list[Credential], entries: list[LedgerEntry]) -> list[Credential]:
    by_id = {e.credential_id: e for e in entries if e.credential_id}
    return [with_known_expiry(c, by_id.get(c.id)) for c in credentials]


def _live(entries: list[LedgerEntry]) -> bool:
    return any(e.state not in (LedgerState.DELETED, LedgerState.ABANDONED) for e in entries)


def _repair_record(principal: str, broken: LedgerEntry | None, reason: str, now: datetime) -> RepairRecord:
    return RepairRecord(
        principal=principal,
        at=now,
        reason=reason,
        credential_id=broken.credential_id if broken else None,
        alias=broken.alias if broken else None,
    )


def _key(entry: LedgerEntry) -> notes.KeyRef:
    return notes.KeyRef(
        credential_id=entry.credential_id or "", alias=entry.alias or "", expires_at=entry.expires_at
    )


def _min_days_to_expiry(registry: Registry, inventory: Inventory, now: datetime) -> float | None:
    remaining = days_to_expiry(registry, inventory, now).values()
    return min(remaining) if remaining else None
