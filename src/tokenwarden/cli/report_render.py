"""The evidence report as a file: Markdown, JSON or HTML, each carrying the same digest.

The digest is the SHA-256 of the report's canonical JSON (its content, keys sorted, no spaces): the
JSON rendering prints the content with the digest beside it, so anyone can recompute it (see
:func:`verify`). Every text that came from outside (a principal, a reason, an actor, a drift
detail) is escaped for the format it lands in: HTML with `html.escape`, a Markdown table cell with
its pipes, line breaks and markup characters neutralised. The HTML page has an inline stylesheet
and nothing else: no script, no external asset.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tokenwarden.domain.evidence import Report, Row, Section

FORMATS = ("md", "json", "html")
EMPTY = "-"


def canonical(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_of(report: Report) -> dict[str, Any]:
    """The report's content as JSON values: what the digest covers."""
    return report.model_dump(mode="json")


def digest(report: Report) -> str:
    return hashlib.sha256(canonical(content_of(report))).hexdigest()


def verify(rendered_json: str) -> bool:
    """Whether a JSON rendering's digest still matches its content (it was not edited)."""
    document = json.loads(rendered_json)
    claimed = document.pop("digest", None)
    return bool(claimed == hashlib.sha256(canonical(document)).hexdigest())


# -- values as text ---------------------------------------------------------------------------------


def text(value: Any) -> str:
    """A figure as a person reads it (not yet escaped)."""
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e6 else f"{value:.0f}"
    if isinstance(value, tuple | list):
        return ", ".join(text(v) for v in value) or EMPTY
    return str(value)


def cells(row: Row, columns: tuple[tuple[str, str], ...]) -> list[str]:
    return [text(getattr(row, name)) for name, _ in columns] + [text(row.sources)]


# -- Markdown ---------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")


def md(value: str) -> str:
    """Text safe inside a Markdown table cell or line: one line, no markup, no raw HTML."""
    one_line = _LINE_BREAKS.sub(" ", value)
    entities = one_line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", entities)


def _md_section(section: Section) -> list[str]:
    headings = [heading for _, heading in section.columns] + ["Ledger records"]
    lines = [f"## {md(section.title)}", "", md(section.controls), "", f"**{md(section.summary)}**", ""]
    if not section.rows:
        return [*lines, "Nothing in the period.", ""]
    lines.append("| " + " | ".join(headings) + " |")
    lines.append("|" + "---|" * len(headings))
    lines += ["| " + " | ".join(md(c) for c in cells(row, section.columns)) + " |" for row in section.rows]
    return [*lines, ""]


def render_markdown(report: Report) -> str:
    lines = [f"# {md(report.title)}", "", *_md_facts(report), ""]
    lines += [f"- {md(line)}" for line in report.method] + [""]
    for section in report.sections:
        lines += _md_section(section)
    if report.notes:
        lines += ["## Notes", "", *(f"- {md(n)}" for n in report.notes), ""]
    return "\n".join(lines)


def _facts(report: Report) -> list[tuple[str, str]]:
    return [
        ("Period", f"{text(report.period_start)} to {text(report.period_end)} UTC"),
        ("Generated", f"{text(report.generated_at)} UTC"),
        ("AWS account", report.account or "unknown"),
        ("Registry", report.registry),
        ("Ledger table", report.ledger_table),
        ("SHA-256 of the content", digest(report)),
    ]


def _md_facts(report: Report) -> list[str]:
    return [f"- **{name}:** {md(value)}" for name, value in _facts(report)]


# -- JSON -------------------------------------------------------------------------------------------


def render_json(report: Report) -> str:
    return json.dumps({**content_of(report), "digest": digest(report)}, indent=2, sort_keys=True)


# -- HTML -------------------------------------------------------------------------------------------

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem; color: #1b1f24; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; }
dt { font-weight: 600; } dd { margin: 0; font-family: ui-monospace, monospace; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.src { font-family: ui-monospace, monospace; font-size: 12px; }
p.summary { font-weight: 600; }
"""


def _h(value: str) -> str:
    return html.escape(value, quote=True)


def _html_section(section: Section) -> list[str]:
    out = [f"<h2>{_h(section.title)}</h2>", f"<p>{_h(section.controls)}</p>"]
    out.append(f'<p class="summary">{_h(section.summary)}</p>')
    if not section.rows:
        return [*out, "<p>Nothing in the period.</p>"]
    head = "".join(f"<th>{_h(h)}</th>" for _, h in section.columns) + "<th>Ledger records</th>"
    out += ["<table>", f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    for row in section.rows:
        values = cells(row, section.columns)
        tds = "".join(f"<td>{_h(v)}</td>" for v in values[:-1]) + f'<td class="src">{_h(values[-1])}</td>'
        out.append(f"<tr>{tds}</tr>")
    return [*out, "</tbody>", "</table>"]


def render_html(report: Report) -> str:
    facts = "".join(f"<dt>{_h(name)}</dt><dd>{_h(value)}</dd>" for name, value in _facts(report))
    body = [f"<h1>{_h(report.title)}</h1>", f"<dl>{facts}</dl>", "<ul>"]
    body += [f"<li>{_h(line)}</li>" for line in report.method] + ["</ul>"]
    for section in report.sections:
        body += _html_section(section)
    if report.notes:
        body += ["<h2>Notes</h2>", "<ul>", *(f"<li>{_h(n)}</li>" for n in report.notes), "</ul>"]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f"<title>{_h(report.title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


RENDERERS: dict[str, Callable[[Report], str]] = {
    "md": render_markdown,
    "json": render_json,
    "html": render_html,
}


def render(report: Report, fmt: str) -> str:
    return RENDERERS[fmt](report)
