"""The python-backend stub processes of a running ``tritonserver``, read from ``/proc``.

Triton's python backend runs each model instance in a ``triton_python_backend_stub`` child
of the server, started as ``stub <repository>/<model>/<version>/model.py <shm region> ...
<instance name> ...``. Neither the instance name (``superres_x2_0_1``) nor anything else on
that line tells one load of a model from the next, so the watchdog tells generations apart by
process id: the stubs alive before it replaces a model's instances are the old generation.
Linux only, like the server itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

__all__ = [
    "STUB_EXECUTABLE",
    "Stub",
    "configured_stubs",
    "end",
    "resident_bytes",
    "stubs",
    "unhealthy_models",
]

STUB_EXECUTABLE = "triton_python_backend_stub"
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Stub:
    """One live stub process."""

    pid: int
    model: str  # the model's folder in the repository, e.g. "superres_x2"
    instance: str  # Triton's instance name, e.g. "superres_x2_0_1" (the same in every generation)
    state: str  # the /proc state letter: "R", "S", "D", "T" (stopped), "t" (traced)
    rss: int  # resident bytes

    @property
    def stopped(self) -> bool:
        """Stopped by a signal or a debugger: it can answer nothing until continued."""
        return self.state in ("T", "t")


def _stat(pid: int) -> tuple[str, int, int]:
    """(state, parent pid, resident bytes) from ``/proc/<pid>/stat``."""
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[21]) * _PAGE


def _stub(pid: int, argv: list[str], state: str, rss: int) -> Stub | None:
    """The stub that ``argv`` starts, or None for any other process."""
    if len(argv) < 9 or Path(argv[0]).name != STUB_EXECUTABLE:
        return None
    model = Path(argv[1]).parts[-3]  # <repository>/<model>/<version>/model.py
    return Stub(pid=pid, model=model, instance=argv[8], state=state, rss=rss)


def stubs(server_pid: int) -> list[Stub]:
    """The live stub processes of the server ``server_pid`` (zombies, which hold no memory,
    and processes that exit while being read are left out)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        with contextlib.suppress(OSError, IndexError, ValueError):
            state, parent, rss = _stat(pid)
            if parent != server_pid or state in ("Z", "X"):
                continue
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            stub = _stub(pid, argv, state, rss)
            if stub is not None:
                found.append(stub)
    return sorted(found, key=lambda stub: stub.pid)


def resident_bytes(server_pid: int) -> int:
    """Resident memory of the server and its live stubs."""
    try:
        own = _stat(server_pid)[2]
    except OSError:
        return 0
    return own + sum(stub.rss for stub in stubs(server_pid))


def configured_stubs(repository: Path) -> dict[str, int]:
    """How many stubs each python-backend model of ``repository`` is configured to run."""
    counts = {}
    for path in sorted(repository.glob("*/config.pbtxt")):
        config = text_format.Parse(path.read_text(), pb.ModelConfig())
        if config.backend == "python":
            counts[path.parent.name] = sum(max(group.count, 1) for group in config.instance_group)
    return counts


def unhealthy_models(running: Iterable[Stub], configured: dict[str, int]) -> tuple[str, ...]:
    """Models with a stopped stub or fewer live stubs than configured (one died)."""
    running = list(running)
    live = Counter(stub.model for stub in running)
    stopped = {stub.model for stub in running if stub.stopped}
    short = {model for model, count in configured.items() if live[model] < count}
    return tuple(sorted(stopped | short))


def end(pids: Iterable[int]) -> None:
    """SIGKILL each process (a stopped one too: SIGKILL needs no SIGCONT); gone ones are skipped."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
