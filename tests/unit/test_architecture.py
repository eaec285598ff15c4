"""The rooms of the code keep to their doors: the domain and the services never see botocore or
boto3 (the adapters translate AWS's errors into tokenwarden.errors), and no code loads a file by
its path (every module, the handlers and the tools included, is imported by name)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "tokenwarden"
LOADING_BY_PATH = ("spec_from_file_location", "SourceFileLoader", "run_path", "exec(open")


def imports(path: Path) -> set[str]:
    """The modules `path` imports, at any depth (a function-local import counts too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _aws_sdk_imports(room: str) -> list[str]:
    return sorted(
        f"{path.relative_to(PACKAGE)}: {module}"
        for path in (PACKAGE / room).rglob("*.py")
        for module in imports(path)
        if module.split(".")[0] in ("botocore", "boto3")
    )


def test_the_services_and_the_domain_import_no_aws_sdk() -> None:
    assert _aws_sdk_imports("service") == []
    assert _aws_sdk_imports("domain") == []


def test_the_check_sees_the_adapters_sdk_imports() -> None:
    assert any("botocore" in line for line in _aws_sdk_imports("adapters"))


def test_nothing_is_loaded_by_its_path() -> None:
    sources = [
        *PACKAGE.rglob("*.py"),
        *(REPO / "functions").rglob("*.py"),
        *(REPO / "tests").rglob("*.py"),
        *(REPO / "benchmarks").rglob("*.py"),
        *(p for p in (REPO / "scripts").iterdir() if p.is_file()),
    ]
    this = Path(__file__).resolve()
    offenders = [
        f"{path.relative_to(REPO)}: {word}"
        for path in sources
        if path.resolve() != this
        for word in LOADING_BY_PATH
        if word in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert offenders == []
