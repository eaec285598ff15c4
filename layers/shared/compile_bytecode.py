"""Compile the modules bytecode.txt lists, in the layer being built (layers/shared/Makefile).

    python3.13 compile_bytecode.py <bytecode.txt>    (run from the layer's python/ folder)

Each listed source is compiled for this interpreter, `unchecked-hash`: Python then loads the
bytecode without comparing it with the source's timestamp, which the deployment package may change.
A list that names no module, or a module the layer does not hold, fails the build by name.
"""

import py_compile
import sys
from pathlib import Path


def main(listing: str) -> int:
    lines = (
        line.partition("#")[0].strip() for line in Path(listing).read_text(encoding="utf-8").splitlines()
    )
    paths = [line for line in lines if line]
    if not paths:
        print(f"{listing} lists no module", file=sys.stderr)
        return 1
    missing = [path for path in paths if not Path(path).is_file()]
    if missing:
        print(
            f"{listing} names {len(missing)} module(s) the layer does not hold, e.g. {missing[:3]}: "
            "run `make build` and `make bytecode-list` at the repository root",
            file=sys.stderr,
        )
        return 1
    for path in paths:
        py_compile.compile(
            path, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
