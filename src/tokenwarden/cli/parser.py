"""The `tokenwarden` command line's syntax: its commands, their options and the argument types.

Nothing here acts: a parsed command is named by `args.command` (and `args.local_command`), which
`tokenwarden.cli.main` runs.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from tokenwarden.cli.errors import EXIT_BAD_INPUT, UsageError
from tokenwarden.cli.views import STATES

EXAMPLES = {
    "plan": "tokenwarden plan --registry teams.yaml\n  tokenwarden plan --at 2027-03-01 --json",
    "apply": "tokenwarden apply --registry teams.yaml\n  tokenwarden apply --at 2027-03-01T02:15:00Z   # embedded stack only\n"
    "  tokenwarden apply --via-state-machine         # the nightly run, as the schedule starts it",
    "status": "tokenwarden status\n  tokenwarden status --team platform-eng --state registered\n"
    "  tokenwarden status --json | jq '.[].current_credential_id'",
    "local": "tokenwarden local up > /tmp/stack.env &   # or in a terminal of its own\n"
    "  until grep -qx ready /tmp/stack.env; do sleep 0.2; done; source <(grep ^export /tmp/stack.env)",
    "demo": "tokenwarden demo",
    "audit": "tokenwarden audit\n  tokenwarden audit --json | jq '.[] | select(.kind == \"key_without_expiry\")'",
    "pickup": "tokenwarden pickup platform-eng --out kit/ --profile dev-sso",
    "revoke": "tokenwarden revoke platform-eng --reason 'token pasted in #general' --reissue",
    "restore": "tokenwarden restore platform-eng\n"
    "  tokenwarden restore platform-eng --force --reason 'the leak report was a false alarm'",
    "health": "tokenwarden health\n  tokenwarden health --json | jq '.teams[] | select(.state == \"silent\")'\n"
    "  tokenwarden health snooze data-science --until 2027-01-04 --reason 'team offsite'",
    "report": "tokenwarden report --since 90d --format html --output evidence.html\n"
    "  tokenwarden report --since 2027-01-01 --format json | jq '.sections[] | {id, summary}'",
    "channels": "tokenwarden channels\n  tokenwarden channels --format json | jq -c '.channels[] | [.channel, .filter_policy]'",
}

# Keys live at most 90 days; any date the lifecycle arithmetic meets stays far inside datetime's range.
AT_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
AT_LATEST = datetime(2999, 12, 31, tzinfo=UTC)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
AT_EXAMPLE = "e.g. 2027-03-01 or 2027-03-01T02:15:00Z"
# A standard execution may run for hours on a large registry; the command stops waiting, not the run.
DEFAULT_STATE_MACHINE_WAIT = 900


class Parser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr saying what to do, and exit code 2. Options are spelled
    out: `--allow-mass-revok` is a typo to refuse, not an abbreviation to guess at."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


# -- argument types ------------------------------------------------------------------------------


def parse_at(raw: str | None) -> datetime | None:
    """`--at` as a UTC instant (a date alone is its midnight UTC); UsageError naming the value."""
    if raw is None:
        return None
    try:
        at = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {shown(raw)} is not an ISO-8601 date or time ({AT_EXAMPLE})") from None
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    if not AT_EARLIEST <= at <= AT_LATEST:
        raise UsageError(f"--at {shown(raw)} is outside {AT_EARLIEST:%Y}-{AT_LATEST:%Y} ({AT_EXAMPLE})")
    return at


def shown(text: str, limit: int = 64) -> str:
    """A value the operator typed, quoted and cut, as an error message repeats it."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def loopback(raw: str) -> str:
    """The local stack serves unauthenticated AWS look-alikes: it binds loopback only (an empty
    host would mean every interface)."""
    host = raw.strip()
    if host not in LOOPBACK:
        raise argparse.ArgumentTypeError(
            f"{shown(raw)} is not a loopback address: the local stack binds loopback only "
            "(use --host 127.0.0.1)"
        )
    return host


def positive_int(maximum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
        if not 1 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{value} is not between 1 and {maximum}")
        return value

    return parse


def port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535; 0 picks a free one)")
    return value


# -- the parser ----------------------------------------------------------------------------------

Add = Callable[[str, str], argparse.ArgumentParser]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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

    for add_command in (
        _add_plan,
        _add_apply,
        _add_status,
        _add_health,
        _add_pickup,
        _add_audit,
        _add_revoke,
        _add_restore,
        _add_report,
        _add_channels,
        _add_local,
        _add_demo,
    ):
        add_command(add)
    return parser


def _with_registry(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--registry", metavar="FILE", help="registry file (default: $TOKENWARDEN_REGISTRY_PATH or teams.yaml)"
    )


def _with_json(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def _add_plan(add: Add) -> None:
    p = add("plan", "Show what the next run would do, and why (changes nothing).")
    _with_registry(p)
    p.add_argument("--at", metavar="ISO-8601", help="plan as of this time (moves the embedded stack's clock)")
    _with_json(p, "the plan")


def _add_apply(add: Add) -> None:
    p = add("apply", "Run the reconciler: onboard, rotate, retire, delete, clean up.")
    _with_registry(p)
    p.add_argument("--at", metavar="ISO-8601", help="embedded stack only: move its clock to this time first")
    _with_json(p, "the run report")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument(
        "--allow-mass-revoke",
        action="store_true",
        help="let this run deactivate more than max(2, 20%%) of the managed principals",
    )
    p.add_argument(
        "--via-state-machine",
        action="store_true",
        help="run the night as the schedule does: start the nightly state machine "
        "(TOKENWARDEN_STATE_MACHINE_ARN) and wait for its run report. It applies the registry deployed "
        "with the function; on the embedded stack, the one given here is deployed first",
    )
    p.add_argument(
        "--wait",
        type=positive_int(86_400),
        default=DEFAULT_STATE_MACHINE_WAIT,
        metavar="SECONDS",
        help=f"with --via-state-machine: how long to wait for the execution (default {DEFAULT_STATE_MACHINE_WAIT})",
    )


def _add_status(add: Add) -> None:
    p = add("status", "Show every principal's keys, days to expiry and next action.")
    _with_registry(p)
    p.add_argument("--at", metavar="ISO-8601", help="as of this time (moves the embedded stack's clock)")
    p.add_argument("--json", action="store_true", help="print a JSON array, one object per principal")
    shown = p.add_argument_group("which principals to show (each repeatable; given together, all must hold)")
    shown.add_argument("--principal", action="append", default=[], metavar="ID", help="this principal only")
    shown.add_argument(
        "--team", action="append", default=[], metavar="TEAM", help="this team's principals only"
    )
    shown.add_argument(
        "--state",
        action="append",
        default=[],
        choices=STATES,
        help="principals in this state only: registered, or found only in the account (offboarding, "
        "offboarded, 'not in registry')",
    )


def _add_health(add: Add) -> None:
    p = add("health", "Check per team that Claude Code telemetry keeps arriving; alert on changes.")
    _with_registry(p)
    p.add_argument(
        "--at",
        metavar="ISO-8601",
        help="as of this time (moves the embedded stack's clock; against AWS only with --dry-run)",
    )
    _with_json(p, "the report")
    p.add_argument(
        "--dry-run", action="store_true", help="evaluate only: send no notification and record nothing"
    )
    _add_snooze_commands(p)


SNOOZE_EXAMPLES = {
    "snooze": "tokenwarden health snooze data-science --until 2027-01-04 --reason 'team offsite, laptops off'",
    "unsnooze": "tokenwarden health unsnooze data-science",
}


def _add_snooze_commands(health: argparse.ArgumentParser) -> None:
    """`health snooze` and `health unsnooze`; `health` alone still runs the check."""
    sub = health.add_subparsers(dest="health_command", required=False, metavar="SUBCOMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {SNOOZE_EXAMPLES[name]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.set_defaults(command_parser=command)
        command.add_argument("team", help="the team id from the registry")
        _with_registry(command)
        _with_json(command, "the snooze")
        return command

    snooze = add(
        "snooze",
        "Planned quiet: the team's silence stops counting until a date (recorded in the ledger).",
    )
    snooze.add_argument(
        "--until",
        required=True,
        metavar="DATE",
        help="when it ends: a date is that day's start in the team's time zone (e.g. 2027-01-04); "
        "a time without an offset is the team's local time; at most 90 days ahead",
    )
    snooze.add_argument(
        "--reason", required=True, help="why (recorded in the ledger, shown by status and health)"
    )
    add("unsnooze", "End the team's snooze now (recorded in the ledger).")


def _add_pickup(add: Add) -> None:
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
        type=positive_int(24 * 60),
        default=20,
        help="refresh the cached token after this long (default 20)",
    )
    p.add_argument(
        "--export-interval-ms",
        type=positive_int(3_600_000),
        default=60000,
        help="OTEL_METRIC_EXPORT_INTERVAL (default 60000)",
    )
    p.add_argument("--force", action="store_true", help="overwrite existing kit files")


def _add_audit(add: Add) -> None:
    p = add("audit", "Read-only drift report: every CloudWatch API key of the account, managed or not.")
    _with_registry(p)
    p.add_argument("--json", action="store_true", help="print the findings as a JSON array")


def _add_revoke(add: Add) -> None:
    p = add("revoke", "Break-glass: deactivate every Active key of a principal at once.")
    p.add_argument("principal", help="the principal id from the registry")
    p.add_argument("--reason", required=True, help="why (recorded in the ledger and the alert)")
    p.add_argument("--reissue", action="store_true", help="issue, verify and make current a replacement key")
    _with_registry(p)
    _with_json(p, "the result")


def _add_restore(add: Add) -> None:
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
    _with_json(p, "the result")


SINCE_EXAMPLE = "e.g. 90d, 36h or 2027-01-01"
MAX_SINCE_DAYS = 3660


def since(raw: str) -> timedelta | datetime:
    """`--since`: a span back from now (`90d`, `36h`) or a UTC date or time (`2027-01-01`)."""
    value = raw.strip()
    span = re.fullmatch(r"(\d{1,6})([dh])", value)
    if span is not None:
        amount = int(span.group(1))
        length = timedelta(days=amount) if span.group(2) == "d" else timedelta(hours=amount)
        if not timedelta(0) < length <= timedelta(days=MAX_SINCE_DAYS):
            raise argparse.ArgumentTypeError(
                f"{shown(raw)} is not a span between 1h and {MAX_SINCE_DAYS}d ({SINCE_EXAMPLE})"
            )
        return length
    try:
        at = parse_at(value)
    except UsageError:
        raise argparse.ArgumentTypeError(
            f"{shown(raw)} is neither a span nor an ISO-8601 date ({SINCE_EXAMPLE})"
        ) from None
    if at is None:
        raise argparse.ArgumentTypeError(f"--since needs a value ({SINCE_EXAMPLE})")
    return at


def _add_report(add: Add) -> None:
    p = add(
        "report",
        "Evidence for auditors (read-only): every key's life, late rotations, revokes, silences and drift "
        "over a period, each figure citing the ledger records it comes from.",
    )
    p.add_argument(
        "--since",
        type=since,
        default=timedelta(days=90),
        metavar="WHEN",
        help=f"start of the period: a span back from now or a UTC date ({SINCE_EXAMPLE}; default 90d)",
    )
    p.add_argument(
        "--format", choices=("md", "json", "html"), default="md", help="md, json or html (default md)"
    )
    p.add_argument("--output", metavar="FILE", help="write the report to FILE instead of standard output")
    _with_registry(p)


def _add_channels(add: Add) -> None:
    p = add(
        "channels",
        "Show each notification channel of the registry (`notify`), the teams it serves and the SNS "
        "subscription filter policy that gives it exactly their messages; the platform channel "
        "subscribes without one and receives everything (reads only the registry).",
    )
    _with_registry(p)
    p.add_argument(
        "--format", choices=("text", "json"), default="text", help="text for people (default), json for tools"
    )


def _add_local(add: Add) -> None:
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
        "--host", type=loopback, default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)"
    )
    up.add_argument("--port", type=port, default=0, help="moto server port (default: a free one)")
    up.add_argument("--otlp-port", type=port, default=0, help="OTLP endpoint port (default: a free one)")
    up.add_argument("--no-victoriametrics", action="store_true", help="do not start VictoriaMetrics")
    up.set_defaults(command_parser=up)


def _add_demo(add: Add) -> None:
    p = add("demo", "Run the whole key lifecycle on the embedded stack: about 200 days in a minute.")
    p.add_argument("--registry", metavar="FILE", help="registry file (default: this checkout's teams.yaml)")
    p.add_argument(
        "--days", type=positive_int(3650), default=200, help="days of nightly runs to simulate (default 200)"
    )
    p.add_argument(
        "--report",
        metavar="FILE",
        help="also write the evidence report of the demo's last 90 days to FILE (Markdown)",
    )


def command_name(args: argparse.Namespace) -> str:
    """The command a parse named: `plan`, ..., or `local up`."""
    local = getattr(args, "local_command", None) or getattr(args, "health_command", None)
    return f"{args.command} {local}" if local else str(args.command)
