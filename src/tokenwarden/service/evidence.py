"""Gathering the evidence report: one read of the ledger table and one inventory of the account,
then the pure computation (tokenwarden.domain.evidence). Read-only: nothing in AWS changes."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from tokenwarden.domain.audit import audit
from tokenwarden.domain.evidence import Evidence, Report, account_of, build_report
from tokenwarden.domain.journal import HistoryItem
from tokenwarden.domain.model import Inventory, LedgerEntry
from tokenwarden.domain.registry import Registry


class EvidenceLedger(Protocol):
    def scan(self) -> list[LedgerEntry]: ...

    def history_items(self) -> list[HistoryItem]: ...


def evidence_report(
    ledger: EvidenceLedger,
    inventory: Inventory,
    registry: Registry,
    start: datetime,
    now: datetime,
    caller_arn: str | None,
    ledger_table: str,
) -> Report:
    """The report over [start, now]: the ledger's records, and the drift the account shows now."""
    evidence = Evidence(
        entries=ledger.scan(),
        history=ledger.history_items(),
        registry=registry,
        findings=audit(registry, inventory, now),
        start=start,
        end=now,
    )
    return build_report(evidence, generated_at=now, account=account_of(caller_arn), ledger_table=ledger_table)
