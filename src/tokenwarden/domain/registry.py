"""The registry: who gets a key, and the lifecycle policy each one follows.

`teams.yaml` is reviewed in git and shipped with the deployment. A malformed registry is
an error that names the file, the entry and the field; nothing is planned from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from tokenwarden.domain.calendar import MAX_QUIET_DAYS, QuietDay, check_calendar
from tokenwarden.domain.naming import SLUG as SLUG
from tokenwarden.domain.ownership import Readers
from tokenwarden.domain.routing import channel_problem

MAX_KEY_AGE_DAYS = 90
MAX_HOURS = MAX_KEY_AGE_DAYS * 24
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_FILE_BYTES = 5 * 1024 * 1024
"""Far above any real registry (IAM allows 5,000 users per account); refuses /dev/zero and the like."""
MAX_NESTING = 32
"""A registry is four levels deep; deeper YAML is refused before it can exhaust the stack."""
MAX_PROBLEMS_SHOWN = 50
MAX_TEXT = 256
"""Free text (an owner, a notification route): longer is a mistake, and it ends up in messages."""
MAX_OWNERS = 20
MAX_ZONE_NAME = 64
_SHOWN_CHARACTERS = 64


def _show(value: str) -> str:
    """A user-supplied string as it appears in an error message: quoted, escaped, never huge."""
    if len(value) <= _SHOWN_CHARACTERS:
        return repr(value)
    return f"{value[:_SHOWN_CHARACTERS]!r}... ({len(value)} characters)"


class RegistryError(ValueError):
    """The registry cannot be used; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _days(default: int, minimum: int) -> Any:
    """A whole number of days within a key's lifetime (a YAML `true` or `7.5` is not one)."""
    return Field(default=default, ge=minimum, le=MAX_KEY_AGE_DAYS, strict=True)


class Lifecycle(_Strict):
    """Key lifecycle policy. Every field may be overridden per principal."""

    key_age_days: int = _days(MAX_KEY_AGE_DAYS, 1)
    rotate_before_days: int = _days(14, 1)
    rotation_jitter_days: int = _days(3, 0)
    grace_days: int = _days(7, 0)
    retention_days: int = _days(7, 0)
    untracked_safety_hours: int = Field(default=24, ge=1, le=MAX_HOURS, strict=True)
    expiry_alert_days: int = _days(7, 1)

    @model_validator(mode="after")
    def _fits_the_lifetime(self) -> Lifecycle:
        if self.rotate_before_days + self.rotation_jitter_days >= self.key_age_days:
            raise ValueError(
                f"rotate_before_days + rotation_jitter_days ({self.rotate_before_days} + "
                f"{self.rotation_jitter_days}) must be shorter than key_age_days ({self.key_age_days})"
            )
        if self.grace_days >= self.rotate_before_days:
            raise ValueError(
                f"grace_days ({self.grace_days}) must be shorter than rotate_before_days "
                f"({self.rotate_before_days}): the previous key would expire during its grace"
            )
        earliest_next = self.key_age_days - self.rotate_before_days - self.rotation_jitter_days
        if self.grace_days + self.retention_days >= earliest_next:
            raise ValueError(
                f"grace_days + retention_days ({self.grace_days + self.retention_days}) must end before "
                f"the next rotation (as early as {earliest_next} days after the last)"
            )
        if self.expiry_alert_days >= self.rotate_before_days:
            raise ValueError(
                f"expiry_alert_days ({self.expiry_alert_days}) must be shorter than rotate_before_days "
                f"({self.rotate_before_days})"
            )
        return self


Text = Annotated[StrictStr, Field(max_length=MAX_TEXT)]


class ActivityProfile(_Strict):
    """When a team normally works; only these hours count toward silence."""

    timezone: StrictStr = "UTC"
    working_days: tuple[StrictStr, ...] = Field(default=("mon", "tue", "wed", "thu", "fri"), max_length=7)
    start: time = time(9, 0)
    end: time = time(18, 0)
    silent_after_hours: float = Field(default=4.0, gt=0, le=MAX_HOURS, strict=True, allow_inf_nan=False)
    holidays: StrictStr | None = Field(default=None, max_length=16)
    """Public-holiday calendar (``DE``, ``US-NY``): its holidays do not count toward silence."""
    quiet_days: tuple[QuietDay, ...] = Field(default=(), max_length=MAX_QUIET_DAYS)
    """Dates and ranges (``2026-12-24``, ``2026-12-27..2027-01-01``) that do not count either."""

    @field_validator("holidays", mode="before")
    @classmethod
    def _calendar_text(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError('write the calendar quoted, e.g. "NO" (YAML reads an unquoted NO as false)')
        return value

    @field_validator("holidays")
    @classmethod
    def _known_calendar(cls, value: str | None) -> str | None:
        return None if value is None else check_calendar(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            if len(value) > MAX_ZONE_NAME:
                raise ValueError("too long for a time zone name")
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(
                f"unknown time zone {_show(value)} (use an IANA name such as Europe/Berlin or UTC)"
            ) from exc
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock_time(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, str | time):
            hint = " (YAML reads an unquoted 9:00 as the number 540)" if isinstance(value, int) else ""
            raise ValueError(f'write the time as a quoted "HH:MM", e.g. "09:00"{hint}')
        return value

    @field_validator("start", "end")
    @classmethod
    def _local_time(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("a working hour is local to `timezone`: drop the UTC offset")
        return value

    @field_validator("working_days")
    @classmethod
    def _weekdays(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [_show(day) for day in value if day not in WEEKDAYS]
        if bad:
            raise ValueError(f"unknown weekday(s) {', '.join(bad[:5])}; use {', '.join(WEEKDAYS)}")
        if not value:
            raise ValueError("at least one working day is needed")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> ActivityProfile:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Contact(_Strict):
    owners: tuple[Text, ...] = Field(default=(), max_length=MAX_OWNERS)
    channel: Text | None = None


class PrincipalSpec(_Strict):
    """One entry of `principals:` as written in the file."""

    id: StrictStr
    kind: Literal["team", "developer"] = "team"
    team: StrictStr | None = Field(default=None, max_length=MAX_TEXT)
    owners: tuple[Text, ...] = Field(default=(), max_length=MAX_OWNERS)
    notify: Text | None = None
    activity: dict[str, Any] = Field(default_factory=dict)
    lifecycle: dict[str, Any] = Field(default_factory=dict)
    # Who else may read the token (merged field by field over `defaults.readers`).
    readers: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.fullmatch(value):
            raise ValueError(
                f"{_show(value)} is not a slug (lowercase letters, digits and '-', 1-48 characters, "
                "starting and ending with a letter or digit)"
            )
        return value

    @field_validator("notify")
    @classmethod
    def _sns_channel(cls, value: str | None) -> str | None:
        """`notify` travels as the SNS message attribute `channel`: a value SNS would refuse is
        refused here, when the registry loads, not at the first message."""
        problem = None if value is None else channel_problem(value)
        if problem is not None:
            raise ValueError(f"{_show(value or '')} {problem}")
        return value


class Principal(_Strict):
    """A registered principal with its effective policy (defaults merged with overrides)."""

    id: str
    kind: Literal["team", "developer"]
    team: str
    owners: tuple[str, ...]
    notify: str | None
    activity: ActivityProfile
    lifecycle: Lifecycle
    readers: Readers = Field(default_factory=Readers)


class Defaults(_Strict):
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    activity: ActivityProfile = Field(default_factory=ActivityProfile)
    readers: Readers = Field(default_factory=Readers)


class RegistryFile(_Strict):
    version: Literal[1] = 1
    defaults: Defaults = Field(default_factory=Defaults)
    principals: tuple[dict[str, Any], ...]

    @field_validator("version", mode="before")
    @classmethod
    def _whole_number(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be the number 1")
        return value


@dataclass(frozen=True)
class RegistryIndex:
    """A registry's principals by id (the first of an id wins, as a scan finds it), its ids and
    teams, and the principals they were taken from."""

    principals: tuple[Principal, ...]
    by_id: Mapping[str, Principal]
    ids: frozenset[str]
    teams: frozenset[str]

    @classmethod
    def of(cls, principals: tuple[Principal, ...]) -> RegistryIndex:
        by_id = {p.id: p for p in reversed(principals)}
        return cls(principals, by_id, frozenset(by_id), frozenset(p.team for p in principals))


class Registry(_Strict):
    source: str
    principals: tuple[Principal, ...]
    defaults: Defaults = Field(default_factory=Defaults)

    def former(self, principal_id: str) -> Principal:
        """A principal no longer in the registry, treated with the default policy while it is offboarded."""
        return Principal(
            id=principal_id,
            kind="team",
            team=principal_id,
            owners=(),
            notify=None,
            activity=self.defaults.activity,
            lifecycle=self.defaults.lifecycle,
            readers=self.defaults.readers,
        )

    @cached_property
    def index(self) -> RegistryIndex:
        """The principals by id, their ids and teams, built once: a run looks each of its principals
        up, so a lookup is not a scan of the registry."""
        return RegistryIndex.of(self.principals)

    def _index(self) -> RegistryIndex:
        if self.index.principals is not self.principals:  # a copy with other principals
            del self.__dict__["index"]
        return self.index

    def get(self, principal_id: str) -> Principal | None:
        return self._index().by_id.get(principal_id)

    def require(self, principal_id: str) -> Principal:
        """The registered principal `principal_id`; a RegistryError naming the registry and what it
        lists when there is none (a typo, or a principal already removed)."""
        principal = self.get(principal_id)
        if principal is None:
            ids = sorted(self.ids)
            listed = ", ".join(ids[:20]) + (", ..." if len(ids) > 20 else "")
            raise RegistryError(
                f"unknown principal {_show(principal_id)}: not in {self.source} (it has: {listed}); "
                "`tokenwarden status` lists every principal"
            )
        return principal

    @property
    def ids(self) -> frozenset[str]:
        return self._index().ids

    @property
    def teams(self) -> frozenset[str]:
        return self._index().teams


def load_registry(path: Path) -> Registry:
    """Read and validate a registry file; raise RegistryError naming what is wrong."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read the registry ({exc.strerror or exc})") from exc
    if len(data) > MAX_FILE_BYTES:
        raise RegistryError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; not a registry")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RegistryError(
            f"{path}: line {line}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from None
    return parse_registry(text, source=str(path))


def parse_registry(text: str, source: str) -> Registry:
    from tokenwarden.domain.registry_yaml import read_yaml

    document = read_yaml(text, source)
    if document is None:
        raise RegistryError(f"{source}: the registry is empty; refusing to plan from it")
    if not isinstance(document, Mapping):
        raise RegistryError(f"{source}: the top level must be a mapping with `principals:`")
    try:
        parsed = RegistryFile.model_validate(document)
    except ValidationError as exc:
        raise RegistryError(_describe(source, document, exc)) from None
    if not parsed.principals:
        raise RegistryError(f"{source}: `principals` is empty; refusing to plan from it")
    return _resolve(source, parsed)


def _entry_label(index: int, raw: object) -> str:
    """`principals[3] (id 'alpha')`: the entry by position, and by id when it has a printable one."""
    name = raw.get("id") if isinstance(raw, Mapping) else None
    if isinstance(name, str) and name:
        return f"principals[{index}] (id {_show(name)})"
    if isinstance(name, int | float | date) and not isinstance(name, bool):
        return f"principals[{index}] (id {name})"
    return f"principals[{index}]"


def _kind(value: object) -> str:
    if value is None:
        return "empty (null)"
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number"}
    return names.get(type(value), f"a {type(value).__name__}")


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping, not {_kind(error.get('input'))}"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list, not {_kind(error.get('input'))}"
    if kind == "invalid_key" or (kind == "string_type" and error["loc"] and error["loc"][-1] == "[key]"):
        return "keys must be strings"
    message = error["msg"]
    return message.removeprefix("Value error, ")


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(part) for part in loc if part != "[key]"]
    return ".".join(parts)


def _describe(source: str, document: Mapping[str, Any], exc: ValidationError) -> str:
    raw_entries = document.get("principals")
    entries: list[Any] = raw_entries if isinstance(raw_entries, list) else []
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        where = _field(loc) or "(top level)"
        if error["type"] == "invalid_key" and len(loc) == 1:
            where = f"top-level key {_show(str(loc[0]))}"
        if len(loc) >= 2 and loc[0] == "principals" and isinstance(loc[1], int):
            index = loc[1]
            label = _entry_label(index, entries[index] if index < len(entries) else None)
            field = _field(loc[2:])
            where = f"{label}, field {field}" if field else label
        problems.append(f"{where}: {_message(error)}")
    return _problem_list(source, problems)


def _problem_list(source: str, problems: list[str]) -> str:
    shown = problems[:MAX_PROBLEMS_SHOWN]
    if len(problems) > len(shown):
        shown.append(f"... and {len(problems) - len(shown)} more")
    return f"{source}: the registry is invalid ({len(problems)} problem(s)):\n  - " + "\n  - ".join(shown)


def _entry_problems(where: str, exc: ValidationError, prefix: str = "") -> list[str]:
    problems = []
    for error in exc.errors():
        field = prefix + _field(tuple(error["loc"]))
        if not field or field.endswith("."):
            field = field.rstrip(".") or "(entry)"
        problems.append(f"{where}, field {field}: {_message(error)}")
    return problems


def parse_entries(parsed: RegistryFile) -> tuple[list[tuple[int, PrincipalSpec]], set[str], list[str]]:
    """Each entry parsed on its own: the ones that parse (with their position), the ids of those
    that do not (a developer naming one is not reported again), and what is wrong with them."""
    specs: list[tuple[int, PrincipalSpec]] = []
    unparsed: set[str] = set()
    problems: list[str] = []
    for index, raw in enumerate(parsed.principals):
        try:
            specs.append((index, PrincipalSpec.model_validate(raw)))
        except ValidationError as exc:
            name = raw.get("id")
            if isinstance(name, str):
                unparsed.add(name)
            problems += _entry_problems(_entry_label(index, raw), exc)
    return specs, unparsed, problems


def duplicate_ids(specs: list[tuple[int, PrincipalSpec]]) -> list[str]:
    """Every entry whose id an earlier entry already has, naming the first."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, spec in specs:
        if spec.id in seen:
            problems.append(
                f"principals[{index}] (id {spec.id!r}): duplicate id, first at principals[{seen[spec.id]}]"
            )
        else:
            seen[spec.id] = index
    return problems


def team_problem(spec: PrincipalSpec, teams: set[str], unparsed: set[str]) -> str | None:
    """What is wrong with the entry's `team` (a developer's names a team of the registry)."""
    if spec.kind == "developer" and not spec.team:
        return "a developer must name its team"
    if spec.kind == "team" and spec.team not in (None, spec.id):
        return "a team's `team`, if given, must be its own id"
    if spec.kind == "developer" and spec.team not in teams and spec.team not in unparsed:
        return f"names unknown team {_show(spec.team or '')}"
    return None


def effective_policy(
    where: str, spec: PrincipalSpec, defaults: Defaults
) -> tuple[tuple[Lifecycle, ActivityProfile, Readers] | None, list[str]]:
    """The entry's lifecycle, activity and readers merged field by field over the defaults; the
    first section that is invalid stops there, with its problems."""
    try:
        lifecycle = Lifecycle.model_validate({**defaults.lifecycle.model_dump(), **spec.lifecycle})
    except ValidationError as exc:
        return None, _entry_problems(where, exc, prefix="lifecycle.")
    try:
        activity = ActivityProfile.model_validate({**defaults.activity.model_dump(), **spec.activity})
    except ValidationError as exc:
        return None, _entry_problems(where, exc, prefix="activity.")
    try:
        readers = Readers.model_validate({**defaults.readers.model_dump(), **spec.readers})
    except ValidationError as exc:
        return None, _entry_problems(where, exc, prefix="readers.")
    return (lifecycle, activity, readers), []


def resolve_principal(
    index: int, spec: PrincipalSpec, defaults: Defaults, teams: set[str], unparsed: set[str]
) -> tuple[Principal | None, list[str]]:
    """One entry as a registered principal, or what is wrong with it."""
    where = f"principals[{index}] (id {spec.id!r})"
    wrong_team = team_problem(spec, teams, unparsed)
    if wrong_team is not None:
        return None, [f"{where}, field team: {wrong_team}"]
    policy, problems = effective_policy(where, spec, defaults)
    if policy is None:
        return None, problems
    lifecycle, activity, readers = policy
    principal = Principal(
        id=spec.id,
        kind=spec.kind,
        team=spec.team or spec.id,
        owners=spec.owners,
        notify=spec.notify,
        activity=activity,
        lifecycle=lifecycle,
        readers=readers,
    )
    return principal, []


def _resolve(source: str, parsed: RegistryFile) -> Registry:
    """The registry the file describes, or every problem found in it at once."""
    specs, unparsed, problems = parse_entries(parsed)
    problems += duplicate_ids(specs)
    teams = {spec.id for _, spec in specs if spec.kind == "team"}
    principals: list[Principal] = []
    for index, spec in specs:
        principal, found = resolve_principal(index, spec, parsed.defaults, teams, unparsed)
        problems += found
        if principal is not None:
            principals.append(principal)
    if problems:
        raise RegistryError(_problem_list(source, problems))
    return Registry(source=source, principals=tuple(principals), defaults=parsed.defaults)
