"""Each team hears about its own keys: which channel a notification is for, and the SNS
subscription filter policy that selects it.

A notification about a principal carries the `notify` channel of the registry as the SNS message
attribute `channel`: the principal's own `notify` when it has one (a developer may), else its
team's. Run-wide messages (`run_summary`, `guard_tripped`) and teams without a channel carry no
`channel` attribute. So a subscription with the filter policy `{"channel": ["#team-x"]}` receives
exactly team X's messages, and the platform's subscription, without a filter policy, everything.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from tokenwarden.domain.notifications import Notification

if TYPE_CHECKING:
    from tokenwarden.domain.registry import Registry

CHANNEL_ATTRIBUTE = "channel"
MAX_ATTRIBUTES = 10
"""SNS refuses a message with more message attributes than this."""

_SNS_TEXT = re.compile("[\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]+")
"""What SNS takes in a String attribute value (XML 1.0 characters), minus tab and line breaks."""


def channel_problem(value: str) -> str | None:
    """Why SNS (or a filter policy matching it exactly) would not take `value` as the `channel`
    attribute; None when it would."""
    if not value.strip():
        return "must name a channel (SNS refuses an empty attribute value)"
    if value != value.strip():
        return "must not start or end with spaces (a filter policy matches the value exactly)"
    if not _SNS_TEXT.fullmatch(value):
        return "holds a control character or a character SNS refuses in a message attribute"
    return None


class Routes(BaseModel):
    """Who hears about whom: principals with a `notify` of their own, and each team's."""

    model_config = ConfigDict(frozen=True)

    by_principal: dict[str, str] = Field(default_factory=dict)
    by_team: dict[str, str] = Field(default_factory=dict)

    def channel_for(self, principal: str, team: str) -> str | None:
        return self.by_principal.get(principal) or self.by_team.get(team)


def routes_of(registry: Registry) -> Routes:
    """A team's channel is the `notify` of its team entry; a developer's own `notify` wins for the
    messages about that developer's key."""
    return Routes(
        by_principal={p.id: p.notify for p in registry.principals if p.notify},
        by_team={p.id: p.notify for p in registry.principals if p.kind == "team" and p.notify},
    )


def routed(notification: Notification, routes: Routes) -> Notification:
    """The notification with the channel of the principal or team it is about (none for a
    run-wide one, whose team is `-`)."""
    channel = routes.channel_for(notification.principal, notification.team)
    if channel == notification.channel:
        return notification
    return notification.model_copy(update={"channel": channel})


def filter_policy(channel: str) -> dict[str, list[str]]:
    """The subscription filter policy (scope MessageAttributes) of one channel's subscription."""
    return {CHANNEL_ATTRIBUTE: [channel]}


class ChannelRoute(BaseModel):
    """One channel of the registry: the teams and principals whose messages it receives."""

    model_config = ConfigDict(frozen=True)

    channel: str
    teams: tuple[str, ...]
    principals: tuple[str, ...]
    filter_policy: dict[str, list[str]]


class ChannelTable(BaseModel):
    """Every channel of the registry, and the teams whose messages only the platform channel gets."""

    model_config = ConfigDict(frozen=True)

    channels: tuple[ChannelRoute, ...]
    unrouted_teams: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "platform": {"receives": "everything", "filter_policy": None},
            "filter_policy_scope": "MessageAttributes",
            "channels": [route.model_dump(mode="json") for route in self.channels],
            "unrouted_teams": list(self.unrouted_teams),
        }


def channel_table(registry: Registry) -> ChannelTable:
    """Each channel with what it serves: a team whose messages go there (its team entry names it),
    and every principal whose key messages go there."""
    routes = routes_of(registry)
    channels: dict[str, tuple[set[str], set[str]]] = {}
    for principal in registry.principals:
        channel = routes.channel_for(principal.id, principal.team)
        if channel is None:
            continue
        teams, principals = channels.setdefault(channel, (set(), set()))
        principals.add(principal.id)
        if routes.by_team.get(principal.team) == channel:
            teams.add(principal.team)
    return ChannelTable(
        channels=tuple(
            ChannelRoute(
                channel=channel,
                teams=tuple(sorted(teams)),
                principals=tuple(sorted(principals)),
                filter_policy=filter_policy(channel),
            )
            for channel, (teams, principals) in sorted(channels.items())
        ),
        unrouted_teams=tuple(sorted(registry.teams - routes.by_team.keys())),
    )
