"""The documentation stays true to the repository: generated references match the code they come
from, every link and path it names exists here, every alarm and setting has its entry, and the
README stays a front page."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import AliasChoices

from tests.conftest import ROOT
from tokenwarden.cli.reference import anchor, generated
from tokenwarden.domain import notifications as notes
from tokenwarden.settings import Settings

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\s]+)`")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# What a tracked path of the repository starts with; a code span starting otherwise is not a path
# (or names what a build or set-up makes, such as `.venv` or `build/template.cfn.json`).
TRACKED = (
    "src/",
    "tests/",
    "docs/",
    "events/",
    "scripts/",
    "functions/",
    "layers/",
    "benchmarks/",
    ".ci/",
    "template.yaml",
    "teams.yaml",
    "samconfig.toml",
    "pyproject.toml",
    "Makefile",
    "README.md",
)


def prose_lines(document: Path) -> list[str]:
    """The document's lines outside fenced code blocks (a `# comment` in a shell block is no heading)."""
    lines, fenced = [], False
    for line in document.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(document: Path) -> set[str]:
    """The fragments GitHub gives the document's headings, duplicates numbered as it numbers them."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(document):
        match = HEADING.match(line)
        if not match:
            continue
        slug = anchor(match.group(2))
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


def link_problems(document: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for line in prose_lines(document):
        for target in LINK.findall(line):
            if re.match(r"^[a-z]+:", target):
                continue  # https:, mailto:: outside the repository by design
            path_part, _, fragment = target.partition("#")
            resolved = (document.parent / path_part).resolve() if path_part else document
            if not resolved.is_relative_to(root) or path_part.startswith("/"):
                problems.append(f"{document.name}: {target} is outside the repository")
            elif not resolved.exists():
                problems.append(f"{document.name}: {target} does not exist")
            elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
                problems.append(f"{document.name}: {target} names no heading of {resolved.name}")
    return problems


def path_problems(document: Path, root: Path = ROOT) -> list[str]:
    """Code spans that name a file of the repository (`src/…`, `tests/…::test_x`, `teams.yaml`)."""
    problems = []
    for line in prose_lines(document):
        for span in CODE_SPAN.findall(line):
            path, _, test = span.partition("::")
            if path.startswith("../") and not (document.parent / path).resolve().is_relative_to(root):
                problems.append(f"{document.name}: `{span}` is outside the repository")
            if not path.startswith(TRACKED):
                continue
            pattern = re.sub(r"<[^>]+>", "*", path).rstrip("/")
            matches = sorted(root.glob(pattern))
            if not matches:
                problems.append(f"{document.name}: `{span}` is not in the repository")
            elif test and not any(re.search(rf"def {re.escape(test)}\b", m.read_text()) for m in matches):
                problems.append(f"{document.name}: `{span}` names no such test")
    return problems


def test_the_generated_references_match_the_code() -> None:
    stale = [str(path) for path, text in generated(ROOT).items() if (ROOT / path).read_text() != text]
    assert stale == [], f"{stale} are out of date: run `make docs` and commit the result"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_every_link_points_at_a_file_and_heading_of_the_repository(document: Path) -> None:
    assert link_problems(document) == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_every_path_named_in_the_docs_exists(document: Path) -> None:
    assert path_problems(document) == []


def test_the_checks_see_a_missing_file_heading_or_test_and_a_way_out(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def test_real(): ...\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "cli.md").write_text("# CLI\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Here\n\n[ok](cli.md#cli) [ok](#here) [ok](https://example.com/x.md)\n"
        "[a](nowhere.md) [b](cli.md#no-such-heading) [c](../../shared/STYLE.md) [d](#there)\n"
        "```sh\n# There\n```\n"
        "`src/app.py::test_real` `src/nowhere.py` `src/app.py::test_nothing` `../../shared/DESIGN.md`\n"
    )
    assert len(link_problems(page, tmp_path)) == 4
    assert len(path_problems(page, tmp_path)) == 3


def test_every_notification_kind_has_a_runbook_entry() -> None:
    assert set(notes.RUNBOOKS) == set(notes.EventType)
    assert all(r.meaning and r.action for r in notes.RUNBOOKS.values())


AT = datetime(2027, 1, 1, tzinfo=UTC)
KEY = notes.KeyRef(credential_id="ACCAEXAMPLE", alias="tw-p-at-1-abcdef", expires_at=AT)
OUTCOME = SimpleNamespace(status="failed", principal="p", error="rotate: AccessDenied")
FINDING = SimpleNamespace(kind="user_at_key_limit", detail="2 of 2 keys")


@pytest.mark.parametrize(
    "notice",
    [
        notes.onboarded("p", "t", "tokenwarden/p", KEY, AT),
        notes.rotated("p", "t", "tokenwarden/p", KEY, KEY, 7, AT),
        notes.retired("p", "t", KEY, 7, AT),
        notes.deleted("p", "t", KEY, "its rollback window is over", AT),
        notes.rotation_failed("p", "t", "tokenwarden/p", "testSecret: refused", AT),
        notes.expiring_soon("p", "t", "tokenwarden/p", KEY, AT),
        notes.repaired("p", "t", "tokenwarden/p", KEY, "the current key was deleted", AT),
        notes.run_summary([], [], {}, AT),
        notes.run_summary([], [FINDING], {}, AT),
        notes.run_summary([OUTCOME], [], {"principals_failed": 1}, AT),
        notes.offboarded("p", "tokenwarden/p", 7, AT),
        notes.guard_tripped(["a", "b", "c"], 5, 2, AT),
        notes.revoked("p", "t", [KEY], "leaked", "alice", 7, True, AT),
        notes.restored("p", "t", KEY, "alice", True, AT),
        notes.takeover_refused("p", "t", "secret tokenwarden/p has another KMS key", AT),
    ],
    ids=lambda n: f"{n.event_type.value}-{n.severity}",
)
def test_each_message_has_a_severity_its_catalogue_entry_lists(notice: notes.Notification) -> None:
    assert notice.severity in notes.RUNBOOKS[notice.event_type].severities


def alarm_runbooks(template: str) -> list[str]:
    return re.findall(r'Runbook - docs/operate\.md "([^"]+)"', template)


def test_every_alarm_in_the_template_has_its_runbook_entry() -> None:
    template = (ROOT / "template.yaml").read_text()
    named = alarm_runbooks(template)
    assert len(named) == template.count("Type: AWS::CloudWatch::Alarm")
    headings = anchors(ROOT / "docs" / "operate.md")
    assert [n for n in named if anchor(n) not in headings] == []


def environment_variable(name: str, alias: object) -> str:
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"TOKENWARDEN_{name.upper()}"


def test_every_setting_is_documented() -> None:
    configure = (ROOT / "docs" / "configure.md").read_text()
    variables = [environment_variable(n, f.validation_alias) for n, f in Settings.model_fields.items()]
    assert [v for v in variables if f"`{v}`" not in configure] == []


def test_the_readme_is_a_front_page() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    assert len(readme) <= 300
    quick_start = next(i for i, line in enumerate(readme) if line.startswith("## Quick start"))
    assert quick_start < 40
    assert "make demo" in "\n".join(readme[quick_start : quick_start + 20])
