"""The pickup kit: managed settings, and the otelHeadersHelper script run for real by every POSIX shell
installed here, against a fake `aws` (the kit's fixed AWS CLI path) that prints whatever the test asks."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tokenwarden.domain.naming import Naming
from tokenwarden.domain.registry import load_registry
from tokenwarden.pickup import (
    DEFAULT_AWS_CLI,
    DEFAULT_CACHE_DIR,
    DEFAULT_HELPER_PATH,
    HELPER_FILE,
    README_FILE,
    SETTINGS_FILE,
    PickupError,
    PickupKit,
    build_kit,
    default_otlp_metrics_endpoint,
    render_helper_script,
    render_managed_settings,
    write_kit,
)

TOKEN = "Fake-Token_0123456789abcdef.ghij~klmn+opqr/stuv=="
NEW_TOKEN = "Rotated-Token_fedcba9876543210"
PREFIX = '{"Authorization": "Bearer '
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:tokenwarden/web-ana-AbC123"

FAKE_AWS = """#!/bin/sh
[ -n "$FAKE_AWS_LOG" ] && echo "aws $*" >>"$FAKE_AWS_LOG"
[ -n "$FAKE_AWS_SLEEP" ] && sleep "$FAKE_AWS_SLEEP"
if [ -n "$FAKE_AWS_EXIT" ]; then
    echo "An error occurred (AccessDeniedException) when calling the GetSecretValue operation" >&2
    exit "$FAKE_AWS_EXIT"
fi
printf '%s\\n' "$FAKE_AWS_OUTPUT"
"""

# Every POSIX shell here runs the script: /bin/sh (dash on Debian), bash in POSIX mode (macOS's
# /bin/sh is bash 3.2 in POSIX mode), posh (rejects anything beyond POSIX) and zsh as sh (what macOS's
# /bin/sh can be switched to) when installed.
SHELLS = [
    pytest.param(("sh",), id="sh"),
    pytest.param(("dash",), id="dash", marks=pytest.mark.skipif(not shutil.which("dash"), reason="no dash")),
    pytest.param(
        ("bash", "--posix"), id="bash", marks=pytest.mark.skipif(not shutil.which("bash"), reason="no bash")
    ),
    pytest.param(("posh",), id="posh", marks=pytest.mark.skipif(not shutil.which("posh"), reason="no posh")),
    pytest.param(
        ("zsh", "--emulate", "sh"),
        id="zsh",
        marks=pytest.mark.skipif(not shutil.which("zsh"), reason="no zsh"),
    ),
]


def make_kit(**overrides: object) -> PickupKit:
    fields: dict[str, object] = {
        "principal": "web-ana",
        "team": "web",
        "secret_arn": SECRET_ARN,
        "region": "eu-west-1",
        "otlp_metrics_endpoint": default_otlp_metrics_endpoint("eu-west-1"),
    }
    fields.update(overrides)
    return PickupKit.model_validate(fields)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def run_in_own_group(command: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run `command` as Claude Code does (pipes on stdout and stderr, waiting for them to close), as
    the leader of a process group of its own; returns what it did and the group, which the
    helper's background refresh stays in."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    out, err = process.communicate(timeout=10)
    return subprocess.CompletedProcess(command, process.returncode, out, err), process.pid


def group_running(group: int) -> bool:
    """Whether a live process (a zombie is not one) is left in the process group."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for stat_file in proc.glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] != "Z" and int(fields[2]) == group:
            return True
    return False


class Laptop:
    """One developer's machine: the installed helper, generated with its cache directory and a fake
    AWS CLI under `root`, and the environment Claude Code would give it."""

    def __init__(self, root: Path, kit: PickupKit, shell: tuple[str, ...] = ()) -> None:
        self.root = root
        self.shell = shell
        self.aws = root / "fake-aws"
        self.aws.write_text(FAKE_AWS, encoding="utf-8")
        self.aws.chmod(0o755)
        self.cache_dir = root / "cache"
        fixed = {"cache_dir": str(self.cache_dir), "aws_cli": (str(self.aws),)}
        self.kit = kit = kit.model_copy(
            update={k: v for k, v in fixed.items() if k not in kit.model_fields_set}
        )
        self.cache_dir = Path(kit.cache_dir)
        self.script = root / HELPER_FILE
        self.script.write_text(render_helper_script(kit), encoding="utf-8")
        self.script.chmod(0o755)
        self.log = root / "aws.log"
        self.cache = self.cache_dir / f"{kit.principal}.json"
        self.lock = self.cache_dir / f".{kit.principal}.lock"
        self.groups: list[int] = []
        self.env: dict[str, str] = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(root / "home"),
            "FAKE_AWS_LOG": str(self.log),
            "FAKE_AWS_OUTPUT": TOKEN,
        }

    def run(self, **env: str) -> str:
        """Run the helper as Claude Code does (pipes on stdout/stderr, waits for them to close)."""
        command = [*self.shell, str(self.script)] if self.shell else [str(self.script)]
        done, group = run_in_own_group(command, {**self.env, **env})
        self.groups.append(group)
        assert done.returncode == 0, done
        assert done.stderr == "", done.stderr
        return done.stdout

    def refreshing(self) -> bool:
        """Whether a refresh any run started (or anything it runs) is still going."""
        return any(group_running(g) for g in self.groups)

    def wait_idle(self) -> None:
        """Until everything the runs started has exited (each background refresh, its EXIT trap)."""
        assert wait_for(lambda: not self.refreshing(), timeout=10), (
            f"refresh still running: {self.aws_calls()}"
        )

    def headers(self, **env: str) -> dict[str, str]:
        out = self.run(**env)
        parsed = json.loads(out)
        assert isinstance(parsed, dict)
        return parsed

    def aws_calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def wait_settled(self, calls: int) -> None:
        """Every refresh started has finished, and `calls` of them called AWS."""
        self.wait_idle()
        assert len(self.aws_calls()) >= calls, self.aws_calls()

    def filled(self, token: str = TOKEN, **env: str) -> None:
        """First run prints {}; the background refresh fills the cache within a couple of seconds."""
        assert self.headers(**env) == {}
        expected = f'{PREFIX}{token}"}}\n'
        assert wait_for(lambda: self.cache.exists() and self.cache.read_text() == expected), self.aws_calls()
        self.wait_settled(1)

    def make_stale(self, seconds: int = 3600) -> None:
        past = time.time() - seconds
        os.utime(self.cache, (past, past))

    def leftovers(self) -> list[str]:
        return (
            sorted(p.name for p in self.cache_dir.iterdir() if p != self.cache)
            if self.cache_dir.exists()
            else []
        )


@pytest.fixture
def laptop(tmp_path: Path) -> Laptop:
    return Laptop(tmp_path, make_kit())


# -- the kit and the managed settings --------------------------------------------------------------


def test_managed_settings_point_claude_code_at_the_endpoint_with_the_team_and_no_token() -> None:
    kit = make_kit(extra_resource_attributes={"cost_center": "CC 42,a=b", "department": "eng"})
    settings = render_managed_settings(kit)
    assert settings["otelHeadersHelper"] == DEFAULT_HELPER_PATH
    assert settings["env"] == {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://monitoring.eu-west-1.amazonaws.com/v1/metrics",
        "OTEL_METRIC_EXPORT_INTERVAL": "60000",
        "OTEL_RESOURCE_ATTRIBUTES": "team.id=web,cost_center=CC%2042%2Ca%3Db,department=eng",
    }
    assert all(isinstance(v, str) for v in settings["env"].values())
    text = json.dumps(settings)
    assert "Bearer" not in text and "Authorization" not in text and "HEADERS" not in text
    for value in (settings["otelHeadersHelper"], *settings["env"].values()):
        assert not re.search(r"[A-Za-z0-9_+=-]{32,}", value), f"token-like value {value!r}"
    custom = render_managed_settings(
        make_kit(protocol="http/json", export_interval_ms=5000), helper_path="/opt/tw/helper.sh"
    )
    assert custom["otelHeadersHelper"] == "/opt/tw/helper.sh"
    assert custom["env"]["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/json"
    assert custom["env"]["OTEL_METRIC_EXPORT_INTERVAL"] == "5000"


@pytest.mark.parametrize(
    ("cache_dir", "rules"),
    [
        (None, ["Read(~/.cache/tokenwarden/**)", "Edit(~/.cache/tokenwarden/**)"]),
        ("/var/cache/tokenwarden", ["Read(//var/cache/tokenwarden/**)", "Edit(//var/cache/tokenwarden/**)"]),
    ],
)
def test_the_kit_denies_claude_codes_file_tools_the_cache(cache_dir: str | None, rules: list[str]) -> None:
    """Claude Code's permission rules: `~/` is the home directory, `//` starts an absolute path."""
    kit = make_kit(**({"cache_dir": cache_dir} if cache_dir else {}))
    settings = render_managed_settings(kit)
    assert settings["permissions"] == {"deny": rules}
    assert all(f"({'/' if cache_dir else ''}{kit.cache_dir}/**)" in rule for rule in rules)


def test_a_developer_kit_reports_under_its_team(tmp_path: Path) -> None:
    registry = tmp_path / "teams.yaml"
    registry.write_text(
        "version: 1\nprincipals:\n  - {id: web, kind: team}\n  - {id: web-ana, kind: developer, team: web}\n"
    )
    ana = next(p for p in load_registry(registry).principals if p.id == "web-ana")
    arn = "arn:aws:secretsmanager:us-west-2:111122223333:secret:tw/web-ana-x1Y2z3"
    kit = build_kit(
        ana, naming=Naming(secret_prefix="tw/"), secret_arn=arn, region="us-west-2", aws_profile="dev-sso"
    )
    assert (kit.principal, kit.team, kit.secret_arn, kit.secret_name, kit.aws_profile) == (
        "web-ana",
        "web",
        arn,
        "tw/web-ana",
        "dev-sso",
    )
    assert kit.otlp_metrics_endpoint == "https://monitoring.us-west-2.amazonaws.com/v1/metrics"
    assert render_managed_settings(kit)["env"]["OTEL_RESOURCE_ATTRIBUTES"] == "team.id=web"
    with pytest.raises(PickupError, match="web-ana"):
        build_kit(ana, naming=Naming(), secret_arn=arn, region="nowhere")
    with pytest.raises(PickupError, match="is not the secret tokenwarden/web-ana"):
        build_kit(ana, naming=Naming(), secret_arn=arn, region="us-west-2")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("principal", "Web Team"),
        ("team", "a;b"),
        ("secret_arn", "x'; rm -rf ~"),
        ("secret_arn", "tokenwarden/web-ana"),  # a name resolves in whatever account is current
        ("secret_arn", "arn:aws:secretsmanager:eu-west-1:111122223333:secret:tokenwarden/web-ana"),
        ("secret_arn", "arn:aws:secretsmanager:us-east-1:111122223333:secret:tokenwarden/web-ana-AbC123"),
        ("cache_dir", "relative/cache"),
        ("cache_dir", "$HOME/.cache/tokenwarden"),
        ("cache_dir", "${XDG_CACHE_HOME}/tokenwarden"),
        ("cache_dir", "~/../other"),
        ("cache_dir", "/var/cache/token warden"),
        ("cache_dir", "/"),
        ("cache_dir", "~other/.cache"),
        ("aws_cli", ()),
        ("aws_cli", ("aws",)),
        ("aws_cli", ("/usr/bin/aws $(id)",)),
        ("aws_cli", ("/opt/*/aws",)),
        ("region", "us east"),
        ("otlp_metrics_endpoint", "http://monitoring.us-east-1.amazonaws.com/v1/metrics"),
        ("otlp_metrics_endpoint", "https://x/v1 metrics"),
        ("aws_profile", "my profile"),
        ("aws_profile", "$(id)"),
        ("refresh_minutes", 0),
        ("protocol", "grpc"),
        ("extra_resource_attributes", {"team.id": "other"}),
        ("extra_resource_attributes", {"bad key": "x"}),
    ],
)
def test_the_kit_refuses_values_that_could_break_the_script_or_the_settings(
    field: str, value: object
) -> None:
    with pytest.raises(ValueError, match=field):
        make_kit(**{field: value})


def test_loopback_http_is_allowed_for_the_embedded_stack() -> None:
    assert make_kit(
        otlp_metrics_endpoint="http://127.0.0.1:4318/v1/metrics"
    ).otlp_metrics_endpoint.startswith("http:")


@pytest.mark.parametrize(
    "path", ["relative/helper.sh", "/Library/Application Support/x.sh", "/opt/$(id).sh", "/a/../b"]
)
def test_the_helper_path_must_survive_sh_c(path: str) -> None:
    with pytest.raises(PickupError, match="install path"):
        render_managed_settings(make_kit(), helper_path=path)


# -- the script, statically ------------------------------------------------------------------------


def test_the_script_is_posix_sh_with_every_value_filled_in_and_quoted() -> None:
    script = render_helper_script(make_kit(aws_profile="dev-sso", refresh_minutes=15))
    assert script.startswith("#!/bin/sh\n")
    assert "@@" not in script
    assert "set -x" not in script and "set -o xtrace" not in script
    lines = script.splitlines()
    for line in (
        "principal=web-ana",
        f"secret_arn={SECRET_ARN}",
        "region=eu-west-1",
        "profile=dev-sso",
        "refresh_minutes=15",
        "cache_dir='~/.cache/tokenwarden'",
        "aws_clis='/usr/local/bin/aws /opt/homebrew/bin/aws /usr/bin/aws'",
        "PATH=/usr/bin:/bin:/usr/sbin:/sbin",
    ):
        assert line in lines
    assert "profile=''" in render_helper_script(make_kit()).splitlines()
    assert (make_kit().cache_dir, make_kit().aws_cli) == (DEFAULT_CACHE_DIR, DEFAULT_AWS_CLI)


def test_the_script_reads_no_variable_the_environment_could_set() -> None:
    """Every variable it expands is one it assigns itself (or a positional parameter)."""
    script = render_helper_script(make_kit())
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", code))
    assigned = set(re.findall(r"(?:^|[\s;(\"])([A-Za-z_][A-Za-z0-9_]*)=", code, re.MULTILINE))
    assigned |= set(re.findall(r"\bfor ([A-Za-z_][A-Za-z0-9_]*) in", code))
    assigned |= {"line"} if "read -r line" in code else set()
    assert used <= assigned, f"read from the environment: {sorted(used - assigned)}"
    for name in ("HOME", "XDG_CACHE_HOME", "TOKENWARDEN_CACHE_DIR", "TOKENWARDEN_AWS_CLI", "TMPDIR"):
        assert name not in code


@pytest.mark.parametrize(
    "checker",
    [
        ("sh", "-n"),
        ("dash", "-n"),
        ("bash", "--posix", "-n"),
        ("posh", "-n"),
        ("shellcheck", "--shell=sh", "--severity=style"),
    ],
    ids=lambda c: c[0],
)
def test_the_script_passes_every_shell_and_linter_installed(checker: tuple[str, ...], tmp_path: Path) -> None:
    if not shutil.which(checker[0]):
        pytest.skip(f"{checker[0]} is not installed")
    script = tmp_path / HELPER_FILE
    script.write_text(render_helper_script(make_kit(aws_profile="dev-sso")))
    done = subprocess.run([*checker, str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# -- the script, run --------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_an_empty_cache_answers_braces_at_once_then_the_background_refresh_fills_it(
    shell: tuple[str, ...], tmp_path: Path
) -> None:
    laptop = Laptop(tmp_path, make_kit(aws_profile="dev-sso"), shell)
    out = laptop.run(FAKE_AWS_SLEEP="1")
    assert out == "{}\n"
    assert not laptop.cache.exists(), "answered before its refresh finished"
    laptop.wait_settled(1)
    assert laptop.headers() == {"Authorization": f"Bearer {TOKEN}"}
    assert stat.S_IMODE(laptop.cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(laptop.cache_dir.stat().st_mode) == 0o700
    assert laptop.leftovers() == [], "temp file or lock left behind"
    (call,) = laptop.aws_calls()
    assert call.split() == [
        "aws", "secretsmanager", "get-secret-value", "--secret-id", SECRET_ARN,
        "--version-stage", "AWSCURRENT", "--query", "SecretString", "--output", "text",
        "--region", "eu-west-1", "--cli-connect-timeout", "10", "--cli-read-timeout", "20",
        "--profile", "dev-sso",
    ]  # fmt: skip


def test_claude_code_runs_it_through_sh_c(laptop: Laptop) -> None:
    laptop.filled()
    done = subprocess.run(
        ["sh", "-c", str(laptop.script)],
        env=laptop.env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode == 0
    assert json.loads(done.stdout) == {"Authorization": f"Bearer {TOKEN}"}


def test_a_fresh_cache_is_served_without_calling_aws_and_a_stale_one_is_refreshed(laptop: Laptop) -> None:
    laptop.filled()
    for _ in range(3):
        assert laptop.headers(FAKE_AWS_OUTPUT=NEW_TOKEN) == {"Authorization": f"Bearer {TOKEN}"}
    laptop.wait_idle()
    assert len(laptop.aws_calls()) == 1, "a fresh cache must not start a refresh"

    laptop.make_stale()
    # The stale answer comes at once (the old key is still valid during its grace)...
    assert laptop.headers(FAKE_AWS_OUTPUT=NEW_TOKEN) == {"Authorization": f"Bearer {TOKEN}"}
    laptop.wait_settled(2)
    # ...and the next call serves the rotated token, with no restart.
    assert laptop.headers() == {"Authorization": f"Bearer {NEW_TOKEN}"}
    assert stat.S_IMODE(laptop.cache.stat().st_mode) == 0o600
    assert laptop.leftovers() == []


def test_a_failing_aws_leaves_the_previous_cache_untouched(laptop: Laptop) -> None:
    laptop.filled()
    laptop.make_stale()
    before = laptop.cache.read_bytes()
    assert laptop.headers(FAKE_AWS_EXIT="255") == {"Authorization": f"Bearer {TOKEN}"}
    laptop.wait_settled(2)
    assert laptop.cache.read_bytes() == before
    assert laptop.leftovers() == []
    assert laptop.headers(FAKE_AWS_EXIT="255") == {"Authorization": f"Bearer {TOKEN}"}


def test_no_aws_cli_at_all_still_answers(tmp_path: Path) -> None:
    laptop = Laptop(tmp_path, make_kit(aws_cli=(str(tmp_path / "missing"), str(tmp_path / "also-missing"))))
    assert laptop.run() == "{}\n"
    laptop.wait_idle()
    assert not laptop.cache_dir.exists(), "nothing to fetch with: nothing is created"


def test_the_first_aws_cli_found_is_the_one_run(tmp_path: Path) -> None:
    first = tmp_path / "missing"
    laptop = Laptop(tmp_path, make_kit(aws_cli=(str(first), str(tmp_path / "fake-aws"))))
    laptop.filled()
    assert laptop.aws_calls()[0].startswith("aws secretsmanager get-secret-value")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "None",
        "two words",
        'quo"te',
        "single'quote",
        "back\\slash",
        "tab\there",
        "line\nbreak",
        "t\u00e9l\u00e9",
    ],
    ids=["empty", "None", "space", "dquote", "squote", "backslash", "tab", "newline", "non-ascii"],
)
def test_garbage_from_aws_is_rejected(garbage: str, laptop: Laptop) -> None:
    assert laptop.headers(FAKE_AWS_OUTPUT=garbage) == {}
    laptop.wait_settled(1)
    assert not laptop.cache.exists()
    laptop.filled()  # a good answer later is taken
    laptop.make_stale()
    before = laptop.cache.read_bytes()
    assert laptop.headers(FAKE_AWS_OUTPUT=garbage) == {"Authorization": f"Bearer {TOKEN}"}
    laptop.wait_settled(3)
    assert laptop.cache.read_bytes() == before
    assert laptop.leftovers() == []


@pytest.mark.parametrize("content", ["", "garbage\n", '{"Authorization": "Bearer a b"}\n', '{"X": "1"}\n'])
def test_a_corrupt_cache_answers_braces_and_is_replaced(content: str, laptop: Laptop) -> None:
    laptop.cache_dir.mkdir(mode=0o700)
    laptop.cache.write_text(content)
    laptop.filled()


def test_a_slow_aws_never_holds_claude_code(laptop: Laptop) -> None:
    """How fast it answers is a benchmark (benchmarks/test_pickup_speed.py); here, that it answers
    while its refresh is still running."""
    assert laptop.run(FAKE_AWS_SLEEP="3") == "{}\n"
    assert laptop.refreshing() and not laptop.cache.exists()
    laptop.wait_settled(1)
    assert laptop.cache.exists()


def test_concurrent_calls_start_one_refresh(laptop: Laptop) -> None:
    assert laptop.headers(FAKE_AWS_SLEEP="1") == {}
    assert wait_for(laptop.lock.exists), "the refresh takes its lock"
    for _ in range(4):
        assert laptop.headers(FAKE_AWS_SLEEP="1") == {}
    assert wait_for(lambda: laptop.cache.exists(), timeout=10)
    laptop.wait_settled(1)
    assert len(laptop.aws_calls()) == 1, laptop.aws_calls()


def test_a_lock_left_by_a_dead_refresh_is_taken_over_and_a_live_one_respected(laptop: Laptop) -> None:
    laptop.cache_dir.mkdir(mode=0o700)
    laptop.lock.mkdir()
    assert laptop.headers() == {}
    laptop.wait_idle()
    assert laptop.aws_calls() == [], "a fresh lock belongs to a running refresh"
    past = time.time() - 600
    os.utime(laptop.lock, (past, past))
    laptop.filled()


# -- nothing can redirect it -------------------------------------------------------------------------


def test_environment_overrides_of_the_cache_the_cli_and_path_are_ignored(laptop: Laptop) -> None:
    elsewhere = laptop.root / "elsewhere"
    decoys = laptop.root / "decoys"
    decoys.mkdir()
    decoy_log = laptop.root / "decoys.log"
    for name in ("aws", "id", "ls", "mktemp", "mkdir", "mv", "find", "rm", "rmdir"):
        decoy = decoys / name
        decoy.write_text(f'#!/bin/sh\necho "{name} $*" >>{decoy_log}\nexit 1\n')
        decoy.chmod(0o755)
    laptop.env.update(
        {
            "TOKENWARDEN_CACHE_DIR": str(elsewhere / "cache"),
            "TOKENWARDEN_AWS_CLI": str(decoys / "aws"),
            "XDG_CACHE_HOME": str(elsewhere / "xdg"),
            "HOME": str(elsewhere / "home"),
            "PATH": f"{decoys}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
    )
    laptop.filled()
    assert not elsewhere.exists()
    assert not decoy_log.exists(), decoy_log.read_text()
    assert laptop.headers() == {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("mode", [0o770, 0o750, 0o777, 0o707, 0o701, 0o1777, 0o500])
def test_a_cache_directory_others_can_reach_is_neither_read_nor_written(mode: int, laptop: Laptop) -> None:
    laptop.cache_dir.mkdir()
    laptop.cache.write_text(f'{PREFIX}{TOKEN}"}}\n')
    laptop.cache_dir.chmod(mode)
    planted = laptop.cache.read_text()

    assert laptop.headers(FAKE_AWS_OUTPUT=NEW_TOKEN) == {}
    laptop.wait_idle()

    assert laptop.aws_calls() == [], "no token is fetched into a directory others can reach"
    assert laptop.cache.read_text() == planted
    laptop.cache_dir.chmod(0o700)
    assert sorted(p.name for p in laptop.cache_dir.iterdir()) == [laptop.cache.name]


def test_a_cache_directory_that_is_a_symlink_is_neither_read_nor_written(laptop: Laptop) -> None:
    target = laptop.root / "target"
    target.mkdir(mode=0o700)
    (target / laptop.cache.name).write_text(f'{PREFIX}{TOKEN}"}}\n')
    laptop.cache_dir.symlink_to(target)

    assert laptop.headers(FAKE_AWS_OUTPUT=NEW_TOKEN) == {}
    laptop.wait_idle()

    assert laptop.aws_calls() == []
    assert sorted(p.name for p in target.iterdir()) == [laptop.cache.name]
    assert (target / laptop.cache.name).read_text() == f'{PREFIX}{TOKEN}"}}\n'


@pytest.mark.skipif(os.geteuid() != 0, reason="making a directory someone else owns needs root")
def test_a_cache_directory_owned_by_someone_else_is_neither_read_nor_written(laptop: Laptop) -> None:
    laptop.cache_dir.mkdir(mode=0o700)
    laptop.cache.write_text(f'{PREFIX}{TOKEN}"}}\n')
    os.chown(laptop.cache_dir, 65534, 65534)  # nobody, or an id no account has

    assert laptop.headers(FAKE_AWS_OUTPUT=NEW_TOKEN) == {}
    laptop.wait_idle()

    assert laptop.aws_calls() == []
    assert laptop.cache.read_text() == f'{PREFIX}{TOKEN}"}}\n'


def test_a_cache_file_that_is_a_symlink_is_not_read(laptop: Laptop) -> None:
    laptop.cache_dir.mkdir(mode=0o700)
    elsewhere = laptop.root / "planted.json"
    elsewhere.write_text(f'{PREFIX}{TOKEN}"}}\n')
    laptop.cache.symlink_to(elsewhere)
    assert laptop.headers(FAKE_AWS_OUTPUT=NEW_TOKEN) == {}
    assert wait_for(lambda: not laptop.cache.is_symlink()), "the refresh replaces the link"
    laptop.wait_settled(1)
    assert elsewhere.read_text() == f'{PREFIX}{TOKEN}"}}\n'
    assert laptop.headers() == {"Authorization": f"Bearer {NEW_TOKEN}"}


def account_home_of(script: str, env: dict[str, str]) -> str:
    """Run the helper's own `account_home` function (the script up to where it is first used)."""
    functions = script.split("\ncase $cache_dir in", 1)[0]
    done = subprocess.run(
        ["sh", "-c", functions + '\naccount_home && printf %s "$home"'],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode == 0, done
    return done.stdout


def test_home_comes_from_the_account_database_not_the_environment(tmp_path: Path) -> None:
    script = render_helper_script(make_kit())
    expected = pwd.getpwuid(os.getuid()).pw_dir
    for home in (str(tmp_path), "/nonexistent", ""):
        assert account_home_of(script, {"HOME": home, "PATH": "/usr/bin:/bin"}) == expected


def test_a_home_relative_cache_is_not_found_through_home(tmp_path: Path) -> None:
    """A planted cache under $HOME is not served, and nothing is made in the real home."""
    relative = f".tokenwarden-test-{os.getpid()}-{time.monotonic_ns()}"
    laptop = Laptop(tmp_path, make_kit(cache_dir=f"~/{relative}", aws_cli=(str(tmp_path / "missing"),)))
    planted = tmp_path / "home" / relative
    planted.mkdir(parents=True, mode=0o700)
    (planted / "web-ana.json").write_text(f'{PREFIX}{TOKEN}"}}\n')
    real = Path(pwd.getpwuid(os.getuid()).pw_dir) / relative

    assert laptop.headers() == {}
    laptop.wait_idle()
    assert not real.exists()


def test_the_token_reaches_no_argv_and_no_other_file(laptop: Laptop) -> None:
    """The commands it runs never get the token as an argument: it is written by printf, a builtin
    (the AWS CLI's arguments are logged by the fake one)."""
    script = render_helper_script(laptop.kit)
    assert re.findall(
        r"^\s*printf '%s%s%s\\n' \"\$prefix\" \"\$token\" \"\$suffix\" >\"\$tmp\"", script, re.M
    )
    for line in script.splitlines():
        if "$token" in line and not line.lstrip().startswith("#"):
            assert re.search(r"\b(printf|valid_token|case|token=|\[)", line), line
    laptop.filled()
    laptop.make_stale()
    assert laptop.headers(FAKE_AWS_OUTPUT=NEW_TOKEN) == {"Authorization": f"Bearer {TOKEN}"}
    laptop.wait_settled(2)
    assert laptop.headers() == {"Authorization": f"Bearer {NEW_TOKEN}"}
    for token in (TOKEN, NEW_TOKEN):
        assert token not in laptop.log.read_text()
    holders = [
        p.relative_to(laptop.root)
        for p in laptop.root.rglob("*")
        if p.is_file() and NEW_TOKEN.encode() in p.read_bytes()
    ]
    assert holders == [laptop.cache.relative_to(laptop.root)]


# -- write_kit -------------------------------------------------------------------------------------


def test_write_kit_writes_three_files_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "kit"
    kit = make_kit()
    paths = write_kit(kit, out, helper_install_path="/opt/tokenwarden/helper.sh")
    assert [p.name for p in paths] == [HELPER_FILE, SETTINGS_FILE, README_FILE]
    helper, settings, readme = paths
    assert stat.S_IMODE(helper.stat().st_mode) == 0o755
    assert helper.read_text() == render_helper_script(kit)
    assert json.loads(settings.read_text()) == render_managed_settings(kit, "/opt/tokenwarden/helper.sh")
    text = readme.read_text()
    assert "/opt/tokenwarden/helper.sh" in text and "managed-settings.json" in text and SECRET_ARN in text
    assert "Read(" in text and "chmod 700" in text

    settings.write_text("{}")
    with pytest.raises(PickupError, match="--force") as refused:
        write_kit(make_kit(team="other"), out)
    assert str(settings) in str(refused.value)
    assert settings.read_text() == "{}", "a refused write must change nothing"
    assert helper.read_text() == render_helper_script(kit)

    write_kit(make_kit(team="other"), out, force=True)
    assert json.loads(settings.read_text())["env"]["OTEL_RESOURCE_ATTRIBUTES"] == "team.id=other"
    assert json.loads(settings.read_text())["otelHeadersHelper"] == DEFAULT_HELPER_PATH


def test_write_kit_with_force_replaces_a_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    out = tmp_path / "kit"
    out.mkdir()
    target = tmp_path / "elsewhere.json"
    target.write_text("keep")
    (out / SETTINGS_FILE).symlink_to(target)
    with pytest.raises(PickupError):
        write_kit(make_kit(), out)
    write_kit(make_kit(), out, force=True)
    assert target.read_text() == "keep"
    assert not (out / SETTINGS_FILE).is_symlink()
