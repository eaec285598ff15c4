"""Snooze and unsnooze a team's health alerts, recorded in the ledger (`tokenwarden health snooze`).

A request is checked in full before anything is written (the team is registered, the end is ahead
and within reach, the reason is one short printable line): a refused request records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tokenwarden.domain.health import team_profiles
from tokenwarden.domain.registry import Registry, RegistryError
from tokenwarden.domain.snooze import (
    Snooze,
    SnoozeError,
    SnoozeRecord,
    active_snoozes,
    checked_snooze_reason,
    snooze_end,
)


class SnoozeLog(Protocol):
    def append(self, record: SnoozeRecord) -> bool:
        """Write a record once; False when another record holds its key."""
        ...

    def records(self) -> list[SnoozeRecord]:
        """Every record of every team, in one read."""
        ...


def registered_team(registry: Registry, team: str) -> str:
    """``team`` when the registry has it; a RegistryError listing the teams otherwise."""
    if team in registry.teams:
        return team
    teams = sorted(registry.teams)
    listed = ", ".join(teams[:20]) + (", ..." if len(teams) > 20 else "")
    raise RegistryError(f"unknown team {team[:64]!r}: not in {registry.source} (its teams: {listed})")


@dataclass
class Snoozes:
    log: SnoozeLog

    def active(self, now: datetime) -> dict[str, Snooze]:
        """The snooze in force for each team that has one (one read)."""
        return active_snoozes(self.log.records(), now)

    def snooze(
        self, registry: Registry, team: str, until: str, reason: str, actor: str, now: datetime
    ) -> Snooze:
        """Snooze ``team`` from ``now`` until ``until`` (read in the team's time zone, see
        :func:`snooze_end`); a snooze in force is replaced."""
        registered_team(registry, team)
        end = snooze_end(until, team_profiles(registry)[team].timezone, now)
        why = checked_snooze_reason(reason, "--reason")
        self._write(SnoozeRecord(team=team, action="snooze", at=now, by=actor, until=end, reason=why))
        return Snooze(team=team, since=now, until=end, reason=why, by=actor)

    def unsnooze(self, registry: Registry, team: str, actor: str, now: datetime) -> Snooze | None:
        """End ``team``'s snooze now; the snooze it ended, or None (nothing recorded) when there was none."""
        registered_team(registry, team)
        ended = self.active(now).get(team)
        if ended is None:
            return None
        self._write(SnoozeRecord(team=team, action="unsnooze", at=now, by=actor))
        return ended

    def _write(self, record: SnoozeRecord) -> None:
        if not self.log.append(record):
            raise SnoozeError(
                f"another snooze record of {record.team} was written at the same instant; run the command again"
            )
