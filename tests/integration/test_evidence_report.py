"""The evidence report against moto after a real lifecycle (onboard, rotate, retire, revoke with a
replacement, revoke and restore, repair, a silence): its figures are the ledger's,
each row cites records that exist in the table, and no token appears in any format."""

from __future__ import annotations

import argparse
import json
from contextlib import suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from tests.conftest import T0, Env
from tokenwarden.adapters.ledger import DynamoHealthStore
from tokenwarden.cli import commands
from tokenwarden.cli.context import Context, Timing
from tokenwarden.cli.report_render import FORMATS, render, verify
from tokenwarden.domain.evidence import KeyRow, Report, RevokeRow, RotationRow, SilenceRow
from tokenwarden.domain.health import HealthState, Transition
from tokenwarden.domain.model import LedgerEntry, LedgerState
from tokenwarden.domain.registry import parse_registry
from tokenwarden.local import realism
from tokenwarden.service.evidence import evidence_report
from tokenwarden.service.health import write_transition

REGISTRY = parse_registry(
    """
defaults:
  lifecycle: {key_age_days: 20, rotate_before_days: 5, rotation_jitter_days: 0, grace_days: 2,
              retention_days: 2, expiry_alert_days: 1}
principals: [{id: alpha}, {id: beta}, {id: gamma}]
""",
    "evidence-test.yaml",
)


def tokens(env: Env, seen: set[str]) -> None:
    """Every token the secrets hold now, added to `seen`."""
    sm = env.client("secretsmanager")
    for principal in REGISTRY.ids:
        for version in env.secret_versions(principal):
            with suppress(ClientError):
                seen.add(
                    sm.get_secret_value(SecretId=f"tokenwarden/{principal}", VersionId=version)[
                        "SecretString"
                    ]
                )


def lifecycle(env: Env, seen: set[str]) -> None:
    env.run(registry=REGISTRY)
    tokens(env, seen)
    for night in range(1, 21):  # rotated when due, retired after the grace, deleted after the retention
        env.run(T0 + timedelta(days=night), registry=REGISTRY)
        tokens(env, seen)
    alpha, beta = REGISTRY.require("alpha"), REGISTRY.require("beta")
    at = env.clock.advance(timedelta(hours=3))
    env.glass.revoke(
        alpha, "token pasted in #general | <script>", "arn:aws:iam::123456789012:user/oncall", True, at
    )
    env.settle()
    tokens(env, seen)
    env.glass.revoke(beta, "laptop stolen", "arn:aws:iam::123456789012:user/oncall", False, env.clock.now())
    env.glass.restore(beta, "arn:aws:iam::123456789012:user/oncall", env.clock.advance(timedelta(minutes=45)))
    (current,) = [e for e in env.adapters.ledger.entries("gamma") if e.state == LedgerState.CURRENT]
    with realism.setup_calls():  # deleted out of band: the next run repairs it
        env.client("iam").delete_service_specific_credential(
            UserName="tw-gamma", ServiceSpecificCredentialId=current.credential_id
        )
    env.run(T0 + timedelta(days=21), registry=REGISTRY)
    tokens(env, seen)


def silence(env: Env) -> None:
    """A health transition pair, as the health check records them."""
    store = DynamoHealthStore(env.client("dynamodb"), env.settings.ledger_table)
    profile = REGISTRY.require("alpha").activity
    last = T0 + timedelta(days=22, hours=9)  # a Tuesday morning
    for event, at, state in (
        ("team_silent", last + timedelta(hours=4, minutes=30), HealthState.SILENT),
        ("team_recovered", last + timedelta(days=1, hours=2), HealthState.RECOVERED),
    ):
        transition = Transition(
            team="alpha",
            event=event,  # type: ignore[arg-type]
            previous=None,
            current=state,
            last_sample_at=last,
            silent_active_hours=4.5,
        )
        write_transition(store, transition, profile, at)


def report_of(env: Env, start: datetime) -> Report:
    return evidence_report(
        env.adapters.ledger,
        env.reconciler.inventory(),
        REGISTRY,
        start,
        env.clock.now(),
        caller_arn=env.adapters.iam.caller(),
        ledger_table=env.settings.ledger_table,
    )


def rows(report: Report, section: str) -> list[Any]:
    return list(next(s for s in report.sections if s.id == section).rows)


def by_citation(env: Env) -> dict[str, LedgerEntry]:
    return {f"P#{e.principal}/V#{e.version_id}": e for e in env.adapters.ledger.scan()}


def test_the_reports_figures_are_the_ledgers_and_no_token_appears(env: Env) -> None:
    seen: set[str] = set()
    lifecycle(env, seen)
    silence(env)
    env.clock.advance(timedelta(days=3))
    report = report_of(env, T0 - timedelta(days=1))
    entries = by_citation(env)

    keys: list[KeyRow] = rows(report, "keys")
    activated = {c for c, e in entries.items() if e.activated_at is not None}
    assert {row.sources[0] for row in keys} == activated
    for row in keys:
        entry = entries[row.sources[0]]
        assert (row.activated_at, row.replaced_at, row.retired_at, row.deleted_at) == (
            entry.activated_at,
            entry.superseded_at,
            entry.deactivated_at,
            entry.deleted_at,
        )
        assert row.policy_days == 17 and not row.over_policy

    rotations: list[RotationRow] = [r for r in rows(report, "rotations") if r.done_at is not None]
    assert {r.principal for r in rotations} == {"alpha", "beta", "gamma"}
    assert len(rotations) == 3  # gamma's second key was replaced by a repair (in the drift section)
    for rotation in rotations:
        assert rotation.done_at == entries[rotation.sources[0]].superseded_at and not rotation.late

    revokes: list[RevokeRow] = rows(report, "revokes")
    (alpha, beta) = sorted(revokes, key=lambda r: r.principal)
    assert alpha.reason == "token pasted in #general | <script>"
    assert alpha.actor == "arn:aws:iam::123456789012:user/oncall"
    replacement = entries[alpha.sources[1]]
    assert replacement.activated_at is not None and alpha.minutes_to_replacement == round(
        (replacement.activated_at - alpha.revoked_at).total_seconds() / 60, 1
    )
    assert beta.replacement == "restored" and beta.minutes_to_replacement == 45.0

    (gap,) = rows(report, "silences")
    assert isinstance(gap, SilenceRow) and gap.minutes_to_detection == 30.0
    assert gap.minutes_to_recovery == round((timedelta(hours=21, minutes=30)).total_seconds() / 60, 1)

    drift = {(r.principal, r.resolution) for r in rows(report, "drift")}
    assert ("gamma", "repaired") in drift

    history = {item.citation for item in env.adapters.ledger.history_items()}
    for section in report.sections:
        for cited in section.rows:
            for source in cited.sources:
                assert source in entries or source in history or source.startswith("account audit"), source

    assert report.account == "123456789012" and report.notes == ()
    assert seen  # the tokens of every key issued
    for fmt in FORMATS:
        rendered = render(report, fmt)
        assert not [t for t in seen if t in rendered], fmt
    assert verify(render(report, "json"))


def test_the_command_writes_the_report_read_only(env: Env, tmp_path: Path) -> None:
    env.run(registry=REGISTRY)
    env.run(T0 + timedelta(days=16), registry=REGISTRY)
    before = {e.version_id: e for e in env.adapters.ledger.scan()}
    env.log.calls.clear()
    output = tmp_path / "evidence.json"
    args = argparse.Namespace(
        command="report", since=timedelta(days=30), format="json", output=str(output), registry=None
    )
    ctx = Context(env.settings, args)
    ctx.__dict__.update(registry=REGISTRY, adapters=env.adapters, timing=Timing(env.clock, env.clock.now()))

    assert commands.report(args, ctx) == 0

    document = json.loads(output.read_text())
    assert verify(output.read_text()) and document["account"] == "123456789012"
    assert len(next(s for s in document["sections"] if s["id"] == "rotations")["rows"]) == 3
    reads = ("List", "Get", "Describe", "Scan", "Query")
    writes = [c for c in env.log.calls if not c.split(":")[1].startswith(reads)]
    assert writes == [] and {e.version_id: e for e in env.adapters.ledger.scan()} == before
    assert not [c for c in env.log.calls if c.endswith(":GetSecretValue")]  # no token is ever read


def test_a_refused_takeover_is_journaled_once_a_day_and_reported(env: Env) -> None:
    env.run(registry=REGISTRY)
    with realism.setup_calls():
        other = env.client("kms").create_key()["KeyMetadata"]["Arn"]
        env.client("secretsmanager").update_secret(SecretId="tokenwarden/beta", KmsKeyId=other)
    for at in (timedelta(hours=1), timedelta(hours=2), timedelta(days=1)):
        env.run(T0 + at, registry=REGISTRY)

    refusals = [r for r in env.adapters.ledger.history("beta") if r["kind"] == "takeover_refused"]
    (row,) = [r for r in rows(report_of(env, T0), "drift") if r.finding == "takeover refused"]

    assert len(refusals) == 2 and other in refusals[0]["finding"]
    assert row.principal == "beta" and row.found_at == T0 + timedelta(hours=1) and len(row.sources) == 2
