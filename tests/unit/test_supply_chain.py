"""What the build trusts: the layer and the development environment install only hashed, pinned files
from locks of one resolution; the tools the Makefile installs are pinned; the VictoriaMetrics fetch
accepts only the pinned package, and says how to add VictoriaMetrics where it cannot fetch it. Offline:
the locks and the Makefiles are read, `make` only prints its commands, and the fetch is fed local files
and stand-in programs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tokenwarden.local import victoriametrics
from tokenwarden.local.victoriametrics import BINARY_ENV, VictoriaMetricsNotFoundError, find_binary

LAYER = ROOT / "layers" / "shared"
LOCK = LAYER / "requirements.lock.txt"
DEV_LOCK = ROOT / "requirements-dev.lock.txt"
FETCH_VM = ROOT / "scripts" / "fetch-victoriametrics"

PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[^\]]+\])?==(?P<version>[^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}\b")


def _entries(path: Path) -> list[str]:
    """The requirement entries of a requirements file, continuation lines joined, comments dropped."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = (
        line.split(" #", 1)[0].strip() for line in text.splitlines() if not line.lstrip().startswith("#")
    )
    return [line for line in lines if line]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for entry in _entries(path):
        match = PIN.match(entry)
        assert match, f"{path.name}: not an exact pin: {entry}"
        pins[_normalized(match["name"]) + (match["extras"] or "")] = match["version"]
    return pins


def _versions(path: Path) -> dict[str, set[str]]:
    """Package name (extras dropped) -> the versions a lock pins for it (a universal lock may pin two,
    each under its own environment marker)."""
    versions: dict[str, set[str]] = {}
    for entry in _entries(path):
        match = PIN.match(entry)
        assert match, f"{path.name}: not an exact pin: {entry}"
        versions.setdefault(_normalized(match["name"]), set()).add(match["version"])
    return versions


# -------------------------------------------------------------------------------- both locks
@pytest.mark.parametrize("lock", [LOCK, DEV_LOCK], ids=["layer", "development"])
def test_every_locked_package_is_pinned_exactly_and_carries_sha256_hashes(lock: Path) -> None:
    entries = _entries(lock)
    assert len(entries) > 7, "the lock lists the transitive dependencies too"
    for entry in entries:
        assert PIN.match(entry), f"not pinned with ==: {entry}"
        assert HASH.search(entry), f"no --hash=sha256: {entry}"
        assert re.search(r"(^|\s)--hash=(?!sha256:)", entry) is None, f"a weaker hash than sha256: {entry}"


@pytest.mark.parametrize("lock", [LOCK, DEV_LOCK], ids=["layer", "development"])
def test_the_lock_names_no_index_and_no_local_or_remote_file(lock: Path) -> None:
    options = [entry for entry in _entries(lock) if entry.startswith("-")]
    assert options == []
    for entry in _entries(lock):
        assert "://" not in entry and " @ " not in entry, entry
    assert "://" not in lock.read_text(encoding="utf-8"), "no index address, not even in a comment"


# ------------------------------------------------------------------------ the development lock
def test_every_package_that_ships_is_tested_at_the_version_that_ships() -> None:
    shipped, developed = _versions(LOCK), _versions(DEV_LOCK)
    drifted = {
        name: (sorted(versions), sorted(developed.get(name, set())))
        for name, versions in shipped.items()
        if developed.get(name) != versions
    }
    assert drifted == {}, f"layer lock vs development lock (run `make lock`): {drifted}"


def test_the_development_lock_holds_every_dependency_pyproject_names() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    names = {_normalized(re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0]) for requirement in wanted}
    missing = names - set(_versions(DEV_LOCK))
    assert missing == set(), f"in pyproject.toml but not in {DEV_LOCK.name} (run `make lock`): {missing}"


def test_the_development_lock_is_resolved_with_the_layer_lock_as_constraints() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    recipe = re.search(r"^lock:.*?(?=^\S)", makefile, re.MULTILINE | re.DOTALL)
    assert recipe
    compiles = [line for line in recipe[0].split("&&") if "$(UV_COMPILE)" in line]
    assert len(compiles) == 2, compiles
    layer, development = compiles
    assert "--output-file $(LAYER_LOCK)" in layer
    for option in (
        "--extra dev",
        "$(LAYER_REQUIREMENTS)",
        "--constraint $(LAYER_LOCK)",
        "--output-file $(DEV_LOCK)",
    ):
        assert option in development, (option, development)


def test_the_lock_holds_every_direct_pin_of_the_layer_at_the_same_version() -> None:
    direct, locked = _pins(LAYER / "requirements.txt"), _pins(LOCK)
    assert {"boto3", "botocore", "pydantic", "pydantic-core", "pyyaml"} <= {n.split("[")[0] for n in locked}
    stale = {
        name: (version, locked.get(name)) for name, version in direct.items() if locked.get(name) != version
    }
    assert stale == {}, f"requirements.txt and its lock disagree (run `make lock`): {stale}"


def test_the_layer_installs_from_the_lock_with_required_hashes_for_python313_arm64() -> None:
    makefile = (LAYER / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    installs = [line for line in makefile.splitlines() if "pip install" in line]
    assert len(installs) == 1, installs
    install = installs[0]
    for option in (
        "--require-hashes",
        "--only-binary=:all:",
        "--platform manylinux2014_aarch64",
        "--python-version 3.13",
        '-r "$(LOCK)"',
    ):
        assert option in install, (option, install)
    assert re.search(r"^LOCK\s*:=\s*\$\(HERE\)/requirements\.lock\.txt$", makefile, re.MULTILINE)


# ---------------------------------------------------------------------------------- pinned tools
def _dry_run(*targets: str, **variables: str) -> list[str]:
    """The commands `make` would run for targets, as if nothing were built yet (nothing runs)."""
    assignments = [f"{name}={value}" for name, value in variables.items()]
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", *targets, *assignments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_aws_sam_cli_checkov_and_uv_are_installed_at_exact_versions() -> None:
    commands = _dry_run("validate", "build", "lock", PYTHON="python3")
    installs = [c for c in commands if re.search(r"pip install", c) and "--upgrade pip" not in c]
    tools = {
        match["name"]: match["version"]
        for c in installs
        if (match := re.search(r"pip install --quiet (?P<name>[a-z-]+)==(?P<version>\S+)$", c))
    }
    assert set(tools) == {"aws-sam-cli", "checkov", "uv"}, installs
    assert all(re.fullmatch(r"\d+(\.\d+)+", version) for version in tools.values()), tools
    venv = {
        "pip install --quiet --require-hashes -r requirements-dev.lock.txt",
        "pip install --quiet --no-deps -e .",
    }
    unpinned = [c for c in installs if "==" not in c and not any(c.endswith(v) for v in venv)]
    assert unpinned == []


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_venv_installs_only_the_hashed_lock_and_the_package_without_its_dependencies() -> None:
    installs = [
        c for c in _dry_run("venv", PYTHON="python3") if "pip install" in c and "--upgrade pip" not in c
    ]
    assert [c.split(" -m ", 1)[1] for c in installs] == [
        "pip install --quiet --require-hashes -r requirements-dev.lock.txt",
        "pip install --quiet --no-deps -e .",
    ]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(
    ("target", "fetches"), [("lint", False), ("test-fast", False), ("demo", True), ("test", True)]
)
def test_only_the_targets_that_run_victoriametrics_fetch_it(target: str, fetches: bool) -> None:
    commands = _dry_run(target, PYTHON="python3")
    assert any("scripts/fetch-victoriametrics" in c for c in commands) is fetches, commands


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_clean_removes_what_the_targets_create() -> None:
    commands = "\n".join(_dry_run("clean", PYTHON="python3")).replace("\\\n", " ").splitlines()
    removed = {path for c in commands if c.startswith("rm -rf ") for path in c.split()[2:]}
    products = {".venv", ".tools", ".cache", ".aws-sam", "build", "src/*.egg-info"}
    caches = {".pytest_cache", ".hypothesis", ".benchmarks", ".mypy_cache", ".ruff_cache"}
    assert products | caches <= removed, (products | caches) - removed
    assert not {"requirements-dev.lock.txt", "layers", "."} & removed, "the locks are sources"


def test_ci_runs_lint_and_type_checks_before_the_tests() -> None:
    steps = [
        line
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.startswith("make ")
    ]
    assert "make lint" in steps and "make test" in steps, steps
    assert steps.index("make lint") < steps.index("make test"), steps


def test_pre_commit_runs_ruff_and_mypy_from_the_venv_without_network() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    assert [repo["repo"] for repo in config["repos"]] == ["local"], "a remote hook repository is a download"
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert set(hooks) == {"ruff-check", "ruff-format", "mypy"}, set(hooks)
    for hook in hooks.values():
        assert hook["language"] == "system" and hook["entry"].startswith(".venv/bin/"), hook


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_tool_is_installed_again_when_its_pin_changes() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    version = re.search(r"^SAM_CLI_VERSION\s*:=\s*(\S+)$", makefile, re.MULTILINE)
    assert version
    commands = _dry_run(f".tools/sam/.installed-aws-sam-cli-{version[1]}", PYTHON="python3")
    assert any(c.endswith(f"pip install --quiet aws-sam-cli=={version[1]}") for c in commands), commands
    assert commands[-1] == f"touch .tools/sam/.installed-aws-sam-cli-{version[1]}", commands


# ------------------------------------------------------------------------ the VictoriaMetrics fetch
def _fetch_script_text() -> str:
    return FETCH_VM.read_text(encoding="utf-8")


def test_the_victoriametrics_fetch_pins_a_version_and_a_checksum_per_architecture() -> None:
    text = _fetch_script_text()
    assert re.search(r'^readonly version="\d+\.\d+\.\d+[^"]*"$', text, re.MULTILINE)
    for arch in ("amd64", "arm64"):
        assert re.search(rf'^\s*\[{arch}\]="[0-9a-f]{{64}}"$', text, re.MULTILINE), arch
    assert 'download "$package=$version"' in text


def _sandboxed_fetch(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs a copy of the fetch script as if tmp_path were the repository (its .cache is tmp_path's)."""
    scripts = tmp_path / "scripts"
    scripts.mkdir(exist_ok=True)
    shutil.copy2(FETCH_VM, scripts / FETCH_VM.name)
    # A mirror that cannot be reached: if the script ever fell through to apt, it would fail, not fetch.
    # Only the Debian method unless a test says otherwise: a real go or brew never runs here.
    base = {
        "PATH": os.environ["PATH"],
        "TMPDIR": str(tmp_path),
        "TOKENWARDEN_DEBIAN_MIRROR": "http://mirror.invalid/debian",
        "TOKENWARDEN_VICTORIAMETRICS_METHODS": "debian",
    }
    return subprocess.run(
        ["bash", str(scripts / FETCH_VM.name)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="the fetch needs a Debian-based system")
def test_the_victoriametrics_fetch_refuses_a_tampered_package_and_installs_nothing(tmp_path: Path) -> None:
    tampered = tmp_path / "victoria-metrics_tampered.deb"
    tampered.write_bytes(b"!<arch>\ndebian-binary   not the pinned package\n")

    done = _sandboxed_fetch(tmp_path, {"TOKENWARDEN_VICTORIAMETRICS_DEB": str(tampered)})

    assert done.returncode != 0
    assert "is not the pinned victoria-metrics" in done.stderr
    actual = subprocess.run(["sha256sum", str(tampered)], capture_output=True, text=True, check=True)
    assert actual.stdout.split()[0] in done.stderr, "the refusal names the checksum it found"
    assert "Nothing was installed" in done.stderr
    assert not (tmp_path / ".cache" / "victoriametrics" / "victoria-metrics").exists()
    assert not (tmp_path / ".cache" / "victoriametrics" / "VERSION").exists()


def _program(bin_dir: Path, name: str, script: str) -> Path:
    """A stand-in program on the sandbox's PATH."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    program = bin_dir / name
    program.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    program.chmod(0o755)
    return program


def _with_path(bin_dir: Path) -> str:
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def test_an_architecture_without_a_pinned_checksum_gets_how_to_add_it_and_no_failure(tmp_path: Path) -> None:
    _program(tmp_path / "bin", "dpkg", "echo riscv64\n")

    done = _sandboxed_fetch(tmp_path, {"PATH": _with_path(tmp_path / "bin")})

    assert done.returncode == 0, "make demo goes on without VictoriaMetrics"
    assert "no pinned checksum" in done.stderr and "riscv64" in done.stderr
    assert "VictoriaMetrics is not available" in done.stderr and "brew install victoriametrics" in done.stderr
    assert not (tmp_path / ".cache" / "victoriametrics" / "victoria-metrics").exists()


def test_where_go_exists_the_pinned_release_is_built_into_the_cache(tmp_path: Path) -> None:
    asked = tmp_path / "go-arguments"
    _program(
        tmp_path / "bin",
        "go",
        f'echo "$@" >"{asked}"\n'
        'printf "#!/bin/sh\\necho victoria-metrics-v1\\n" >"$GOBIN/victoria-metrics"\n'
        'chmod 755 "$GOBIN/victoria-metrics"\n',
    )

    env = {"PATH": _with_path(tmp_path / "bin"), "TOKENWARDEN_VICTORIAMETRICS_METHODS": "go"}
    done = _sandboxed_fetch(tmp_path, env)

    assert done.returncode == 0, done.stderr
    tag = re.search(r'^readonly go_version="(v\d+\.\d+\.\d+)"$', _fetch_script_text(), re.MULTILINE)
    debian = re.search(r'^readonly version="(\d+\.\d+\.\d+)\+', _fetch_script_text(), re.MULTILINE)
    assert tag and debian and tag[1] == f"v{debian[1]}", "the Go tag is the Debian package's release"
    assert asked.read_text().split() == [
        "install",
        f"github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@{tag[1]}",
    ]
    cache = tmp_path / ".cache" / "victoriametrics"
    assert (cache / "victoria-metrics").is_file()
    assert (cache / "VERSION").read_text().startswith(f"victoria-metrics {tag[1]} ")

    asked.unlink()
    again = _sandboxed_fetch(tmp_path, env)
    assert again.returncode == 0 and not asked.exists(), "a pinned binary in place is not built again"


def test_when_every_method_fails_the_fetch_says_how_to_add_it_and_does_not_fail(tmp_path: Path) -> None:
    _program(tmp_path / "bin", "go", "echo 'go: no network' >&2\nexit 1\n")

    done = _sandboxed_fetch(
        tmp_path, {"PATH": _with_path(tmp_path / "bin"), "TOKENWARDEN_VICTORIAMETRICS_METHODS": "go homebrew"}
    )

    assert done.returncode == 0
    assert "go install" in done.stderr and "failed" in done.stderr
    assert "tried: go homebrew" in done.stderr and "TOKENWARDEN_VICTORIAMETRICS" in done.stderr
    assert not (tmp_path / ".cache" / "victoriametrics" / "victoria-metrics").exists()


@pytest.mark.parametrize("name", ["victoria-metrics", "victoria-metrics-prod"])
def test_a_victoriametrics_on_path_is_used_and_nothing_is_fetched(tmp_path: Path, name: str) -> None:
    _program(tmp_path / "bin", name, "echo victoria-metrics-v1\n")
    asked = tmp_path / "go-arguments"
    _program(tmp_path / "bin", "go", f'echo "$@" >"{asked}"\nexit 1\n')

    done = _sandboxed_fetch(
        tmp_path, {"PATH": _with_path(tmp_path / "bin"), "TOKENWARDEN_VICTORIAMETRICS_METHODS": "path go"}
    )

    assert done.returncode == 0
    assert f"using {tmp_path / 'bin' / name} from PATH" in done.stderr
    assert not asked.exists()
    assert not (tmp_path / ".cache" / "victoriametrics" / "victoria-metrics").exists()


# ----------------------------------------------------------------- finding VictoriaMetrics from Python
def test_python_finds_victoriametrics_where_the_fetch_does_path_before_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(BINARY_ENV, raising=False)
    cached = _program(tmp_path / "repo" / ".cache" / "victoriametrics", "victoria-metrics", "exit 0\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_binary(tmp_path / "repo") == cached

    on_path = _program(tmp_path / "bin", "victoria-metrics-prod", "exit 0\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert find_binary(tmp_path / "repo") == on_path


def test_no_victoriametrics_is_one_error_that_says_how_to_add_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(BINARY_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(VictoriaMetricsNotFoundError) as caught:
        find_binary(tmp_path)
    message = str(caught.value)
    for way in ("make setup", "apt", "go install", "brew install victoriametrics", "on PATH", BINARY_ENV):
        assert way in message, way
    assert isinstance(caught.value, FileNotFoundError), "callers that catch FileNotFoundError keep working"
    assert victoriametrics.HOW_TO_ADD in message


def test_an_installed_binary_of_another_version_is_fetched_again(tmp_path: Path) -> None:
    cache = tmp_path / ".cache" / "victoriametrics"
    cache.mkdir(parents=True)
    old = cache / "victoria-metrics"
    old.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    old.chmod(0o755)
    (cache / "VERSION").write_text("victoria-metrics 1.100.0+ds1-1 (Debian unstable)\n", encoding="utf-8")
    tampered = tmp_path / "other.deb"
    tampered.write_bytes(b"not the pinned package")

    done = _sandboxed_fetch(tmp_path, {"TOKENWARDEN_VICTORIAMETRICS_DEB": str(tampered)})

    assert done.returncode != 0, "a binary of another version is not taken as the pinned one"
    assert "is not the pinned victoria-metrics" in done.stderr
