"""`tokenwarden`: plan, apply, status, break-glass and the embedded local stack.

Exit codes: 0 success, 1 a principal failed, 2 bad input (nothing was changed). A failure is one
line on stderr saying what holds and what to do next, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from tokenwarden.cli import commands
from tokenwarden.cli.context import Context
from tokenwarden.cli.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, fail, guarded, settings_problem
from tokenwarden.cli.parser import build_parser, command_name
from tokenwarden.settings import Settings, load_settings

__all__ = ["COMMANDS", "EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "build_parser", "main"]


def _demo(args: argparse.Namespace, ctx: Context) -> int:
    """The demo loads the embedded stack (moto and the rest) only when it runs."""
    from tokenwarden.cli.demo import command

    return command(args, ctx)


COMMANDS: dict[str, commands.Command] = {**commands.COMMANDS, "demo": _demo}


def main(argv: Sequence[str] | None = None) -> int:
    parsed = _parse(argv)
    if isinstance(parsed, int):
        return parsed
    _quiet_libraries(verbose=False)
    try:
        settings = _settings()
    except ValidationError as exc:
        return fail(settings_problem(exc), EXIT_BAD_INPUT)
    command = COMMANDS[command_name(parsed)]
    return guarded(lambda: command(parsed, Context(settings, parsed)))


def _parse(argv: Sequence[str] | None) -> argparse.Namespace | int:
    """The parsed command line, or the exit code of `--help` (0) or of a bad argument (2, already
    explained on stderr)."""
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:  # said by the command's own parser, so the hint names its --help
            getattr(args, "command_parser", parser).error(f"unrecognized arguments: {' '.join(extras)}")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    return args


def _settings() -> Settings:
    settings = load_settings()
    settings.naming  # noqa: B018 - validates the naming settings now, not halfway through a command
    return settings


def _quiet_libraries(verbose: bool) -> None:
    import logging
    import warnings

    from tokenwarden.observability import logger

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # EMF is for Lambda's stdout, not a terminal
    if not verbose and not os.environ.get("POWERTOOLS_LOG_LEVEL"):
        logger.setLevel("ERROR")


if __name__ == "__main__":
    sys.exit(main())
