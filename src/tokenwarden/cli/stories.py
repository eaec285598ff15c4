"""The demo's stories, each told on the same embedded stack: the key lifecycle over many nights, a
leaked token revoked at 3 a.m., a takeover refused, and a team whose telemetry goes silent.

Each story returns an exit code: 0 when what it shows held, 1 (having said why) when it did not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from tokenwarden.cli import commands, rendering
from tokenwarden.cli.context import Context
from tokenwarden.cli.demo_world import (
    SETTLE_SECONDS,
    DemoWorld,
    Message,
    about,
    counted,
    event_type,
    say,
    show,
)
from tokenwarden.cli.errors import guarded
from tokenwarden.cli.parser import build_parser, command_name
from tokenwarden.cli.views import status_rows
from tokenwarden.domain.audit import audit
from tokenwarden.domain.registry import ActivityProfile, Principal
from tokenwarden.local import realism
from tokenwarden.observability import logger

if TYPE_CHECKING:
    from tokenwarden.service.health import HealthChecker

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LEAK_REASON = "token pasted in #general"

# -- the lifecycle, night after night ---------------------------------------------------------------


@dataclass
class Lifecycle:
    """What the nightly story remembers: the first principal's day-0 token, checked once retired."""

    first: Principal
    day0_token: str
    totals: dict[str, int] = field(default_factory=dict)
    old_token_checked: bool = False


def lifecycle(world: DemoWorld, days: int) -> int:
    t0 = world.next_night()
    say(f"\nDay 0 ({t0:%Y-%m-%d}): onboarding, through the nightly state machine (one task per principal)")
    _, failed = world.nightly_via_state_machine(t0)
    show(world.drain())
    if failed:
        say(f"  FAILED: {failed}")
        return 1
    first = world.registry.principals[0]
    story = Lifecycle(first=first, day0_token=world.token_of(first.id))
    accepted = world.send(story.day0_token, first.team, "jdoe")
    say(
        f"\n  A laptop of {first.id} exports with the token it read today: {'accepted' if accepted else 'REFUSED'}"
    )
    say(f"\nSimulating {days} nightly runs (only nights with changes are shown)...")
    for day in range(1, days + 1):
        code = _night(world, story, day, t0 + timedelta(days=day))
        if code:
            return code
    say(f"\nTotals over {days} nights: " + counted(story.totals))
    return 0


def _night(world: DemoWorld, story: Lifecycle, day: int, at: datetime) -> int:
    counts, failed = world.nightly(at)
    for k, v in counts.items():
        story.totals[k] = story.totals.get(k, 0) + v
    messages = [m for m in world.drain() if event_type(m) != "run_summary"]
    if day % 50 == 0 and not (messages or failed):
        say(f"  ... day {day} ({at:%Y-%m-%d}): nothing due")
    if messages or failed:
        say(f"\n  Day {day} ({at:%Y-%m-%d}): " + counted(counts))
        show(messages)
    if failed:
        say(f"  FAILED: {failed}")
        return 1
    if not story.old_token_checked and any(
        event_type(m) == "retired" and about(m, story.first.id) for m in messages
    ):
        story.old_token_checked = True
        return _retired_token_refused(world, story)
    return 0


def _retired_token_refused(world: DemoWorld, story: Lifecycle) -> int:
    """Once the day-0 key is retired, a laptop with the current token works and one with the old does not."""
    first = story.first
    new_ok = world.send(world.token_of(first.id), first.team, "jdoe")
    old_ok = world.send(story.day0_token, first.team, "jdoe")
    say(f"\n  OpenTelemetry exporter as a laptop of {first.id}:")
    say(f"    with the current token (re-read from Secrets Manager): {'accepted' if new_ok else 'REFUSED'}")
    say(f"    with the day-0 token, now retired:                       {'accepted' if old_ok else 'refused'}")
    if not new_ok or old_ok:
        say("  UNEXPECTED: the endpoint should accept the current key and refuse the retired one")
        return 1
    return 0


# -- break-glass and the drift audit --------------------------------------------------------------


def break_glass(world: DemoWorld) -> int:
    """A leaked token at 3 a.m.: one command revokes it and puts a verified replacement in place."""
    victim = world.registry.principals[0]
    leaked = world.token_of(victim.id)
    say(f"\nBreak-glass: {victim.id}'s token was pasted in a public channel.")
    say(f"  $ tokenwarden revoke {victim.id} --reason '{LEAK_REASON}' --reissue")
    code = run_command(
        world,
        ["revoke", victim.id, "--reason", LEAK_REASON, "--reissue", "--registry", world.registry.source],
    )
    if code:
        return code
    show(world.drain())
    old_ok = world.send(leaked, victim.team, "attacker")
    new_ok = world.send(world.token_of(victim.id), victim.team, "jdoe")
    say(
        f"  export with the leaked token: {'ACCEPTED' if old_ok else 'refused'}; "
        f"with the reissued one: {'accepted' if new_ok else 'REFUSED'}"
    )
    if old_ok or not new_ok:
        return 1
    drift_audit(world)
    return 0


def run_command(world: DemoWorld, argv: list[str]) -> int:
    """A `tokenwarden` command, run as the operator would type it, against the demo's stack."""
    args = build_parser().parse_args(argv)
    command = commands.COMMANDS[command_name(args)]
    return guarded(lambda: command(args, Context(world.settings, args)))


def drift_audit(world: DemoWorld) -> None:
    say(
        "\nDrift audit: someone made an API key by hand in the console (an IAM user outside TokenWarden's path)."
    )
    iam = world.session.client("iam")
    iam.create_user(UserName="console-cloudwatch-user")
    world.clock.advance(timedelta(minutes=1))  # IAM is eventually consistent: a new user, a moment later
    iam.create_service_specific_credential(
        UserName="console-cloudwatch-user", ServiceName="cloudwatch.amazonaws.com"
    )
    for finding in audit(world.registry, world.reconciler.inventory(), world.clock.now()):
        say(f"  {finding.kind}: {finding.detail}")
    say("  (the audit only reports: the hand-made key is left alone)")


# -- a takeover refused ---------------------------------------------------------------------------


def takeover(world: DemoWorld) -> int:
    """A secret re-keyed with someone else's KMS key: the next run refuses it and says so."""
    ids = [p.id for p in world.registry.principals]
    victim = "mobile" if "mobile" in ids else ids[-1]
    secret = world.settings.naming.secret_name(victim)
    token = world.token_of(victim)
    own_key = str(world.secrets.describe_secret(SecretId=secret)["KmsKeyId"])
    other = world.session.client("kms").create_key(Description="a key TokenWarden does not know")
    say(f"\nTakeover attempt: {secret} is re-keyed with a KMS key someone else controls, so that")
    say("they could decrypt the next token. (On AWS the secret's own policy denies UpdateSecret to")
    say("everyone but TokenWarden and its operators; here an administrator does it.)")
    say(f"  $ aws secretsmanager update-secret --secret-id {secret} --kms-key-id <their key>")
    world.secrets.update_secret(SecretId=secret, KmsKeyId=other["KeyMetadata"]["Arn"])
    at = world.next_night()
    with _quiet_product():  # the refusal is logged as an error; the notice below says it
        _, failed = world.nightly(at)
    refusals = [m for m in world.drain() if event_type(m) == "takeover_refused"]
    show(refusals)
    refused = any(f.startswith(victim) for f in failed)
    unchanged = world.token_of(victim) == token
    say(
        f"  {victim} refused by the run: {'yes' if refused else 'NO'}; "
        f"token in the secret unchanged: {'yes' if unchanged else 'NO'}"
    )
    if not (refusals and unchanged and refused):
        return 1
    say("  The platform team puts the secret's key back; the next night the run goes on as before.")
    world.secrets.update_secret(SecretId=secret, KmsKeyId=own_key)
    return _night_without_failure(world, at + timedelta(days=1))


@contextmanager
def _quiet_product() -> Iterator[None]:
    product = logging.getLogger(logger.name)
    level = product.level
    product.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        product.setLevel(level)


def _night_without_failure(world: DemoWorld, at: datetime) -> int:
    _, failed = world.nightly(at)
    world.drain()
    if failed:
        say(f"  FAILED: {failed}")
        return 1
    return 0


# -- a team's telemetry goes silent ---------------------------------------------------------------


@dataclass
class Fleet:
    """Every team's laptops: the token each team's laptops hold, and which team never re-reads it."""

    victim: str
    owners: dict[str, str]
    profiles: dict[str, ActivityProfile]
    tokens: dict[str, str]
    refused_shown: bool = False
    silent_seen: bool = False
    recovered: bool = False

    @classmethod
    def of(cls, world: DemoWorld) -> Fleet:
        principals = world.registry.principals
        teams = sorted({p.team for p in principals})
        owners = {team: next(p for p in principals if p.team == team and p.kind == "team") for team in teams}
        return cls(
            victim="data-science" if "data-science" in teams else teams[-1],
            owners={team: owner.id for team, owner in owners.items()},
            profiles={team: owner.activity for team, owner in owners.items()},
            tokens={team: world.token_of(owner.id) for team, owner in owners.items()},
        )


def silent_team(world: DemoWorld) -> int:
    """A team's key is rotated and retired while its laptops keep the old token."""
    from tokenwarden.wiring import build_adapters, build_health_checker

    checker = build_health_checker(world.settings, build_adapters(world.settings))
    fleet = Fleet.of(world)
    say("\nTelemetry health: every team's laptops send Claude Code metrics on working days;")
    say(f"{fleet.victim}'s laptops never pick up a new key (they keep the token they read once).")
    owner = fleet.owners[fleet.victim]
    end = _rotation_day(world, owner) + timedelta(days=12)
    day = world.clock.now().replace(hour=2, minute=15) + timedelta(days=1)
    while day <= end + timedelta(days=7) and not fleet.recovered:
        world.nightly(day)
        show([m for m in world.drain() if event_type(m) in ("rotated", "retired") and about(m, owner)])
        if day.weekday() < 5:
            _working_day(world, fleet, checker, day)
        day += timedelta(days=1)
    if not (fleet.refused_shown and fleet.silent_seen and fleet.recovered):
        say(
            f"  UNEXPECTED: refused={fleet.refused_shown} silent={fleet.silent_seen} recovered={fleet.recovered}"
        )
        return 1
    final = checker.run(world.registry, world.clock.now(), commit=False)
    say("\n  Health now: " + rendering.render_team_health(final))
    return 0


def _rotation_day(world: DemoWorld, owner: str) -> datetime:
    """When the owner's key rotates next (now, when the plan has no rotation coming)."""
    now = world.clock.now()
    pplan = world.reconciler.plan(world.registry, now).for_principal(owner)
    upcoming = pplan.upcoming if pplan else None
    return upcoming.at if upcoming is not None and upcoming.kind.value == "rotate" else now


def _working_day(world: DemoWorld, fleet: Fleet, checker: HealthChecker, day: datetime) -> None:
    """Laptops export every two hours of the working day; the evening's health check reports."""
    for hour in range(7, 23, 2):
        world.clock.advance_to(day.replace(hour=hour, minute=0))
        _laptops_export(world, fleet)
    world.clock.advance_to(day.replace(hour=23, minute=30))
    checker.run(world.registry, world.clock.now())
    for message in world.drain():
        _health_notice(world, fleet, message)
    if fleet.silent_seen and not fleet.recovered:
        say(
            f"  -> {fleet.victim} re-reads its secret (the seed's get-secret-value recipe) on the next working day"
        )


def _laptops_export(world: DemoWorld, fleet: Fleet) -> None:
    for team, owner in fleet.owners.items():
        if not working(fleet.profiles[team], world.clock.now()):
            continue
        if team != fleet.victim or fleet.silent_seen:
            fleet.tokens[team] = world.token_of(owner)
        accepted = world.send(fleet.tokens[team], team, f"dev-{team}")
        if not accepted and team == fleet.victim and not fleet.refused_shown:
            fleet.refused_shown = True
            say(
                f"\n  {world.clock.now():%Y-%m-%d %H:%M} UTC: {fleet.victim}'s laptops export with the "
                "old token: refused"
            )


def _health_notice(world: DemoWorld, fleet: Fleet, message: Message) -> None:
    kind = event_type(message)
    if not kind.startswith("team_"):
        return
    say(f"\n  {world.clock.now():%Y-%m-%d %H:%M} UTC, health check:")
    show([message])
    fleet.silent_seen = fleet.silent_seen or kind == "team_silent"
    fleet.recovered = fleet.recovered or kind == "team_recovered"


def working(profile: ActivityProfile, at: datetime) -> bool:
    """Whether `at` falls in the profile's working hours, in the team's own time zone."""
    local = at.astimezone(ZoneInfo(profile.timezone))
    return WEEKDAYS[local.weekday()] in profile.working_days and profile.start <= local.time() < profile.end


# -- a retirement rolled back by itself -----------------------------------------------------------


@dataclass
class Rollback:
    """What the rollback story has seen of its team: the token its laptops hold and the messages."""

    fleet: Fleet
    owner: str
    old_token: str
    seen: list[str] = field(default_factory=list)
    picked_up: bool = False

    def saw(self, kind: str) -> bool:
        return kind in self.seen


def rollback(world: DemoWorld) -> int:
    """A team's laptops still use the previous key when it is retired: the health check finds the team
    silent within hours, re-activates the key for a few days and tells the team to run the pickup
    kit; the nightly run retires the key again once that grace ends, and nobody was cut off for a day."""
    from tokenwarden.wiring import build_adapters, build_health_checker

    checker = build_health_checker(world.settings, build_adapters(world.settings), clock=world.clock)
    fleet = Fleet.of(world)
    candidates = [
        t for t in sorted(fleet.owners) if t != fleet.victim and _one_active_key(world, fleet.owners[t])
    ]
    if not candidates:
        say("\n(No team can be rotated by hand right now: skipping the rollback story.)")
        return 0
    fleet.victim = candidates[0]
    owner = fleet.owners[fleet.victim]
    story = Rollback(fleet=fleet, owner=owner, old_token=world.token_of(owner))
    secret = world.settings.naming.secret_name(owner)
    rotated_at = _next_weekday(world.clock.now().replace(hour=10, minute=0, second=0, microsecond=0))
    world.clock.advance_to(rotated_at)
    world.drain()
    say(f"\nAutomatic rollback: {owner}'s key is rotated by hand on {rotated_at:%Y-%m-%d} and its laptops")
    say("never pick up the new key (they keep the token they read once).")
    say(f"  $ aws secretsmanager rotate-secret --secret-id {secret}")
    world.secrets.rotate_secret(SecretId=secret)
    realism.wait_idle(SETTLE_SECONDS)
    show([m for m in world.drain() if event_type(m) == "rotated" and about(m, owner)])
    grace = timedelta(days=world.registry.require(owner).lifecycle.grace_days)
    # Through the grace the laptops work with either key: the story picks up the day before it ends.
    watched_from = rotated_at + grace - timedelta(days=1)
    day = rotated_at.replace(hour=2, minute=15) + timedelta(days=1)
    while day <= rotated_at + grace + timedelta(days=9) and not _rollback_told(story):
        _rollback_night(world, story, day)
        if day.weekday() < 5 and day >= watched_from:
            _rollback_day(world, story, checker, day)
        day += timedelta(days=1)
    return _rollback_held(world, story)


def _one_active_key(world: DemoWorld, owner: str) -> bool:
    """Whether the owner's user holds no working key but the current one (a rotation by hand then
    never takes a slot from a previous key still in its grace)."""
    inventory = world.reconciler.principal_inventory(owner)
    return sum(c.status == "Active" for c in inventory.credentials) == 1


def _next_weekday(at: datetime) -> datetime:
    at += timedelta(days=1)
    while at.weekday() >= 5:
        at += timedelta(days=1)
    return at


def _rollback_told(story: Rollback) -> bool:
    """The story is over once the key was retired a second time and a working day after it was quiet."""
    return story.seen.count("retired") >= 2 and story.seen[-1] == "healthy day"


def _rollback_night(world: DemoWorld, story: Rollback, at: datetime) -> None:
    world.nightly(at)
    retired = [m for m in world.drain() if event_type(m) == "retired" and about(m, story.owner)]
    if retired:
        say(f"\n  {world.clock.now():%Y-%m-%d %H:%M} UTC, nightly run:")
        show(retired)
        story.seen.append("retired")


def _rollback_day(world: DemoWorld, story: Rollback, checker: HealthChecker, day: datetime) -> None:
    """Laptops export every two hours of the working day; the evening's health check acts."""
    fleet = story.fleet
    for hour in range(7, 23, 2):
        world.clock.advance_to(day.replace(hour=hour, minute=0))
        for team, owner in fleet.owners.items():
            if not working(fleet.profiles[team], world.clock.now()):
                continue
            token = story.old_token if team == fleet.victim and not story.picked_up else world.token_of(owner)
            accepted = world.send(token, team, f"dev-{team}")
            if team == fleet.victim and not story.picked_up:
                _old_token_answer(world, story, accepted)
    world.clock.advance_to(day.replace(hour=23, minute=30))
    checker.run(world.registry, world.clock.now())
    told = [
        m
        for m in world.drain()
        if about(m, story.owner)
        and event_type(m) in ("team_silent", "team_recovered", "rolled_back", "rollback_escalated")
    ]
    if told:
        say(f"\n  {world.clock.now():%Y-%m-%d %H:%M} UTC, health check:")
        show(told)
        story.seen += [event_type(m) for m in told]
    elif story.seen.count("retired") >= 2:
        story.seen.append("healthy day")
        say(f"\n  {world.clock.now():%Y-%m-%d %H:%M} UTC, health check: {fleet.victim} is healthy")
    if story.saw("team_recovered") and not story.picked_up:
        story.picked_up = True
        say(
            f"  -> the team runs the pickup kit (`tokenwarden pickup {story.owner}`): its laptops follow rotations now"
        )


def _old_token_answer(world: DemoWorld, story: Rollback, accepted: bool) -> None:
    """Say once when the previous token is first refused, and once when it works again."""
    kind = "accepted again" if accepted else "refused"
    if (accepted and "refused" in story.seen and kind not in story.seen) or (
        not accepted and kind not in story.seen
    ):
        story.seen.append(kind)
        say(
            f"\n  {world.clock.now():%Y-%m-%d %H:%M} UTC: {story.fleet.victim}'s laptops export with the previous token: {kind}"
        )


def _rollback_held(world: DemoWorld, story: Rollback) -> int:
    """The key came back once, the team recovered, the key went for good, and nothing escalated."""
    old_refused = not world.send(story.old_token, story.fleet.victim, "dev")
    held = (
        story.saw("rolled_back")
        and story.saw("team_recovered")
        and story.seen.count("retired") >= 2
        and not story.saw("rollback_escalated")
        and old_refused
    )
    if not held:
        say(f"  UNEXPECTED: {story.seen}; previous token refused at the end: {old_refused}")
        return 1
    say(
        f"\n  The previous key is retired for good; {story.fleet.victim}'s laptops send with the current one."
    )
    return 0


# -- a team snoozed for its offsite ----------------------------------------------------------------

OFFSITE = "team offsite, laptops off"


def snoozed_team(world: DemoWorld) -> int:
    """A team away for two working days is snoozed: its laptops send nothing, and nobody is paged."""
    from tokenwarden.wiring import build_adapters, build_health_checker

    checker = build_health_checker(world.settings, build_adapters(world.settings))
    fleet = Fleet.of(world)
    team = "mobile" if "mobile" in fleet.owners else sorted(fleet.owners)[0]
    monday = _next_monday(world.clock.now())
    world.clock.advance_to(monday.replace(hour=9))
    _export_except(world, fleet, away=None)
    until = monday + timedelta(days=3)
    say(
        f"\nPlanned quiet: {team} is at an offsite from Monday {monday:%Y-%m-%d}, laptops off, until Thursday."
    )
    say(f"  $ tokenwarden health snooze {team} --until {until:%Y-%m-%d} --reason '{OFFSITE}'")
    argv = ["health", "snooze", team, "--until", f"{until:%Y-%m-%d}", "--reason", OFFSITE]
    if run_command(world, [*argv, "--registry", world.registry.source]):
        return 1
    paged = [
        m
        for day in range(2)
        for m in _quiet_day(world, checker, fleet, team, monday + timedelta(days=day), team)
    ]
    log, checker.snoozes = checker.snoozes, None  # what the same check would say without the snooze
    say(
        "  Without the snooze it would say: "
        + rendering.render_team_health(checker.run(world.registry, world.clock.now(), commit=False))
    )
    checker.snoozes = log
    wednesday = monday + timedelta(days=2)
    world.clock.advance_to(wednesday.replace(hour=8))
    say(f"\n  The team is back a day early: $ tokenwarden health unsnooze {team}")
    if run_command(world, ["health", "unsnooze", team, "--registry", world.registry.source]):
        return 1
    paged += _quiet_day(world, checker, fleet, team, wednesday, away=None)
    if paged:
        say(f"  UNEXPECTED: {team} was paged: {[event_type(m) for m in paged]}")
        return 1
    return 0


def _next_monday(now: datetime) -> datetime:
    return (now + timedelta(days=7 - now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)


def _quiet_day(
    world: DemoWorld, checker: HealthChecker, fleet: Fleet, team: str, day: datetime, away: str | None = None
) -> list[Message]:
    """A working day on which every team at work exports but the one `away`; the evening's health
    check reports `team`. Returns the alerts about `team`, of which there should be none."""
    for hour in range(11, 23, 2):
        world.clock.advance_to(day.replace(hour=hour))
        _export_except(world, fleet, away)
    world.clock.advance_to(day.replace(hour=23, minute=30))
    report = checker.run(world.registry, world.clock.now())
    about_team = [m for m in world.drain() if about(m, team) and event_type(m).startswith("team_")]
    [health] = [t for t in report.teams if t.team == team]
    until = health.snoozed_until
    snoozed = f", snoozed until {until:%Y-%m-%d %H:%M} UTC ({health.snooze_reason})" if until else ""
    say(
        f"  {world.clock.now():%Y-%m-%d %H:%M} UTC, health check: {team} {health.state.value}{snoozed}; "
        f"{len(about_team)} alert(s) for it"
    )
    return about_team


def _export_except(world: DemoWorld, fleet: Fleet, away: str | None) -> None:
    """Every team at work exports with its current token, except the one `away`."""
    for team, owner in fleet.owners.items():
        if team != away and working(fleet.profiles[team], world.clock.now()):
            world.send(world.token_of(owner), team, f"dev-{team}")


# -- the end ----------------------------------------------------------------------------------------


def final_status(world: DemoWorld) -> None:
    now = world.clock.now()
    inventory = world.reconciler.inventory()
    plan = world.reconciler.plan(world.registry, now, inventory)
    say(f"\nStatus on {now:%Y-%m-%d}:")
    say(rendering.render_status(status_rows(world.registry, inventory, plan, world.settings.naming)))
