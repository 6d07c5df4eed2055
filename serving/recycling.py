"""Which python-backend steps to give fresh instances because a large photo grew them.

A python-backend stub receives its tensors through a shared-memory pool that grows to the
largest tensor it has held and never shrinks: after one 25 MP photo each step that touched
it keeps its pool at that size, and so does the server, which maps every pool. A step whose
stubs sit idle well above the size they had when they were fresh gets new instances, the
same in-place replacement that heals a broken step (``vitrine.serving.watchdog``), and the
memory goes back to the system. Pure bookkeeping here; the watchdog acts on it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from vitrine.serving.stubs import Stub

__all__ = ["GrowthTracker"]


@dataclass
class GrowthTracker:
    """Tracks each step's stubs: their size when first seen idle (the step's fresh size)
    and how long each has been idle (no CPU time)."""

    grown_by: int = 32 << 20  # bytes above the fresh size that make a stub grown
    idle_seconds: float = 2.0  # how long every stub of the step must have been idle
    _fresh: dict[str, int] = field(default_factory=dict)  # model -> largest fresh stub size
    _last: dict[int, tuple[int, float]] = field(default_factory=dict)  # pid -> ticks, since

    def _idle_since(self, stub: Stub, now: float) -> float:
        ticks, since = self._last.get(stub.pid, (-1, now))
        if stub.cpu_ticks != ticks:
            since = now
        self._last[stub.pid] = (stub.cpu_ticks, since)
        return since

    def observe(self, running: Iterable[Stub], now: float) -> tuple[str, ...]:
        """The steps to recycle now: every stub idle for ``idle_seconds`` and one of them
        ``grown_by`` above the step's fresh size."""
        by_model: dict[str, list[tuple[Stub, float]]] = defaultdict(list)
        for stub in running:
            by_model[stub.model].append((stub, self._idle_since(stub, now)))
        alive = {stub.pid for stubs in by_model.values() for stub, _ in stubs}
        self._last = {pid: value for pid, value in self._last.items() if pid in alive}
        due = []
        for model, members in sorted(by_model.items()):
            if any(now - since < self.idle_seconds for _, since in members):
                continue
            largest = max(stub.rss for stub, _ in members)
            fresh = self._fresh.setdefault(model, largest)
            if largest > fresh + self.grown_by:
                due.append(model)
        return tuple(due)

    def forget(self, model: str) -> None:
        """``model`` has new instances: its fresh size is measured again."""
        self._fresh.pop(model, None)
