"""`tokenwarden`: plan, apply, status and the embedded local stack.

Exit codes: 0 success, 1 a principal failed, 2 bad input (nothing was changed). A failure is one
line on stderr saying what holds and what to do next, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from tokenwarden.domain.model import Credential, Inventory, LedgerState, PrincipalInventory
from tokenwarden.domain.plan import ActionKind, Plan
from tokenwarden.domain.promql import PromQLError
from tokenwarden.domain.registry import Principal, Registry, RegistryError, load_registry
from tokenwarden.service.breakglass import (
    MAX_REASON_LENGTH,
    Actor,
    BreakGlass,
    BreakGlassError,
    BreakGlassFailed,
    RestoreResult,
    RevokeResult,
)
from tokenwarden.service.health import HealthSettingsError
from tokenwarden.service.lease import PrincipalBusy
from tokenwarden.service.reconciler import PrincipalOutcome, Reconciler, RunReport
from tokenwarden.service.rotation import RotationError
from tokenwarden.settings import Settings, load_settings
from tokenwarden.wiring import SystemClock, build_adapters, build_breakglass, build_reconciler

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

EXAMPLES = {
    "plan": "tokenwarden plan --registry teams.yaml\n  tokenwarden plan --at 2027-03-01 --json",
    "apply": "tokenwarden apply --registry teams.yaml\n  tokenwarden apply --at 2027-03-01T02:15:00Z   # embedded stack only",
    "status": "tokenwarden status\n  tokenwarden status --json | jq '.[].current_credential_id'",
    "local": "eval \"$(tokenwarden local up | sed '/^ready$/q')\"   # or run it in its own terminal",
    "demo": "tokenwarden demo",
    "audit": "tokenwarden audit\n  tokenwarden audit --json | jq '.[] | select(.kind == \"key_without_expiry\")'",
    "pickup": "tokenwarden pickup platform-eng --out kit/ --profile dev-sso",
    "revoke": "tokenwarden revoke platform-eng --reason 'token pasted in #general' --reissue",
    "restore": "tokenwarden restore platform-eng\n"
    "  tokenwarden restore platform-eng --force --reason 'the leak report was a false alarm'",
    "health": "tokenwarden health\n  tokenwarden health --json | jq '.teams[] | select(.state == \"silent\")'",
}


class UsageError(Exception):
    """Bad input: exit 2, nothing changed."""


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr saying what to do, and exit code 2. Options are spelled
    out: `--allow-mass-revok` is a typo to refuse, not an abbreviation to guess at."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


# Keys live at most 90 days; any date the lifecycle arithmetic meets stays far inside datetime's range.
AT_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
AT_LATEST = datetime(2999, 12, 31, tzinfo=UTC)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _parse_at(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    example = "e.g. 2027-03-01 or 2027-03-01T02:15:00Z"
    try:
        at = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {_shown(raw)} is not an ISO-8601 date or time ({example})") from None
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    if not AT_EARLIEST <= at <= AT_LATEST:
        raise UsageError(f"--at {_shown(raw)} is outside {AT_EARLIEST:%Y}-{AT_LATEST:%Y} ({example})")
    return at


def _shown(text: str, limit: int = 64) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _reason(raw: str, example: str = "token pasted in #general") -> str:
    reason = raw.strip()
    if not reason:
        raise UsageError(
            f"--reason must say why (it goes into the ledger and the alert), e.g. --reason '{example}'"
        )
    if len(reason) > MAX_REASON_LENGTH:
        raise UsageError(f"--reason is {len(reason)} characters; keep it to {MAX_REASON_LENGTH} or fewer")
    if not reason.isprintable():
        raise UsageError("--reason must be one line of printable text (no control characters)")
    return reason


def _loopback(raw: str) -> str:
    """The local stack serves unauthenticated AWS look-alikes: it binds loopback only (an empty
    host would mean every interface)."""
    host = raw.strip()
    if host not in LOOPBACK:
        raise argparse.ArgumentTypeError(
            f"{_shown(raw)} is not a loopback address: the local stack binds loopback only "
            "(use --host 127.0.0.1)"
        )
    return host


def _positive_int(maximum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
        if not 1 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{value} is not between 1 and {maximum}")
        return value

    return parse


def _port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535; 0 picks a free one)")
    return value


def _registry(args: argparse.Namespace, settings: Settings) -> Registry:
    return load_registry(Path(args.registry) if args.registry else settings.registry_path)


def _reconciler(settings: Settings, now_source: Any) -> Reconciler:
    return build_reconciler(settings, build_adapters(settings), now_source)


class _FixedOrStackClock:
    def __init__(self, settings: Settings, at: datetime | None) -> None:
        self._settings = settings
        self._at = at

    def now(self) -> datetime:
        from tokenwarden.local.clock import RemoteStackClock, embedded_stack_url

        stack_url = embedded_stack_url()
        if stack_url:
            return RemoteStackClock(stack_url).now()
        return self._at or SystemClock().now()


def _now(settings: Settings, at: datetime | None, moving: bool) -> datetime:
    """The time a command runs at. Against the embedded stack `--at` moves its clock forward."""
    from tokenwarden.local.clock import RemoteStackClock, embedded_stack_url

    stack_url = embedded_stack_url()
    if stack_url:
        if at is None:
            return RemoteStackClock(stack_url).now()
        now = RemoteStackClock(stack_url).advance_to(at)
        if now - at > timedelta(seconds=1):
            print(
                f"note: the stack's clock is already at {now:%Y-%m-%d %H:%M} UTC and never goes back",
                file=sys.stderr,
            )
        return now
    if at is not None and moving:
        raise UsageError(
            "--at changes time only on the embedded local stack (TOKENWARDEN_STACK_URL and AWS_ENDPOINT_URL "
            "on loopback are not both set)"
        )
    return at or SystemClock().now()


# -- plan / apply ------------------------------------------------------------------------------

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


def render_plan(plan: Plan) -> str:
    lines = [f"Plan at {plan.generated_at:%Y-%m-%d %H:%M} UTC"]
    for p in plan.principals:
        if p.actions:
            lines.append(f"~ {p.principal}")
            lines += [f"    {SYMBOL[a.kind]} {a.describe()}" for a in p.actions]
        else:
            nxt = (
                f"next: {p.upcoming.kind.value} {p.upcoming.at:%Y-%m-%d}"
                if p.upcoming
                else "nothing scheduled"
            )
            lines.append(f"  {p.principal}: no changes ({nxt})")
        if p.note:
            lines.append(f"    note: {p.note}")
        lines += [f"    ? {f.kind}: {f.detail}" for f in p.findings]
    lines += [f"? {f.principal or '-'}: {f.kind}: {f.detail}" for f in plan.findings]
    if plan.guard is not None and plan.guard.overridden:
        lines.append(f"! blast-radius guard overridden: {', '.join(plan.guard.would_deactivate)}")
    count = len(plan.actions)
    lines.append(f"{count} action(s) for {sum(1 for p in plan.principals if p.actions)} principal(s).")
    return "\n".join(lines)


def cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    registry = _registry(args, settings)
    at = _parse_at(args.at)
    now = _now(settings, at, moving=False)
    plan = _reconciler(settings, _FixedOrStackClock(settings, now)).plan(registry, now)
    print(plan.model_dump_json(indent=2) if args.json else render_plan(plan))
    return EXIT_OK


def _progress(outcome: PrincipalOutcome) -> None:
    done = ", ".join(outcome.done) or "-"
    extra = f" ({outcome.error})" if outcome.error else ""
    print(f"  {outcome.principal:<24} {outcome.status:<9} {done}{extra}", file=sys.stderr, flush=True)


def render_report(report: RunReport) -> str:
    lines = [f"Run at {report.started_at:%Y-%m-%d %H:%M} UTC"]
    for o in report.outcomes:
        extra = f"  [{o.error}]" if o.error else ""
        lines.append(f"  {o.principal:<24} {o.status:<9} {', '.join(o.done) or '-'}{extra}")
    if report.min_days_to_expiry is not None:
        lines.append(f"Soonest expiry of a current key: {report.min_days_to_expiry:.1f} days.")
    lines.append(f"{len(report.failed)} principal(s) failed.")
    return "\n".join(lines)


def cmd_apply(args: argparse.Namespace, settings: Settings) -> int:
    registry = _registry(args, settings)
    at = _parse_at(args.at)
    now = _now(settings, at, moving=True)
    reconciler = _reconciler(settings, _FixedOrStackClock(settings, now))
    report = reconciler.run(
        registry,
        now,
        progress=None if args.json or args.quiet else _progress,
        allow_mass_revoke=args.allow_mass_revoke,
    )
    if args.json:
        print(report.model_dump_json(indent=2))
    elif not args.quiet:
        print(render_report(report))
    return EXIT_FAILED if report.failed else EXIT_OK


# -- status ------------------------------------------------------------------------------------


def status_rows(
    registry: Registry, inventory: Inventory, plan: Plan, settings: Settings
) -> list[dict[str, Any]]:
    """One row per registered principal, then one per principal found only in the account.

    The account holds principals the registry no longer lists (being offboarded) and users on
    TokenWarden's path that no registry ever listed: an operator looking for a key finds it here.
    """
    rows = [
        _status_row(
            principal.id,
            inventory.of(principal.id),
            plan,
            state="registered",
            team=principal.team,
            kind=principal.kind,
            secret_id=settings.naming.secret_name(principal.id),
            user_name=settings.naming.user_name(principal.id),
        )
        for principal in registry.principals
    ]
    for name, inv in sorted(inventory.principals.items()):
        if name in registry.ids:
            continue
        rows.append(
            _status_row(
                name,
                inv,
                plan,
                state=_unregistered_state(inv),
                team=None,
                kind=None,
                secret_id=inv.secret.name if inv.secret else None,
                user_name=inv.user.name if inv.user else None,
            )
        )
    return rows


def _unregistered_state(inv: PrincipalInventory) -> str:
    """`offboarding`: TokenWarden managed it (a secret or ledger records) and is taking it down;
    `offboarded`: only records and a secret scheduled for deletion are left; `not in registry`:
    a user on TokenWarden's path that TokenWarden never issued a key to (made by hand, or a gap)."""
    if inv.secret is None and not inv.ledger:
        return "not in registry"
    secret_live = inv.secret is not None and inv.secret.deleted_at is None
    if inv.user is None and not inv.credentials and not secret_live:
        return "offboarded"
    return "offboarding"


def _status_row(
    principal: str,
    inv: PrincipalInventory,
    plan: Plan,
    *,
    state: str,
    team: str | None,
    kind: str | None,
    secret_id: str | None,
    user_name: str | None,
) -> dict[str, Any]:
    current = inv.current_credential if state == "registered" else None
    pplan = plan.for_principal(principal)
    return {
        "principal": principal,
        "state": state,
        "in_registry": state == "registered",
        "team": team,
        "kind": kind,
        "secret_id": secret_id,
        "secret_deleted_at": inv.secret.deleted_at.isoformat()
        if inv.secret and inv.secret.deleted_at
        else None,
        "user_name": user_name,
        "user_exists": inv.user is not None,
        "current_credential_id": current.id if current else None,
        "current_alias": current.alias if current else None,
        "current_expires_at": current.expires_at.isoformat() if current and current.expires_at else None,
        "days_to_expiry": round((current.expires_at - plan.generated_at).total_seconds() / 86400, 1)
        if current and current.expires_at
        else None,
        "credentials": [
            _credential_row(c, inv, current) for c in sorted(inv.credentials, key=lambda c: c.created_at)
        ],
        "pending_actions": [a.kind.value for a in pplan.actions] if pplan else [],
        "next_action": {"kind": pplan.upcoming.kind.value, "at": pplan.upcoming.at.isoformat()}
        if pplan and pplan.upcoming
        else None,
        "note": pplan.note if pplan else None,
        "last_event": _last_event(inv.ledger),
    }


def _credential_row(cred: Credential, inv: PrincipalInventory, current: Credential | None) -> dict[str, Any]:
    entry = inv.entry_for_credential(cred.id)
    if current is not None and cred.id == current.id:
        role = "current"
    elif entry is None:
        role = "untracked"
    elif entry.reason == "offboarded" and entry.state is LedgerState.RETIRED:
        role = "offboarded"
    else:
        role = entry.state.value
    return {
        "id": cred.id,
        "alias": cred.alias,
        "status": cred.status,
        "created_at": cred.created_at.isoformat(),
        "expires_at": cred.expires_at.isoformat() if cred.expires_at else None,
        "role": role,
    }


def _last_event(entries: Sequence[Any]) -> dict[str, str] | None:
    """The newest thing that happened to any of a principal's keys, from the ledger."""
    activations = [e.activated_at for e in entries if e.activated_at is not None]
    first = min(activations) if activations else None
    events: list[tuple[datetime, str]] = []
    for e in entries:
        for at, kind in (
            (e.activated_at, "onboarded" if e.activated_at == first else "rotated"),
            (e.deactivated_at, "offboarded" if e.reason == "offboarded" else "retired"),
            (e.revoked_at, "revoked"),
            (e.deleted_at, "deleted"),
        ):
            if at is not None:
                events.append((at, kind))
    if not events:
        return None
    at, kind = max(events)
    return {"kind": kind, "at": at.isoformat()}


def render_status(rows: list[dict[str, Any]], source: str = "the registry") -> str:
    registered = [r for r in rows if r["in_registry"]]
    others = [r for r in rows if not r["in_registry"]]
    header = f"{'PRINCIPAL':<18} {'TEAM':<14} {'CURRENT KEY':<40} {'DAYS LEFT':>9}  {'KEYS':<22} {'NEXT':<26} LAST EVENT"
    lines = [header, "-" * len(header)]
    for r in registered:
        days = f"{r['days_to_expiry']:.1f}" if r["days_to_expiry"] is not None else "-"
        lines.append(
            f"{r['principal']:<18} {r['team']:<14} {(r['current_alias'] or 'none'):<40} {days:>9}  "
            f"{_keys_cell(r):<22} {_next_cell(r):<26} {_last_cell(r)}"
        )
    if others:
        lines += ["", f"In the account but not in {source}:"]
        header = f"{'PRINCIPAL':<18} {'STATE':<16} {'KEYS':<26} {'NEXT':<30} {'LAST EVENT':<22} LEFT IN THE ACCOUNT"
        lines += [header, "-" * len(header)]
        for r in others:
            lines.append(
                f"{r['principal']:<18} {r['state']:<16} {_keys_cell(r):<26} {_next_cell(r):<30} "
                f"{_last_cell(r):<22} {_left_cell(r)}"
            )
    return "\n".join(lines)


def _keys_cell(row: dict[str, Any]) -> str:
    return " ".join(f"{c['status'][0]}:{c['role']}" for c in row["credentials"]) or "-"


def _next_cell(row: dict[str, Any]) -> str:
    if row["pending_actions"]:
        return "now: " + ", ".join(row["pending_actions"])
    if row["next_action"]:
        return f"{row['next_action']['kind']} {row['next_action']['at'][:10]}"
    return "-"


def _last_cell(row: dict[str, Any]) -> str:
    last = row["last_event"]
    return f"{last['kind']} {last['at'][:10]}" if last else "-"


def _left_cell(row: dict[str, Any]) -> str:
    left = []
    if row["user_exists"]:
        left.append(f"IAM user {row['user_name']}")
    if row["secret_id"]:
        deleted = row["secret_deleted_at"]
        left.append(
            f"secret {row['secret_id']}" + (f" (deletion scheduled {deleted[:10]})" if deleted else "")
        )
    if row["credentials"]:
        left.append(f"{len(row['credentials'])} key(s)")
    return ", ".join(left) or "ledger records only"


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    registry = _registry(args, settings)
    now = _now(settings, _parse_at(args.at), moving=False)
    reconciler = _reconciler(settings, _FixedOrStackClock(settings, now))
    inventory = reconciler.inventory()
    rows = status_rows(registry, inventory, reconciler.plan(registry, now, inventory), settings)
    print(json.dumps(rows, indent=2) if args.json else render_status(rows, registry.source))
    return EXIT_OK


# -- pickup -------------------------------------------------------------------------------------


def cmd_pickup(args: argparse.Namespace, settings: Settings) -> int:
    from tokenwarden.pickup import PickupError, build_kit, check_out_dir, write_kit

    registry = _registry(args, settings)
    principal = _registered(registry, args.principal)
    out = Path(args.out or f"pickup-{principal.id}")
    try:
        check_out_dir(out, force=args.force)  # before the AWS call: a bad --out costs nothing
        # The kit names the secret by its full ARN (one read: DescribeSecret), never by its name.
        name = settings.naming.secret_name(principal.id)
        secret = build_adapters(settings).secrets.describe(name)
        if secret is None or secret.deleted_at is not None:
            raise UsageError(
                f"secret {name} does not exist in {settings.region}: `tokenwarden apply` onboards "
                f"{principal.id} first (the kit names the secret by its ARN)"
            )
        kit = build_kit(
            principal,
            naming=settings.naming,
            secret_arn=secret.arn,
            region=settings.region,
            otlp_metrics_endpoint=settings.otlp_metrics_endpoint,
            aws_profile=args.profile,
            refresh_minutes=args.refresh_minutes,
            export_interval_ms=args.export_interval_ms,
        )
        written = write_kit(kit, out, args.helper_path, force=args.force)
    except PickupError as exc:
        raise UsageError(str(exc)) from exc
    except OSError as exc:
        raise UsageError(f"cannot write the kit: {exc.strerror or exc} ({exc.filename or args.out})") from exc
    for path in written:
        print(path)
    return EXIT_OK


# -- audit --------------------------------------------------------------------------------------


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    from tokenwarden.domain.audit import audit

    registry = _registry(args, settings)
    now = _now(settings, None, moving=False)
    inventory = _reconciler(settings, _FixedOrStackClock(settings, now)).inventory()
    findings = audit(registry, inventory, now)
    if args.json:
        print(json.dumps([f.model_dump(mode="json") for f in findings], indent=2))
    else:
        for f in findings:
            print(f"{f.kind:<30} {f.principal or '-':<16} {f.detail}")
        print(f"{len(findings)} finding(s); nothing was changed.")
    return EXIT_OK


# -- break-glass -------------------------------------------------------------------------------


def _registered(registry: Registry, principal_id: str) -> Principal:
    principal = registry.get(principal_id)
    if principal is None:
        names = ", ".join(sorted(registry.ids)[:20]) + (", ..." if len(registry.ids) > 20 else "")
        raise UsageError(
            f"unknown principal {_shown(principal_id)}: not in {registry.source} (it has: {names}); "
            "`tokenwarden status` lists every principal"
        )
    return principal


def _breakglass(settings: Settings, now: datetime) -> tuple[BreakGlass, Actor]:
    """Break-glass with the operator's own credentials: the caller's identity (STS) is authenticated."""
    adapters = build_adapters(settings)
    glass = build_breakglass(settings, adapters, _FixedOrStackClock(settings, now))
    return glass, Actor.caller(adapters.iam.caller())


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    reason = _reason(args.reason)
    registry = _registry(args, settings)
    principal = _registered(registry, args.principal)
    now = _now(settings, None, moving=False)
    glass, actor = _breakglass(settings, now)
    result = glass.revoke(principal, reason, actor, args.reissue, now)
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        if result.revoked:
            print(f"Revoked {len(result.revoked)} key(s) of {result.principal}: {', '.join(result.revoked)}")
        else:
            print(
                f"{result.principal} has no Active key to revoke"
                + (" (already revoked)" if result.repeated else "")
            )
        if result.reissued:
            print(f"Issued and verified a new key {result.reissued}; it is now AWSCURRENT.")
        elif result.reissue_in_progress:
            print(render_reissue_in_progress(result, settings.naming.secret_name(result.principal)))
        number = f" (revoke #{result.revoke})" if result.revoke else ""
        print(f"Recorded{number} as {result.actor}: {result.reason}")
    return EXIT_OK


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


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    force_reason = _force_reason(args)
    registry = _registry(args, settings)
    principal = _registered(registry, args.principal)
    now = _now(settings, None, moving=False)
    glass, actor = _breakglass(settings, now)
    result = glass.restore(principal, actor, now, force_reason)
    print(result.model_dump_json(indent=2) if args.json else render_restore(result))
    return EXIT_OK


def _force_reason(args: argparse.Namespace) -> str | None:
    """`--force` and `--reason` go together: the reason is the force's."""
    if args.reason is None:
        if args.force:
            raise UsageError(
                "--force needs its own --reason (it goes into the ledger and the alert), "
                "e.g. --force --reason 'the leak report was a false alarm'"
            )
        return None
    if not args.force:
        raise UsageError(
            "--reason is for a forced restore (--force); a restore of a revoke without "
            "--reissue takes no reason"
        )
    return _reason(args.reason, example="the leak report was a false alarm")


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


def render_health(report: Any) -> str:
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
    for transition in report.transitions:
        lines.append(f"alert: {transition.event} for {transition.team}")
    if report.unregistered_teams:
        lines.append(
            "drift: telemetry from teams not in the registry: " + ", ".join(report.unregistered_teams)
        )
    return "\n".join(lines)


def cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    from tokenwarden.wiring import build_health_checker

    registry = _registry(args, settings)
    now = _now(settings, _parse_at(args.at), moving=False)
    try:
        checker = build_health_checker(settings, build_adapters(settings))
    except HealthSettingsError:
        raise  # names its own setting (window, metrics)
    except ValueError as exc:  # the PromQL settings do not describe a usable endpoint
        raise UsageError(f"{exc} (see the TOKENWARDEN_PROMQL_* settings)") from exc
    report = checker.run(registry, now, commit=not args.dry_run)
    print(report.model_dump_json(indent=2) if args.json else render_health(report))
    return EXIT_OK


# -- local stack and demo ------------------------------------------------------------------------


def cmd_local_up(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import threading

    from tokenwarden.local.stack import LocalStack

    if args.host not in LOOPBACK:
        raise UsageError("the local stack binds loopback only: use --host 127.0.0.1")
    stack = LocalStack(
        host=args.host, port=args.port, otlp_port=args.otlp_port, victoriametrics=not args.no_victoriametrics
    )
    exports = stack.start()
    for name, value in exports.items():
        print(f"export {name}={value}")
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from tokenwarden.cli.demo import run_demo

    return run_demo(days=args.days, registry_path=Path(args.registry) if args.registry else None)


# -- parser --------------------------------------------------------------------------------------


def _with_registry(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--registry", metavar="FILE", help="registry file (default: $TOKENWARDEN_REGISTRY_PATH or teams.yaml)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tokenwarden",
        description="Keeps the CloudWatch metrics API keys that Claude Code uses alive, rotated and revocable.",
        epilog="Settings come from TOKENWARDEN_* variables and the usual AWS ones; `tokenwarden local up` prints "
        "them for the embedded stack. Exit codes: 0 ok, 1 a principal failed, 2 bad input.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {EXAMPLES[name]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.set_defaults(command_parser=command)
        return command

    p = add("plan", "Show what the next run would do, and why (changes nothing).")
    _with_registry(p)
    p.add_argument("--at", metavar="ISO-8601", help="plan as of this time (moves the embedded stack's clock)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=cmd_plan)

    p = add("apply", "Run the reconciler: onboard, rotate, retire, delete, clean up.")
    _with_registry(p)
    p.add_argument("--at", metavar="ISO-8601", help="embedded stack only: move its clock to this time first")
    p.add_argument("--json", action="store_true", help="print the run report as JSON")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument(
        "--allow-mass-revoke",
        action="store_true",
        help="let this run deactivate more than max(2, 20%%) of the managed principals",
    )
    p.set_defaults(func=cmd_apply)

    p = add("status", "Show every principal's keys, days to expiry and next action.")
    _with_registry(p)
    p.add_argument("--at", metavar="ISO-8601", help="as of this time (moves the embedded stack's clock)")
    p.add_argument("--json", action="store_true", help="print a JSON array, one object per principal")
    p.set_defaults(func=cmd_status)

    p = add("health", "Check per team that Claude Code telemetry keeps arriving; alert on changes.")
    _with_registry(p)
    p.add_argument("--at", metavar="ISO-8601", help="as of this time (moves the embedded stack's clock)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--dry-run", action="store_true", help="evaluate only: send no notification and record nothing"
    )
    p.set_defaults(func=cmd_health)

    p = add(
        "pickup",
        "Write the laptop kit: Claude Code's otelHeadersHelper script and managed settings (no token).",
    )
    p.add_argument("principal", help="the principal id from the registry")
    _with_registry(p)
    p.add_argument("--out", metavar="DIR", help="directory to write into (default: pickup-<principal>)")
    p.add_argument(
        "--helper-path",
        metavar="PATH",
        help="where laptops install the helper (default /usr/local/libexec/tokenwarden/otel-headers-helper.sh)",
    )
    p.add_argument(
        "--profile",
        help="AWS CLI profile developers read the secret with (default: their default credentials)",
    )
    p.add_argument(
        "--refresh-minutes",
        type=_positive_int(24 * 60),
        default=20,
        help="refresh the cached token after this long (default 20)",
    )
    p.add_argument(
        "--export-interval-ms",
        type=_positive_int(3_600_000),
        default=60000,
        help="OTEL_METRIC_EXPORT_INTERVAL (default 60000)",
    )
    p.add_argument("--force", action="store_true", help="overwrite existing kit files")
    p.set_defaults(func=cmd_pickup)

    p = add("audit", "Read-only drift report: every CloudWatch API key of the account, managed or not.")
    _with_registry(p)
    p.add_argument("--json", action="store_true", help="print the findings as a JSON array")
    p.set_defaults(func=cmd_audit)

    p = add("revoke", "Break-glass: deactivate every Active key of a principal at once.")
    p.add_argument("principal", help="the principal id from the registry")
    p.add_argument("--reason", required=True, help="why (recorded in the ledger and the alert)")
    p.add_argument("--reissue", action="store_true", help="issue, verify and make current a replacement key")
    _with_registry(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_revoke)

    p = add(
        "restore",
        "Undo a principal's latest revoke, once: re-activate the keys it switched off (within the retention).",
    )
    p.add_argument("principal", help="the principal id from the registry")
    p.add_argument(
        "--force",
        action="store_true",
        help="restore a revoke that issued a replacement (--reissue: the key was treated as leaked); needs --reason",
    )
    p.add_argument("--reason", help="why the forced restore (recorded in the ledger and the alert)")
    _with_registry(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_restore)

    p = add(
        "local", "The embedded local stack (moto + OTLP endpoint + VictoriaMetrics), no AWS account needed."
    )
    local = p.add_subparsers(dest="local_command", required=True, metavar="SUBCOMMAND")
    up = local.add_parser(
        "up",
        help="start it in the foreground; prints `export` lines, then `ready`",
        description="Start the embedded stack on loopback until interrupted. Prints one `export NAME=value` "
        "line per setting, then `ready`.",
        epilog="example:\n  tokenwarden local up > /tmp/tokenwarden.env &\n"
        "  until grep -q '^ready$' /tmp/tokenwarden.env; do sleep 1; done\n"
        "  source <(grep '^export ' /tmp/tokenwarden.env)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument(
        "--host", type=_loopback, default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)"
    )
    up.add_argument("--port", type=_port, default=0, help="moto server port (default: a free one)")
    up.add_argument("--otlp-port", type=_port, default=0, help="OTLP endpoint port (default: a free one)")
    up.add_argument("--no-victoriametrics", action="store_true", help="do not start VictoriaMetrics")
    up.set_defaults(func=cmd_local_up, command_parser=up)

    p = add("demo", "Run the whole key lifecycle on the embedded stack: about 200 days in a minute.")
    p.add_argument("--registry", metavar="FILE", help="registry file (default: this checkout's teams.yaml)")
    p.add_argument(
        "--days", type=_positive_int(3650), default=200, help="days of nightly runs to simulate (default 200)"
    )
    p.set_defaults(func=cmd_demo)
    return parser


def _quiet_libraries(verbose: bool) -> None:
    import logging
    import warnings

    from tokenwarden.observability import logger

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # EMF is for Lambda's stdout, not a terminal
    if not verbose and not os.environ.get("POWERTOOLS_LOG_LEVEL"):
        logger.setLevel("ERROR")


def _settings_problem(exc: ValidationError) -> str:
    """Each invalid setting by the variable that sets it."""
    problems = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"]).upper()
        variable = "AWS_REGION" if name == "REGION" else f"TOKENWARDEN_{name}"
        problems.append(f"{variable}: {error['msg'].removeprefix('Value error, ')}")
    return "invalid settings: " + "; ".join(problems)


MAX_AWS_MESSAGE = 300


# Error codes AWS answers when it throttles (botocore's standard retry mode retries them first).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)


def _aws_problem(exc: Exception) -> tuple[str, int]:
    """One line for a botocore error: the operation, AWS's error code and (cut) message. Never the
    request: botocore's parameter-validation errors quote parameter values (a secret's value, say),
    so only the names of the parameters are said."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ParamValidationError,
    )
    from botocore.exceptions import ValidationError as BotoValidationError

    if isinstance(exc, NoCredentialsError | NoRegionError):
        return (
            f"{exc}: configure AWS credentials and a region (AWS_PROFILE, AWS_REGION), "
            "or point at the embedded stack with `tokenwarden local up`",
            EXIT_BAD_INPUT,
        )
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return (
            f"cannot reach AWS at {_clipped(str(exc.kwargs.get('endpoint_url', '?')), 200)}: check the "
            "network, AWS_REGION and AWS_ENDPOINT_URL (for the embedded stack, run `tokenwarden local up` "
            "and source its exports); nothing was changed by this call",
            EXIT_FAILED,
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "an AWS call")
        message = _clipped(str(error.get("Message", "")), MAX_AWS_MESSAGE)
        line = f"AWS refused {operation}: {error.get('Code', 'error')}: {message}".rstrip(": ")
        if str(error.get("Code", "")) in THROTTLING_CODES:
            line += " (AWS is throttling the account after every retry: run the command again in a minute)"
        return line, EXIT_FAILED
    if isinstance(exc, ParamValidationError | BotoValidationError):
        names = sorted(set(re.findall(r'param(?:eter)? (?:in [\w.\[\]]+: )?"?([\w.\[\]-]+)', str(exc))))
        return (
            "botocore refused to send a request whose parameters are invalid"
            + (f" ({', '.join(names[:5])})" if names else "")
            + "; nothing was sent. This is a bug in TokenWarden: please report it",
            EXIT_FAILED,
        )
    return f"an AWS call failed: {_clipped(str(exc), MAX_AWS_MESSAGE)}", EXIT_FAILED


def _clipped(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit] + "..."


def _fail(message: str, code: int) -> int:
    """The one line an operator sees for a failure, with its exit code."""
    print(f"tokenwarden: {' '.join(message.split())}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:  # said by the command's own parser, so the hint names its --help
            getattr(args, "command_parser", parser).error(f"unrecognized arguments: {' '.join(extras)}")
    except SystemExit as exc:  # --help (0) or a bad argument (2, already explained on stderr)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    _quiet_libraries(verbose=False)
    try:
        settings = load_settings()
        settings.naming  # noqa: B018 - validates the naming settings now, not halfway through a command
    except ValidationError as exc:
        print(f"tokenwarden: {_settings_problem(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args, settings))
    except (RegistryError, UsageError, BreakGlassError) as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        return _fail(f"invalid {exc.title}: {problems}", EXIT_BAD_INPUT)
    except HealthSettingsError as exc:  # a PromQLError too, but bad input: no query was sent
        return _fail(f"invalid settings: {exc}", EXIT_BAD_INPUT)
    except PromQLError as exc:
        return _fail(f"the metrics query failed: {exc}", EXIT_FAILED)
    except (PrincipalBusy, BreakGlassFailed, RotationError) as exc:
        return _fail(str(exc), EXIT_FAILED)
    except (BotoCoreError, ClientError) as exc:
        return _fail(*_aws_problem(exc))
    except KeyboardInterrupt:
        return _fail(
            "interrupted: what was done stays done; the next run finishes or undoes the rest", EXIT_FAILED
        )
    except Exception as exc:  # last resort: one line, never a traceback (its text could quote a request)
        return _fail(
            f"unexpected error ({type(exc).__name__}); what was done stays done and the next run "
            "finishes or undoes the rest",
            EXIT_FAILED,
        )


if __name__ == "__main__":
    sys.exit(main())
