"""`tokenwarden channels`: each channel of the registry, the teams it serves and the subscription
filter policy that gives it exactly their messages (docs/routing.md)."""

from __future__ import annotations

import argparse
import json

from tokenwarden.cli.context import Context
from tokenwarden.cli.errors import EXIT_OK
from tokenwarden.domain.routing import CHANNEL_ATTRIBUTE, ChannelTable, channel_table


def channels(args: argparse.Namespace, ctx: Context) -> int:
    table = channel_table(ctx.registry)
    if args.format == "json":
        print(json.dumps(table.as_json(), indent=2))
    else:
        print(render_channels(table))
    return EXIT_OK


def render_channels(table: ChannelTable) -> str:
    """One block per channel: what it serves and the filter policy to paste, then the platform's."""
    lines = [
        "platform channel: every message (run summaries, guard, alarms, and every team's)",
        "  filter policy: none (subscribe it without one)",
    ]
    for route in table.channels:
        lines += [
            "",
            f"{route.channel}",
            f"  teams:      {', '.join(route.teams) or '-'}",
            f"  principals: {', '.join(route.principals)}",
            f"  filter policy (scope MessageAttributes): {json.dumps(route.filter_policy)}",
        ]
    if table.unrouted_teams:
        lines += [
            "",
            f"teams without a channel (the platform channel only; set `notify` in the registry): "
            f"{', '.join(table.unrouted_teams)}",
        ]
    if not table.channels:
        lines += ["", f"no principal names a channel (`notify`): no message carries `{CHANNEL_ATTRIBUTE}`"]
    return "\n".join(lines)
