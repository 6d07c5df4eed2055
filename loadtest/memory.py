"""The memory a system under test holds while it works: sampled from ``/proc``, with a ceiling.

A server is several processes sharing pages, so their resident sizes cannot be summed: each
would count the shared pages again. What a process holds alone is its anonymous resident
memory (``RssAnon`` in ``/proc/<pid>/status``); what the processes share is the shared memory
through which Triton's python backend hands tensors to each stub, a region per stub, mapped
by the stub and the server (``RssShmem``). So a server holds its own anonymous memory plus
each stub's anonymous and shared memory; libraries' file pages (shared, and reclaimable) are
left out. On an idle embedded server that comes within 5 % of the proportional set size
(``smaps_rollup``), at a tenth of the cost to read. Linux only, like the server.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

__all__ = ["MemoryCeiling", "process_memory", "server_memory"]


def _resident(pid: int, *fields: str) -> int:
    """The sum of ``fields`` (kB lines of ``/proc/<pid>/status``) in bytes; 0 once gone."""
    total = 0
    with contextlib.suppress(OSError, ValueError):
        for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in fields:
                total += int(value.split()[0]) * 1024
    return total


def process_memory(pid: int) -> int:
    """What one process holds: its anonymous and shared resident memory."""
    return _resident(pid, "RssAnon", "RssShmem")


def server_memory(server_pid: int) -> int:
    """What ``tritonserver`` and its live python-backend stubs hold, each page once: the
    server's anonymous memory, and each stub's anonymous and shared memory (the region
    the server maps too)."""
    from vitrine.serving.stubs import stubs

    own = _resident(server_pid, "RssAnon")
    return own + sum(process_memory(stub.pid) for stub in stubs(server_pid))


class MemoryCeiling:
    """Samples ``measure()`` (bytes) every ``interval`` seconds while in its ``with`` block,
    keeping the peak; past ``ceiling`` bytes it calls ``on_exceed`` once (which should end
    the processes, as a container's memory limit would) and sets ``exceeded``.

    The ceiling is checked between samples, so a fast allocation can pass it by up to what
    is allocated within one interval.
    """

    def __init__(
        self,
        measure: Callable[[], int],
        *,
        ceiling: int | None = None,
        on_exceed: Callable[[], None] | None = None,
        interval: float = 0.25,
    ) -> None:
        self.measure = measure
        self.ceiling = ceiling
        self.on_exceed = on_exceed
        self.interval = interval
        self.peak = 0
        self.exceeded = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> int:
        """One sample: the current figure, folded into the peak (and the ceiling checked)."""
        current = self.measure()
        self.peak = max(self.peak, current)
        if self.ceiling is not None and current > self.ceiling and not self.exceeded:
            self.exceeded = True
            if self.on_exceed is not None:
                self.on_exceed()
        return current

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> MemoryCeiling:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="memory-ceiling", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
