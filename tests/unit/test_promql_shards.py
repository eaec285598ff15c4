"""Team shards of the health queries: CloudWatch answers at most 500 series per query, so beyond 500
teams each metric is asked once per shard of at most 500 teams.

A shard is a range of team ids in code-point order selected by a regular expression on the team label.
The ranges are adjacent, so every label value (registered, unknown to the registry, or absent) belongs
to exactly one shard; the expressions are checked here against Python's own string order.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenwarden.domain.promql import (
    MAX_SERIES,
    Dialect,
    InvalidQueryError,
    PromQLResponseError,
    QueryResult,
    TeamRange,
    TeamSample,
    TruncatedResultError,
    check_within,
    last_sample_query,
    merge_results,
    split_shard,
    team_matcher,
    team_range_regex,
    team_shards,
)
from tokenwarden.domain.registry import SLUG

SESSIONS = "claude_code.session.count"
AT = datetime(2030, 5, 6, 16, 0, tzinfo=UTC)
PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=12).filter(
    lambda text: not text.startswith(" ")
)
ANY_VALUE = st.text(st.characters(min_codepoint=0x20), max_size=14) | st.text(
    alphabet="ab-0/9z ~", max_size=8
)
"""Label values without control characters (see test_a_control_character_decides_no_shard)."""


def teams(n: int) -> list[str]:
    return [f"team-{i:05d}" for i in range(n)]


def result(*team_ids: str | None, truncated: bool = False) -> QueryResult:
    return QueryResult(
        samples=tuple(
            TeamSample(
                team=team, value=AT.timestamp(), timestamp=AT, labels={} if team is None else {"t": team}
            )
            for team in team_ids
        ),
        warnings=("cut at 500 series",) if truncated else (),
        truncated=truncated,
    )


def unescaped(matcher: str) -> str:
    """The regular expression inside a ``"label"=~"..."`` matcher, as the PromQL string literal reads."""
    found = re.fullmatch(r'"[^"]+"=~"((?:[^"\\]|\\.)*)"', matcher)
    assert found is not None, matcher
    return re.sub(r"\\(.)", r"\1", found.group(1))


# -- how many shards, and which teams each holds ------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "shards"), [(0, 1), (1, 1), (499, 1), (500, 1), (501, 2), (1000, 2), (1200, 3)]
)
def test_there_is_one_shard_per_500_teams(count: int, shards: int) -> None:
    built = team_shards(teams(count))

    assert len(built) == shards == max(1, math.ceil(count / MAX_SERIES))
    held = [[team for team in teams(count) if team in shard] for shard in built]
    assert [len(h) for h in held] == [min(MAX_SERIES, count - i * MAX_SERIES) for i in range(shards)]


def test_up_to_500_teams_the_one_shard_needs_no_matcher() -> None:
    (shard,) = team_shards(teams(500))

    assert shard.everything and team_matcher(Dialect.CLOUDWATCH, shard) == ""
    assert last_sample_query(Dialect.CLOUDWATCH, SESSIONS, timedelta(hours=1), teams=shard) == (
        last_sample_query(Dialect.CLOUDWATCH, SESSIONS, timedelta(hours=1))
    )


def test_shards_are_adjacent_and_leave_out_series_without_a_team() -> None:
    first, second, third = team_shards(teams(1200))

    assert (first.start, first.end) == ("", "team-00500")
    assert (second.start, second.end) == ("team-00500", "team-01000")
    assert (third.start, third.end) == ("team-01000", None)
    assert "zeta" in third and "stranger" in first  # drift lands in the range it sorts into
    assert all(None not in shard and "" not in shard for shard in (first, second, third))
    assert not re.fullmatch(team_range_regex(first), "")
    (everything,) = team_shards(teams(500))
    assert None in everything  # the single shard has no matcher, so such series come with it


def test_teams_are_shared_out_in_sorted_order_whatever_order_the_registry_lists_them() -> None:
    listed = [*reversed(teams(501)), "team-00007"]  # and a duplicate

    assert team_shards(listed) == team_shards(teams(501))


def test_a_shard_holds_at_least_one_team() -> None:
    with pytest.raises(InvalidQueryError, match="at least one team"):
        team_shards(teams(3), size=0)


# -- the query text ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "selector"),
    [
        (Dialect.CLOUDWATCH, '{"claude_code.session.count", "@resource.team.id"=~'),
        (Dialect.PROMETHEUS, '{__name__="claude_code.session.count", "team.id"=~'),
    ],
)
def test_a_sharded_query_selects_its_range_by_the_dialect_s_team_label(
    dialect: Dialect, selector: str
) -> None:
    shard = TeamRange(start="team-00500", end="team-01000")

    query = last_sample_query(dialect, SESSIONS, timedelta(hours=1), teams=shard)

    found = re.fullmatch(r"max by \(\"[^\"]+\"\) \(max_over_time\(timestamp\((\{.*\})\)\[1h:1m\]\)\)", query)
    assert found is not None, query
    braces = found.group(1)
    assert braces.startswith(selector) and braces.endswith('"}')
    assert unescaped(braces[braces.index(", ") + 2 : -1]) == team_range_regex(shard)
    assert team_range_regex(shard).startswith("team-0(?:")  # the bounds' common prefix, as it is


def test_the_expression_of_a_range_is_short_whatever_its_bounds() -> None:
    longest = [
        TeamRange(start="0" * 48, end="z" * 48),
        TeamRange(start="a" * 47 + "b", end="y" * 47 + "z"),
        TeamRange(start="", end="z" * 48),
        TeamRange(start="z" * 48),
    ]
    for shard in longest:
        assert len(team_matcher(Dialect.CLOUDWATCH, shard)) < 3_000


@given(start=PRINTABLE, end=PRINTABLE)
def test_quotes_and_backslashes_in_a_bound_stay_inside_the_promql_string(start: str, end: str) -> None:
    low, high = sorted((start, end))
    if low == high:
        return
    shard = TeamRange(start=low, end=high)

    expression = unescaped(team_matcher(Dialect.PROMETHEUS, shard))

    assert expression == team_range_regex(shard)
    assert re.fullmatch(expression, low) and not re.fullmatch(expression, high)


@given(start=PRINTABLE | st.just(""), end=PRINTABLE | st.none(), values=st.lists(ANY_VALUE, max_size=25))
def test_the_expression_matches_exactly_the_values_in_the_range(
    start: str, end: str | None, values: list[str]
) -> None:
    if (end is not None and end <= start) or (start == "" and end is None):
        return
    shard = TeamRange(start=start, end=end)
    pattern = re.compile(team_range_regex(shard))

    near = [start, start + "\U0010ffff", start[:-1], end or "", (end or "") + "-", (end or "")[:-1]]
    for value in values + near:
        assert bool(pattern.fullmatch(value)) == (value in shard), (shard, value)


def test_control_characters_after_the_deciding_one_are_any_other_character() -> None:
    shard = TeamRange(start="team-00500", end="team-01000")
    pattern = re.compile(team_range_regex(shard))

    assert pattern.fullmatch("team-00600\n\x00tail") and pattern.fullmatch("team-00500\x01")
    assert not pattern.fullmatch("team-01000\n")


def test_a_control_character_decides_no_shard() -> None:
    # Ordered between the bounds by its control character, a value no team id can be is left out.
    shard = TeamRange(start="", end="team-00500")
    assert "team-\x01" in shard and not re.fullmatch(team_range_regex(shard), "team-\x01")


def test_registry_slugs_can_bound_a_shard() -> None:
    assert SLUG.fullmatch("a" + "-" * 46 + "0")
    assert team_range_regex(TeamRange(start="a" + "-" * 46 + "0"))


@pytest.mark.parametrize("bound", ["équipe", "a" * 65, "tab\there", " leading-space"])
def test_a_bound_no_expression_can_carry_safely_is_refused(bound: str) -> None:
    with pytest.raises(InvalidQueryError, match="cannot bound a team shard"):
        team_range_regex(TeamRange(start=bound))


def test_an_empty_range_is_refused() -> None:
    with pytest.raises(InvalidQueryError, match="empty team range"):
        team_range_regex(TeamRange(start="b", end="a"))


# -- a truncated shard is split --------------------------------------------------------------------------


def test_a_shard_splits_at_the_median_of_the_teams_known_inside_it() -> None:
    shard = TeamRange(start="b", end="m")

    halves = split_shard(shard, ["a", "b", "c", "d", "e", "z", None])

    assert halves == (TeamRange(start="b", end="d"), TeamRange(start="d", end="m"))


def test_a_shard_with_no_team_inside_but_its_start_cannot_be_split() -> None:
    shard = TeamRange(start="b", end="m")

    assert split_shard(shard, ["b", "a", "z", None]) is None
    assert split_shard(shard, ["c" * 65, "c\u00e9"]) is None  # no usable bound
    assert split_shard(TeamRange(start="", end="b"), [" ", " a"]) is None


def test_the_halves_of_a_split_cover_the_shard() -> None:
    shard = TeamRange(start="team-00500", end=None)
    low, high = split_shard(shard, teams(1200)) or pytest.fail("no split")

    assert (low.start, low.end, high.end) == ("team-00500", high.start, None)
    assert all((team in low) != (team in high) for team in teams(1200)[500:])


# -- answers of the shards -------------------------------------------------------------------------------


def test_an_answer_with_a_series_outside_its_shard_is_refused() -> None:
    shard = TeamRange(start="team-00500", end="team-01000")

    assert check_within(result("team-00500", "team-00999"), shard).samples
    with pytest.raises(PromQLResponseError, match="did not apply the team matcher"):
        check_within(result("team-00500", "team-01000"), shard)
    with pytest.raises(PromQLResponseError, match="no team label"):
        check_within(result(None), shard)


def test_merged_answers_hold_every_team_once() -> None:
    merged = merge_results([result("a", None), result("b"), result()])

    assert merged.times_by_team() == {"a": AT, "b": AT}
    assert merged.unattributed == AT.timestamp() and not merged.truncated


def test_a_merge_with_a_truncated_answer_is_not_complete() -> None:
    merged = merge_results([result("a"), result("b", truncated=True)])

    assert merged.truncated and merged.warnings == ("cut at 500 series",)
    with pytest.raises(TruncatedResultError):
        merged.times_by_team()


def test_a_team_in_two_answers_is_refused() -> None:
    with pytest.raises(PromQLResponseError, match="two series for team 'a'"):
        merge_results([result("a"), result("a")])
