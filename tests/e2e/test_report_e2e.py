"""`tokenwarden report` through the CLI against the embedded stack, after onboard, rotate, revoke and
restore: its figures are the ledger's, its digest verifies, and no token appears in any format."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from tests.e2e.conftest import Cli
from tests.e2e.test_breakglass_e2e import cli, history, registry, stack, token
from tokenwarden.cli.report_render import verify
from tokenwarden.local.clock import RemoteStackClock

pytestmark = pytest.mark.e2e
__all__ = ["cli", "stack"]  # the fixtures, in force here too


def test_the_report_after_a_lifecycle_matches_the_ledger_and_holds_no_token(
    cli: Cli, stack: dict[str, str], tmp_path: Path
) -> None:
    teams = registry(tmp_path, "reef", "kelp")
    clock = RemoteStackClock(stack["TOKENWARDEN_STACK_URL"])
    t0 = clock.now()
    cli("apply", "--registry", teams, "--quiet")
    seen = {token("reef"), token("kelp")}
    cli("apply", "--registry", teams, "--quiet", "--at", (t0 + timedelta(days=80)).isoformat())
    seen |= {token("reef"), token("kelp")}
    cli("revoke", "reef", "--reason", "laptop stolen | <b>urgent</b>", "--registry", teams)
    clock.advance_to(clock.now() + timedelta(minutes=30))
    cli("restore", "reef", "--registry", teams)

    out = {fmt: tmp_path / f"evidence.{fmt}" for fmt in ("md", "json", "html")}
    for fmt, path in out.items():
        cli("report", "--since", "120d", "--format", fmt, "--output", str(path), "--registry", teams)

    rendered = {fmt: path.read_text() for fmt, path in out.items()}
    assert verify(rendered["json"])
    document = json.loads(rendered["json"])
    sections = {s["id"]: s for s in document["sections"]}
    (revoke,) = sections["revokes"]["rows"]
    (revoked, restored) = history("reef")
    assert revoke["revoked_at"] == revoked["revoked_at"] and revoke["reason"] == revoked["reason"]
    assert revoke["replacement"] == "restored" and revoke["minutes_to_replacement"] >= 30.0
    assert revoke["sources"] == ["P#reef/H#revoke#000001", "P#reef/H#revoke#000001#restore"]
    assert restored["kind"] == "restore"
    assert {r["principal"] for r in sections["rotations"]["rows"] if r["done_at"]} == {"reef", "kelp"}
    ledger = boto3.client("dynamodb").scan(TableName=os.environ["TOKENWARDEN_LEDGER_TABLE"])["Items"]
    stored = {f"{i['pk']['S']}/{i['sk']['S']}" for i in ledger}
    assert {s for row in sections["keys"]["rows"] for s in row["sources"]} <= stored
    assert "&lt;b&gt;urgent&lt;/b&gt;" in rendered["html"] and "<b>urgent" not in rendered["html"]
    assert r"laptop stolen \| &lt;b&gt;urgent&lt;/b&gt;" in rendered["md"]
    for fmt, text in rendered.items():
        assert not [t for t in seen if t in text], fmt
