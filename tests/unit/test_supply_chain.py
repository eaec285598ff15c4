"""What the build trusts: the layer installs only hashed, pinned files from its lock; the tools the
Makefile installs are pinned; the VictoriaMetrics fetch accepts only the pinned package. Offline: the
lock and the Makefiles are read, `make` only prints its commands, and the fetch is fed a local file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

LAYER = ROOT / "layers" / "shared"
LOCK = LAYER / "requirements.lock.txt"
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


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for entry in _entries(path):
        match = PIN.match(entry)
        assert match, f"{path.name}: not an exact pin: {entry}"
        name = re.sub(r"[-_.]+", "-", match["name"]).lower()
        pins[name + (match["extras"] or "")] = match["version"]
    return pins


# ------------------------------------------------------------------------------------ the layer's lock
def test_every_locked_package_is_pinned_exactly_and_carries_sha256_hashes() -> None:
    entries = _entries(LOCK)
    assert len(entries) > 7, "the lock lists the transitive dependencies too"
    for entry in entries:
        assert PIN.match(entry), f"not pinned with ==: {entry}"
        assert HASH.search(entry), f"no --hash=sha256: {entry}"
        assert re.search(r"(^|\s)--hash=(?!sha256:)", entry) is None, f"a weaker hash than sha256: {entry}"


def test_the_lock_names_no_index_and_no_local_or_remote_file() -> None:
    options = [entry for entry in _entries(LOCK) if entry.startswith("-")]
    assert options == []
    for entry in _entries(LOCK):
        assert "://" not in entry and " @ " not in entry, entry


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
    unpinned = [c for c in installs if "==" not in c and "-e '.[dev]'" not in c]
    assert unpinned == []


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
    base = {
        "PATH": os.environ["PATH"],
        "TMPDIR": str(tmp_path),
        "TOKENWARDEN_DEBIAN_MIRROR": "http://mirror.invalid/debian",
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


def test_the_victoriametrics_fetch_refuses_an_architecture_without_a_pinned_checksum(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_dpkg = bin_dir / "dpkg"
    fake_dpkg.write_text("#!/bin/sh\necho riscv64\n", encoding="utf-8")
    fake_dpkg.chmod(0o755)

    done = _sandboxed_fetch(tmp_path, {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})

    assert done.returncode != 0
    assert "no pinned checksum" in done.stderr and "riscv64" in done.stderr
    assert not (tmp_path / ".cache" / "victoriametrics" / "victoria-metrics").exists()


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
