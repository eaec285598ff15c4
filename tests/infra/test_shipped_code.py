"""What ships to Lambda runs on the system clock and knows nothing of the embedded local stack.

The embedded stack's simulated clock is passed in by the development tools (tokenwarden.local,
the CLI): no setting, variable or stray URL can make a deployed function read its time over HTTP.
And each function's handler is an ordinary module, imported by name as Lambda imports it.
"""

from __future__ import annotations

import importlib
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tokenwarden.local.stack import load_function
from tokenwarden.ports import Clock
from tokenwarden.wiring import SystemClock

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "tokenwarden"
LAYER = REPO / ".aws-sam" / "build" / "SharedLayer" / "python" / "tokenwarden"
DEVELOPMENT_ONLY = ("local", "cli")

# What code that knows the embedded stack says: its clock, its control URL, its package.
STACK_WORDS = re.compile(r"StackClock|STACK_URL|stack_url|tokenwarden\.local|/_tokenwarden/|embedded_stack")

FUNCTION_HANDLERS = re.compile(r"CodeUri: functions/(?P<folder>[\w-]+)\n\s+Handler: (?P<handler>[\w.]+)")


def _shipped_modules(root: Path) -> list[Path]:
    return [
        path for path in sorted(root.rglob("*.py")) if path.relative_to(root).parts[0] not in DEVELOPMENT_ONLY
    ]


def _stack_mentions(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root)}:{number}: {line.strip()}"
        for path in _shipped_modules(root)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if STACK_WORDS.search(line)
    ]


def test_the_package_outside_local_and_cli_never_mentions_the_stack() -> None:
    assert _shipped_modules(PACKAGE), "no module found: the check would pass on nothing"
    assert _stack_mentions(PACKAGE) == []


def test_the_functions_never_mention_the_stack() -> None:
    handlers = sorted((REPO / "functions").glob("*/*_handler.py"))
    assert len(handlers) == 5
    for handler in handlers:
        assert not STACK_WORDS.search(handler.read_text(encoding="utf-8")), handler


def test_the_built_layer_holds_no_stack_code() -> None:
    if not LAYER.is_dir():
        pytest.skip("no sam build output (.aws-sam/build): run `make build` to check what ships")
    assert not (LAYER / "local").exists()
    assert not (LAYER / "cli").exists()
    assert _stack_mentions(LAYER) == []


def test_the_words_checked_for_are_found_where_they_are() -> None:
    """The check above can fail: the embedded stack's own code says every one of them."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in (PACKAGE / "local").glob("*.py"))
    for word in ("StackClock", "STACK_URL", "stack_url", "tokenwarden.local", "/_tokenwarden/"):
        assert word in text, word


def _handlers() -> list[tuple[str, str, str]]:
    template = (REPO / "template.yaml").read_text(encoding="utf-8")
    found = [(m["folder"], *m["handler"].rsplit(".", 1)) for m in FUNCTION_HANDLERS.finditer(template)]
    return [(folder, module, attribute) for folder, module, attribute in found]


def test_every_handler_is_a_module_of_its_own_name_in_its_code_folder() -> None:
    handlers = _handlers()
    assert len(handlers) == 5
    modules = [module for _, module, _ in handlers]
    assert len(set(modules)) == len(modules), "two functions' handler modules share a name"
    for folder, module, attribute in handlers:
        assert module == f"{folder}_handler", (folder, module)
        assert attribute == "lambda_handler", (folder, attribute)
        assert (REPO / "functions" / folder / f"{module}.py").is_file(), (folder, module)


@pytest.mark.parametrize("folder", ["reconcile", "rotate_secret", "health", "revoke", "restore"])
def test_a_function_runs_on_the_system_clock_unless_given_another(
    folder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENWARDEN_STACK_URL", "http://127.0.0.1:1")  # ignored by what ships
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert isinstance(load_function(folder).CLOCK, SystemClock)

    class Fixed:
        def now(self) -> datetime:
            return datetime(2030, 1, 1, tzinfo=UTC)

    given: Clock = Fixed()
    assert load_function(folder, given).CLOCK is given


def test_handler_modules_import_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "functions" / "revoke"))
    monkeypatch.delitem(sys.modules, "revoke_handler", raising=False)
    module = importlib.import_module("revoke_handler")
    assert callable(module.lambda_handler)
