"""The CLI decides what time it is in one place: the embedded stack's clock (which `--at` moves)
only when boto3 talks to that stack; elsewhere `--at` as a fixed time, or the system clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tokenwarden.cli import context
from tokenwarden.cli.context import FixedClock, choose_clock, moves_time
from tokenwarden.cli.errors import UsageError
from tokenwarden.cli.parser import build_parser
from tokenwarden.wiring import SystemClock

AT = datetime(2027, 3, 1, 2, 15, tzinfo=UTC)
STACK = {"TOKENWARDEN_STACK_URL": "http://127.0.0.1:4567", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}


class FakeStackClock:
    """The stack's clock as RemoteStackClock reads it: it only moves forward."""

    instances: list[FakeStackClock] = []

    def __init__(self, url: str) -> None:
        self.url = url
        self.time = AT - timedelta(days=1)
        FakeStackClock.instances.append(self)

    def now(self) -> datetime:
        return self.time

    def advance_to(self, at: datetime) -> datetime:
        self.time = max(self.time, at)
        return self.time


@pytest.fixture(autouse=True)
def fake_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeStackClock.instances.clear()
    monkeypatch.setattr(context, "RemoteStackClock", FakeStackClock)


def test_away_from_the_stack_the_system_clock_runs() -> None:
    timing = choose_clock(None, moves_time=True, env={})
    assert isinstance(timing.clock, SystemClock)
    assert abs(timing.now - datetime.now(UTC)) < timedelta(minutes=1)
    assert FakeStackClock.instances == []


def test_away_from_the_stack_at_is_a_fixed_time_for_a_read_only_command() -> None:
    timing = choose_clock(AT, moves_time=False, env={})
    assert isinstance(timing.clock, FixedClock)
    assert timing.now == timing.clock.now() == AT


def test_away_from_the_stack_at_cannot_move_time_for_a_command_that_changes_keys() -> None:
    with pytest.raises(UsageError, match="only on the embedded local stack"):
        choose_clock(AT, moves_time=True, env={})


def test_on_the_stack_its_clock_is_used_and_at_moves_it() -> None:
    timing = choose_clock(AT, moves_time=True, env=STACK)
    [stack_clock] = FakeStackClock.instances
    assert timing.clock is stack_clock and stack_clock.url == STACK["TOKENWARDEN_STACK_URL"]
    assert timing.now == stack_clock.now() == AT


def test_on_the_stack_without_at_the_command_runs_at_the_stacks_time() -> None:
    timing = choose_clock(None, moves_time=False, env=STACK)
    assert timing.now == AT - timedelta(days=1)


def test_the_stacks_clock_never_goes_back_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    timing = choose_clock(AT - timedelta(days=30), moves_time=False, env=STACK)
    assert timing.now == AT - timedelta(days=1)
    assert "already at 2027-02-28 02:15 UTC and never goes back" in capsys.readouterr().err


def test_a_stack_url_left_over_in_a_shell_never_changes_the_time_of_a_run_against_aws() -> None:
    env = {"TOKENWARDEN_STACK_URL": STACK["TOKENWARDEN_STACK_URL"]}
    assert isinstance(choose_clock(None, moves_time=False, env=env).clock, SystemClock)
    env["AWS_ENDPOINT_URL"] = "https://iam.amazonaws.com"
    assert isinstance(choose_clock(None, moves_time=False, env=env).clock, SystemClock)
    assert FakeStackClock.instances == []


@pytest.mark.parametrize(
    ("argv", "acts"),
    [
        (["apply"], True),
        (["health"], True),
        (["health", "--dry-run"], False),
        (["health", "snooze", "web", "--until", "2030-01-02", "--reason", "offsite"], True),
        (["health", "unsnooze", "web"], True),
        (["plan"], False),
        (["status"], False),
    ],
)
def test_only_commands_that_change_aws_refuse_at_away_from_the_stack(argv: list[str], acts: bool) -> None:
    """`health --at T` on an account would alert, record and roll keys back at a made-up time."""
    args = build_parser().parse_args(argv)
    assert moves_time(args) is acts
