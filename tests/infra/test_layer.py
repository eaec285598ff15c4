"""The built layer is lean and still holds everything each handler needs.

The layer ships only the AWS service models named in layers/shared/services.txt. Each handler is
imported in its own isolated process that finds modules only where Lambda would (the built layer,
then the function's folder; see tests/infra/lambda_path.py for how native extensions built for
Lambda's arm64 are stood in for on another machine), and every client its composition builds is
made: the builders a handler caches for its first invocation are called, with fake credentials and
no network (making a client sends nothing). A model missing from the layer fails here with
botocore's UnknownServiceError, not in production; a model shipped that no handler uses fails too.

Skipped, saying so, until `make build` has produced .aws-sam/build.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.lambda_path import (
    REPO,
    built_layer,
    handlers,
    lambda_environment,
    layer_layout,
    shipped_services,
)

pytestmark = pytest.mark.infra

MAX_LAYER_BYTES = 20_000_000
MAX_BYTECODE_BYTES = 6_000_000
BYTECODE_LIST = REPO / "layers" / "shared" / "bytecode.txt"
# The runtime's bytecode (python3.13): its cache tag and magic number, and a .pyc's flags word for
# hash-based (bit 0) without checking the source (bit 1 clear). Written here, not read from the
# interpreter running the tests, so the check is the same on any Python.
RUNTIME_CACHE_TAG = "cpython-313"
RUNTIME_MAGIC = (3571).to_bytes(2, "little") + b"\r\n"
UNCHECKED_HASH = 0b01
PRUNED_SERVICES = ("ec2", "s3", "cloudwatch", "amp")
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:tokenwarden-notifications"
APS_URL = "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-00000000-0000-0000-0000-000000000000"

# Records every client made (the X-Ray SDK's too), imports the handler, calls each builder it caches
# for its first invocation and imports what its functions import, then tries services the layer must
# not ship.
_COMPOSE = """
import importlib, inspect, json, os
import boto3, botocore, botocore.session
from botocore.exceptions import UnknownServiceError

made = []
_create_client = botocore.session.Session.create_client

def _recording(self, service_name, *args, **kwargs):
    made.append(service_name)
    return _create_client(self, service_name, *args, **kwargs)

botocore.session.Session.create_client = _recording
handler = importlib.import_module(sys.argv[2])
builders = sorted(
    name for name, value in vars(handler).items()
    if hasattr(value, "cache_info") and not inspect.signature(value).parameters
)
for name in builders:
    getattr(handler, name)()

# What the handler imports inside its functions, as its first invocation does.
import ast

for node in ast.walk(ast.parse(open(handler.__file__, encoding="utf-8").read())):
    for inner in ast.walk(node) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else ():
        if isinstance(inner, ast.Import):
            for alias in inner.names:
                importlib.import_module(alias.name)
        elif isinstance(inner, ast.ImportFrom) and inner.level == 0 and inner.module:
            for alias in inner.names:
                try:
                    importlib.import_module(f"{inner.module}.{alias.name}")  # a module of a package
                except ModuleNotFoundError:
                    importlib.import_module(inner.module)  # a name the module defines

def unknown(service):
    try:
        boto3.client(service)
    except UnknownServiceError:
        return True
    return False

import tokenwarden
if "tokenwarden.domain.registry" in sys.modules:
    import tokenwarden.domain.registry_yaml  # the registry's reader, loaded by every invocation

def from_layer(path):
    # `path` as a file of the layer: the layer's own, or a native package's stood in for.
    path = os.path.realpath(path)
    layer, *natives_from = map(os.path.realpath, [_LAYOUT["path"][0], *_LAYOUT["natives_from"]])
    for home in (layer, *natives_from):
        if path.startswith(home + os.sep):
            relative = os.path.relpath(path, home)
            if home == layer or relative.split(os.sep)[0] in _LAYOUT["natives"]:
                return relative
    return None

files = (getattr(module, "__file__", None) or "" for module in list(sys.modules.values()))
loaded = sorted({from_layer(file) for file in files if file.endswith(".py")} - {None})
print(json.dumps({
    "loaded": loaded,
    "clients": sorted(set(made)),
    "builders": builders,
    "origins": {module.__name__: module.__file__ for module in (boto3, botocore, tokenwarden, handler)},
    "unknown": {service: unknown(service) for service in sys.argv[3:]},
}))
"""

# (function folder, handler module, settings): every handler as deployed, plus the health check
# signing for Amazon Managed Prometheus instead of CloudWatch.
Case = tuple[Path, str, dict[str, str]]
CASES: list[Case] = [(folder, module, {}) for folder, module in handlers()] + [
    (folder, module, {"TOKENWARDEN_PROMQL_DIALECT": "prometheus", "TOKENWARDEN_PROMQL_URL": APS_URL})
    for folder, module in handlers()
    if module == "health_handler"
]


def case_id(case: Case) -> str:
    _, module, settings = case
    return f"{module}-aps" if settings else module


def layer_or_skip() -> Path:
    layer = built_layer()
    if layer is None:
        pytest.skip("no sam build output (.aws-sam/build): run `make build` to check the layer")
    return layer


def compose_from_layer(layer: Path, folder: Path, module: str, settings: dict[str, str]) -> dict[str, Any]:
    """What composing `module` from the built layer made, as reported by the isolated process."""
    completed = subprocess.run(
        layer_layout(layer, folder).command(_COMPOSE, module, *PRUNED_SERVICES),
        env=lambda_environment(TOKENWARDEN_TOPIC_ARN=TOPIC_ARN, **settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report: dict[str, Any] = json.loads(completed.stdout.splitlines()[-1])
    return report


@pytest.fixture(scope="module")
def composed() -> dict[str, dict[str, Any]]:
    layer = layer_or_skip()
    return {
        case_id(case): compose_from_layer(layer, *case)
        for case in CASES  # one process each, made once for the tests below
    }


def test_every_handler_module_is_composed() -> None:
    """The template's functions, read for the cases above, are every handler module there is."""
    modules = {module for _, module, _ in CASES}
    assert modules == {path.stem for path in REPO.glob("functions/*/*_handler.py")}
    assert "health_handler" in modules


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_each_handler_builds_its_clients_from_the_built_layer(
    case: Case, composed: dict[str, dict[str, Any]]
) -> None:
    layer = layer_or_skip()
    folder, module, _ = case
    report = composed[case_id(case)]
    assert report["builders"], f"{module} caches no builder: nothing would make its clients"
    assert {"iam", "secretsmanager", "dynamodb"} <= set(report["clients"])
    assert set(report["clients"]) <= shipped_services()
    origins = report["origins"]
    for package in ("boto3", "botocore", "tokenwarden"):
        assert Path(origins[package]).is_relative_to(layer), (package, origins[package])
    assert Path(origins[module]).is_relative_to(folder)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_services_the_layer_does_not_ship_are_unknown(
    case: Case, composed: dict[str, dict[str, Any]]
) -> None:
    assert composed[case_id(case)]["unknown"] == dict.fromkeys(PRUNED_SERVICES, True)


def test_every_shipped_model_is_used_by_some_handler(composed: dict[str, dict[str, Any]]) -> None:
    used = {service for report in composed.values() for service in report["clients"]}
    assert used == shipped_services()


def test_the_layer_holds_exactly_the_listed_models() -> None:
    data = layer_or_skip() / "botocore" / "data"
    assert {model.name for model in data.iterdir() if model.is_dir()} == shipped_services()
    assert {"endpoints.json.gz", "partitions.json", "sdk-default-configuration.json", "_retry.json"} <= {
        path.name for path in data.iterdir()
    }


def listed_bytecode() -> set[str]:
    lines = (
        line.partition("#")[0].strip() for line in BYTECODE_LIST.read_text(encoding="utf-8").splitlines()
    )
    return {line for line in lines if line}


def cold_start_modules(composed: dict[str, dict[str, Any]]) -> set[str]:
    """The layer's modules that some handler loads at a cold start (import, clients, registry reader)."""
    return {path for report in composed.values() for path in report["loaded"]}


def test_the_bytecode_list_is_what_the_cold_starts_load(composed: dict[str, dict[str, Any]]) -> None:
    loaded, listed = cold_start_modules(composed), listed_bytecode()
    assert "tokenwarden/service/reconciler.py" in loaded and "botocore/client.py" in loaded
    assert "tokenwarden/service/night.py" in loaded  # imported by the reconcile handler's invocation
    assert "pydantic_core/core_schema.py" in loaded  # a native package's Python, stood in for
    assert "aws_xray_sdk/ext/botocore/patch.py" in loaded  # the tracer patches, as deployed
    assert loaded == listed, (
        f"layers/shared/bytecode.txt is stale (run `make bytecode-list`): "
        f"not listed {sorted(loaded - listed)[:10]}, listed but not loaded {sorted(listed - loaded)[:10]}"
    )


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_module_a_cold_start_loads_has_runtime_bytecode_in_the_layer(
    case: Case, composed: dict[str, dict[str, Any]]
) -> None:
    """Each module is loaded from bytecode for python3.13 that no source timestamp can make stale:
    Lambda's read-only file system would otherwise have it compiled at every cold start."""
    layer = layer_or_skip()
    missing, wrong = [], []
    for relative in composed[case_id(case)]["loaded"]:
        source = layer / relative
        cached = source.parent / "__pycache__" / f"{source.stem}.{RUNTIME_CACHE_TAG}.pyc"
        if not cached.is_file():
            missing.append(relative)
            continue
        header = cached.read_bytes()[:8]
        if header[:4] != RUNTIME_MAGIC or int.from_bytes(header[4:8], "little") != UNCHECKED_HASH:
            wrong.append(relative)
    assert not missing, f"{len(missing)} modules without bytecode, e.g. {missing[:5]}"
    assert not wrong, (
        f"{len(wrong)} modules with bytecode another interpreter or mode wrote, e.g. {wrong[:5]}"
    )


def test_the_layer_is_at_most_twenty_megabytes_unzipped_besides_its_bytecode() -> None:
    """Twenty megabytes of code and data (a third of it pydantic's compiled core), and at most six of
    bytecode, which a cold start would otherwise compile."""
    layer = layer_or_skip().parent
    files = [path for path in layer.rglob("*") if path.is_file()]
    bytecode = sum(path.stat().st_size for path in files if path.suffix == ".pyc")
    size = sum(path.stat().st_size for path in files) - bytecode
    print(
        f"\nlayer unzipped: {size:,} bytes ({size / 1e6:.1f} MB) and {bytecode:,} of bytecode in {layer.name}"
    )
    assert size <= MAX_LAYER_BYTES, f"{size:,} bytes: over {MAX_LAYER_BYTES:,}"
    assert 0 < bytecode <= MAX_BYTECODE_BYTES, f"{bytecode:,} bytes of bytecode: over {MAX_BYTECODE_BYTES:,}"


# Reads public holidays as the health check does, from the layer alone (its holidays package has no
# translations or financial calendars): the calendars a registry names must still be found and read.
_HOLIDAYS = """
import json
import holidays
from datetime import date
from tokenwarden.domain.calendar import check_calendar, holiday_dates
check_calendar("US-NY")
december = holiday_dates("DE-BY", date(2026, 12, 1), date(2026, 12, 31))
february = holiday_dates("US-NY", date(2027, 2, 1), date(2027, 2, 28))
print(json.dumps({"origin": holidays.__file__, "de": sorted(map(str, december)), "ny": sorted(map(str, february))}))
"""


def test_the_layer_reads_public_holiday_calendars() -> None:
    layer = layer_or_skip()
    folder, _ = handlers()[0]
    completed = subprocess.run(
        layer_layout(layer, folder).command(_HOLIDAYS),
        env=lambda_environment(TOKENWARDEN_TOPIC_ARN=TOPIC_ARN),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.splitlines()[-1])
    assert Path(report["origin"]).is_relative_to(layer)
    assert report["de"] == ["2026-12-25", "2026-12-26"]
    assert report["ny"] == ["2027-02-12", "2027-02-15"]
