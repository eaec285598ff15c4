"""Python processes that find modules as Lambda does: the shared layer, then a function's folder.

Lambda puts the layer (/opt/python) and the function's own folder on the path, and nothing of the
machine that built them. A process started here is isolated the same way: ``-I`` (no PYTHON*
variables, no user site-packages) and ``-S`` (no site-packages at all), with the built layer and the
function's folder as the only places to import from, so what it imports is what ships. ``-B``: it
writes no bytecode into the build; it reads the bytecode the layer ships, as Lambda does (whose
file system is read-only: what the layer ships without bytecode is compiled at each cold start).

The layer is built for Lambda (python3.13 on arm64). Its pure-Python packages run anywhere, but a
native extension loads only on a machine like Lambda's. On any other machine, the packages that
hold a native extension built for another one (pydantic_core, wrapt) are found in the development
environment instead, which the locks pin at the same versions; only those, and only when imported:
boto3, botocore and its service models, Powertools and tokenwarden still come from the layer.
"""

from __future__ import annotations

import json
import os
import re
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILT_LAYER = REPO / ".aws-sam" / "build" / "SharedLayer" / "python"
SERVICES_FILE = REPO / "layers" / "shared" / "services.txt"

_FUNCTION_HANDLERS = re.compile(r"CodeUri: (?P<folder>functions/[\w-]+)\n\s+Handler: (?P<module>\w+)\.\w+")

# Finds the listed native packages in the development environment (only when something imports them),
# then puts the layout's folders first on the path. Run before the body of every isolated process.
_PRELUDE = """\
import importlib.machinery, json, sys
_LAYOUT = json.loads(sys.argv[1])

class _NativeFinder:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] not in _LAYOUT["natives"]:
            return None
        return importlib.machinery.PathFinder.find_spec(name, path or _LAYOUT["natives_from"], target)

sys.meta_path.insert(0, _NativeFinder)
sys.path[:0] = _LAYOUT["path"]
"""


@dataclass(frozen=True)
class Layout:
    """Where an isolated process imports from: `path` first (in order), and the `natives` packages
    from `natives_from`."""

    path: tuple[Path, ...]
    natives: tuple[str, ...] = ()
    natives_from: tuple[Path, ...] = ()

    def command(self, body: str, *args: str) -> list[str]:
        """The interpreter command that runs `body` with this layout; `body` reads `args` from
        ``sys.argv[2:]``."""
        layout = {
            "path": [str(folder) for folder in self.path],
            "natives": list(self.natives),
            "natives_from": [str(folder) for folder in self.natives_from],
        }
        return [sys.executable, "-I", "-S", "-B", "-c", _PRELUDE + body, json.dumps(layout), *args]


def built_layer() -> Path | None:
    """The layer `make build` (sam build) left, or None before the first build."""
    return BUILT_LAYER if (BUILT_LAYER / "tokenwarden" / "__init__.py").is_file() else None


def development_site_packages() -> tuple[Path, ...]:
    """The running environment's site-packages (the .venv's when run from it)."""
    paths = sysconfig.get_paths()
    return tuple(dict.fromkeys(Path(paths[key]) for key in ("purelib", "platlib")))


def foreign_native_packages(layer: Path) -> tuple[str, ...]:
    """The layer's top-level packages holding an extension module this interpreter cannot load
    (built for another machine or Python)."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    return tuple(
        sorted(
            {
                extension.relative_to(layer).parts[0]
                for extension in layer.rglob("*.so")
                if not extension.name.endswith(suffix) and not extension.name.endswith(".abi3.so")
            }
        )
    )


def layer_layout(layer: Path, code: Path) -> Layout:
    """The built layer and a function's folder, as Lambda lays them out."""
    return Layout(
        path=(layer, code),
        natives=foreign_native_packages(layer),
        natives_from=development_site_packages(),
    )


def source_layout(code: Path) -> Layout:
    """Without a build: the package's source, then the development environment's packages."""
    return Layout(path=(REPO / "src", code, *development_site_packages()))


def handlers() -> list[tuple[Path, str]]:
    """Each function's folder and handler module, as template.yaml names them."""
    template = (REPO / "template.yaml").read_text(encoding="utf-8")
    return [(REPO / match["folder"], match["module"]) for match in _FUNCTION_HANDLERS.finditer(template)]


def shipped_services() -> set[str]:
    """The service models the layer keeps (layers/shared/services.txt)."""
    lines = SERVICES_FILE.read_text(encoding="utf-8").splitlines()
    return {line.split("#", 1)[0].strip() for line in lines} - {""}


def lambda_environment(**settings: str) -> dict[str, str]:
    """A Lambda-like environment with fake credentials and no way to any real account: no shared
    config or credentials file, no instance metadata. Tracing is active, as the template asks: the
    tracer patches the libraries it can at import, and the X-Ray SDK, finding itself on Lambda,
    makes no client of its own (it leaves an empty marker file, /tmp/.aws-xray/initialized)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "false",
        "AWS_LAMBDA_FUNCTION_NAME": "tokenwarden-function",
        "LAMBDA_TASK_ROOT": "/var/task",
        "POWERTOOLS_METRICS_NAMESPACE": "TokenWarden",
        **settings,
    }
