"""Bad input to the `tokenwarden` CLI, run in-process: exit code 2, one line on stderr saying what
to do, no traceback, and not a single AWS call (the guard below turns any call into a failure)."""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from tokenwarden.cli.main import EXIT_BAD_INPUT, main

REGISTRY = str(ROOT / "teams.yaml")


class AwsCalled(BaseException):
    """Raised from inside botocore: nothing in the product may catch it."""


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    from botocore.client import BaseClient

    calls: list[str] = []

    def refuse(self: Any, operation: str, params: Any) -> Any:
        calls.append(operation)
        raise AwsCalled(f"bad input reached AWS: {operation}")

    monkeypatch.setattr(BaseClient, "_make_api_call", refuse)
    yield calls


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def assert_bad_input(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == EXIT_BAD_INPUT, (code, out, err)
    assert "Traceback (most recent call last)" not in err
    assert out == "", out
    assert err.startswith("tokenwarden"), err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} missing from {err!r}"


def assert_one_line(err: str) -> None:
    assert len(err.strip().splitlines()) == 1, err


# -- arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["plan", "--bogus"], ("unrecognized arguments: --bogus", "tokenwarden plan --help")),
        (["frobnicate"], ("invalid choice", "tokenwarden --help")),
        ([], ("required",)),
        (["revoke", "platform-eng"], ("--reason", "tokenwarden revoke --help")),
        (["revoke", "--reason", "leaked"], ("principal",)),
        (["restore"], ("principal",)),
        (["pickup"], ("principal",)),
        (["pickup", "jdoe", "--refresh-minutes", "soon"], ("--refresh-minutes", "not a whole number")),
        (["pickup", "jdoe", "--refresh-minutes", "0"], ("--refresh-minutes", "between 1 and 1440")),
        (["pickup", "jdoe", "--export-interval-ms", "-5"], ("--export-interval-ms",)),
        (["local", "up", "--port", "70000"], ("--port", "0-65535")),
        (["local", "up", "--otlp-port", "http"], ("--otlp-port", "not a port")),
        (["local"], ("required",)),
        (["demo", "--days", "-1"], ("--days",)),
        (["demo", "--days", "1e9"], ("--days", "not a whole number")),
        (["status", "--json=yes"], ("--json",)),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv: list[str], fragments: tuple[str, ...]) -> None:
    code, out, err = run(*argv)
    assert_bad_input(code, out, err, *fragments)
    assert_one_line(err)


def test_help_still_exits_0() -> None:
    code, out, _ = run("plan", "--help")
    assert code == 0 and "example:" in out


@pytest.mark.parametrize(
    "at",
    [
        "yesterday",
        "",
        " ",
        "2027-13-01",
        "2027-02-30",
        "2027-03-01T25:00",
        "2027-03-01T02:15:00+25:00",
        "0001-01-01",
        "1970-01-01",
        "9999-12-31T23:59:59",
        "1e9",
        "x" * 5000,
    ],
)
@pytest.mark.parametrize("command", ["plan", "status", "health", "apply"])
def test_a_bad_at_exits_2_naming_it(command: str, at: str) -> None:
    code, out, err = run(command, "--registry", REGISTRY, "--at", at)
    assert_bad_input(code, out, err, "--at")
    assert_one_line(err)
    assert len(err) < 300
    assert "e.g. 2027-03-01" in err


def test_an_at_with_an_offset_is_read_as_that_instant() -> None:
    from tokenwarden.cli.parser import parse_at

    at = parse_at("2027-03-01T04:15:00+02:00")
    assert at is not None and at.isoformat() == "2027-03-01T02:15:00+00:00"
    assert parse_at(" 2027-03-01 ") is not None


@pytest.mark.parametrize(
    ("reason", "fragment"),
    [
        ("", "--reason must say why"),
        ("   ", "--reason must say why"),
        ("\t\n", "--reason must say why"),
        ("leaked\nsecond line", "one line of printable text"),
        ("bell\x07", "one line of printable text"),
        ("x" * 501, "keep it to 500 or fewer"),
        ("token in \u202egnp.exe", "one line of printable text"),
    ],
)
def test_a_bad_reason_exits_2_before_anything(reason: str, fragment: str) -> None:
    code, out, err = run("revoke", "platform-eng", "--registry", REGISTRY, "--reason", reason)
    assert_bad_input(code, out, err, fragment)
    assert_one_line(err)


@pytest.mark.parametrize(
    "argv",
    [
        ["revoke", "nobody", "--reason", "leaked"],
        ["revoke", "Platform-Eng", "--reason", "leaked", "--reissue"],
        ["restore", "nobody"],
        ["pickup", "nobody"],
        ["pickup", "../../etc/passwd"],
        ["restore", "x" * 10_000],
    ],
)
def test_an_unknown_principal_exits_2_and_says_where_to_look(argv: list[str]) -> None:
    code, out, err = run(*argv, "--registry", REGISTRY)
    assert_bad_input(code, out, err, "unknown principal", REGISTRY, "tokenwarden status", "platform-eng")
    assert_one_line(err)
    assert len(err) < 600


def test_pickup_into_a_path_below_a_file_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, out, err = run("pickup", "jdoe", "--registry", REGISTRY, "--out", str(blocker / "kit"))
    assert_bad_input(code, out, err, "cannot write the kit")
    assert_one_line(err)


@pytest.mark.parametrize("host", ["0.0.0.0", "", "  ", "::", "192.0.2.10", "localhost.example"])
def test_local_up_refuses_a_non_loopback_host(host: str) -> None:
    """An empty host would bind every interface: refused like any other non-loopback one."""
    code, out, err = run("local", "up", "--host", host)
    assert_bad_input(code, out, err, "loopback", "--host 127.0.0.1")
    assert_one_line(err)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--force"], "--force needs its own --reason"),
        (["--reason", "false alarm"], "--reason is for a forced restore (--force)"),
        (["--force", "--reason", "  "], "--reason must say why"),
        (["--force", "--reason", "false alarm\nsecond line"], "one line of printable text"),
        (["--force", "--reason", "false alarm\x1b[31m"], "one line of printable text"),
        (["--force", "--reason", "z" * 501], "keep it to 500 or fewer"),
    ],
)
def test_a_bad_forced_restore_exits_2_before_anything(argv: list[str], fragment: str) -> None:
    code, out, err = run("restore", "platform-eng", "--registry", REGISTRY, *argv)
    assert_bad_input(code, out, err, fragment)
    assert_one_line(err)


# -- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("TOKENWARDEN_MAX_KEY_AGE_DAYS", "365", "TOKENWARDEN_MAX_KEY_AGE_DAYS"),
        ("TOKENWARDEN_MAX_KEY_AGE_DAYS", "ninety", "TOKENWARDEN_MAX_KEY_AGE_DAYS"),
        ("TOKENWARDEN_PROBE_ATTEMPTS", "0", "TOKENWARDEN_PROBE_ATTEMPTS"),
        ("TOKENWARDEN_PROMQL_DIALECT", "graphite", "TOKENWARDEN_PROMQL_DIALECT"),
        ("TOKENWARDEN_USER_PATH", "tokenwarden", "TOKENWARDEN_USER_PATH"),
    ],
)
def test_invalid_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)
    code, out, err = run("plan", "--registry", REGISTRY)
    assert_bad_input(code, out, err, "invalid settings", fragment)
    assert_one_line(err)


def test_health_without_a_usable_promql_endpoint_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENWARDEN_PROMQL_DIALECT", "prometheus")
    monkeypatch.delenv("TOKENWARDEN_PROMQL_URL", raising=False)
    code, out, err = run("health", "--registry", REGISTRY, "--dry-run")
    assert_bad_input(code, out, err, "TOKENWARDEN_PROMQL_URL")


# -- registries ---------------------------------------------------------------------------------

BAD_REGISTRIES = {
    "empty": "",
    "not a mapping": "- id: alpha\n",
    "unknown key": "principals:\n  - id: alpha\n    colour: red\n",
    "duplicate id": "principals: [{id: alpha}, {id: alpha}]\n",
    "bad slug": "principals: [{id: Alpha}]\n",
    "bad zone": "principals: [{id: alpha, activity: {timezone: Mars/Olympus}}]\n",
    "inconsistent lifecycle": "principals: [{id: alpha, lifecycle: {grace_days: 30}}]\n",
    "unknown team": "principals: [{id: dev, kind: developer, team: ghost}]\n",
    "deep": "principals: " + "[" * 1000 + "]" * 1000 + "\n",
    "list key": "? [a]\n: 1\nprincipals: [{id: a}]\n",
}
COMMANDS: list[list[str]] = [
    ["plan"],
    ["apply"],
    ["status", "--json"],
    ["audit"],
    ["health", "--dry-run"],
    ["revoke", "alpha", "--reason", "leaked", "--reissue"],
    ["restore", "alpha"],
    ["pickup", "alpha"],
]


@pytest.mark.parametrize("text", list(BAD_REGISTRIES.values()), ids=list(BAD_REGISTRIES))
@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_refuses_a_bad_registry_naming_it(
    tmp_path: Path, command: list[str], text: str
) -> None:
    path = tmp_path / "teams.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = run(*command, "--registry", str(path))
    assert_bad_input(code, out, err, str(path))


def test_a_missing_registry_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    code, out, err = run("plan", "--registry", str(missing))
    assert_bad_input(code, out, err, str(missing), "cannot read")
    assert_one_line(err)


def test_a_registry_from_the_environment_is_named_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "from-env.yaml"
    path.write_text("principals: [{id: alpha, lifecycle: {key_age_days: 365}}]\n", encoding="utf-8")
    monkeypatch.setenv("TOKENWARDEN_REGISTRY_PATH", str(path))
    code, out, err = run("plan")
    assert_bad_input(code, out, err, str(path), "principals[0] (id 'alpha'), field lifecycle.key_age_days")


entries = st.lists(
    st.dictionaries(
        st.sampled_from(["id", "kind", "team", "owners", "activity", "lifecycle", "colour"]),
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=8),
            st.lists(st.text(max_size=4), max_size=2),
            st.dictionaries(st.text(max_size=6), st.integers(-5, 200), max_size=2),
        ),
        max_size=4,
    ),
    max_size=3,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries)
def test_plan_on_a_fuzzed_registry_is_exit_2_or_touches_aws(principals: list[dict[str, Any]]) -> None:
    """Whatever the file says, `plan` either refuses it (exit 2, naming the file and the entry or
    field) or accepts it and goes on to read AWS, which the guard stops."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "teams.yaml"
        path.write_text(yaml.safe_dump({"principals": principals}), encoding="utf-8")
        try:
            code, out, err = run("plan", "--registry", str(path))
        except AwsCalled:
            return  # a valid registry: planning reads the inventory
    assert_bad_input(code, out, err, str(path))
    assert "principals" in err
