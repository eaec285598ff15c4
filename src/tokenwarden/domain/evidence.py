"""The evidence report: what the ledger says happened to every key over a period, as figures an
auditor can check. Pure: ledger records (key records and history records), the registry, the
account's drift findings and the period in; a :class:`Report` out.

Every row cites the ledger records it was computed from (`P#<principal>/V#<version>` for a key
record, `P#<principal>/H#<key>` or `HEALTH/H#<team>#<key>` for a history record), so each figure
can be traced back to what was stored. A history record of a kind this module does not know is
skipped; one of a known kind that cannot be read is named in the report's notes, never dropped
without a word.

A section is one function from :class:`Evidence` to a :class:`Section`; adding one means adding
its row model and its function to :data:`SECTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, SerializeAsAny, ValidationError

from tokenwarden.domain.journal import HealthRecord, HistoryItem, RepairRecord, TakeoverRefusedRecord
from tokenwarden.domain.model import LedgerEntry
from tokenwarden.domain.outcomes import Finding
from tokenwarden.domain.plan import rotation_due_at
from tokenwarden.domain.registry import Lifecycle, Registry
from tokenwarden.domain.rollback import EscalationRecord, RollbackRecord

SCHEDULE_TOLERANCE = timedelta(hours=36)
"""How long after its due time a nightly step may run and still be on time: the next night's run
(24 hours), with room for a long run; a step that missed a night is past it."""

REPORT_FORMAT = 1

M = TypeVar("M", bound=BaseModel)


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True)


class Row(_Value):
    """One line of a section: its figures and the ledger records they come from."""

    COLUMNS: ClassVar[tuple[tuple[str, str], ...]] = ()
    """(field, heading) of each column a rendering shows, in order; `sources` always comes last."""

    sources: tuple[str, ...]


class KeyRow(Row):
    COLUMNS = (
        ("principal", "Principal"),
        ("alias", "Key"),
        ("created_at", "Created"),
        ("activated_at", "Active from"),
        ("replaced_at", "Replaced"),
        ("retired_at", "Retired"),
        ("revoked_at", "Revoked"),
        ("deleted_at", "Deleted"),
        ("active_days", "Active days"),
        ("policy_days", "Policy days"),
        ("over_policy", "Over policy"),
    )
    principal: str
    alias: str
    credential_id: str | None
    created_at: datetime
    activated_at: datetime
    replaced_at: datetime | None
    retired_at: datetime | None
    revoked_at: datetime | None
    deleted_at: datetime | None
    expires_at: datetime | None
    active_days: float
    still_active: bool
    policy_days: int
    over_policy: bool


class RotationRow(Row):
    COLUMNS = (
        ("principal", "Principal"),
        ("alias", "Key"),
        ("due_at", "Due"),
        ("done_at", "Done"),
        ("replaced_by", "Replaced by"),
        ("late_hours", "Late (h)"),
        ("late", "Late"),
    )
    principal: str
    alias: str
    due_at: datetime
    done_at: datetime | None
    replaced_by: str | None
    late_hours: float
    late: bool


class RevokeRow(Row):
    COLUMNS = (
        ("principal", "Principal"),
        ("number", "Revoke"),
        ("revoked_at", "Revoked"),
        ("actor", "Actor"),
        ("reason", "Reason"),
        ("keys", "Keys"),
        ("replacement", "Working replacement"),
        ("replacement_at", "At"),
        ("minutes_to_replacement", "Minutes"),
    )
    principal: str
    number: int
    revoked_at: datetime
    actor: str
    reason: str
    reissue: bool
    keys: tuple[str, ...]
    replacement: str | None
    replacement_at: datetime | None
    minutes_to_replacement: float | None


class SilenceRow(Row):
    COLUMNS = (
        ("team", "Team"),
        ("last_sample_at", "Last sample"),
        ("threshold_crossed_at", "Threshold crossed"),
        ("detected_at", "Detected"),
        ("minutes_to_detection", "Minutes to detection"),
        ("recovered_at", "Recovered"),
        ("minutes_to_recovery", "Minutes to recovery"),
    )
    team: str
    last_sample_at: datetime | None
    threshold_crossed_at: datetime | None
    detected_at: datetime
    minutes_to_detection: float | None
    recovered_at: datetime | None
    minutes_to_recovery: float | None


class DriftRow(Row):
    COLUMNS = (
        ("principal", "Principal"),
        ("finding", "Finding"),
        ("detail", "Detail"),
        ("found_at", "Found"),
        ("resolution", "Resolution"),
        ("resolved_at", "Resolved"),
    )
    principal: str | None
    finding: str
    detail: str
    found_at: datetime
    resolution: str
    resolved_at: datetime | None


class RollbackRow(Row):
    COLUMNS = (
        ("principal", "Principal"),
        ("team", "Team"),
        ("key", "Key"),
        ("retired_at", "Retired"),
        ("acted_at", "Acted"),
        ("minutes_after_retirement", "Minutes after retirement"),
        ("outcome", "Outcome"),
        ("active_until", "Active again until"),
    )
    principal: str
    team: str
    key: str
    retired_at: datetime
    acted_at: datetime
    minutes_after_retirement: float | None
    outcome: str
    active_until: datetime | None


class Section(_Value):
    id: str
    title: str
    controls: str
    summary: str
    columns: tuple[tuple[str, str], ...]
    rows: tuple[SerializeAsAny[Row], ...]


class Report(_Value):
    """The report's content. Its digest (over this content's canonical JSON) is added when rendered."""

    format: int = REPORT_FORMAT
    title: str = "TokenWarden key lifecycle evidence"
    period_start: datetime
    period_end: datetime
    generated_at: datetime
    account: str | None
    registry: str
    ledger_table: str
    method: tuple[str, ...]
    sections: tuple[Section, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Evidence:
    """Everything a report is computed from, already read."""

    entries: Sequence[LedgerEntry]
    history: Sequence[HistoryItem]
    registry: Registry
    findings: Sequence[Finding]
    start: datetime
    end: datetime

    def lifecycle(self, principal: str) -> Lifecycle:
        known = self.registry.get(principal)
        return known.lifecycle if known is not None else self.registry.defaults.lifecycle

    def in_period(self, at: datetime | None) -> bool:
        return at is not None and self.start <= at <= self.end

    def records(self, kind: str) -> list[tuple[HistoryItem, dict[str, Any]]]:
        return sorted(
            ((item, item.record) for item in self.history if item.record.get("kind") == kind),
            key=lambda pair: (pair[0].pk, pair[0].sk),
        )

    def activations(self, principal: str) -> list[LedgerEntry]:
        """The principal's keys that became active, oldest first."""
        return sorted(
            (e for e in self.entries if e.principal == principal and e.activated_at is not None),
            key=lambda e: e.activated_at or self.end,
        )


def counted(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _hours(span: timedelta) -> int:
    return int(span.total_seconds() // 3600)


def cite(entry: LedgerEntry) -> str:
    return f"P#{entry.principal}/V#{entry.version_id}"


def _name(entry: LedgerEntry) -> str:
    return entry.alias or entry.credential_id or f"version {entry.version_id}"


def _minutes(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 60, 1)


def _first(*values: datetime | None) -> datetime | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


# -- keys -------------------------------------------------------------------------------------------


def policy_days(life: Lifecycle) -> int:
    """The longest a key is meant to stay active: rotated `rotate_before_days` before it expires,
    then kept active through the grace."""
    return life.key_age_days - life.rotate_before_days + life.grace_days


def key_row(entry: LedgerEntry, evidence: Evidence) -> KeyRow | None:
    activated = entry.activated_at
    if activated is None or activated > evidence.end:
        return None
    ended = _first(entry.deactivated_at, entry.revoked_at, entry.deleted_at, entry.expires_at)
    if ended is not None and ended < evidence.start:
        return None
    until = min(ended, evidence.end) if ended is not None else evidence.end
    days = round((until - activated).total_seconds() / 86400, 2)
    limit = policy_days(evidence.lifecycle(entry.principal))
    return KeyRow(
        principal=entry.principal,
        alias=_name(entry),
        credential_id=entry.credential_id,
        created_at=entry.created_at,
        activated_at=activated,
        replaced_at=entry.superseded_at,
        retired_at=entry.deactivated_at,
        revoked_at=entry.revoked_at,
        deleted_at=entry.deleted_at,
        expires_at=entry.expires_at,
        active_days=days,
        still_active=ended is None or ended > evidence.end,
        policy_days=limit,
        over_policy=timedelta(days=days) > timedelta(days=limit) + 2 * SCHEDULE_TOLERANCE,
        sources=(cite(entry),),
    )


def keys_section(evidence: Evidence) -> Section:
    rows = [row for e in evidence.entries if (row := key_row(e, evidence)) is not None]
    rows.sort(key=lambda r: (r.principal, r.activated_at))
    over = sum(r.over_policy for r in rows)
    return Section(
        id="keys",
        title="Keys and their active life",
        controls="Key rotation. SOC 2 CC6.1 (logical access credentials); ISO/IEC 27001:2022 A.5.17 "
        "(authentication information). Every CloudWatch API key active in the period, with when it was "
        "created, replaced, retired and deleted, and how long it was active against the policy.",
        summary=f"{counted(len(rows), 'key')} active in the period; {over} active longer than the policy allows.",
        columns=KeyRow.COLUMNS,
        rows=tuple(rows),
    )


# -- rotations --------------------------------------------------------------------------------------


def _expiry(entry: LedgerEntry) -> datetime | None:
    if entry.expires_at is not None:
        return entry.expires_at
    if entry.requested_age_days is not None:
        return entry.created_at + timedelta(days=entry.requested_age_days)
    return None


def _successor(entry: LedgerEntry, evidence: Evidence) -> LedgerEntry | None:
    after = entry.superseded_at or evidence.end
    return next(
        (
            e
            for e in evidence.activations(entry.principal)
            if e is not entry and (e.activated_at or after) >= after
        ),
        None,
    )


def rotation_row(entry: LedgerEntry, evidence: Evidence, repaired: frozenset[str]) -> RotationRow | None:
    """A routine rotation (or one still owed) of a key, against its due time; None for keys that were
    never due in the period or were replaced by a revoke or a repair (both in sections of their own)."""
    expires = _expiry(entry)
    if entry.activated_at is None or expires is None or entry.credential_id in repaired:
        return None
    if entry.revoked_at is not None and (
        entry.superseded_at is None or entry.revoked_at <= entry.superseded_at
    ):
        return None
    due = rotation_due_at(entry.principal, evidence.lifecycle(entry.principal), expires)
    done = entry.superseded_at
    if done is None:
        stopped = _first(entry.deactivated_at, entry.deleted_at)
        if due > evidence.end or stopped is not None:
            return None
    elif not evidence.in_period(done):
        return None
    late_by = (done or evidence.end) - due
    successor = _successor(entry, evidence) if done is not None else None
    return RotationRow(
        principal=entry.principal,
        alias=_name(entry),
        due_at=due,
        done_at=done,
        replaced_by=_name(successor) if successor is not None else None,
        late_hours=round(max(timedelta(0), late_by).total_seconds() / 3600, 1),
        late=late_by > SCHEDULE_TOLERANCE,
        sources=(cite(entry),) + ((cite(successor),) if successor is not None else ()),
    )


def rotations_section(evidence: Evidence) -> Section:
    repaired = frozenset(str(raw.get("credential_id")) for _, raw in evidence.records("repair"))
    rows = [row for e in evidence.entries if (row := rotation_row(e, evidence, repaired)) is not None]
    rows.sort(key=lambda r: (r.due_at, r.principal))
    late = [r for r in rows if r.late]
    owed = sum(r.done_at is None for r in rows)
    return Section(
        id="rotations",
        title="Rotations against their due date",
        controls="Key rotation. SOC 2 CC6.1; ISO/IEC 27001:2022 A.5.17. Each key replaced in the period (and "
        "each one due but not replaced yet) with its due time from the policy; a rotation is late when it "
        f"was done more than {_hours(SCHEDULE_TOLERANCE)} hours after it was due (it missed a nightly run).",
        summary=f"{counted(len(rows) - owed, 'rotation')} done, {len(late)} late; {owed} due and not done by the end.",
        columns=RotationRow.COLUMNS,
        rows=tuple(rows),
    )


# -- revokes ----------------------------------------------------------------------------------------


def describe_actor(actor: Mapping[str, Any]) -> str:
    """Who asked, as the revoke record says it (the authenticated identity when there is one)."""
    if actor.get("requester"):
        return str(actor["requester"])
    request = f" request {actor['request_id']}" if actor.get("request_id") else ""
    claimed = f", claimed by {actor['claimed_by']}" if actor.get("claimed_by") else ""
    return f"{actor.get('acted_as', 'unknown')}{request} (invoker in CloudTrail){claimed}"


class _Revoke(BaseModel):
    model_config = ConfigDict(extra="ignore")

    principal: str
    number: int
    revoked_at: datetime
    actor: dict[str, Any]
    reason: str
    reissue: bool = False
    keys: tuple[dict[str, Any], ...] = ()


class _Restore(BaseModel):
    model_config = ConfigDict(extra="ignore")

    principal: str
    revoke: int
    restored_at: datetime


def _replacement(
    revoke: _Revoke, restores: Mapping[tuple[str, int], tuple[HistoryItem, _Restore]], evidence: Evidence
) -> tuple[str, datetime, str] | None:
    """The first working key after a revoke: a key activated after it, or the revoke's restore."""
    revoked = {str(k.get("credential_id")) for k in revoke.keys}
    candidates: list[tuple[datetime, str, str]] = [
        (e.activated_at, _name(e), cite(e))
        for e in evidence.activations(revoke.principal)
        if e.activated_at is not None
        and e.activated_at >= revoke.revoked_at
        and e.credential_id not in revoked
    ]
    restored = restores.get((revoke.principal, revoke.number))
    if restored is not None:
        item, restore = restored
        candidates.append((restore.restored_at, "restored", item.citation))
    if not candidates:
        return None
    at, name, source = min(candidates)
    return name, at, source


def revokes_section(evidence: Evidence, notes: list[str]) -> Section:
    restores: dict[tuple[str, int], tuple[HistoryItem, _Restore]] = {}
    for item, raw in evidence.records("restore"):
        if (restore := _parsed(_Restore, item, raw, notes)) is not None:
            restores[(restore.principal, restore.revoke)] = (item, restore)
    rows: list[RevokeRow] = []
    for item, raw in evidence.records("revoke"):
        revoke = _parsed(_Revoke, item, raw, notes)
        if revoke is None or not evidence.in_period(revoke.revoked_at):
            continue
        found = _replacement(revoke, restores, evidence)
        rows.append(
            RevokeRow(
                principal=revoke.principal,
                number=revoke.number,
                revoked_at=revoke.revoked_at,
                actor=describe_actor(revoke.actor),
                reason=revoke.reason,
                reissue=revoke.reissue,
                keys=tuple(str(k.get("alias") or k.get("credential_id")) for k in revoke.keys),
                replacement=found[0] if found else None,
                replacement_at=found[1] if found else None,
                minutes_to_replacement=_minutes(revoke.revoked_at, found[1]) if found else None,
                sources=(item.citation,) + ((found[2],) if found else ()),
            )
        )
    rows.sort(key=lambda r: r.revoked_at)
    waits = [r.minutes_to_replacement for r in rows if r.minutes_to_replacement is not None]
    longest = f"; longest wait for a working replacement {max(waits):.1f} minutes" if waits else ""
    return Section(
        id="revokes",
        title="Revokes (break-glass)",
        controls="Access revocation. SOC 2 CC6.2 and CC6.3 (removal of access); ISO/IEC 27001:2022 A.5.18 "
        "(access rights). Each revoke with who asked (the identity AWS authenticated) and why, and the "
        "minutes until a working key was in place again (a replacement activated, or the revoke restored).",
        summary=f"{counted(len(rows), 'revoke')}{longest}.",
        columns=RevokeRow.COLUMNS,
        rows=tuple(rows),
    )


# -- silences ---------------------------------------------------------------------------------------


def _silence(item: HistoryItem, record: HealthRecord) -> SilenceRow:
    return SilenceRow(
        team=record.team,
        last_sample_at=record.last_sample_at,
        threshold_crossed_at=record.threshold_crossed_at,
        detected_at=record.at,
        minutes_to_detection=_minutes(record.threshold_crossed_at, record.at),
        recovered_at=None,
        minutes_to_recovery=None,
        sources=(item.citation,),
    )


def _recovered(row: SilenceRow, item: HistoryItem, record: HealthRecord) -> SilenceRow:
    return row.model_copy(
        update={
            "recovered_at": record.at,
            "minutes_to_recovery": _minutes(row.detected_at, record.at),
            "sources": (*row.sources, item.citation),
        }
    )


def silence_rows(evidence: Evidence, notes: list[str]) -> list[SilenceRow]:
    """Each `team_silent` paired with the team's next `team_recovered`."""
    parsed = [
        (item, record)
        for item, raw in evidence.records("health")
        if (record := _parsed(HealthRecord, item, raw, notes)) is not None and record.at <= evidence.end
    ]
    parsed.sort(key=lambda pair: (pair[1].team, pair[1].at))
    open_rows: dict[str, SilenceRow] = {}
    rows: list[SilenceRow] = []
    for item, record in parsed:
        if record.event == "team_silent":
            if record.team in open_rows:
                rows.append(open_rows.pop(record.team))
            open_rows[record.team] = _silence(item, record)
        elif record.event == "team_recovered" and record.team in open_rows:
            rows.append(_recovered(open_rows.pop(record.team), item, record))
    rows += open_rows.values()
    return [
        r
        for r in rows
        if r.detected_at <= evidence.end and (r.recovered_at or r.detected_at) >= evidence.start
    ]


def silences_section(evidence: Evidence, notes: list[str]) -> Section:
    rows = sorted(silence_rows(evidence, notes), key=lambda r: r.detected_at)
    open_count = sum(r.recovered_at is None for r in rows)
    detection = [r.minutes_to_detection for r in rows if r.minutes_to_detection is not None]
    slowest = f"; slowest detection {max(detection):.0f} minutes after the threshold" if detection else ""
    return Section(
        id="silences",
        title="Telemetry silences",
        controls="Monitoring. SOC 2 CC7.2 (monitoring of system components); ISO/IEC 27001:2022 A.8.16 "
        "(monitoring activities). Each team whose telemetry stopped: when its working hours without a "
        "sample crossed its threshold, when the health check announced it, and when it recovered.",
        summary=f"{counted(len(rows), 'silence')}, {open_count} not recovered by the end{slowest}.",
        columns=SilenceRow.COLUMNS,
        rows=tuple(rows),
    )


# -- automatic rollbacks ----------------------------------------------------------------------------


def _rollback_row(
    item: HistoryItem, record: RollbackRecord | EscalationRecord, acted_at: datetime, until: datetime | None
) -> RollbackRow:
    return RollbackRow(
        principal=record.principal,
        team=record.team,
        key=record.alias,
        retired_at=record.retired_at,
        acted_at=acted_at,
        minutes_after_retirement=_minutes(record.retired_at, acted_at),
        outcome="re-activated" if until is not None else "escalated (second silence; not re-activated)",
        active_until=until,
        sources=(item.citation,),
    )


def rollback_rows(evidence: Evidence, notes: list[str]) -> list[RollbackRow]:
    """Each retired key the health check re-activated, and each second silence it escalated instead."""
    rows: list[RollbackRow] = []
    for item, raw in evidence.records("rolled_back"):
        if (done := _parsed(RollbackRecord, item, raw, notes)) is not None:
            rows.append(_rollback_row(item, done, done.rolled_back_at, done.grace_until))
    for item, raw in evidence.records("rollback_escalated"):
        if (refused := _parsed(EscalationRecord, item, raw, notes)) is not None:
            rows.append(_rollback_row(item, refused, refused.escalated_at, None))
    return [r for r in rows if evidence.start <= r.acted_at <= evidence.end]


def rollbacks_section(evidence: Evidence, notes: list[str]) -> Section:
    rows = sorted(rollback_rows(evidence, notes), key=lambda r: r.acted_at)
    escalated = sum(r.active_until is None for r in rows)
    return Section(
        id="rollbacks",
        title="Automatic rollbacks",
        controls="Availability of key rotation. SOC 2 CC7.4 and CC7.5 (response to and recovery from "
        "incidents); ISO/IEC 27001:2022 A.5.26 (response to information security incidents). Each retired "
        "key the health check re-activated because its team went silent right after the retirement, and "
        "each second silence it escalated instead of re-activating the key again.",
        summary=f"{counted(len(rows) - escalated, 'key')} re-activated, {escalated} escalated.",
        columns=RollbackRow.COLUMNS,
        rows=tuple(rows),
    )


# -- drift ------------------------------------------------------------------------------------------


def repair_rows(evidence: Evidence, notes: list[str]) -> list[DriftRow]:
    rows: list[DriftRow] = []
    for item, raw in evidence.records("repair"):
        repair = _parsed(RepairRecord, item, raw, notes)
        if repair is None or not evidence.in_period(repair.at):
            continue
        fixed = next(
            (
                e
                for e in evidence.activations(repair.principal)
                if e.activated_at and e.activated_at >= repair.at
            ),
            None,
        )
        rows.append(
            DriftRow(
                principal=repair.principal,
                finding="current key broken out of band",
                detail=repair.reason,
                found_at=repair.at,
                resolution="repaired" if fixed is not None else "repair started",
                resolved_at=fixed.activated_at if fixed is not None else None,
                sources=(item.citation,) + ((cite(fixed),) if fixed is not None else ()),
            )
        )
    return rows


def takeover_rows(evidence: Evidence, notes: list[str]) -> list[DriftRow]:
    """Refused takeovers, one row per principal: the first refusal of the period and the latest."""
    seen: dict[str, list[tuple[HistoryItem, TakeoverRefusedRecord]]] = {}
    for item, raw in evidence.records("takeover_refused"):
        record = _parsed(TakeoverRefusedRecord, item, raw, notes)
        if record is not None and evidence.in_period(record.at):
            seen.setdefault(record.principal, []).append((item, record))
    rows = []
    for principal, refusals in sorted(seen.items()):
        refusals.sort(key=lambda pair: pair[1].at)
        first, last = refusals[0][1], refusals[-1][1]
        rows.append(
            DriftRow(
                principal=principal,
                finding="takeover refused",
                detail=f"{last.finding} (refused on {counted(len(refusals), 'day')}, last {last.at:%Y-%m-%d})",
                found_at=first.at,
                resolution=_refusal_outcome(last.at, evidence.end),
                resolved_at=None,
                sources=tuple(item.citation for item, _ in refusals),
            )
        )
    return rows


def _refusal_outcome(last: datetime, end: datetime) -> str:
    """A refusal repeats every night until a person resolves it: none for two nights means resolved."""
    if end - last > 2 * SCHEDULE_TOLERANCE:
        return "takeover refused, no refusal since"
    return "takeover refused"


def open_rows(evidence: Evidence) -> list[DriftRow]:
    """What the account shows now: drift the audit finds at the end of the period."""
    return [
        DriftRow(
            principal=f.principal,
            finding=f.kind,
            detail=f.detail,
            found_at=evidence.end,
            resolution="still open",
            resolved_at=None,
            sources=(f"account audit at {evidence.end:%Y-%m-%dT%H:%M:%SZ}",),
        )
        for f in evidence.findings
    ]


def drift_section(evidence: Evidence, notes: list[str]) -> Section:
    rows = [*repair_rows(evidence, notes), *takeover_rows(evidence, notes), *open_rows(evidence)]
    rows.sort(key=lambda r: (r.found_at, r.principal or "", r.finding))
    still = sum(r.resolution == "still open" for r in rows)
    return Section(
        id="drift",
        title="Drift findings and their resolution",
        controls="Configuration monitoring. SOC 2 CC7.1 (detection of configuration changes); ISO/IEC "
        "27001:2022 A.8.9 (configuration management). Keys broken out of band and repaired, takeovers "
        "refused, and what the account audit finds open at the end of the period.",
        summary=f"{counted(len(rows) - still, 'finding')} recorded in the period; {still} open in the account now.",
        columns=DriftRow.COLUMNS,
        rows=tuple(rows),
    )


# -- the report -------------------------------------------------------------------------------------

SectionBuilder = Callable[[Evidence, list[str]], Section]

SECTIONS: tuple[SectionBuilder, ...] = (
    lambda evidence, _: keys_section(evidence),
    lambda evidence, _: rotations_section(evidence),
    revokes_section,
    silences_section,
    rollbacks_section,
    drift_section,
)
"""The report's sections, in order."""

METHOD = (
    "Times are UTC. Each row cites the ledger records it was computed from: P#<principal>/V#<version> "
    "is a key record, P#<principal>/H#<key> and HEALTH/H#<team>#<key> are append-only history records.",
    "Active days run from a key's activation to the first of its retirement, revoke, deletion or expiry "
    "(or the end of the period). The policy allows key_age_days - rotate_before_days + grace_days; a key "
    f"is over policy past that plus {_hours(2 * SCHEDULE_TOLERANCE)} hours (the rotation and the retirement "
    "each run at the next nightly run).",
    "The digest is the SHA-256 of the report's canonical JSON (every field but `digest`, keys sorted, no "
    "spaces): `tokenwarden report --format json` prints it, and any edit changes it.",
)


def build_report(
    evidence: Evidence, generated_at: datetime, account: str | None, ledger_table: str
) -> Report:
    notes: list[str] = []
    sections = tuple(build(evidence, notes) for build in SECTIONS)
    return Report(
        period_start=evidence.start,
        period_end=evidence.end,
        generated_at=generated_at,
        account=account,
        registry=evidence.registry.source,
        ledger_table=ledger_table,
        method=METHOD,
        sections=sections,
        notes=tuple(notes),
    )


def _parsed(model: type[M], item: HistoryItem, raw: Mapping[str, Any], notes: list[str]) -> M | None:
    """The record as `model`, or None with a note naming it when it cannot be read."""
    try:
        return model.model_validate(raw)
    except ValidationError:
        notes.append(f"history record {item.citation} ({raw.get('kind')}) could not be read and is left out")
        return None


def account_of(arn: str | None) -> str | None:
    """The account id in an ARN (arn:partition:service:region:account:...), or None."""
    parts = (arn or "").split(":")
    return parts[4] if len(parts) > 4 and parts[4] else None
