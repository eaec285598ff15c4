"""PromQL for the health check: the queries it sends and how it reads the answers. Pure.

Two dialects speak the same Prometheus HTTP API but name things differently:

* ``cloudwatch`` — CloudWatch's PromQL over OTLP metrics. Dotted metric names are quoted inside the
  braces (``{"claude_code.session.count"}``) and resource attributes carry an ``@resource.`` prefix, so
  the team label is ``"@resource.team.id"``.
* ``prometheus`` — VictoriaMetrics (the embedded stack) and Amazon Managed Prometheus. The metric is
  selected as ``{__name__="claude_code.session.count"}`` — valid in every PromQL version, and verified
  against VictoriaMetrics 1.145 (which also accepts the quoted form) — and resource attributes are
  plain labels, so the team label is ``"team.id"``.

Every query is grouped by the team label, so one query per metric covers every team (the health check
costs O(metrics) queries, not O(teams)) — up to :data:`MAX_SERIES` teams, the most series CloudWatch
answers for one query. Beyond that the query is sharded: :func:`team_shards` cuts the sorted team ids
into :class:`TeamRange` slices of at most :data:`MAX_SERIES` registered teams, and each shard's query
selects its slice with a regular expression on the team label (:func:`team_matcher`). The slices
are ranges of the code-point order, so together they cover *every* team id: a team missing from the
registry (drift) still lands in exactly one shard. Telemetry without a team label, which the health
check never judges, is left out of sharded queries. A range's
expression grows with the length of its two bounds, not with the number of teams inside it (under
3,000 characters for 48-character slugs), so no query nears a server's query-length limit.
:func:`merge_results` joins the shards' answers. Claude Code's counters are *delta* counters sent only on
activity, so the queries count samples (``count_over_time``) and never use ``rate``/``increase``.

Two queries exist:

* :func:`activity_query` — samples per team in the window:
  ``sum by ("team.id") (count_over_time({__name__="m"}[1h]))``.
* :func:`last_sample_query` — the time of each team's newest sample in the window:
  ``max by ("team.id") (max_over_time(timestamp({__name__="m"})[1h:1m]))``. This is a standard
  Prometheus 3 subquery (no ``tlast_over_time``, which only VictoriaMetrics has). A subquery
  evaluates its inner expression at instants aligned to multiples of its step, so a sample newer than
  the last aligned instant before the evaluation time is not seen. Evaluate both queries at
  :func:`evaluation_time` (``now`` rounded down to the step) so they see the same samples. Always pass
  the time explicitly: VictoriaMetrics rounds a missing ``time`` down to the whole second, which hides
  samples of the current second.

CloudWatch answers a query over at most seven days of samples, and it counts everything the query
reads: range selectors, subquery ranges *and* the lookback. The first instant of the last-sample
subquery sits at the start of the window and looks back :data:`LOOKBACK` from there, so that query
reads its window plus the lookback; its window is at most :data:`MAX_LAST_SAMPLE_WINDOW` (7 days
less 5 minutes). :func:`check_last_sample_window` says whether a window fits before anything is sent.

Answers are read by :func:`parse_vector`. An answer with a ``warnings`` entry (CloudWatch's signal
that it cut the answer at 500 series) is marked ``truncated`` and refuses to act as complete: the
per-team accessors raise :class:`TruncatedResultError` unless the caller explicitly accepts a partial
answer. Numbers are read as a Prometheus server writes them (ASCII decimal, ``NaN``, ``+Inf``), times
as Unix seconds between :data:`EARLIEST_TIME` and :data:`LATEST_TIME`; anything else in an answer is a
:class:`PromQLResponseError` whose message quotes at most a short prefix of what the server sent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from tokenwarden.domain.promql_limits import LOOKBACK, MAX_LAST_SAMPLE_WINDOW, MAX_RANGE

__all__ = [
    "DEFAULT_LAST_SAMPLE_STEP",
    "EARLIEST_TIME",
    "LATEST_TIME",
    "LOOKBACK",
    "MAX_LAST_SAMPLE_STEP",
    "MAX_LAST_SAMPLE_WINDOW",
    "MAX_RANGE",
    "MAX_SERIES",
    "MAX_WINDOW",
    "Dialect",
    "InvalidQueryError",
    "PromQLError",
    "PromQLQuerier",
    "PromQLQueryError",
    "PromQLResponseError",
    "QueryResult",
    "TeamRange",
    "TeamSample",
    "TruncatedResultError",
    "activity_query",
    "check_last_sample_window",
    "check_within",
    "evaluation_time",
    "format_duration",
    "last_sample_query",
    "merge_results",
    "metric_selector",
    "parse_vector",
    "split_shard",
    "team_label",
    "team_matcher",
    "team_range_regex",
    "team_shards",
]

MAX_SERIES = 500
"""The most series CloudWatch's PromQL answers for one query; it cuts the rest and says so in a warning.
The health check asks for at most this many registered teams per query (:func:`team_shards`)."""

MAX_WINDOW = MAX_RANGE
"""The longest range selector (:func:`activity_query`): a range selector has no lookback."""

DEFAULT_LAST_SAMPLE_STEP = timedelta(minutes=1)
MAX_LAST_SAMPLE_STEP = LOOKBACK
"""A subquery step above the lookback could step over a team's last sample."""

EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(3000, 1, 1, tzinfo=UTC)
"""An answer's times (evaluation instants, last-sample times) must fall in ``[EARLIEST_TIME,
LATEST_TIME)``: anything outside is no sample of telemetry, and would overflow date arithmetic."""
_TIME_RANGE = f"not a Unix time between {EARLIEST_TIME:%Y} and {LATEST_TIME:%Y}"

# A number as Go's strconv.FormatFloat writes it (what Prometheus-compatible servers send): ASCII
# digits with an optional sign, point and exponent. Not Python's float() syntax, which also reads
# '1_000', padded text and non-ASCII digits. NaN and the infinities are looked up by name.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAMED_NUMBERS: Mapping[str, float] = {
    "nan": math.nan,
    **{
        sign + name: (-math.inf if sign == "-" else math.inf)
        for sign in ("", "+", "-")
        for name in ("inf", "infinity")
    },
}
_MAX_NUMBER_TEXT = 400
"""Longer than any float64 FormatFloat writes (the smallest subnormal, in full, is ~330 characters)."""
_SHOWN = 40
"""How much of a value from an answer a message quotes."""

# OpenTelemetry instrument names: a letter, then letters, digits, '_', '.', '-', '/' (at most 255).
_METRIC_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-/]{0,254}")


class Dialect(StrEnum):
    CLOUDWATCH = "cloudwatch"
    PROMETHEUS = "prometheus"


_TEAM_LABELS: Mapping[Dialect, str] = {
    Dialect.CLOUDWATCH: "@resource.team.id",
    Dialect.PROMETHEUS: "team.id",
}


# --- Errors -------------------------------------------------------------------------------------------


class PromQLError(Exception):
    """Any failure to get a usable answer to a PromQL query. The message says what to do."""


class InvalidQueryError(PromQLError, ValueError):
    """A query that must not be sent (window too long, bad metric name, naive time)."""


class PromQLQueryError(PromQLError):
    """The server answered ``status: error`` (bad query, limit exceeded, timeout on its side)."""

    def __init__(self, error_type: str, error: str, http_status: int | None = None) -> None:
        self.error_type = error_type
        self.error = error
        self.http_status = http_status
        where = f" (HTTP {http_status})" if http_status is not None else ""
        super().__init__(
            f"the PromQL server refused the query{where}: {_clip(error_type, 80)}: {_clip(error, 500)}"
        )


class PromQLResponseError(PromQLError):
    """An answer that is not the Prometheus API envelope this code expects."""


class TruncatedResultError(PromQLError):
    """A truncated answer was about to be used as complete."""

    def __init__(self, warnings: Sequence[str]) -> None:
        self.warnings = tuple(warnings)
        detail = "; ".join(_clip(warning, 300) for warning in self.warnings[:5]) or "no detail"
        if len(self.warnings) > 5:
            detail += f"; and {len(self.warnings) - 5} more"
        super().__init__(
            "the PromQL answer is truncated, so teams missing from it cannot be judged "
            f"({detail}); narrow the query (fewer series per answer) or accept a partial answer explicitly"
        )


# --- Query building -----------------------------------------------------------------------------------


def team_label(dialect: Dialect) -> str:
    """The label that carries the ``team.id`` resource attribute in this dialect."""
    return _TEAM_LABELS[Dialect(dialect)]


def _metric_name(metric: str) -> str:
    if not _METRIC_NAME.fullmatch(metric):
        raise InvalidQueryError(
            f"{_shown(metric, 80)} is not a valid metric name (letters, digits, '_', '.', '-', '/'; "
            "starting with a letter; at most 255 characters)"
        )
    return metric


def metric_selector(dialect: Dialect, metric: str, teams: TeamRange | None = None) -> str:
    """A series selector for one metric, dotted names included; with ``teams``, only that shard's teams."""
    name = _metric_name(metric)
    matcher = team_matcher(dialect, teams) if teams is not None else ""
    rest = f", {matcher}" if matcher else ""
    if Dialect(dialect) is Dialect.CLOUDWATCH:
        return '{"' + name + '"' + rest + "}"
    return '{__name__="' + name + '"' + rest + "}"


def format_duration(value: timedelta) -> str:
    """A PromQL duration in the largest whole unit (``7d``, ``90m``, ``45s``)."""
    seconds = value.total_seconds()
    if seconds <= 0 or not seconds.is_integer():
        raise InvalidQueryError(f"a PromQL duration must be a positive whole number of seconds, not {value}")
    whole = int(seconds)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def _hours(value: timedelta) -> str:
    """Hours with at most two decimals, rounded down (a bound quoted this way is never exceeded)."""
    return f"{math.floor(value / timedelta(hours=1) * 100) / 100:g} hours"


def _window(window: timedelta) -> str:
    if window > MAX_WINDOW:
        raise InvalidQueryError(
            f"the query window {window} is longer than the 7 days CloudWatch's PromQL allows; "
            "use a shorter window"
        )
    return format_duration(window)


def check_last_sample_window(window: timedelta, step: timedelta = DEFAULT_LAST_SAMPLE_STEP) -> None:
    """Raise :class:`InvalidQueryError` unless :func:`last_sample_query` can use ``window`` and ``step``.

    The window and the step must be whole seconds, the step at most the lookback and the window, and
    the window plus the lookback at most the 7 days CloudWatch reads for one query.
    """
    format_duration(window)
    format_duration(step)
    if step > MAX_LAST_SAMPLE_STEP:
        raise InvalidQueryError(
            f"the subquery step {step} exceeds {MAX_LAST_SAMPLE_STEP}: samples could be missed"
        )
    if step > window:
        raise InvalidQueryError(f"the subquery step {step} is longer than the window {window}")
    if window + LOOKBACK > MAX_RANGE:
        raise InvalidQueryError(
            f"a window of {_hours(window)} plus the {LOOKBACK / timedelta(minutes=1):g}-minute lookback of the "
            "last-sample query is more than the 7 days CloudWatch's PromQL reads for one query; "
            f"use a window of at most {_hours(MAX_LAST_SAMPLE_WINDOW)}"
        )


def _group_by(dialect: Dialect) -> str:
    return f'by ("{team_label(dialect)}")'


def activity_query(dialect: Dialect, metric: str, window: timedelta, teams: TeamRange | None = None) -> str:
    """Samples of ``metric`` per team over the ``window`` before the evaluation time (of the ``teams``
    shard only, when given).

    Counting samples works on delta counters whatever their values; a team without samples in the
    window is absent from the answer.
    """
    selector = metric_selector(dialect, metric, teams)
    return f"sum {_group_by(dialect)} (count_over_time({selector}[{_window(window)}]))"


def last_sample_query(
    dialect: Dialect,
    metric: str,
    window: timedelta,
    step: timedelta = DEFAULT_LAST_SAMPLE_STEP,
    teams: TeamRange | None = None,
) -> str:
    """Unix time (seconds) of each team's newest sample of ``metric`` within the ``window`` (of the
    ``teams`` shard only, when given).

    A standard subquery: ``timestamp()`` evaluated every ``step`` across the window, then the newest.
    ``step`` must not exceed 5 minutes (the default lookback), or a sample could fall between two
    evaluation instants and be missed. The query reads the window plus the lookback, which must fit
    in 7 days (:func:`check_last_sample_window`). See :func:`evaluation_time` for the alignment caveat.
    """
    check_last_sample_window(window, step)
    selector = metric_selector(dialect, metric, teams)
    return (
        f"max {_group_by(dialect)} "
        f"(max_over_time(timestamp({selector})[{format_duration(window)}:{format_duration(step)}]))"
    )


def evaluation_time(now: datetime, step: timedelta = DEFAULT_LAST_SAMPLE_STEP) -> datetime:
    """``now`` rounded down to a multiple of ``step``: the instant to evaluate a health run's queries at.

    Subquery instants are aligned to multiples of the step, so at an aligned evaluation time both the
    activity and the last-sample query see exactly the samples up to that instant. Samples of the
    last partial step are left to the next run.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidQueryError(f"the evaluation time must be timezone-aware, not {now.isoformat()}")
    size = step.total_seconds()
    if size <= 0 or not size.is_integer():
        raise InvalidQueryError(f"the step must be a positive whole number of seconds, not {step}")
    epoch = now.timestamp()
    return datetime.fromtimestamp(math.floor(epoch / size) * size, tz=UTC)


# --- Answers ------------------------------------------------------------------------------------------


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True)


class TeamSample(_Value):
    """One series of a grouped answer. ``team`` is None for series without a team label."""

    team: str | None
    value: float
    timestamp: datetime
    """The evaluation instant the server stamped on the sample."""
    labels: dict[str, str]


class QueryResult(_Value):
    """An instant-vector answer grouped by team."""

    samples: tuple[TeamSample, ...]
    warnings: tuple[str, ...] = ()
    truncated: bool = False

    def _require_complete(self, allow_partial: bool) -> None:
        if self.truncated and not allow_partial:
            raise TruncatedResultError(self.warnings)

    def values_by_team(self, *, allow_partial: bool = False) -> dict[str, float]:
        """Value per team. Raises :class:`TruncatedResultError` on a truncated answer unless allowed."""
        self._require_complete(allow_partial)
        return {sample.team: sample.value for sample in self.samples if sample.team is not None}

    def times_by_team(self, *, allow_partial: bool = False) -> dict[str, datetime]:
        """Values read as Unix times (the answer of :func:`last_sample_query`), per team."""
        self._require_complete(allow_partial)
        times: dict[str, datetime] = {}
        for sample in self.samples:
            if sample.team is None:
                continue
            at = _unix_time(sample.value)
            if at is None:
                raise PromQLResponseError(
                    f"team {_shown(sample.team)} has no usable timestamp ({sample.value:g}: {_TIME_RANGE})"
                )
            times[sample.team] = at
        return times

    @property
    def unattributed(self) -> float | None:
        """The value of the series that had no team label (telemetry sent without ``team.id``)."""
        values = [sample.value for sample in self.samples if sample.team is None]
        return sum(values) if values else None


# --- Team shards --------------------------------------------------------------------------------------

_ANY = "(?s:.*)"
"""Any rest of a label value, newlines included."""
_BOUND = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,63}")
"""What may bound a shard: printable ASCII not starting with a space (every registry slug), short enough
to keep a query short. A range's first character is then always above :data:`_LOWEST`."""
_LITERAL = re.compile(r"[A-Za-z0-9_-]")
"""Characters a regular expression reads as themselves outside a character class."""
_LOWEST = " "
"""The smallest character a range's expression selects by order. A value whose order against a bound
is decided by a control character (below the space) is in no shard's expression: no team id can be
one, and VictoriaMetrics cannot run a class that starts at such a character (it rewrites the
expression and prints ``[\\x00-s]`` as ``[\\x000-s]``, which it then refuses)."""


class TeamRange(_Value):
    """The team ids ``start <= team < end`` in code-point order (``end`` None: no upper bound).

    Shards from :func:`team_shards` and :func:`split_shard` are adjacent ranges, so every team id
    belongs to exactly one of them. Series without a team label (telemetry the health check never
    judges) belong only to the range of everything, the single shard that needs no matcher; a
    sharded query leaves them out, so they never push a full shard over :data:`MAX_SERIES`.
    """

    start: str = ""
    end: str | None = None

    def __contains__(self, team: object) -> bool:
        if team is None:
            return self.everything
        if not isinstance(team, str) or not team:
            return False
        return self.start <= team and (self.end is None or team < self.end)

    @property
    def everything(self) -> bool:
        return self.start == "" and self.end is None

    def __str__(self) -> str:
        upper = "the end" if self.end is None else repr(self.end)
        return f"teams from {self.start!r} up to {upper}"


def team_shards(teams: Iterable[str], size: int = MAX_SERIES) -> tuple[TeamRange, ...]:
    """Adjacent ranges covering every team id, each with at most ``size`` of ``teams``.

    ⌈teams/size⌉ shards (one when there are none): the health check sends one query per shard and
    metric. A registry of up to ``size`` teams gets the single shard that needs no team matcher.
    """
    if size < 1:
        raise InvalidQueryError(f"a shard holds at least one team, not {size}")
    ordered = sorted(set(teams))
    starts = ["", *ordered[size::size]]
    ends: list[str | None] = [*starts[1:], None]
    return tuple(TeamRange(start=start, end=end) for start, end in zip(starts, ends, strict=True))


def split_shard(shard: TeamRange, teams: Iterable[str | None]) -> tuple[TeamRange, TeamRange] | None:
    """``shard`` cut in two at the median of the known ``teams`` inside it, or None when none can cut it.

    For a shard whose answer came back truncated anyway (teams missing from the registry, or
    telemetry without a team label, on top of its registered teams): the registered teams and those of
    the truncated answer are the known ones. Both halves hold at least one of them, so each has fewer
    series than the shard and splitting again ends.
    """
    inside = sorted(
        {
            team
            for team in teams
            if team is not None and team in shard and team != shard.start and _BOUND.fullmatch(team)
        }
    )
    if not inside:
        return None
    middle = inside[len(inside) // 2]
    return TeamRange(start=shard.start, end=middle), TeamRange(start=middle, end=shard.end)


def team_matcher(dialect: Dialect, shard: TeamRange) -> str:
    """The label matcher selecting ``shard``'s teams (``"team.id"=~"…"``); "" for the whole range."""
    if shard.everything:
        return ""
    return f'"{team_label(dialect)}"=~"{_promql_string(team_range_regex(shard))}"'


def team_range_regex(shard: TeamRange) -> str:
    """A regular expression (RE2 and Python alike; PromQL anchors it) matching exactly the values in ``shard``.

    Built from the bounds alone: one alternative per character of each bound, so its length does not
    depend on how many teams the range holds.
    """
    start = _bound(shard.start) if shard.start else ""
    if shard.end is None:
        return _at_least(start)
    end = _bound(shard.end)
    if end <= start:
        raise InvalidQueryError(f"an empty team range: {shard}")
    if not start:
        return _alternatives(_below(end)[1:])  # not the empty value: series without a team label
    return _between(start, end)


def _bound(value: str) -> str:
    if not _BOUND.fullmatch(value):
        raise InvalidQueryError(
            f"{_shown(value)} cannot bound a team shard (printable ASCII, 1-64 characters, "
            "not starting with a space)"
        )
    return value


def _between(start: str, end: str) -> str:
    """Values ``start <= v < end`` (``start < end``, both non-empty): their common prefix, then ranges."""
    common = len(_common_prefix(start, end))
    prefix, low, high = _literals(start[:common]), start[common:], end[common:]
    if not low:  # start is a prefix of end
        return prefix + _alternatives(_below(high))
    choices = [_literal(low[0]) + _at_least(low[1:])]
    if ord(high[0]) - ord(low[0]) > 1:
        first, last = chr(ord(low[0]) + 1), chr(ord(high[0]) - 1)
        choices.append(f"[{_class_char(first)}-{_class_char(last)}]{_ANY}")
    if high[1:]:
        choices.append(_literal(high[0]) + _alternatives(_below(high[1:])))
    return prefix + _alternatives(choices)


def _at_least(bound: str) -> str:
    """Values ``>= bound``: a greater first character, or the same one and the rest at least the rest."""
    if not bound:
        return _ANY
    greater = f"[^\\x00-{_class_char(bound[0])}]{_ANY}"
    return _alternatives([greater, _literal(bound[0]) + _at_least(bound[1:])])


def _below(bound: str) -> list[str]:
    """The alternatives of values ``< bound`` (a non-empty printable bound): empty, a smaller first
    character, or the same one and the rest below the rest."""
    choices = [""]
    if bound[0] > _LOWEST:
        choices.append(f"[{_class_char(_LOWEST)}-{_class_char(chr(ord(bound[0]) - 1))}]{_ANY}")
    if bound[1:]:
        choices.append(_literal(bound[0]) + _alternatives(_below(bound[1:])))
    return choices


def _alternatives(choices: Sequence[str]) -> str:
    return choices[0] if len(choices) == 1 else "(?:" + "|".join(choices) + ")"


def _common_prefix(first: str, second: str) -> str:
    size = 0
    while size < min(len(first), len(second)) and first[size] == second[size]:
        size += 1
    return first[:size]


def _literal(char: str) -> str:
    return char if _LITERAL.fullmatch(char) else f"\\x{ord(char):02x}"


def _literals(text: str) -> str:
    return "".join(_literal(char) for char in text)


def _class_char(char: str) -> str:
    return char if char.isascii() and char.isalnum() else f"\\x{ord(char):02x}"


def _promql_string(text: str) -> str:
    """``text`` inside a double-quoted PromQL string literal."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def check_within(result: QueryResult, shard: TeamRange) -> QueryResult:
    """``result`` unchanged if every series belongs to ``shard``; a series outside it means the server
    ignored the team matcher, and merging would count it twice or judge a shard on others' answers."""
    for sample in result.samples:
        if sample.team not in shard:
            team = "no team label" if sample.team is None else f"team {_shown(sample.team)}"
            raise PromQLResponseError(
                f"the PromQL answer for {shard} has a series for {team}: the server did not apply the "
                "team matcher, so the shards' answers cannot be combined"
            )
    return result


def merge_results(results: Iterable[QueryResult], dialect: Dialect | None = None) -> QueryResult:
    """The shards' answers as one: every series once, truncated if any of them was."""
    samples: list[TeamSample] = []
    warnings: list[str] = []
    seen: set[str | None] = set()
    truncated = False
    for result in results:
        for sample in result.samples:
            check_one_series_per_team(sample.team, seen, dialect)
            seen.add(sample.team)
            samples.append(sample)
        warnings += result.warnings
        truncated = truncated or result.truncated
    return QueryResult(samples=tuple(samples), warnings=tuple(warnings), truncated=truncated)


class PromQLQuerier(Protocol):
    """The port the health check queries through (the PromQL HTTP adapter, or an in-memory fake)."""

    def query(self, query: str, *, time: datetime | None = None) -> QueryResult: ...


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _shown(value: object, limit: int = _SHOWN) -> str:
    """A value from an answer as a message quotes it: short text and numbers as they are, long text cut,
    containers by their type (an answer's values are the server's, of any size)."""
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else f"{value[:limit]!r}… ({len(value)} characters)"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 64 else f"an integer of {value.bit_length()} bits"
    return f"a {type(value).__name__}"


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise PromQLResponseError(f"malformed PromQL answer: {what} is {type(value).__name__}, not a string")
    return value


def _number(value: object, what: str) -> float:
    """A JSON number, or a string as a Prometheus server writes a sample value."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PromQLResponseError(f"malformed PromQL answer: {what} is {type(value).__name__}, not a number")
    if isinstance(value, str):
        return _number_text(value, what)
    try:
        return float(value)
    except OverflowError:  # a JSON integer beyond float64 (json reads it as a Python int)
        raise PromQLResponseError(
            f"malformed PromQL answer: {what} is {_shown(value)}, too large for a 64-bit float"
        ) from None


def _number_text(text: str, what: str) -> float:
    if len(text) <= _MAX_NUMBER_TEXT:
        named = _NAMED_NUMBERS.get(text.lower())
        if named is not None:
            return named
        if _DECIMAL.fullmatch(text):
            number = float(text)
            if math.isinf(number):  # Go's ParseFloat refuses these too (ErrRange)
                raise PromQLResponseError(
                    f"malformed PromQL answer: {what} {_shown(text)} is out of the range of a 64-bit float"
                )
            return number
    raise PromQLResponseError(f"malformed PromQL answer: {what} {_shown(text)} is not a number")


def _unix_time(seconds: float) -> datetime | None:
    """The instant ``seconds`` after the Unix epoch, or None when it is not finite or not within
    ``[EARLIEST_TIME, LATEST_TIME)``."""
    if not EARLIEST_TIME.timestamp() <= seconds < LATEST_TIME.timestamp():  # NaN compares False
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


def _team_of(labels: Mapping[str, str], dialect: Dialect | None) -> str | None:
    candidates = (
        (team_label(dialect),)
        if dialect is not None
        else (_TEAM_LABELS[Dialect.CLOUDWATCH], _TEAM_LABELS[Dialect.PROMETHEUS])
    )
    for name in candidates:
        if name in labels:
            return labels[name]
    return None


def answer_data(payload: object) -> tuple[Mapping[str, object], tuple[str, ...]]:
    """The ``data`` of a success answer and its warnings; the server's own error as
    :class:`PromQLQueryError`, anything else as :class:`PromQLResponseError`."""
    if not isinstance(payload, Mapping):
        raise PromQLResponseError(
            f"malformed PromQL answer: expected a JSON object, got {type(payload).__name__}"
        )
    status = payload.get("status")
    if status == "error":
        raise query_error(payload)
    if status != "success":
        raise PromQLResponseError(
            f"malformed PromQL answer: status is {_shown(status)}, not 'success' or 'error'"
        )
    warnings = answer_warnings(payload)
    data = payload.get("data")
    if not isinstance(data, Mapping):
        raise PromQLResponseError("malformed PromQL answer: data is missing or not an object")
    return data, warnings


def query_error(payload: Mapping[str, object]) -> PromQLQueryError:
    """The refusal a ``status: error`` answer carries, with placeholders for what it leaves out."""
    error_type = payload.get("errorType")
    error = payload.get("error")
    return PromQLQueryError(
        error_type if isinstance(error_type, str) and error_type else "unknown",
        error if isinstance(error, str) and error else "no error message in the answer",
    )


def answer_warnings(payload: Mapping[str, object]) -> tuple[str, ...]:
    """The answer's warnings (CloudWatch's sign of a truncated answer), each clipped for a message."""
    raw_warnings = payload.get("warnings") or []
    if not isinstance(raw_warnings, list):
        raise PromQLResponseError("malformed PromQL answer: warnings is not a list")
    return tuple(_clip(w, 1000) if isinstance(w, str) else _shown(w) for w in raw_warnings)


def vector_items(data: Mapping[str, object]) -> list[object]:
    """The series of an instant-vector answer; any other result type is refused."""
    result_type = data.get("resultType")
    if result_type != "vector":
        raise PromQLResponseError(
            f"unexpected PromQL answer: resultType is {_shown(result_type)}; the health queries return a vector"
        )
    result = data.get("result")
    if not isinstance(result, list):
        raise PromQLResponseError("malformed PromQL answer: data.result is not a list")
    return result


def series_labels(item: Mapping[str, object], where: str) -> dict[str, str]:
    """A series' labels; a missing ``metric`` is a series without labels."""
    metric = item.get("metric", {})
    if not isinstance(metric, Mapping):
        raise PromQLResponseError(f"malformed PromQL answer: {where}.metric is not an object")
    return {
        _text(k, f"a label name in {where}"): _text(v, f"label {_shown(k)} in {where}")
        for k, v in metric.items()
    }


def series_sample(
    item: object, where: str, dialect: Dialect | None, seen: Collection[str | None] = ()
) -> TeamSample:
    """One series of the answer as a team's sample: labels, a time in range, and a number.
    A team already in ``seen`` (an earlier series') is refused before the value is read."""
    if not isinstance(item, Mapping):
        raise PromQLResponseError(f"malformed PromQL answer: {where} is not an object")
    labels = series_labels(item, where)
    value = item.get("value")
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise PromQLResponseError(f"malformed PromQL answer: {where}.value is not a [time, value] pair")
    stamp = _number(value[0], f"{where}.value[0]")
    at = _unix_time(stamp)
    if at is None:
        raise PromQLResponseError(f"malformed PromQL answer: {where} has timestamp {stamp:g}, {_TIME_RANGE}")
    team = _team_of(labels, dialect)
    check_one_series_per_team(team, seen, dialect)
    return TeamSample(team=team, value=_number(value[1], f"{where}.value[1]"), timestamp=at, labels=labels)


def check_one_series_per_team(
    team: str | None, seen: Collection[str | None], dialect: Dialect | None
) -> None:
    """Refuse a second series for a team (or a second without one): the query was not grouped by
    this dialect's team label, so no series can be read as a team's."""
    if team not in seen:
        return
    if team is None:
        expected = team_label(dialect) if dialect is not None else "a team label"
        raise PromQLResponseError(
            f"several series of the PromQL answer lack {expected!r}: the query is not grouped "
            "by this dialect's team label (is the dialect right for this endpoint?)"
        )
    raise PromQLResponseError(
        f"the PromQL answer has two series for team {_shown(team)}: "
        "the query is not grouped by the team label"
    )


def parse_vector(payload: object, dialect: Dialect | None = None) -> QueryResult:
    """Read a ``/api/v1/query`` answer whose result is an instant vector grouped by team.

    With a ``dialect`` the team is read from that dialect's label only; without one,
    ``@resource.team.id`` (CloudWatch) is tried first, then ``team.id``.
    Raises :class:`PromQLQueryError` for ``status: error`` and :class:`PromQLResponseError` for
    anything that is not a well-formed success answer.
    """
    data, warnings = answer_data(payload)
    samples: list[TeamSample] = []
    seen: set[str | None] = set()
    for index, item in enumerate(vector_items(data)):
        sample = series_sample(item, f"data.result[{index}]", dialect, seen)
        seen.add(sample.team)
        samples.append(sample)
    return QueryResult(samples=tuple(samples), warnings=warnings, truncated=bool(warnings))
