"""The demo's last story: the evidence report an auditor would ask for, from the demo's own ledger
(`tokenwarden report --since 90d`), its section summaries shown, and written to a file when asked
(`tokenwarden demo --report docs/sample-report.md` makes the sample in the docs)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tokenwarden.cli.demo_world import DemoWorld, say
from tokenwarden.cli.report_render import digest, render_markdown
from tokenwarden.domain.evidence import Report
from tokenwarden.service.evidence import evidence_report
from tokenwarden.wiring import build_adapters

PERIOD = timedelta(days=90)

SAMPLE_HEADER = (
    "<!-- A sample made by `tokenwarden demo --report docs/sample-report.md` on the embedded stack: "
    "its keys, times and account are the demo's. See operate.md#evidence-for-auditors. -->"
)


def evidence(world: DemoWorld) -> Report:
    """The report over the last 90 days of the demo's world, as `tokenwarden report` computes it."""
    adapters = build_adapters(world.settings)
    now = world.clock.now()
    # Named as an operator names it (`--registry teams.yaml`), not by where this checkout lives.
    registry = world.registry.model_copy(update={"source": Path(world.registry.source).name})
    return evidence_report(
        adapters.ledger,
        world.reconciler.inventory(),
        registry,
        now - PERIOD,
        now,
        caller_arn=adapters.iam.caller(),
        ledger_table=world.settings.ledger_table,
    )


def evidence_story(world: DemoWorld, path: Path | None) -> int:
    report = evidence(world)
    say(f"\nEvidence for the auditor: $ tokenwarden report --since 90d  (SHA-256 {digest(report)[:16]}...)")
    for section in report.sections:
        say(f"  {section.title}: {section.summary}")
    if path is not None:
        path.write_text(f"{SAMPLE_HEADER}\n\n{render_markdown(report)}\n", encoding="utf-8")
        say(f"  written to {path}")
    return 0
