"""Text for the terminal: pure functions from typed results and view models to lines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from tokenwarden.cli.views import StatusRow
from tokenwarden.domain.outcomes import Finding, PrincipalOutcome, RunReport
from tokenwarden.domain.plan import ActionKind, Plan, PrincipalPlan
from tokenwarden.domain.snooze import Snooze
from tokenwarden.service.breakglass import RestoreResult, RevokeResult
from tokenwarden.service.health import HealthReport

SYMBOL = {
    ActionKind.ONBOARD: "+",
    ActionKind.CONFIGURE_ROTATION: "~",
    ActionKind.ABANDON_PENDING: "-",
    ActionKind.RESUME_FINISH: "~",
    ActionKind.ROTATE: "~",
    ActionKind.REPAIR: "~",
    ActionKind.RETIRE: "-",
    ActionKind.DELETE: "-",
    ActionKind.DELETE_UNTRACKED: "-",
    ActionKind.EXPIRING_SOON: "!",
    ActionKind.OFFBOARD: "-",
    ActionKind.DELETE_SECRET: "-",
    ActionKind.DELETE_USER: "-",
}

# -- plan / apply ------------------------------------------------------------------------------


def render_plan(plan: Plan) -> str:
    lines = [f"Plan at {plan.generated_at:%Y-%m-%d %H:%M} UTC"]
    for p in plan.principals:
        lines += _principal_plan(p)
    lines += [f"? {f.principal or '-'}: {f.kind}: {f.detail}" for f in plan.findings]
    if plan.guard is not None and plan.guard.overridden:
        lines.append(f"! blast-radius guard overridden: {', '.join(plan.guard.would_deactivate)}")
    count = len(plan.actions)
    lines.append(f"{count} action(s) for {sum(1 for p in plan.principals if p.actions)} principal(s).")
    return "\n".join(lines)


def _principal_plan(p: PrincipalPlan) -> list[str]:
    if p.actions:
        lines = [f"~ {p.principal}"] + [f"    {SYMBOL[a.kind]} {a.describe()}" for a in p.actions]
    else:
        nxt = f"next: {p.upcoming.kind.value} {p.upcoming.at:%Y-%m-%d}" if p.upcoming else "nothing scheduled"
        lines = [f"  {p.principal}: no changes ({nxt})"]
    if p.note:
        lines.append(f"    note: {p.note}")
    return lines + [f"    ? {f.kind}: {f.detail}" for f in p.findings]


def render_progress(outcome: PrincipalOutcome) -> str:
    """One principal's line while a run goes on."""
    done = ", ".join(outcome.done) or "-"
    extra = f" ({outcome.error})" if outcome.error else ""
    return f"  {outcome.principal:<24} {outcome.status:<9} {done}{extra}"


def render_report(report: RunReport) -> str:
    lines = [f"Run at {report.started_at:%Y-%m-%d %H:%M} UTC"]
    for o in report.outcomes:
        extra = f"  [{o.error}]" if o.error else ""
        lines.append(f"  {o.principal:<24} {o.status:<9} {', '.join(o.done) or '-'}{extra}")
    if report.min_days_to_expiry is not None:
        lines.append(f"Soonest expiry of a current key: {report.min_days_to_expiry:.1f} days.")
    # A night too big to name each principal (the state machine's report) counts the others.
    unnamed = sum(v for k, v in report.counts.items() if k.startswith("principals_")) - len(report.outcomes)
    if unnamed > 0:
        lines.append(f"  ... and {unnamed} more principal(s), counted, not named.")
    lines.append(f"{report.counts.get('principals_failed', len(report.failed))} principal(s) failed.")
    return "\n".join(lines)


# -- status ------------------------------------------------------------------------------------


def render_status(rows: Sequence[StatusRow], source: str = "the registry") -> str:
    registered = [r for r in rows if r.in_registry]
    others = [r for r in rows if not r.in_registry]
    header = f"{'PRINCIPAL':<18} {'TEAM':<14} {'CURRENT KEY':<40} {'DAYS LEFT':>9}  {'KEYS':<22} {'NEXT':<26} LAST EVENT"
    lines = [header, "-" * len(header)]
    for r in registered:
        days = f"{r.days_to_expiry:.1f}" if r.days_to_expiry is not None else "-"
        lines.append(
            f"{r.principal:<18} {r.team or '':<14} {(r.current_alias or 'none'):<40} {days:>9}  "
            f"{_keys_cell(r):<22} {_next_cell(r):<26} {_last_cell(r)}"
        )
    lines += snoozed_lines(registered)
    if others:
        lines += ["", f"In the account but not in {source}:"]
        header = f"{'PRINCIPAL':<18} {'STATE':<16} {'KEYS':<26} {'NEXT':<30} {'LAST EVENT':<22} LEFT IN THE ACCOUNT"
        lines += [header, "-" * len(header)]
        lines += [
            f"{r.principal:<18} {r.state:<16} {_keys_cell(r):<26} {_next_cell(r):<30} "
            f"{_last_cell(r):<22} {_left_cell(r)}"
            for r in others
        ]
    return "\n".join(lines)


def snoozed_lines(rows: Sequence[StatusRow]) -> list[str]:
    """One line per snoozed team among the rows: until when, and why."""
    teams = {r.team: r for r in rows if r.team is not None and r.snoozed_until is not None}
    return [
        f"{team}: health alerts snoozed until {_when(r.snoozed_until)} ({r.snooze_reason or 'no reason given'})"
        for team, r in sorted(teams.items())
        if r.snoozed_until is not None
    ]


def _when(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def render_selection(rows: Sequence[StatusRow], total: int, source: str = "the registry") -> str:
    """The status table of the rows a filter kept, and how many of all it kept."""
    if not rows:
        return f"no principal matches (0 of {total}); `tokenwarden status` lists them all"
    return render_status(rows, source) + f"\n\n{len(rows)} of {total} principals shown"


def _keys_cell(row: StatusRow) -> str:
    return " ".join(f"{c.status[0]}:{c.role}" for c in row.credentials) or "-"


def _next_cell(row: StatusRow) -> str:
    if row.pending_actions:
        return "now: " + ", ".join(row.pending_actions)
    if row.next_action:
        return f"{row.next_action.kind} {row.next_action.at:%Y-%m-%d}"
    return "-"


def _last_cell(row: StatusRow) -> str:
    last = row.last_event
    return f"{last.kind} {last.at:%Y-%m-%d}" if last else "-"


def _left_cell(row: StatusRow) -> str:
    left = []
    if row.user_exists:
        left.append(f"IAM user {row.user_name}")
    if row.secret_id:
        deleted = row.secret_deleted_at
        left.append(
            f"secret {row.secret_id}" + (f" (deletion scheduled {deleted:%Y-%m-%d})" if deleted else "")
        )
    if row.credentials:
        left.append(f"{len(row.credentials)} key(s)")
    return ", ".join(left) or "ledger records only"


# -- audit -------------------------------------------------------------------------------------


def render_audit(findings: Sequence[Finding]) -> str:
    lines = [f"{f.kind:<30} {f.principal or '-':<16} {f.detail}" for f in findings]
    return "\n".join([*lines, f"{len(findings)} finding(s); nothing was changed."])


# -- break-glass -------------------------------------------------------------------------------


def render_revoke(result: RevokeResult, secret_id: str) -> str:
    if result.revoked:
        lines = [f"Revoked {len(result.revoked)} key(s) of {result.principal}: {', '.join(result.revoked)}"]
    else:
        repeated = " (already revoked)" if result.repeated else ""
        lines = [f"{result.principal} has no Active key to revoke{repeated}"]
    if result.reissued:
        lines.append(f"Issued and verified a new key {result.reissued}; it is now AWSCURRENT.")
    elif result.reissue_in_progress:
        lines.append(render_reissue_in_progress(result, secret_id))
    number = f" (revoke #{result.revoke})" if result.revoke else ""
    lines.append(f"Recorded{number} as {result.actor}: {result.reason}")
    return "\n".join(lines)


def render_reissue_in_progress(result: RevokeResult, secret_id: str) -> str:
    """The replacement's rotation outlived the revoke's wait: it goes on in Secrets Manager."""
    return "\n".join(
        [
            f"The replacement key's rotation for {result.principal} was started by Secrets Manager and is "
            "still running in the background; this is not a failure.",
            "The `rotated` notification says when the new key is current (`rotation_failed` if it is not).",
            f"To check: `tokenwarden status` or `aws secretsmanager describe-secret --secret-id {secret_id}`.",
        ]
    )


def render_restore(result: RestoreResult) -> str:
    keys = ", ".join((result.restored, *result.also))
    lines = [f"Re-activated {1 + len(result.also)} key(s) of {result.principal}: {keys}."]
    if result.current:
        lines.append("The current key works again.")
    else:
        until = f"{result.active_until:%Y-%m-%d %H:%M} UTC" if result.active_until else "its grace ends"
        lines.append(
            f"The secret's current key was not among them: {result.restored} works until {until} "
            "(the grace it had, not a new one); `tokenwarden status` shows what the next run does."
        )
    forced = f" (forced: {result.force_reason})" if result.forced else ""
    lines.append(
        f"Recorded as {result.actor}: undoes revoke #{result.revoke}, which stays on record{forced}."
    )
    return "\n".join(lines)


# -- health ------------------------------------------------------------------------------------


def render_health(report: HealthReport) -> str:
    header = f"{'TEAM':<18} {'STATE':<15} {'SINCE':<17} {'LAST SAMPLE':<17} LIKELY CAUSES"
    lines = [
        f"Health at {report.evaluated_at:%Y-%m-%d %H:%M} UTC ({report.queries} queries)",
        header,
        "-" * len(header),
    ]
    for t in report.teams:
        last = f"{t.last_sample_at:%Y-%m-%d %H:%M}" if t.last_sample_at else "never"
        lines.append(
            f"{t.team:<18} {t.state.value:<15} {t.since:%Y-%m-%d %H:%M} {last:<17} {'; '.join(t.likely_causes) or '-'}"
        )
    lines += [
        f"{t.team}: snoozed until {_when(t.snoozed_until)} by {t.snoozed_by}: {t.snooze_reason}"
        for t in report.teams
        if t.snoozed_until is not None
    ]
    lines += [f"alert: {transition.event} for {transition.team}" for transition in report.transitions]
    lines += [
        f"rollback: {r.verdict} {r.credential_id or '-'} of {r.principal} ({r.team})"
        + (f" until {r.active_until:%Y-%m-%d %H:%M} UTC" if r.active_until else "")
        + f": {r.reason}"
        for r in report.rollbacks
    ]
    if report.unregistered_teams:
        lines.append(
            "drift: telemetry from teams not in the registry: " + ", ".join(report.unregistered_teams)
        )
    return "\n".join(lines)


def render_team_health(report: HealthReport) -> str:
    """Every team's state on one line."""
    return ", ".join(f"{t.team} {t.state.value}" for t in report.teams)


# -- snoozes -----------------------------------------------------------------------------------


def render_snooze(snooze: Snooze) -> str:
    return (
        f"{snooze.team}: health alerts snoozed until {_when(snooze.until)}; its silence does not count "
        f"until then.\nRecorded as {snooze.by}: {snooze.reason}"
    )


def render_unsnooze(team: str, ended: Snooze | None, now: datetime) -> str:
    if ended is None:
        return f"{team} is not snoozed: nothing recorded"
    return f"{team}: snooze (until {_when(ended.until)}) ended at {_when(now)}; its silence counts again."
