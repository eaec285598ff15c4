"""`tokenwarden report`'s arguments: `--since` as a span or a date, and bad input refused with exit
code 2 before any AWS call (the guard of test_bad_input_cli turns any call into a failure)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.test_bad_input_cli import REGISTRY, assert_bad_input, assert_one_line, no_aws, run
from tokenwarden.cli.parser import build_parser, since

__all__ = ["no_aws"]  # the autouse guard, in force here too


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("90d", timedelta(days=90)),
        (" 36h ", timedelta(hours=36)),
        ("2027-01-01", datetime(2027, 1, 1, tzinfo=UTC)),
        ("2027-01-01T06:00:00+02:00", datetime(2027, 1, 1, 4, tzinfo=UTC)),
    ],
)
def test_since_is_a_span_back_from_now_or_a_utc_date(raw: str, value: timedelta | datetime) -> None:
    assert since(raw) == value


def test_the_report_defaults_to_the_last_90_days_in_markdown() -> None:
    args = build_parser().parse_args(["report"])
    assert (args.since, args.format, args.output) == (timedelta(days=90), "md", None)


@pytest.mark.parametrize(
    "raw", ["90", "90x", "0d", "-5d", "d", "9999999d", "5000d", "yesterday", "2027-13-01", ""]
)
def test_a_bad_since_exits_2_naming_it(raw: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        since(raw)
    code, out, err = run("report", "--registry", REGISTRY, "--since", raw)
    assert_bad_input(code, out, err, "--since")
    assert_one_line(err)


def test_a_since_in_the_future_exits_2_before_any_aws_call() -> None:
    code, out, err = run("report", "--registry", REGISTRY, "--since", "2999-01-01")
    assert_bad_input(code, out, err, "--since", "is not before now")


def test_an_unknown_format_exits_2() -> None:
    code, out, err = run("report", "--format", "pdf")
    assert_bad_input(code, out, err, "--format")
