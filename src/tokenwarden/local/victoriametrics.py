"""VictoriaMetrics on loopback: the PromQL engine of the embedded stack, the integration tests and the
demo (DESIGN §1 "A real PromQL engine for tests and the demo").

``scripts/fetch-victoriametrics`` (run by ``make setup``) takes a ``victoria-metrics`` already on PATH,
or puts one at ``.cache/victoriametrics/victoria-metrics`` (Debian's package, or ``go install`` of the
pinned release), or has Homebrew install it. :func:`find_binary` finds it in the same order
(``TOKENWARDEN_VICTORIAMETRICS`` first) and raises :class:`VictoriaMetricsNotFoundError`, which says how
to add it, when there is none: callers that can do without (the demo) catch that one error.
:class:`VictoriaMetrics` runs the binary on ``127.0.0.1`` with a free port and a throw-away storage
directory::

    with VictoriaMetrics() as vm:
        exporter = OTLPMetricExporter(endpoint=vm.otlp_url)      # protobuf only; JSON gets a 400
        ...
        vm.force_flush()
        PromQLClient.unsigned(vm.base_url).query(...)

Flags and why:

* ``-httpListenAddr=127.0.0.1:<port>`` — loopback only; no other listener is enabled.
* ``-search.latencyOffset=0s`` — samples are queryable as soon as they are flushed (default 30 s).
* ``-search.disableCache`` — no response cache, so samples written with past timestamps (backfills,
  the demo's simulated clock) show up in the next query.
* ``-retentionPeriod=100y`` and ``-futureRetention=100y`` — keep samples whatever their timestamp;
  the local stack's simulated clock may run days ahead of the wall clock.
* ``-opentelemetry.usePrometheusNaming=false`` and ``-opentelemetry.promoteAllResourceAttributes=true``
  — the defaults of 1.145, pinned: dotted metric names stay as sent (``claude_code.session.count``) and
  resource attributes become plain labels (``team.id``), which the ``prometheus`` PromQL dialect expects.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = [
    "BINARY_ENV",
    "HOW_TO_ADD",
    "VictoriaMetrics",
    "VictoriaMetricsError",
    "VictoriaMetricsNotFoundError",
    "default_binary_path",
    "find_binary",
    "installed_version",
]

BINARY_ENV = "TOKENWARDEN_VICTORIAMETRICS"
_RELATIVE_BINARY = Path(".cache") / "victoriametrics" / "victoria-metrics"
_PATH_NAMES = ("victoria-metrics", "victoria-metrics-prod")
"""Debian's and Homebrew's name, and the name in VictoriaMetrics' release archives."""

HOW_TO_ADD = (
    "run `make setup` (it takes a victoria-metrics on PATH, else fetches Debian's package where apt "
    "exists, builds the pinned release with `go install` where Go exists, or runs `brew install "
    "victoriametrics` on macOS), put a victoria-metrics or victoria-metrics-prod binary on PATH "
    f"yourself, or set {BINARY_ENV} to one"
)

_FLAGS = (
    "-search.latencyOffset=0s",
    "-search.disableCache",
    "-retentionPeriod=100y",
    "-futureRetention=100y",
    "-opentelemetry.usePrometheusNaming=false",
    "-opentelemetry.promoteAllResourceAttributes=true",
)


class VictoriaMetricsError(RuntimeError):
    """VictoriaMetrics could not be started or answered unexpectedly."""


class VictoriaMetricsNotFoundError(VictoriaMetricsError, FileNotFoundError):
    """No victoria-metrics binary: the message says how to add one (:data:`HOW_TO_ADD`). The demo and
    ``tokenwarden local up`` can run without VictoriaMetrics; this is the error that tells them so."""


def _repo_root() -> Path:
    # src/tokenwarden/local/victoriametrics.py -> the repository (a source checkout).
    return Path(__file__).resolve().parents[3]


def default_binary_path(repo_root: Path | None = None) -> Path:
    return (repo_root if repo_root is not None else _repo_root()) / _RELATIVE_BINARY


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _on_path() -> Path | None:
    for name in _PATH_NAMES:
        found = shutil.which(name)
        if found is not None:
            return Path(found)
    return None


def find_binary(repo_root: Path | None = None) -> Path:
    """The victoria-metrics binary: ``$TOKENWARDEN_VICTORIAMETRICS``, else one on PATH, else the
    repository's .cache copy; the order ``scripts/fetch-victoriametrics`` checks them in, so the binary it
    reported is the one that runs."""
    override = os.environ.get(BINARY_ENV)
    if override:
        path = Path(override).expanduser()
        if not _executable(path):
            raise VictoriaMetricsNotFoundError(
                f"{BINARY_ENV}={override} is not an executable file: point it at a victoria-metrics "
                "binary, or unset it and run `make setup`"
            )
        return path
    on_path = _on_path()
    if on_path is not None:
        return on_path
    path = default_binary_path(repo_root)
    if not _executable(path):
        raise VictoriaMetricsNotFoundError(
            f"VictoriaMetrics is not installed: not at {path} and neither of {', '.join(_PATH_NAMES)} "
            f"is on PATH. To add it, {HOW_TO_ADD}"
        )
    return path


def installed_version(binary: Path) -> str | None:
    """What ``scripts/fetch-victoriametrics`` recorded next to the binary (Debian's build prints none)."""
    version_file = binary.parent / "VERSION"
    try:
        recorded = version_file.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return recorded if recorded.startswith("victoria-metrics ") else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Loopback only: never through a proxy from the environment.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class VictoriaMetrics:
    """A VictoriaMetrics process on 127.0.0.1; a context manager (``start`` on enter, ``stop`` on exit)."""

    def __init__(
        self,
        binary: Path | None = None,
        *,
        storage_dir: Path | None = None,
        port: int | None = None,
        startup_timeout: float = 30.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.binary = binary if binary is not None else find_binary()
        if not _executable(self.binary):
            raise VictoriaMetricsNotFoundError(
                f"{self.binary} is not an executable file. To add one, {HOW_TO_ADD}"
            )
        self._storage_dir = storage_dir
        self._owns_storage = False
        self._requested_port = port
        self._startup_timeout = startup_timeout
        self._extra_args = tuple(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._log_path: Path | None = None
        self._workdir: Path | None = None

    # -- addresses --

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise VictoriaMetricsError(
                "VictoriaMetrics is not running: call start() or use it as a context manager"
            )
        return f"http://127.0.0.1:{self._port}"

    @property
    def otlp_url(self) -> str:
        """OTLP/HTTP metrics endpoint (protobuf only)."""
        return f"{self.base_url}/opentelemetry/v1/metrics"

    @property
    def query_url(self) -> str:
        return f"{self.base_url}/api/v1/query"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def storage_dir(self) -> Path | None:
        return self._storage_dir

    # -- lifecycle --

    def start(self) -> VictoriaMetrics:
        if self.running:
            return self
        self._workdir = Path(tempfile.mkdtemp(prefix="tokenwarden-vm-"))
        if self._storage_dir is None:
            self._storage_dir = self._workdir / "data"
            self._owns_storage = True
        self._log_path = self._workdir / "victoria-metrics.log"
        attempts = 1 if self._requested_port is not None else 3
        last_error: VictoriaMetricsError | None = None
        for _ in range(attempts):
            port = self._requested_port if self._requested_port is not None else _free_port()
            try:
                self._launch(port)
                return self
            except VictoriaMetricsError as exc:  # e.g. the free port was taken in between: try another
                last_error = exc
                self._terminate()
        self._cleanup()
        assert last_error is not None
        raise last_error

    def _launch(self, port: int) -> None:
        assert self._log_path is not None and self._storage_dir is not None
        command = [
            str(self.binary),
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-storageDataPath={self._storage_dir}",
            *_FLAGS,
            *self._extra_args,
        ]
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(  # the binary path is ours, the arguments fixed
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self._port = port
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise VictoriaMetricsError(
                    f"VictoriaMetrics exited with code {self._process.returncode} while starting on "
                    f"127.0.0.1:{port}:\n{self.log_tail()}"
                )
            if self._healthy():
                return
            time.sleep(0.05)
        raise VictoriaMetricsError(
            f"VictoriaMetrics did not report healthy within {self._startup_timeout:g} s on "
            f"127.0.0.1:{port}:\n{self.log_tail()}"
        )

    def _healthy(self) -> bool:
        try:
            with _LOCAL.open(f"{self.base_url}/health", timeout=2) as answer:
                return bool(answer.status == 200 and answer.read().strip() == b"OK")
        except (urllib.error.URLError, OSError):
            return False

    def force_flush(self) -> None:
        """Make everything received so far queryable (``/internal/force_flush``)."""
        try:
            with _LOCAL.open(f"{self.base_url}/internal/force_flush", timeout=30) as answer:
                if answer.status != 200:
                    raise VictoriaMetricsError(f"force_flush answered HTTP {answer.status}")
        except urllib.error.HTTPError as exc:
            raise VictoriaMetricsError(f"force_flush answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise VictoriaMetricsError(f"force_flush failed: {exc}\n{self.log_tail()}") from exc

    def stop(self) -> None:
        """Stop the process and remove the temporary storage. Safe to call twice."""
        self._terminate()
        self._cleanup()

    def _terminate(self) -> None:
        process, self._process = self._process, None
        self._port = None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def _cleanup(self) -> None:
        if self._owns_storage:
            self._storage_dir = None
            self._owns_storage = False
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
            self._log_path = None

    def log_tail(self, lines: int = 20) -> str:
        if self._log_path is None:
            return ""
        with contextlib.suppress(OSError):
            return "\n".join(
                self._log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            )
        return ""

    def __enter__(self) -> VictoriaMetrics:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
