"""The registry: who gets a key, and the lifecycle policy each one follows.

`teams.yaml` is reviewed in git and shipped with the deployment. A malformed registry is
an error that names the file, the entry and the field; nothing is planned from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MAX_KEY_AGE_DAYS = 90
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class RegistryError(ValueError):
    """The registry cannot be used; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Lifecycle(_Strict):
    """Key lifecycle policy. Every field may be overridden per principal."""

    key_age_days: int = Field(default=MAX_KEY_AGE_DAYS, ge=1, le=MAX_KEY_AGE_DAYS)
    rotate_before_days: int = Field(default=14, ge=1)
    rotation_jitter_days: int = Field(default=3, ge=0)
    grace_days: int = Field(default=7, ge=0)
    retention_days: int = Field(default=7, ge=0)
    untracked_safety_hours: int = Field(default=24, ge=1)
    expiry_alert_days: int = Field(default=7, ge=1)

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


class ActivityProfile(_Strict):
    """When a team normally works; only these hours count toward silence."""

    timezone: str = "UTC"
    working_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    start: time = time(9, 0)
    end: time = time(18, 0)
    silent_after_hours: float = Field(default=4.0, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("working_days")
    @classmethod
    def _weekdays(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [day for day in value if day not in WEEKDAYS]
        if bad:
            raise ValueError(f"unknown weekday(s) {bad}; use {', '.join(WEEKDAYS)}")
        if not value:
            raise ValueError("at least one working day is needed")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> ActivityProfile:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Contact(_Strict):
    owners: tuple[str, ...] = ()
    channel: str | None = None


class PrincipalSpec(_Strict):
    """One entry of `principals:` as written in the file."""

    id: str
    kind: Literal["team", "developer"] = "team"
    team: str | None = None
    owners: tuple[str, ...] = ()
    notify: str | None = None
    activity: dict[str, Any] = Field(default_factory=dict)
    lifecycle: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a slug (lowercase letters, digits and '-', 1-48 characters, "
                "starting and ending with a letter or digit)"
            )
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


class Defaults(_Strict):
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    activity: ActivityProfile = Field(default_factory=ActivityProfile)


class RegistryFile(_Strict):
    version: Literal[1] = 1
    defaults: Defaults = Field(default_factory=Defaults)
    principals: tuple[dict[str, Any], ...]


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
        )

    def get(self, principal_id: str) -> Principal | None:
        return next((p for p in self.principals if p.id == principal_id), None)

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(p.id for p in self.principals)

    @property
    def teams(self) -> frozenset[str]:
        return frozenset(p.team for p in self.principals)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_registry(path: Path) -> Registry:
    """Read and validate a registry file; raise RegistryError naming what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read the registry ({exc.strerror or exc})") from exc
    return parse_registry(text, source=str(path))


def parse_registry(text: str, source: str) -> Registry:
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None)
        if mark is not None and problem:
            raise RegistryError(
                f"{source}: line {mark.line + 1}, column {mark.column + 1}: {problem}"
            ) from exc
        raise RegistryError(f"{source}: invalid YAML: {exc}") from exc
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


def _describe(source: str, document: Mapping[str, Any], exc: ValidationError) -> str:
    lines = [f"{source}: the registry is invalid ({exc.error_count()} problem(s)):"]
    raw_entries = document.get("principals")
    entries: list[Any] = raw_entries if isinstance(raw_entries, list) else []
    for error in exc.errors():
        loc = list(error["loc"])
        where = ".".join(str(part) for part in loc) or "(top level)"
        if len(loc) >= 2 and loc[0] == "principals" and isinstance(loc[1], int):
            index = loc[1]
            entry = entries[index] if index < len(entries) else None
            name = entry.get("id") if isinstance(entry, Mapping) else None
            field = ".".join(str(part) for part in loc[2:]) or "(entry)"
            where = f"principals[{index}]" + (f" (id {name!r})" if name else "") + f", field {field}"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  - {where}: {message}")
    return "\n".join(lines)


def _entry_problems(where: str, exc: ValidationError, prefix: str = "") -> list[str]:
    problems = []
    for error in exc.errors():
        field = prefix + ".".join(str(part) for part in error["loc"]) or "(entry)"
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        problems.append(f"{where}, field {field}: {message}")
    return problems


def _resolve(source: str, parsed: RegistryFile) -> Registry:
    problems: list[str] = []
    specs: list[tuple[int, PrincipalSpec]] = []
    unparsed: set[object] = set()
    for index, raw in enumerate(parsed.principals):
        try:
            specs.append((index, PrincipalSpec.model_validate(raw)))
        except ValidationError as exc:
            name = raw.get("id") if isinstance(raw, dict) else None
            unparsed.add(name)
            where = f"principals[{index}]" + (f" (id {name!r})" if name else "")
            problems += _entry_problems(where, exc)
    seen: dict[str, int] = {}
    for index, spec in specs:
        if spec.id in seen:
            problems.append(
                f"principals[{index}] (id {spec.id!r}): duplicate id, first at principals[{seen[spec.id]}]"
            )
        else:
            seen[spec.id] = index
    teams = {spec.id for _, spec in specs if spec.kind == "team"}
    principals: list[Principal] = []
    for index, spec in specs:
        where = f"principals[{index}] (id {spec.id!r})"
        if spec.kind == "developer" and not spec.team:
            problems.append(f"{where}, field team: a developer must name its team")
            continue
        if spec.kind == "team" and spec.team not in (None, spec.id):
            problems.append(f"{where}, field team: a team's `team`, if given, must be its own id")
            continue
        if spec.kind == "developer" and spec.team not in teams and spec.team not in unparsed:
            problems.append(f"{where}, field team: names unknown team {spec.team!r}")
            continue
        merged = {**parsed.defaults.lifecycle.model_dump(), **spec.lifecycle}
        try:
            lifecycle = Lifecycle.model_validate(merged)
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(part) for part in error["loc"]) or "lifecycle"
                message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
                problems.append(
                    f"{where}, field lifecycle.{field}: {message}".replace("lifecycle.lifecycle", "lifecycle")
                )
            continue
        try:
            activity = ActivityProfile.model_validate(
                {**parsed.defaults.activity.model_dump(), **spec.activity}
            )
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(part) for part in error["loc"]) or "activity"
                message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
                problems.append(f"{where}, field activity.{field}: {message}")
            continue
        principals.append(
            Principal(
                id=spec.id,
                kind=spec.kind,
                team=spec.team or spec.id,
                owners=spec.owners,
                notify=spec.notify,
                activity=activity,
                lifecycle=lifecycle,
            )
        )
    if problems:
        raise RegistryError(
            f"{source}: the registry is invalid ({len(problems)} problem(s)):\n  - " + "\n  - ".join(problems)
        )
    return Registry(source=source, principals=tuple(principals), defaults=parsed.defaults)
