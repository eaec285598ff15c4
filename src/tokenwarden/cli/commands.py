"""One function per command: read the context, make one call into the services, print the result.

Each returns its exit code; failures are raised and become one line in `tokenwarden.cli.errors`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from tokenwarden.cli import rendering
from tokenwarden.cli.channels import channels
from tokenwarden.cli.context import Context
from tokenwarden.cli.errors import EXIT_FAILED, EXIT_OK, UsageError, fail
from tokenwarden.cli.parser import LOOPBACK
from tokenwarden.cli.views import RowFilter, StatusRow, selected, status_rows, with_snoozes
from tokenwarden.domain.outcomes import PrincipalOutcome, RunReport
from tokenwarden.domain.reason import checked_reason
from tokenwarden.service.snooze import Snoozes

Command = Callable[[argparse.Namespace, Context], int]


def plan(args: argparse.Namespace, ctx: Context) -> int:
    registry, now = ctx.registry, ctx.now
    result = ctx.reconciler().plan(registry, now)
    print(result.model_dump_json(indent=2) if args.json else rendering.render_plan(result))
    return EXIT_OK


def _progress(outcome: PrincipalOutcome) -> None:
    print(rendering.render_progress(outcome), file=sys.stderr, flush=True)


def apply(args: argparse.Namespace, ctx: Context) -> int:
    if args.via_state_machine:
        return _apply_via_state_machine(args, ctx)
    registry, now = ctx.registry, ctx.now
    report = ctx.reconciler().run(
        registry,
        now,
        progress=None if args.json or args.quiet else _progress,
        allow_mass_revoke=args.allow_mass_revoke,
    )
    return _print_report(args, report)


def _apply_via_state_machine(args: argparse.Namespace, ctx: Context) -> int:
    """The night as the schedule runs it; the same report, printed when the execution ends."""
    from tokenwarden.adapters.stepfunctions import ExecutionNotSucceeded

    try:
        report = ctx.nightly_run(allow_mass_revoke=args.allow_mass_revoke, wait_seconds=args.wait)
    except ExecutionNotSucceeded as exc:
        return fail(f"the nightly state machine did not finish: {exc}", EXIT_FAILED)
    return _print_report(args, report)


def _print_report(args: argparse.Namespace, report: RunReport) -> int:
    if args.json:
        print(report.model_dump_json(indent=2))
    elif not args.quiet:
        print(rendering.render_report(report))
    return EXIT_FAILED if report.failed else EXIT_OK


def current_status(ctx: Context) -> list[StatusRow]:
    """Every principal's row as of the context's time: one inventory of the account, one plan."""
    registry, now = ctx.registry, ctx.now
    reconciler = ctx.reconciler()
    inventory = reconciler.inventory()
    return status_rows(registry, inventory, reconciler.plan(registry, now, inventory), ctx.settings.naming)


def status(args: argparse.Namespace, ctx: Context) -> int:
    wanted = RowFilter.of(args.principal, args.team, args.state)
    every = with_snoozes(current_status(ctx), _snoozes(ctx).active(ctx.now))
    rows = selected(every, wanted)
    if args.json:
        print(json.dumps([row.model_dump(mode="json") for row in rows], indent=2))
    elif wanted.narrows:
        print(rendering.render_selection(rows, len(every), ctx.registry.source))
    else:
        print(rendering.render_status(rows, ctx.registry.source))
    return EXIT_OK


def pickup(args: argparse.Namespace, ctx: Context) -> int:
    from tokenwarden.pickup import PickupError, build_kit, check_out_dir, write_kit

    settings = ctx.settings
    principal = ctx.registry.require(args.principal)
    out = Path(args.out or f"pickup-{principal.id}")
    try:
        check_out_dir(out, force=args.force)  # before the AWS call: a bad --out costs nothing
        kit = build_kit(
            principal,
            naming=settings.naming,
            secret_arn=_secret_arn(ctx, principal.id),
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


def _secret_arn(ctx: Context, principal_id: str) -> str:
    """The kit names the secret by its full ARN (one read: DescribeSecret), never by its name."""
    name = ctx.settings.naming.secret_name(principal_id)
    secret = ctx.adapters.secrets.describe(name)
    if secret is None or secret.deleted_at is not None:
        raise UsageError(
            f"secret {name} does not exist in {ctx.settings.region}: `tokenwarden apply` onboards "
            f"{principal_id} first (the kit names the secret by its ARN)"
        )
    return secret.arn


def audit(args: argparse.Namespace, ctx: Context) -> int:
    from tokenwarden.domain.audit import audit as audit_account

    registry, now = ctx.registry, ctx.now
    findings = audit_account(registry, ctx.reconciler().inventory(), now)
    if args.json:
        print(json.dumps([f.model_dump(mode="json") for f in findings], indent=2))
    else:
        print(rendering.render_audit(findings))
    return EXIT_OK


def revoke(args: argparse.Namespace, ctx: Context) -> int:
    reason = checked_reason(args.reason, "--reason")
    principal = ctx.registry.require(args.principal)
    now = ctx.now
    glass, actor = ctx.breakglass()
    result = glass.revoke(principal, reason, actor, args.reissue, now)
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print(rendering.render_revoke(result, ctx.settings.naming.secret_name(result.principal)))
    return EXIT_OK


def restore(args: argparse.Namespace, ctx: Context) -> int:
    force_reason = _force_reason(args)
    principal = ctx.registry.require(args.principal)
    now = ctx.now
    glass, actor = ctx.breakglass()
    result = glass.restore(principal, actor, now, force_reason)
    print(result.model_dump_json(indent=2) if args.json else rendering.render_restore(result))
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
    return checked_reason(args.reason, "--reason")


def health(args: argparse.Namespace, ctx: Context) -> int:
    registry, now = ctx.registry, ctx.now
    report = ctx.health_checker().run(registry, now, commit=not args.dry_run)
    print(report.model_dump_json(indent=2) if args.json else rendering.render_health(report))
    return EXIT_OK


def health_snooze(args: argparse.Namespace, ctx: Context) -> int:
    from tokenwarden.domain.snooze import SnoozeError

    registry, now = ctx.registry, ctx.now
    try:
        snooze = _snoozes(ctx).snooze(
            registry, args.team, args.until, args.reason, ctx.adapters.iam.caller(), now
        )
    except SnoozeError as exc:
        raise UsageError(str(exc)) from exc
    print(snooze.model_dump_json(indent=2) if args.json else rendering.render_snooze(snooze))
    return EXIT_OK


def health_unsnooze(args: argparse.Namespace, ctx: Context) -> int:
    registry, now = ctx.registry, ctx.now
    ended = _snoozes(ctx).unsnooze(registry, args.team, ctx.adapters.iam.caller(), now)
    if args.json:
        print(
            json.dumps(
                {"team": args.team, "ended": ended.model_dump(mode="json") if ended else None}, indent=2
            )
        )
    else:
        print(rendering.render_unsnooze(args.team, ended, now))
    return EXIT_OK


def _snoozes(ctx: Context) -> Snoozes:
    from tokenwarden.wiring import build_snoozes

    return build_snoozes(ctx.settings)


def report(args: argparse.Namespace, ctx: Context) -> int:
    """The evidence report over the period `--since` names (read-only)."""
    from tokenwarden.cli.report_render import digest, render
    from tokenwarden.service.evidence import evidence_report

    registry, now = ctx.registry, ctx.now
    start = now - args.since if isinstance(args.since, timedelta) else args.since
    if start >= now:
        raise UsageError(f"--since {start:%Y-%m-%d %H:%M} UTC is not before now ({now:%Y-%m-%d %H:%M} UTC)")
    evidence = evidence_report(
        ctx.adapters.ledger,
        ctx.reconciler().inventory(),
        registry,
        start,
        now,
        caller_arn=ctx.adapters.iam.caller(),
        ledger_table=ctx.settings.ledger_table,
    )
    rendered = render(evidence, args.format)
    if not args.output:
        print(rendered)
        return EXIT_OK
    try:
        Path(args.output).write_text(rendered + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the report: {exc.strerror or exc} ({args.output})") from exc
    print(f"wrote {args.output} (SHA-256 of the content {digest(evidence)})", file=sys.stderr)
    return EXIT_OK


def local_up(args: argparse.Namespace, ctx: Context) -> int:
    import signal
    import threading

    from tokenwarden.local.stack import LocalStack

    if args.host not in LOOPBACK:
        raise UsageError("the local stack binds loopback only: use --host 127.0.0.1")
    stack = LocalStack(
        host=args.host, port=args.port, otlp_port=args.otlp_port, victoriametrics=not args.no_victoriametrics
    )
    for name, value in stack.start().items():
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


COMMANDS: dict[str, Command] = {
    "plan": plan,
    "apply": apply,
    "status": status,
    "pickup": pickup,
    "audit": audit,
    "revoke": revoke,
    "restore": restore,
    "health": health,
    "health snooze": health_snooze,
    "health unsnooze": health_unsnooze,
    "report": report,
    "channels": channels,
    "local up": local_up,
}
"""Every command but `demo`, which drives these (see `tokenwarden.cli.demo`)."""
