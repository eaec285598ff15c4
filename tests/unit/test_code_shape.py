"""Functions stay small enough to read: none in what ships, in the embedded stack or in the CLI is
over 80 lines.

Complexity is held by ruff in `make lint` (C901 at 10, PLR0912, PLR0915); ruff has no rule for a
function's length, so this test holds that one.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAX_LINES = 80


def function_lengths(root: Path) -> dict[str, int]:
    """Every function and method under `root`, named `path:line name`, with its length in lines
    (decorators aside, docstring and body included)."""
    found: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                found[f"{path.relative_to(root)}:{node.lineno} {node.name}"] = (
                    node.end_lineno - node.lineno + 1
                )
    return found


def test_no_function_in_src_or_functions_is_over_80_lines() -> None:
    lengths = function_lengths(REPO / "src") | function_lengths(REPO / "functions")
    assert len(lengths) > 500, "the walk found too few functions to mean anything"
    assert sorted(f"{where} ({n} lines)" for where, n in lengths.items() if n > MAX_LINES) == []


def test_a_functions_length_counts_its_whole_body(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "long.py").write_text(f"def long() -> None:\n{body}\n\n\ndef short() -> None:\n    pass\n")
    assert function_lengths(tmp_path) == {"long.py:1 long": MAX_LINES + 1, "long.py:84 short": 2}
