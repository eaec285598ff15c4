"""Writes layers/shared/bytecode.txt, the modules the layer ships compiled (`make bytecode-list`).

Each handler is composed from the built layer as tests/infra/test_layer.py composes it (imported as
deployed, its clients built, the registry's reader loaded), and every module it loads from the layer
is listed. Run after `make build` whenever a handler's imports change; the layer test says when.
"""

from __future__ import annotations

import sys

from tests.infra.lambda_path import built_layer
from tests.infra.test_layer import BYTECODE_LIST, CASES, compose_from_layer

HEADER = """\
# The layer's modules compiled to bytecode when it is built (layers/shared/Makefile): those a
# handler loads at a cold start. Written by `make bytecode-list` from a build; do not edit.
"""


def main() -> int:
    layer = built_layer()
    if layer is None:
        print("no built layer: run `make build` first", file=sys.stderr)
        return 1
    loaded = sorted({path for case in CASES for path in compose_from_layer(layer, *case)["loaded"]})
    BYTECODE_LIST.write_text(HEADER + "".join(f"{path}\n" for path in loaded), encoding="utf-8")
    print(f"{BYTECODE_LIST.relative_to(BYTECODE_LIST.parents[2])}: {len(loaded)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
