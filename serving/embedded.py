"""Run the ``tritonserver`` binary that ``nvidia-pytriton`` ships on a vitrine model repository.

The PyTriton Python API is not used: only its real Triton 2.51 build (python backend and
ensembles, no onnxruntime/TensorRT backends), pointed at a repository written by the export
stage's builder for the ``embedded`` target.
"""

from __future__ import annotations

import compileall
import contextlib
import hashlib
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict

from vitrine import paths
from vitrine.export.triton_config import RESPONSE_CACHE_ARGUMENT

if TYPE_CHECKING:
    from vitrine.serving.watchdog import Watchdog

__all__ = [
    "ADMIN_HEADER",
    "EXIT_TIMEOUT_SECONDS",
    "MALLOC_ENVIRONMENT",
    "EmbeddedTriton",
    "ServerPorts",
    "ServerTls",
    "TritonInstall",
    "TritonNotInstalled",
    "TritonStartupError",
    "backend_directory",
    "compile_models",
    "find_triton",
    "free_port",
    "free_ports",
    "serve_forever",
]

_SignalHandler: TypeAlias = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None
"""What ``signal.signal`` installs and returns."""

logger = logging.getLogger("vitrine.serving")

_LOG_TAIL_LINES = 40

MALLOC_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": "1048576", "MALLOC_TRIM_THRESHOLD_": "1048576"}
"""glibc settings of the server and its stubs: buffers above 1 MiB (a photo's upload and
tensors) are mapped apart and go back to the system once freed, where glibc would otherwise
keep up to 32 MB chunks in its heap after a 25 MP photo."""

EXIT_TIMEOUT_SECONDS = 30
"""How long in-flight requests get to finish after SIGTERM (Triton's own default, and the Helm
chart's): less was too short to drain four 512 x 512 x2 requests on two busy cores."""


class TritonNotInstalled(RuntimeError):
    """``nvidia-pytriton`` (which ships the server binary) is missing or incomplete."""


class TritonStartupError(RuntimeError):
    """The server exited or did not become ready in time; the message ends with its log tail.

    ``transient`` is true when it crashed (died from a signal) or hung rather than exiting
    with a status: another launch may well succeed.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class TritonInstall:
    """Paths inside an installed ``nvidia-pytriton`` wheel."""

    binary: Path  # pytriton/tritonserver/bin/tritonserver
    libs: Path  # site-packages/nvidia_pytriton.libs
    python_backend: Path  # libtriton_python.so
    backend_utils: Path  # triton_python_backend_utils.py
    stub: Path  # triton_python_backend_stub for the running Python


TRITON_ROOT_VARIABLE = "VITRINE_TRITON_ROOT"
"""Names a folder laid out as the wheel's site-packages (``pytriton/tritonserver/...`` and
``nvidia_pytriton.libs/``), e.g. the stripped server of ``make gpu-bundle`` unpacked on a
node where the wheel is not installed; it takes precedence over the installed wheel."""

STUB_PYTHON_VARIABLE = "VITRINE_STUB_PYTHON"
"""Names the ``python3`` whose environment the python-backend stubs run in (default: this
interpreter). The stubs ignore ``PYTHONPATH`` and take the first ``python3`` on ``PATH``."""


def find_triton() -> TritonInstall:
    """Locate the server shipped by ``nvidia-pytriton`` without importing PyTriton (or the
    copy of it under ``$VITRINE_TRITON_ROOT``).

    Raises:
        TritonNotInstalled: the wheel, or a file the embedded server needs, is missing.
    """
    hint = "install the serving extra: pip install 'vitrine[serve]'"
    if os.environ.get(TRITON_ROOT_VARIABLE):
        package = Path(os.environ[TRITON_ROOT_VARIABLE]) / "pytriton"
        hint = f"${TRITON_ROOT_VARIABLE} must hold pytriton/ and nvidia_pytriton.libs/"
    else:
        spec = importlib.util.find_spec("pytriton")
        if spec is None or not spec.submodule_search_locations:
            raise TritonNotInstalled(f"nvidia-pytriton is not installed; {hint}")
        package = Path(next(iter(spec.submodule_search_locations)))
    root = package / "tritonserver"
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    install = TritonInstall(
        binary=root / "bin" / "tritonserver",
        libs=package.parent / "nvidia_pytriton.libs",
        python_backend=root / "backends" / "python" / "libtriton_python.so",
        backend_utils=root / "backends" / "python" / "triton_python_backend_utils.py",
        stub=root / "python_backend_stubs" / python_version / "triton_python_backend_stub",
    )
    for path in (install.binary, install.libs, install.python_backend, install.backend_utils):
        if not path.exists():
            raise TritonNotInstalled(f"nvidia-pytriton is incomplete: {path} is missing; {hint}")
    if not install.stub.exists():
        raise TritonNotInstalled(
            f"nvidia-pytriton has no python backend stub for Python {python_version} "
            f"({install.stub} is missing)"
        )
    return install


def backend_directory(install: TritonInstall | None = None, cache_dir: Path | None = None) -> Path:
    """A ``--backend-directory`` whose ``python/`` links to the wheel's python backend.

    Built under ``<cache>/triton-backends/`` (never inside site-packages), one folder per wheel
    location and Python version; links are replaced atomically, so concurrent callers are safe.
    """
    install = install or find_triton()
    root = (cache_dir or paths.cache_dir()) / "triton-backends"
    key = hashlib.sha256(str(install.binary.resolve()).encode()).hexdigest()[:12]
    version = f"py{sys.version_info.major}.{sys.version_info.minor}"
    directory = root / f"{version}-{key}"
    python_dir = directory / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    links = {
        "libtriton_python.so": install.python_backend,
        "triton_python_backend_utils.py": install.backend_utils,
        "triton_python_backend_stub": install.stub,
    }
    for name, target in links.items():
        _link(python_dir / name, target.resolve())
    return directory


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    temporary = link.with_name(f".{link.name}.{os.getpid()}.{threading.get_ident()}")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    temporary.symlink_to(target)
    os.replace(temporary, link)


def compile_models(repository: Path) -> None:
    """Write the bytecode of every ``model.py`` in ``repository`` that lacks a current one.

    The stubs run this interpreter's Python version and import ``model.py`` with bytecode
    writing on (their interpreter ignores ``PYTHONDONTWRITEBYTECODE``). A ``__pycache__``
    written after the load makes Triton see the model's files as modified, and then the
    watchdog's instance replacement turns into a full reload, which leaves the old
    generation's stubs behind. Compiled beforehand, the stubs find the bytecode and write
    nothing. Up-to-date files are left alone (servers may share a repository); a read-only
    repository is skipped, and its stubs cannot write there either.
    """
    for source in sorted(repository.glob("*/*/model.py")):
        compileall.compile_file(source, quiet=2)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is unused right now (for tests and ad-hoc servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class ServerPorts(TypedDict):
    """The ports of an :class:`EmbeddedTriton`, as its keyword arguments."""

    grpc_port: int
    http_port: int
    metrics_port: int


def free_ports(host: str = "127.0.0.1") -> ServerPorts:
    """gRPC, HTTP and metrics ports on ``host`` unused right now:
    ``EmbeddedTriton(repository, **free_ports())``."""
    return {
        "grpc_port": free_port(host),
        "http_port": free_port(host),
        "metrics_port": free_port(host),
    }


@dataclass(frozen=True)
class ServerTls:
    """PEM files for gRPC TLS; with ``client_ca`` set, clients must present a certificate
    signed by it (mutual TLS)."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def arguments(self) -> list[str]:
        """The ``tritonserver`` flags that enable it."""
        flags = [
            "--grpc-use-ssl=true",
            f"--grpc-server-cert={self.cert}",
            f"--grpc-server-key={self.key}",
        ]
        if self.client_ca is not None:
            flags += ["--grpc-use-ssl-mutual=true", f"--grpc-root-cert={self.client_ca}"]
        return flags


ADMIN_KEY_NAME = "vitrine-admin-key"
ADMIN_HEADER = f"triton-grpc-protocol-{ADMIN_KEY_NAME}"  # gRPC metadata that unlocks model control


class EmbeddedTriton:
    """A ``tritonserver`` subprocess serving ``repository``; use as a context manager.

    With ``admin_key`` set, models load in explicit mode and the model-repository API
    (load/unload) answers only requests carrying ``ADMIN_HEADER: admin_key``, so the
    watchdog can reload a broken step while outsiders can load nothing. Without it the
    mode is ``none``: no model control at all.

    ``grpc_url`` and ``http_url`` are ``host:port`` as ``tritonclient`` expects them.
    """

    def __init__(
        self,
        repository: Path,
        host: str = "127.0.0.1",
        grpc_port: int = 8001,
        http_port: int = 8000,
        metrics_port: int = 8002,
        log_path: Path | None = None,
        startup_timeout: float = 120.0,
        startup_attempts: int = 2,
        extra_args: Sequence[str] = (),
        exit_timeout: int = EXIT_TIMEOUT_SECONDS,
        tls: ServerTls | None = None,
        admin_key: str | None = None,
    ) -> None:
        self.repository = Path(repository)
        self.host = host
        self.grpc_port = grpc_port
        self.http_port = http_port
        self.metrics_port = metrics_port
        if log_path is None:
            log_path = Path(tempfile.mkdtemp(prefix="vitrine-triton-")) / "tritonserver.log"
        self.log_path = Path(log_path)
        self.startup_timeout = startup_timeout
        if startup_attempts < 1:
            raise ValueError(f"startup_attempts must be at least 1, got {startup_attempts}")
        self.startup_attempts = startup_attempts
        self.extra_args = tuple(extra_args)
        self.exit_timeout = exit_timeout
        self.tls = tls
        self.admin_key = admin_key
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[..., EmbeddedTriton] | None = None

    # -- addresses ---------------------------------------------------------------------------
    @property
    def _client_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    @property
    def grpc_url(self) -> str:
        """``host:port`` of the gRPC endpoint."""
        return f"{self._client_host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        """``host:port`` of the HTTP/REST endpoint."""
        return f"{self._client_host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        """Full URL of the Prometheus metrics page."""
        return f"http://{self._client_host}:{self.metrics_port}/metrics"

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        """Exit status once the process has ended (negative: killed by that signal)."""
        return self._process.poll() if self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self, backend_dir: Path, binary: Path) -> list[str]:
        """The ``tritonserver`` command line."""
        return [
            str(binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={backend_dir}",
            "--grpc-address",
            self.host,
            "--http-address",
            self.host,
            f"--grpc-port={self.grpc_port}",
            f"--http-port={self.http_port}",
            f"--metrics-port={self.metrics_port}",
            *self._model_control_arguments(),
            *(self.tls.arguments() if self.tls else ()),
            "--strict-readiness=true",
            f"--exit-timeout-secs={self.exit_timeout}",
            "--log-verbose=0",
            f"--cache-directory={binary.parent.parent / 'caches'}",  # the wheel's local cache
            RESPONSE_CACHE_ARGUMENT,
            *self.extra_args,
        ]

    def _model_control_arguments(self) -> list[str]:
        if self.admin_key is None:
            return ["--model-control-mode=none"]
        restriction = f"model-repository:{ADMIN_KEY_NAME}={self.admin_key}"
        return [
            "--model-control-mode=explicit",
            "--load-model=*",
            f"--grpc-restricted-protocol={restriction}",
            f"--http-restricted-api={restriction}",
        ]

    def environment(self, install: TritonInstall) -> dict[str, str]:
        """The server's environment: wheel libraries first, and first on PATH the interpreter
        the stubs run in (``$VITRINE_STUB_PYTHON``, else this one)."""
        env = dict(os.environ)
        libraries = [str(install.libs)]
        if env.get("LD_LIBRARY_PATH"):
            libraries.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libraries)
        # The python backend stub runs model.py with the first python3 on PATH.
        interpreter = env.get(STUB_PYTHON_VARIABLE) or sys.executable
        interpreter_bin = str(Path(interpreter).parent)
        env["PATH"] = os.pathsep.join(p for p in (interpreter_bin, env.get("PATH", "")) if p)
        return env | MALLOC_ENVIRONMENT

    def start(self) -> None:
        """Launch the server and wait until ``/v2/health/ready`` answers 200.

        A server that crashes or hangs while loading is stopped and launched again, up to
        ``startup_attempts`` launches in all: Triton 2.51's python backend has been seen to
        abort at load (``boost::interprocess::lock_exception``) while its stubs start on two
        busy cores. A server that exits with a status (a broken repository) fails at once.

        Raises:
            TritonNotInstalled: no server binary.
            TritonStartupError: the server exited or timed out; the message has its log tail.
        """
        if self.is_running():
            raise RuntimeError(f"tritonserver already running (pid {self.pid})")
        install = find_triton()
        backend_dir = backend_directory(install)
        compile_models(self.repository)
        for attempt in range(1, self.startup_attempts + 1):
            self._launch(install, backend_dir)
            try:
                self._wait_ready()
                return
            except TritonStartupError as failure:
                if not failure.transient or attempt == self.startup_attempts:
                    raise
                logger.warning(
                    "%s\nlaunching tritonserver again (attempt %d of %d)",
                    failure,
                    attempt + 1,
                    self.startup_attempts,
                )

    def _launch(self, install: TritonInstall, backend_dir: Path) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self.command(backend_dir, install.binary),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(install),
                start_new_session=True,  # signals reach it through stop(), not the terminal
            )
        self._finalizer = weakref.finalize(self, _kill, self._process)

    def _wait_ready(self) -> None:
        """Return once ready; otherwise stop the server (and its stubs) and raise."""
        assert self._process is not None
        url = f"http://{self._client_host}:{self.http_port}/v2/health/ready"
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self._process.poll()
            if code is not None:
                self.stop()
                ended = (
                    f"died from {_signal_name(-code)}" if code < 0 else f"exited with status {code}"
                )
                raise TritonStartupError(
                    f"tritonserver {ended} before becoming ready; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}",
                    transient=code < 0,
                )
            if _answers_200(url):
                logger.debug("tritonserver ready (pid %s)", self._process.pid)
                return
            if time.monotonic() > deadline:
                self.stop()
                raise TritonStartupError(
                    f"tritonserver was not ready after {self.startup_timeout:.0f} s; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}",
                    transient=True,
                )
            time.sleep(0.2)

    def stop(self, *, graceful: bool = True) -> int | None:
        """SIGTERM, wait up to the exit timeout plus a few seconds, then SIGKILL; without
        ``graceful``, SIGKILL at once.

        A stopping Triton unloads its models while its endpoints still answer: calls in that
        window get NOT_FOUND ("unknown model") or CANCELLED. A killed one only drops its
        connections, which callers see as the retryable UNAVAILABLE. Afterwards the server's
        process group is killed too: python-backend stubs outlive a server that crashed or
        was killed, and would pile up with every restart. Returns the exit status (None if
        never started).
        """
        process = self._process
        if process is None:
            return None
        if process.poll() is None and graceful:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self.exit_timeout + 5)
            except subprocess.TimeoutExpired:
                logger.warning("tritonserver ignored SIGTERM; killing pid %s", process.pid)
        if process.poll() is None:
            process.kill()
            process.wait()
        _kill_group(process.pid)
        if self._finalizer is not None:
            self._finalizer.detach()
        return process.returncode

    def restart(self, *, graceful: bool = True) -> None:
        """Stop (or reap) the server and start it again on the same ports; ``graceful``
        False kills it at once (see :meth:`stop`)."""
        self.stop(graceful=graceful)
        self.start()

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the server log."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                return "".join(deque(log, maxlen=lines)).rstrip()
        except OSError as exc:
            return f"(no log: {exc})"

    def __enter__(self) -> EmbeddedTriton:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Finalizer: never leave a server behind when the owner is collected or Python exits."""
    if process.poll() is None:
        process.kill()
        process.wait()
    _kill_group(process.pid)


def _kill_group(leader: int) -> None:
    """SIGKILL what is left of the server's process group (its own session, see start)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)


def serve_forever(server: EmbeddedTriton, watchdog: Watchdog | None = None) -> int:
    """Start ``server``, log where it listens, block until SIGINT/SIGTERM, then stop it.

    With a ``watchdog``, a dead server or pipeline step is healed instead of ending the run.

    Returns a process exit code: 0 after a clean stop, 1 when the server failed to start,
    otherwise the server's own status (128 + signal number when it died from a signal).
    """
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s; stopping tritonserver", signal.Signals(signum).name)
        stop_requested.set()

    previous: dict[signal.Signals, _SignalHandler] = {}
    if threading.current_thread() is threading.main_thread():
        for handled in (signal.SIGINT, signal.SIGTERM):
            previous[handled] = signal.signal(handled, request_stop)
    try:
        try:
            server.start()
        except (TritonStartupError, TritonNotInstalled) as exc:
            logger.error("%s", exc)
            return 1
        logger.info(
            "tritonserver (pid %s) serving %s: gRPC %s, HTTP %s, metrics %s; log %s",
            server.pid,
            server.repository,
            server.grpc_url,
            server.http_url,
            server.metrics_url,
            server.log_path,
        )
        if watchdog is not None:
            watchdog.start()
        while not stop_requested.wait(0.5):
            if watchdog is None and not server.is_running():
                logger.error(
                    "tritonserver exited unexpectedly with status %s; last lines of %s:\n%s",
                    server.returncode,
                    server.log_path,
                    server.log_tail(),
                )
                break
        if watchdog is not None:
            watchdog.stop()
        status = server.stop()
        logger.info("tritonserver stopped (status %s)", status)
        return _exit_code(status)
    finally:
        if watchdog is not None:
            watchdog.stop()
        server.stop()
        for handled, handler in previous.items():
            signal.signal(handled, handler)


def _exit_code(status: int | None) -> int:
    if status is None or status == 0:
        return 0
    return 128 - status if status < 0 else status
