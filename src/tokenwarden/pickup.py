"""The pickup kit: how a rotated key reaches every laptop with nobody touching it.

`tokenwarden pickup P` writes, for principal `P`:

- `otel-headers-helper.sh`, Claude Code's `otelHeadersHelper`: a POSIX sh script (dash, bash 3.2
  on macOS) that prints `{"Authorization": "Bearer <token>"}` from a private cache file in
  milliseconds, or `{}` while there is none yet, and refreshes that cache in the background from
  Secrets Manager with the developer's own AWS identity once it is older than the refresh interval;
- `managed-settings.json`, the Claude Code settings that point the OpenTelemetry metrics exporter at
  the OTLP endpoint with `team.id` as a resource attribute, name the helper, and deny Claude Code's
  file tools the helper's cache;
- `README.txt`, where each goes.

Nothing the helper does can be redirected at run time: it names the secret by ARN (a name would
resolve in whatever account the developer's credentials point at), and its cache directory, AWS
CLI and `PATH` are fixed when it is generated; no environment variable changes them. It uses the
cache directory only when it is the user's own, mode 0700 and not a symlink, and writes the cache
through `mktemp`.

None of the files holds a token: the kit is safe to mail, commit or ship with MDM. Pure apart from
`write_kit`; no AWS call (the caller looks the secret's ARN up).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import urllib.parse
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tokenwarden.domain.naming import Naming
from tokenwarden.domain.registry import SLUG, Principal

HELPER_FILE = "otel-headers-helper.sh"
SETTINGS_FILE = "managed-settings.json"
README_FILE = "README.txt"
KIT_FILES = (HELPER_FILE, SETTINGS_FILE, README_FILE)
#: The helper's PATH, whatever the environment says (the AWS CLI's own directory is added last).
HELPER_PATH_VARIABLE = "/usr/bin:/bin:/usr/sbin:/sbin"
#: Where the README tells the platform team to install the helper (no spaces: Claude Code runs the
#: `otelHeadersHelper` value through `sh -c`).
DEFAULT_HELPER_PATH = "/usr/local/libexec/tokenwarden/otel-headers-helper.sh"
MANAGED_SETTINGS_PATHS = {
    "macOS": "/Library/Application Support/ClaudeCode/managed-settings.json",
    "Linux and WSL": "/etc/claude-code/managed-settings.json",
}

#: The helper's cache directory unless the kit says otherwise. `~/` is the user's home directory as
#: the account database has it (not `$HOME`, which the environment could change).
DEFAULT_CACHE_DIR = "~/.cache/tokenwarden"
#: Where the AWS CLI is installed by its own installer (macOS and Linux), Homebrew and the Linux
#: distributions; the helper runs the first one that exists.
DEFAULT_AWS_CLI = ("/usr/local/bin/aws", "/opt/homebrew/bin/aws", "/usr/bin/aws")

_TEAM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# A secret's full ARN: the account and Region are pinned, and the 6-character suffix Secrets
# Manager adds to every name keeps a later secret of the same name from answering.
_SECRET_ARN = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:secretsmanager:(?P<region>[a-z0-9-]+):\d{12}:secret:"
    r"(?P<name>[A-Za-z0-9/_+=.@-]{1,512})-[A-Za-z0-9]{6}"
)
_FIXED_PATH = re.compile(r"/[A-Za-z0-9._/+-]*")  # absolute, nothing a shell would expand or split
_REGION = re.compile(r"[a-z]{2,}(?:-[a-z]+)+-\d{1,2}")
_PROFILE = re.compile(r"[A-Za-z0-9._+@-]{1,128}")
_ATTRIBUTE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,127}")
_HELPER_PATH = re.compile(r"/[A-Za-z0-9._/+-]+")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_PLACEHOLDER = re.compile(r"@@[A-Z_]+@@")


class PickupError(ValueError):
    """The kit cannot be made or written; the message says why and nothing was written."""


def default_otlp_metrics_endpoint(region: str) -> str:
    """CloudWatch's OTLP metrics URL in `region` (the full URL: the SDK appends nothing to it)."""
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://monitoring.{region}.{domain}/v1/metrics"


class PickupKit(BaseModel):
    """What a laptop needs to know: where the token is, where metrics go, how they are labelled."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    principal: str
    team: str
    #: The secret's full ARN (DescribeSecret's `ARN`), never its name.
    secret_arn: str
    region: str
    otlp_metrics_endpoint: str
    #: Fixed in the helper: `~/<path>` (home from the account database) or an absolute path.
    cache_dir: str = DEFAULT_CACHE_DIR
    #: Fixed in the helper: the AWS CLIs it may run, first found wins (absolute paths).
    aws_cli: tuple[str, ...] = DEFAULT_AWS_CLI
    #: The helper refreshes a cache older than this. Claude Code calls it about every 29 minutes, so
    #: anything shorter means "on every call after the first"; a rotated key arrives within two calls,
    #: well inside the days-long grace of the previous key.
    refresh_minutes: int = Field(default=20, ge=1, le=24 * 60)
    export_interval_ms: int = Field(default=60_000, ge=1_000, le=3_600_000)
    #: Both reach CloudWatch; protobuf is also what the embedded stack's VictoriaMetrics path takes.
    protocol: Literal["http/protobuf", "http/json"] = "http/protobuf"
    #: The developer's AWS CLI profile to read the secret with; None: their default credentials chain.
    aws_profile: str | None = None
    extra_resource_attributes: dict[str, str] = Field(default_factory=dict)

    @field_validator("principal")
    @classmethod
    def _principal(cls, value: str) -> str:
        if not SLUG.fullmatch(value):
            raise ValueError(f"{value!r} is not a principal id (a slug)")
        return value

    @field_validator("team")
    @classmethod
    def _team(cls, value: str) -> str:
        if not _TEAM.fullmatch(value):
            raise ValueError(f"{value!r} is not a team id (letters, digits, '.', '_', '-')")
        return value

    @field_validator("secret_arn")
    @classmethod
    def _secret_arn(cls, value: str) -> str:
        if not _SECRET_ARN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a secret's full ARN (arn:aws:secretsmanager:<region>:<account>:secret:"
                "<name>-<6 characters>): the kit never names a secret by name"
            )
        return value

    @field_validator("cache_dir")
    @classmethod
    def _cache_dir(cls, value: str) -> str:
        path = value[1:] if value.startswith("~/") else value
        if not _FIXED_PATH.fullmatch(path) or path == "/" or path.endswith("/") or _climbs(path):
            raise ValueError(
                f"{value!r} is not a cache directory the helper can fix: ~/<path> or an absolute path, "
                "without spaces, shell characters, '..' or a trailing '/'"
            )
        return value

    @field_validator("aws_cli")
    @classmethod
    def _aws_cli(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one AWS CLI path is needed")
        for path in value:
            if not _FIXED_PATH.fullmatch(path) or path.endswith("/") or _climbs(path):
                raise ValueError(f"{path!r} is not an absolute path without spaces or shell characters")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.fullmatch(value):
            raise ValueError(f"{value!r} is not an AWS region (e.g. us-east-1)")
        return value

    @field_validator("aws_profile")
    @classmethod
    def _profile(cls, value: str | None) -> str | None:
        if value is not None and not _PROFILE.fullmatch(value):
            raise ValueError(f"{value!r} is not a usable AWS CLI profile name (letters, digits, . _ + @ -)")
        return value

    @field_validator("otlp_metrics_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        url = urllib.parse.urlsplit(value)
        if any(c.isspace() or c in "\"'\\" for c in value) or not url.hostname:
            raise ValueError(f"{value!r} is not a URL")
        if url.scheme != "https" and not (url.scheme == "http" and url.hostname in _LOOPBACK):
            raise ValueError(f"{value!r}: the OTLP endpoint must be https (plain http only on loopback)")
        return value

    @field_validator("extra_resource_attributes")
    @classmethod
    def _attributes(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not _ATTRIBUTE_KEY.fullmatch(key):
                raise ValueError(f"{key!r} is not a resource attribute name")
            if key == "team.id":
                raise ValueError("team.id comes from the kit's team, not from the extra attributes")
            if len(item) > 255 or not item.isprintable():
                raise ValueError(f"the value of {key!r} must be printable and at most 255 characters")
        return value

    @model_validator(mode="after")
    def _arn_in_region(self) -> PickupKit:
        match = _SECRET_ARN.fullmatch(self.secret_arn)
        if match is not None and match["region"] != self.region:
            raise ValueError(f"secret_arn: the secret is in {match['region']}, the kit in {self.region}")
        return self

    @property
    def secret_name(self) -> str:
        match = _SECRET_ARN.fullmatch(self.secret_arn)
        return match["name"] if match else self.secret_arn

    @property
    def cache_deny_rules(self) -> list[str]:
        """Claude Code permission rules that keep its file tools out of the cache directory
        (`~/` is the home directory in a rule; `//` starts an absolute path)."""
        where = self.cache_dir if self.cache_dir.startswith("~/") else "/" + self.cache_dir
        return [f"Read({where}/**)", f"Edit({where}/**)"]

    @property
    def resource_attributes(self) -> str:
        """`OTEL_RESOURCE_ATTRIBUTES`: `team.id` first, values percent-encoded as the spec asks."""
        pairs = {"team.id": self.team, **self.extra_resource_attributes}
        return ",".join(f"{key}={urllib.parse.quote(item, safe='')}" for key, item in pairs.items())


def build_kit(
    principal: Principal,
    *,
    naming: Naming,
    secret_arn: str,
    region: str,
    otlp_metrics_endpoint: str | None = None,
    **options: Any,
) -> PickupKit:
    """The kit of a registered principal (a developer labels its metrics with its team's id).
    `secret_arn` is its secret's ARN as DescribeSecret gives it."""
    try:
        kit = PickupKit(
            principal=principal.id,
            team=principal.team,
            secret_arn=secret_arn,
            region=region,
            otlp_metrics_endpoint=otlp_metrics_endpoint or default_otlp_metrics_endpoint(region),
            **options,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'kit'}: {e['msg']}" for e in exc.errors())
        raise PickupError(f"cannot make the pickup kit of {principal.id!r}: {problems}") from None
    if kit.secret_name != naming.secret_name(principal.id):
        raise PickupError(
            f"cannot make the pickup kit of {principal.id!r}: {secret_arn} is not the secret "
            f"{naming.secret_name(principal.id)}"
        )
    return kit


def _template() -> str:
    source = resources.files("tokenwarden").joinpath("templates").joinpath(HELPER_FILE)
    return source.read_text(encoding="utf-8")


def render_helper_script(kit: PickupKit) -> str:
    """The `otelHeadersHelper` script of the kit (no token in it)."""
    values = {
        "PRINCIPAL_COMMENT": kit.principal,  # a slug: safe in a comment
        "PRINCIPAL": shlex.quote(kit.principal),
        "SECRET_ARN": shlex.quote(kit.secret_arn),
        "REGION": shlex.quote(kit.region),
        "PROFILE": shlex.quote(kit.aws_profile or ""),
        "REFRESH_MINUTES": str(kit.refresh_minutes),
        "CACHE_DIR": shlex.quote(kit.cache_dir),
        "AWS_CLI": shlex.quote(" ".join(kit.aws_cli)),
    }
    script = _PLACEHOLDER.sub(lambda m: values[m.group(0).strip("@")], _template())
    return script


def _helper_path(helper_path: str | None) -> str:
    path = helper_path or DEFAULT_HELPER_PATH
    if not _HELPER_PATH.fullmatch(path) or "/../" in f"{path}/":
        raise PickupError(
            f"{path!r}: the helper's install path must be absolute, without spaces or shell characters "
            "(Claude Code runs it through `sh -c`)"
        )
    return path


def render_managed_settings(kit: PickupKit, helper_path: str | None = None) -> dict[str, Any]:
    """Claude Code's settings for the kit: the helper, the telemetry `env` block and the rules
    that deny its file tools the helper's cache (no token)."""
    return {
        "otelHeadersHelper": _helper_path(helper_path),
        "permissions": {"deny": kit.cache_deny_rules},
        "env": {
            "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": kit.protocol,
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": kit.otlp_metrics_endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": str(kit.export_interval_ms),
            "OTEL_RESOURCE_ATTRIBUTES": kit.resource_attributes,
        },
    }


def render_readme(kit: PickupKit, helper_path: str | None = None) -> str:
    path = _helper_path(helper_path)
    install_dir = path.rsplit("/", 1)[0] or "/"
    profile = f" --profile {kit.aws_profile}" if kit.aws_profile else ""
    settings = "\n".join(f"  {system:<14} {where}" for system, where in MANAGED_SETTINGS_PATHS.items())
    aws_cli_hint = kit.aws_cli[0] if len(kit.aws_cli) == 1 else "aws"
    home_note = (
        "  (~ is the home directory the account database gives the user, not $HOME.)\n"
        if kit.cache_dir.startswith("~/")
        else ""
    )
    return f"""TokenWarden pickup kit for {kit.principal} (team {kit.team})

Nothing in this kit is secret: the token stays in Secrets Manager ({kit.secret_arn})
and in each developer's private cache.

1. Install the helper on every laptop, at the path the settings name:
     sudo install -d -m 0755 {install_dir}
     sudo install -m 0755 {HELPER_FILE} {path}
2. Install {SETTINGS_FILE} as Claude Code's managed settings (or merge its keys into an existing one):
{settings}
   A single developer may instead merge "otelHeadersHelper", "env" and "permissions" into
   ~/.claude/settings.json (not a repository's .claude/settings*.json: Claude Code may refuse a headers
   helper named there). "permissions" denies Claude Code's file tools the helper's cache:
     {", ".join(kit.cache_deny_rules)}
3. Each developer needs the AWS CLI at one of
     {" ".join(kit.aws_cli)}
   (the helper runs the first one it finds, with PATH={HELPER_PATH_VARIABLE} and the CLI's own
   directory, whatever the environment says) and an identity that may read the secret:
     {aws_cli_hint} secretsmanager get-secret-value --secret-id {kit.secret_arn} --region {kit.region}{profile} --query ARN
   (secretsmanager:GetSecretValue on the secret, kms:Decrypt on its key.)

Check: run the helper twice. The first run prints {{}} and fetches the token in the background; a few
seconds later it prints the Authorization header from its private cache
  {kit.cache_dir}/{kit.principal}.json  (mode 0600)
{home_note}The cache directory must be the developer's own, mode 0700, and not a symbolic link; the helper creates
it so, and otherwise always answers {{}} and fetches nothing (check with `ls -ld`; fix with chmod 700).
Claude Code runs it at start and about every 29 minutes; the cache is refreshed in the background when
older than {kit.refresh_minutes} minutes, so a rotated key arrives with no restart and no manual step.
To force a refresh, delete the cache file.

Metrics go to {kit.otlp_metrics_endpoint} ({kit.protocol})
with OTEL_RESOURCE_ATTRIBUTES={kit.resource_attributes}
"""


def _climbs(path: str) -> bool:
    return any(part in (".", "..") for part in path.split("/"))


def check_out_dir(out_dir: Path, *, force: bool = False) -> None:
    """Refuse (PickupError) an output directory the kit could not be written into, or whose kit
    files exist (unless `force`), before anything else is done."""
    existing = [
        str(out_dir / name)
        for name in KIT_FILES
        if (out_dir / name).exists() or (out_dir / name).is_symlink()
    ]
    if existing and not force:
        raise PickupError(f"not overwriting {', '.join(existing)}: remove them or pass --force")
    for place in (out_dir, *out_dir.parents):
        if place.exists():
            if not place.is_dir():
                raise PickupError(f"cannot write the kit: {place} is not a directory")
            return


def _write(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)  # whatever the umask


def write_kit(
    kit: PickupKit, out_dir: Path, helper_install_path: str | None = None, *, force: bool = False
) -> list[Path]:
    """Write the helper (0755), the managed settings and the README into `out_dir`; return their paths.

    Refuses (PickupError, nothing written) when one of them exists, unless `force`.
    """
    files = {
        out_dir / HELPER_FILE: (render_helper_script(kit), 0o755),
        out_dir / SETTINGS_FILE: (
            json.dumps(render_managed_settings(kit, helper_install_path), indent=2) + "\n",
            0o644,
        ),
        out_dir / README_FILE: (render_readme(kit, helper_install_path), 0o644),
    }
    check_out_dir(out_dir, force=force)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, (text, mode) in files.items():
        if path.is_symlink():
            path.unlink()  # --force replaces the link, never writes through it
        _write(path, text, mode)
    return list(files)
