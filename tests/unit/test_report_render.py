"""The evidence report's renderings: the same content and digest in Markdown, JSON and HTML, hostile
text escaped for each format, and an edit to the content caught by the digest."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from tests.unit.test_evidence import END, history, key, report, revoke_record
from tokenwarden.cli.report_render import FORMATS, digest, md, render, render_html, render_markdown, verify
from tokenwarden.domain.evidence import Report
from tokenwarden.domain.model import LedgerState

HOSTILE = "<script>alert('x')</script> | pipe\nnew line & `code` **bold** [link](http://evil)"


def hostile_report() -> Report:
    at = END - timedelta(days=2)
    item = revoke_record(at)
    item.record["reason"] = HOSTILE
    item.record["actor"] = {"acted_as": "x", "requester": "arn:aws:iam::1:user/<img src=x onerror=alert(1)>"}
    old = key("v1", END - timedelta(days=20), state=LedgerState.RETIRED, revoked_at=at)
    return report((old, key("v2", at + timedelta(minutes=5))), (item,))


def test_html_escapes_every_text_from_outside_and_carries_no_script_or_external_asset() -> None:
    page = render_html(hostile_report())
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "http://evil" in page and 'href="' not in page and "src=" not in page.replace("src=x", "")
    assert "<style>" in page and "<link" not in page


def test_a_markdown_cell_stays_one_cell_on_one_line_without_markup() -> None:
    text = render_markdown(hostile_report())
    (line,) = [row for row in text.splitlines() if "alert" in row and row.startswith("| alpha")]
    cells = re.split(r"(?<!\\)\|", line)[1:-1]
    assert len(cells) == 9 + 1  # the revoke section's columns and its ledger records
    assert "<script>" not in text and "&lt;script&gt;" in line
    assert r"\| pipe new line &amp; \`code\` \*\*bold\*\* \[link\](http://evil)" in line


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [("a|b", r"a\|b"), ("a\r\nb", "a b"), ("a\u2028b", "a b"), ("<b>", "&lt;b&gt;"), ("# x", r"\# x")],
)
def test_markdown_escaping_of_one_value(raw: str, escaped: str) -> None:
    assert md(raw) == escaped


def test_every_format_shows_the_same_digest_and_the_json_verifies() -> None:
    built = hostile_report()
    value = digest(built)
    assert all(value in render(built, fmt) for fmt in FORMATS)
    assert verify(render(built, "json"))


def test_an_edited_figure_no_longer_matches_the_digest() -> None:
    document = json.loads(render(hostile_report(), "json"))
    document["sections"][2]["rows"][0]["minutes_to_replacement"] = 1.0
    assert not verify(json.dumps(document))


def test_the_digest_covers_the_content_and_changes_with_it() -> None:
    assert digest(report()) == digest(report())
    assert digest(report()) != digest(hostile_report())


def test_each_rendering_cites_the_ledger_records_of_a_row() -> None:
    built = hostile_report()
    for fmt in FORMATS:
        text = render(built, fmt)
        assert "P#alpha/H#revoke#000001" in text.replace("\\#", "#"), fmt
        assert "P#alpha/V#v2" in text.replace("\\#", "#"), fmt


def test_an_empty_section_says_so() -> None:
    assert render_markdown(report()).count("Nothing in the period.") == 6


def test_no_token_in_any_format_even_when_one_sits_in_a_record_the_report_does_not_show() -> None:
    token = "CWK" + "A" * 40 + "=="
    item = history("P#alpha", "H#pickup#1", {"kind": "pickup", "token": token})
    built = report((key("v1", END - timedelta(days=3)),), (item,))
    assert all(token not in render(built, fmt) for fmt in FORMATS)
