"""The SAM template translated offline to plain CloudFormation, once per test session."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cfn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("translated") / "template.cfn.json"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "translate-template"),
            str(REPO / "template.yaml"),
            str(output),
        ],
        check=True,
        cwd=REPO,
    )
    template: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    return template
