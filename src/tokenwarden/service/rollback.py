"""The automatic rollback, acted on by the health check: a team silenced by the routine retirement of
one of its keys gets that key back for a few days (the rule is in domain/rollback.py).

The health check runs every hour and finds a silence within hours; the nightly run would find it a
day late. So the health check acts, principal by principal, under the principal's lease (the one
the nightly run, the rotation steps and break-glass take): a principal another run is working on
is left to the next health check, which tries again while the team stays silent.

Under the lease the principal's key records, keys and history are read afresh, each key decided
again, and the steps of a rollback are done in an order that a kill at any instant leaves
finishable by the next run (which finds the team still silent, or finds the key back and its
announcement not yet marked, whatever the team's health): the history record and the key record
first, in one transaction (a key is never re-activated without a record saying why, and no record
ever stands for a rollback its key record does not show: a previous key again, with its extended
grace), then the key itself, then the announcement, marked in the key record once sent. An escalation is announced, then recorded, so it is announced at least once. A revoked key is
never re-activated: the decision reads every revoke record, restored or not, under the same lease a
revoke takes.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from tokenwarden.domain import notifications as notes
from tokenwarden.domain.calendar import Span
from tokenwarden.domain.health import TeamRecord, team_profiles
from tokenwarden.domain.model import Credential, LedgerEntry, with_known_expiry
from tokenwarden.domain.naming import Naming
from tokenwarden.domain.registry import Principal, Registry
from tokenwarden.domain.rollback import (
    DEFAULT_ROLLBACK_POLICY,
    ROLLED_BACK,
    Decision,
    EscalationRecord,
    KeyFacts,
    KeyHistory,
    RollbackPolicy,
    RollbackRecord,
    Silence,
    Verdict,
    candidates,
    decide_rollback,
    rollback_record,
    rolled_back_entry,
    settled_refusal,
)
from tokenwarden.errors import AwsError
from tokenwarden.observability import count, logger
from tokenwarden.ports import Clock, IamPort, LedgerPort, Notifier

LEASE_SECONDS = 120

OutcomeVerdict = Literal["rollback", "finish", "escalate", "refuse", "busy", "failed"]
VERDICTS: dict[Verdict, OutcomeVerdict] = {
    Verdict.ROLLBACK: "rollback",
    Verdict.FINISH: "finish",
    Verdict.ESCALATE: "escalate",
    Verdict.REFUSE: "refuse",
}


class RollbackLedger(LedgerPort, Protocol):
    """The ledger's key records and leases, and its append-only history."""

    def append_history(self, principal: str, key: str, record: Mapping[str, Any]) -> bool: ...

    def append_history_and_save(
        self, principal: str, key: str, record: Mapping[str, Any], entry: LedgerEntry
    ) -> bool: ...

    def history(self, principal: str) -> list[dict[str, Any]]: ...


class RollbackOutcome(BaseModel):
    """What the health check did (or refused to do) about one key of a silent team."""

    model_config = ConfigDict(frozen=True)

    principal: str
    team: str
    verdict: OutcomeVerdict
    reason: str
    credential_id: str | None = None
    active_until: datetime | None = None


@dataclass
class AutomaticRollback:
    iam: IamPort
    ledger: RollbackLedger
    notifier: Notifier
    naming: Naming
    clock: Clock
    """For the lease: a health run over many teams may be minutes past its evaluation time."""
    policy: RollbackPolicy = field(default_factory=lambda: DEFAULT_ROLLBACK_POLICY)
    lease_seconds: int = LEASE_SECONDS

    def after_evaluation(
        self,
        registry: Registry,
        records: Mapping[str, TeamRecord],
        now: datetime,
        snoozed: Mapping[str, Sequence[Span]] | None = None,
        newly_silent: Collection[str] | None = None,
    ) -> tuple[RollbackOutcome, ...]:
        """Every silent team's principals, whose retired keys may explain the silence, and every
        principal with a rollback a killed run left unannounced, whatever its team's health now: the
        re-activated key may have brought the team back, and it must still be told (`rolled_back`).

        The key records are read in one scan, not one query per principal; a principal is read again
        under its lease only when one of its records can matter. A key whose refusal is settled
        (:func:`settled_refusal`) is decided once, at the check that finds its team newly silent
        (`newly_silent`; every silent team when not given), not again every check of the silence."""
        if not self.policy.enabled:
            return ()
        profiles = team_profiles(registry)
        members = _members(registry)
        scanned: dict[str, list[LedgerEntry]] = {}
        for entry in self.ledger.scan():
            scanned.setdefault(entry.principal, []).append(entry)
        outcomes: list[RollbackOutcome] = []
        for team, record in sorted(records.items()):
            if team not in members:
                continue
            silence = Silence(
                team=team,
                state=record.state,
                last_sample_at=record.last_sample_at,
                profile=profiles[team],
                snoozed=tuple((snoozed or {}).get(team, ())),
            )
            fresh = newly_silent is None or team in newly_silent
            for principal in members[team]:
                found = candidates(scanned.get(principal.id, []), silence, self.policy)
                if not fresh:
                    found = [
                        e
                        for e in found
                        if not settled_refusal(e, silence, principal.lifecycle, now, self.policy)
                    ]
                if found:
                    outcomes += self._isolated(principal, silence, now)
        return tuple(outcomes)

    def _isolated(self, principal: Principal, silence: Silence, now: datetime) -> list[RollbackOutcome]:
        """One principal's failure is reported and the health run goes on: its alerts are sent and
        its records saved, and the next run tries again (a rollback recorded half way is finished
        then)."""
        try:
            return self.principal(principal, silence, now)
        except Exception as exc:
            error = f"{exc.operation}: {exc.code}" if isinstance(exc, AwsError) else type(exc).__name__
            logger.error("rollback failed", extra={"principal": principal.id, "error": error})
            count("RollbackFailed", 1)
            return [
                RollbackOutcome(
                    principal=principal.id,
                    team=silence.team,
                    verdict="failed",
                    reason=f"{error}; the next health check tries again while the team stays silent",
                )
            ]

    def principal(self, principal: Principal, silence: Silence, now: datetime) -> list[RollbackOutcome]:
        """One principal's keys, decided and acted on under its lease. The caller has chosen it from
        the scan (one of its key records can matter); under the lease its records are read again."""
        owner = f"rollback:{uuid.uuid4().hex}"
        if not self.ledger.acquire(principal.id, owner, self.clock.now(), self.lease_seconds):
            logger.info("rollback: principal busy", extra={"principal": principal.id})
            return [
                RollbackOutcome(
                    principal=principal.id,
                    team=silence.team,
                    verdict="busy",
                    reason="another run holds the principal's lease; the next health check tries again",
                )
            ]
        try:
            return self._under_lease(principal, silence, now)
        finally:
            self.ledger.release(principal.id, owner)

    def _under_lease(self, principal: Principal, silence: Silence, now: datetime) -> list[RollbackOutcome]:
        entries = self.ledger.entries(principal.id)
        creds = {c.id: c for c in self.iam.list_user_credentials(self.naming.user_name(principal.id))}
        history = KeyHistory.parse(self.ledger.history(principal.id))
        outcomes: list[RollbackOutcome] = []
        for entry in candidates(entries, silence, self.policy):
            key = KeyFacts(
                entry=entry,
                credential=_listed(creds, entry),
                lifecycle=principal.lifecycle,
                registered=True,
                history=history,
            )
            decision = decide_rollback(key, silence, now, self.policy)
            if decision is not None:
                outcomes.append(self._act(principal, key, silence, decision, now))
        return outcomes

    def _act(
        self, principal: Principal, key: KeyFacts, silence: Silence, decision: Decision, now: datetime
    ) -> RollbackOutcome:
        logger.warning(
            "rollback",
            extra={
                "principal": principal.id,
                "key": key.entry.credential_id,
                "verdict": decision.verdict.value,
                "reason": decision.reason,
            },
        )
        outcome = RollbackOutcome(
            principal=principal.id,
            team=silence.team,
            verdict=VERDICTS[decision.verdict],
            reason=decision.reason,
            credential_id=key.entry.credential_id,
        )
        if decision.verdict is Verdict.REFUSE:
            count("RollbackRefused", 1)
            return outcome
        if decision.verdict is Verdict.ESCALATE:
            self._escalate(principal, key, silence, decision, now)
            return outcome
        record, entry = decision.record, key.entry
        if record is None:
            record, entry = self._record(principal, entry, rollback_record(key, silence, decision, now))
        self._finish(principal, key, entry, record, now)
        return outcome.model_copy(update={"active_until": record.grace_until})

    def _record(
        self, principal: Principal, entry: LedgerEntry, record: RollbackRecord
    ) -> tuple[RollbackRecord, LedgerEntry]:
        """The rollback's history record and its key record, written together before the key is
        touched (the record and the key record as they now stand). A history record already written
        for the same key and retirement (by an earlier run killed after writing it) is the one kept."""
        rolled_back = rolled_back_entry(entry, record)
        if self.ledger.append_history_and_save(
            principal.id, record.key, record.model_dump(mode="json"), rolled_back
        ):
            return record, rolled_back
        written = KeyHistory.parse(self.ledger.history(principal.id)).of(record.credential_id)
        return next((r for r in written if r.retired_at == record.retired_at), record), entry

    def _finish(
        self, principal: Principal, key: KeyFacts, entry: LedgerEntry, record: RollbackRecord, now: datetime
    ) -> None:
        """Key record, key, announcement: each step skipped when an earlier run did it."""
        if entry.grace_until != record.grace_until or entry.deactivated_at is not None:
            entry = rolled_back_entry(entry, record)
            self.ledger.save(entry)
        cred = key.credential
        if cred is not None and cred.status != "Active":
            self.iam.set_credential_status(self.naming.user_name(principal.id), cred.id, active=True)
        if ROLLED_BACK not in entry.notified:
            self.notifier.publish(
                notes.rolled_back(
                    principal.id, principal.team, _key(entry), record.retired_at, record.grace_until, now
                )
            )
            self.ledger.save(entry.model_copy(update={"notified": entry.notified | {ROLLED_BACK}}))
            count("KeysRolledBack", 1)

    def _escalate(
        self, principal: Principal, key: KeyFacts, silence: Silence, decision: Decision, now: datetime
    ) -> None:
        entry = key.entry
        first = key.history.of(entry.credential_id or "")[0]
        assert entry.deactivated_at is not None  # a routine retirement: decided on its time
        escalation = EscalationRecord(
            principal=principal.id,
            team=silence.team,
            credential_id=entry.credential_id or "",
            alias=entry.alias or entry.credential_id or "",
            retired_at=entry.deactivated_at,
            escalated_at=now,
            reason=decision.reason,
        )
        self.notifier.publish(
            notes.rollback_escalated(principal.id, principal.team, _key(entry), first.rolled_back_at, now)
        )
        self.ledger.append_history(principal.id, escalation.key, escalation.model_dump(mode="json"))
        count("RollbackEscalated", 1)


def _members(registry: Registry) -> dict[str, list[Principal]]:
    """The registry's principals by team, in the registry's order: one pass, however many teams."""
    members: dict[str, list[Principal]] = {}
    for principal in registry.principals:
        members.setdefault(principal.team, []).append(principal)
    return members


def _listed(creds: Mapping[str, Credential], entry: LedgerEntry) -> Credential | None:
    listed = creds.get(entry.credential_id or "")
    return with_known_expiry(listed, entry) if listed is not None else None


def _key(entry: LedgerEntry) -> notes.KeyRef:
    return notes.KeyRef(
        credential_id=entry.credential_id or "",
        alias=entry.alias or entry.credential_id or "",
        expires_at=entry.expires_at,
    )
