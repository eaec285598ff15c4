"""`tokenwarden health snooze` and `unsnooze` in a moto world: each is recorded in the ledger table
(who, when, until, why), `status` and `health` show the snoozed team, the health check reads every
snooze in one Query, and a refused request records nothing; a team's own public-holiday calendar
keeps its holiday out of its silence."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import ROOT, Env
from tests.integration.test_handlers import _FakePromQL
from tokenwarden.cli import context
from tokenwarden.cli.main import main

REGISTRY = str(ROOT / "teams.yaml")
TEAM = "data-science"  # America/New_York in the shipped registry


@pytest.fixture
def world(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """The CLI configured for this moto world, on its clock, with a PromQL server where every team
    reported a minute ago."""
    for name, value in env.settings_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(context, "SystemClock", lambda: env.clock)
    env.run()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakePromQL)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("TOKENWARDEN_PROMQL_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("TOKENWARDEN_PROMQL_DIALECT", "prometheus")
    sample = (env.clock.now() - timedelta(minutes=1)).timestamp()
    _FakePromQL.answer = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"team.id": team}, "value": [sample, str(sample)]}
                for team in ("platform-eng", "data-science", "mobile")
            ],
        },
    }
    try:
        yield env
    finally:
        server.shutdown()
        server.server_close()


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def snooze_items(env: Env) -> list[dict[str, Any]]:
    answer = env.client("dynamodb").query(
        TableName=env.settings.ledger_table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :s)",
        ExpressionAttributeValues={":pk": {"S": "HEALTH"}, ":s": {"S": "SNOOZE#"}},
    )
    return [json.loads(item["record"]["S"]) for item in answer["Items"]]


def until(env: Env, days: int) -> str:
    return f"{env.clock.now() + timedelta(days=days):%Y-%m-%d}"


def test_a_snooze_is_recorded_and_shown_by_status_and_health(world: Env) -> None:
    end = until(world, 5)
    code, out, err = cli(
        "health", "snooze", TEAM, "--until", end, "--reason", "offsite", "--registry", REGISTRY
    )
    assert code == 0, err
    assert f"{TEAM}: health alerts snoozed until" in out
    [item] = snooze_items(world)
    caller = world.client("sts").get_caller_identity()["Arn"]
    assert item["team"] == TEAM and item["action"] == "snooze" and item["reason"] == "offsite"
    assert item["by"] == caller
    # A date is the start of that day in the team's own time zone (New York: 05:00 UTC in winter).
    assert datetime.fromisoformat(item["until"]).isoformat() == f"{end}T05:00:00+00:00"

    code, out, err = cli("status", "--registry", REGISTRY, "--json")
    assert code == 0, err
    snoozed = {row["principal"]: row["snoozed_until"] for row in json.loads(out)}
    assert snoozed == {
        "platform-eng": None,
        "data-science": f"{end}T05:00:00+00:00",
        "mobile": None,
        "jdoe": None,
    }
    code, out, _ = cli("status", "--registry", REGISTRY)
    assert f"{TEAM}: health alerts snoozed until {end} 05:00 UTC (offsite)" in out

    code, out, err = cli("health", "--registry", REGISTRY, "--json", "--dry-run")
    assert code == 0, err
    teams = {t["team"]: t for t in json.loads(out)["teams"]}
    assert teams[TEAM]["snooze_reason"] == "offsite" and teams[TEAM]["snoozed_by"] == caller
    assert teams["mobile"]["snoozed_until"] is None
    code, out, _ = cli("health", "--registry", REGISTRY, "--dry-run")
    assert f"{TEAM}: snoozed until {end} 05:00 UTC by {caller}: offsite" in out


def test_an_unsnooze_ends_it_and_is_recorded_too(world: Env) -> None:
    cli("health", "snooze", TEAM, "--until", until(world, 5), "--reason", "offsite", "--registry", REGISTRY)
    world.clock.advance(timedelta(hours=2))
    code, out, err = cli("health", "unsnooze", TEAM, "--registry", REGISTRY)
    assert code == 0, err
    assert "ended at" in out and "its silence counts again" in out
    assert [item["action"] for item in snooze_items(world)] == ["snooze", "unsnooze"]
    code, out, _ = cli("status", "--registry", REGISTRY, "--json")
    assert all(row["snoozed_until"] is None for row in json.loads(out))

    code, out, err = cli("health", "unsnooze", TEAM, "--registry", REGISTRY)
    assert code == 0, err
    assert out.strip() == f"{TEAM} is not snoozed: nothing recorded"
    assert len(snooze_items(world)) == 2


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("snooze", "no-such-team", "--until", "+5", "--reason", "offsite"), "unknown team 'no-such-team'"),
        (("snooze", TEAM, "--until", "+5", "--reason", "line one\nline two"), "one line of printable text"),
        (("snooze", TEAM, "--until", "+5", "--reason", "x" * 201), "keep it to 200 or fewer"),
        (("snooze", TEAM, "--until", "+5", "--reason", "   "), "a snooze needs a reason"),
        (("snooze", TEAM, "--until", "-1", "--reason", "offsite"), "is not in the future"),
        (("snooze", TEAM, "--until", "+120", "--reason", "offsite"), "more than 90 days ahead"),
        (("snooze", TEAM, "--until", "next week", "--reason", "offsite"), "is not a date or time"),
        (("unsnooze", "no-such-team"), "unknown team 'no-such-team'"),
    ],
)
def test_a_refused_request_records_nothing(world: Env, argv: tuple[str, ...], said: str) -> None:
    days = {"+5": 5, "-1": -1, "+120": 120}
    args = [until(world, days[a]) if a in days else a for a in argv]
    code, out, err = cli("health", *args, "--registry", REGISTRY)
    assert code == 2 and out == ""
    assert said in err and "Traceback" not in err
    assert snooze_items(world) == []


def test_a_snooze_record_is_written_once_and_read_back(world: Env) -> None:
    from tokenwarden.adapters.snooze_log import DynamoSnoozeLog
    from tokenwarden.domain.snooze import SnoozeRecord

    log = DynamoSnoozeLog(world.client("dynamodb"), world.settings.ledger_table)
    at = world.clock.now()
    record = SnoozeRecord(
        team=TEAM, action="snooze", at=at, by="arn:x", until=at + timedelta(days=1), reason="r"
    )
    assert log.append(record) is True
    assert log.append(record) is True  # a retried write finds its own record
    assert log.append(record.model_copy(update={"reason": "other"})) is False
    assert log.records() == [record]


def test_a_damaged_snooze_record_is_ignored_and_the_others_still_read(world: Env) -> None:
    """One record nobody can read (written by hand, or by a later version) must not stop every
    health check; it silences nothing."""
    from tokenwarden.adapters.snooze_log import DynamoSnoozeLog
    from tokenwarden.domain.snooze import SnoozeRecord

    db = world.client("dynamodb")
    log = DynamoSnoozeLog(db, world.settings.ledger_table)
    at = world.clock.now()
    record = SnoozeRecord(
        team=TEAM, action="snooze", at=at, by="arn:x", until=at + timedelta(days=1), reason="r"
    )
    assert log.append(record) is True
    db.put_item(
        TableName=world.settings.ledger_table,
        Item={"pk": {"S": "HEALTH"}, "sk": {"S": "SNOOZE#zz#later"}, "record": {"S": '{"team": "zz"}'}},
    )
    assert log.records() == [record]


HOLIDAY_REGISTRY = """\
defaults:
  activity: {timezone: Europe/Berlin, silent_after_hours: 4}
principals:
  - id: munich
    kind: team
    activity: {holidays: DE-BY}
  - id: berlin
    kind: team
    activity: {holidays: DE}
"""


def test_a_public_holiday_of_the_teams_own_calendar_does_not_count_toward_silence(
    world: Env, tmp_path: Any
) -> None:
    """Epiphany (Wednesday 2027-01-06) is a public holiday in Bavaria, not in Berlin: both teams
    last reported on Tuesday at 17:00 in Berlin; on Wednesday at 15:00 Berlin has 7 working hours
    without a sample (silent), Munich 1 (healthy), through the registry file, the holidays library,
    the health check and the ledger it records in."""
    registry = tmp_path / "teams.yaml"
    registry.write_text(HOLIDAY_REGISTRY, encoding="utf-8")
    tuesday_evening = datetime.fromisoformat("2027-01-05T16:00:00+00:00").timestamp()
    _FakePromQL.answer = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"team.id": team}, "value": [tuesday_evening, str(tuesday_evening)]}
                for team in ("munich", "berlin")
            ],
        },
    }
    world.clock.advance_to(datetime.fromisoformat("2027-01-06T14:00:00+00:00"))

    code, out, err = cli("health", "--registry", str(registry), "--json")

    assert code == 0, err
    states = {t["team"]: t["state"] for t in json.loads(out)["teams"]}
    assert states == {"munich": "healthy", "berlin": "silent"}
