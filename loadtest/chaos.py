"""Chaos: kill and stop python-backend stubs under client load, and see what callers got.

``python -m vitrine.loadtest.chaos --out reports/chaos/quiet.json`` builds a small embedded
repository (two editor pipelines: :data:`SPECS`), starts the real server with its watchdog,
and runs ``threads`` clients calling both pipelines back to back, each result checked against
the image the healthy server returned. Each cycle sends one fault, SIGKILL or SIGSTOP to one
or all stubs of a decode, core or encode step (:data:`FAULTS`), waits for the watchdog's heal
and lets the load run on for ``settle`` seconds. It records per cycle the time from the fault
to the heal, every call's outcome and the server's resident memory and stub count before and
after. ``--busy`` runs a CPU burner per core meanwhile. The integration test
``tests/integration/test_chaos.py`` asserts on the same records.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vitrine.client import VitrineClient, VitrineError
from vitrine.loadtest.payloads import encode, photo_inputs
from vitrine.options import example_options
from vitrine.pipeline import ENCODE_MODEL, pipeline_steps
from vitrine.registry import SPECS as CATALOG
from vitrine.serving.embedded import EmbeddedTriton, free_ports
from vitrine.serving.stubs import resident_bytes, stubs
from vitrine.serving.watchdog import Watchdog
from vitrine.spec import ModelSpec

__all__ = [
    "CHAOS_EXIT_TIMEOUT_S",
    "FAULTS",
    "RETRYABLE",
    "SPECS",
    "Call",
    "ChaosRun",
    "ClientLoad",
    "Cycle",
    "Fault",
    "build_repository",
    "cpu_burners",
    "FULLSIZE_FAULTS",
    "main",
    "run_chaos",
]

logger = logging.getLogger("vitrine.loadtest.chaos")

SPECS = (CATALOG["superres_x2"], CATALOG["denoise"])  # two pipelines, small and quick
SIDE = 48  # side of the uploaded photos: calls stay cheap, so the load is dense
RETRYABLE = ("Unavailable", "ResourceExhausted")  # the client's retryable error types
CHAOS_EXIT_TIMEOUT_S = 5
"""The chaos server's exit timeout. A model one of whose stubs was SIGKILLed under load never
unloads again in this Triton build, heal or no heal, so the server's stop waits out the whole
exit timeout and exits with status 1; nothing is in flight by then."""
_SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGSTOP": signal.SIGSTOP}


@dataclass(frozen=True)
class Fault:
    """A signal sent to one or all stubs of one step of a pipeline."""

    signal: str  # "SIGKILL" or "SIGSTOP"
    step: str  # "decode", "fullsize", "core" or "encode"
    scope: str  # "one" or "all"

    def __str__(self) -> str:
        return f"{self.signal} {self.scope} {self.step}"

    def model(self, spec: ModelSpec) -> str:
        """The Triton model of this step in ``spec``'s pipeline."""
        steps = {
            "decode": spec.decode_model,
            "fullsize": spec.fullsize_model,
            "core": spec.core_model,
            "encode": ENCODE_MODEL,
        }
        model = steps[self.step]
        if model not in pipeline_steps(spec):
            raise ValueError(f"{spec.pipeline} has no {self.step} step")
        return model


FAULTS = tuple(
    Fault(name, step, scope)
    for name in _SIGNALS
    for step in ("core", "decode", "encode")
    for scope in ("one", "all")
)
"""The faults every heal must survive unnoticed: in place, within seconds."""
FULLSIZE_FAULTS = tuple(
    Fault(name, "fullsize", scope) for name in _SIGNALS for scope in ("one", "all")
)
"""Faults of the full-size step, which calls the core model (BLS). A stub killed or stopped
while it talks to the server can leave its message queue locked: Triton then waits forever
to finalize the old instance, so the watchdog's in-place replacement times out
(``Watchdog.reload_timeout``) and it restarts the server instead."""


@dataclass(frozen=True)
class Call:
    """One client call: when it ended (monotonic), how long it took, how it ended."""

    ended: float
    seconds: float
    pipeline: str
    outcome: str  # "ok", "wrong" (an image unlike the healthy one) or the error's type
    message: str = ""  # the error's message


@dataclass(frozen=True)
class _Case:
    spec: ModelSpec
    upload: bytes
    kwargs: dict[str, Any]
    expected: npt.NDArray[Any]


class ClientLoad:
    """``threads`` typed clients (default retry policy) calling ``specs``' pipelines in turn
    until closed; each result is compared with what the healthy server returned."""

    def __init__(
        self, url: str, specs: Sequence[ModelSpec], threads: int = 4, deadline: float = 10.0
    ) -> None:
        self.url = url
        self.deadline = deadline
        self.calls: list[Call] = []
        self._stop = threading.Event()
        with VitrineClient(url, timeout=60.0) as client:
            self._cases = [self._case(client, spec) for spec in specs]
        self._threads = [
            threading.Thread(target=self._run, args=(offset,), daemon=True)
            for offset in range(threads)
        ]

    @staticmethod
    def _case(client: VitrineClient, spec: ModelSpec) -> _Case:
        pixels = photo_inputs(SIDE, SIDE)[0]
        upload = encode(pixels, "png")
        kwargs = spec.selector_kwargs | example_options(spec, SIDE, SIDE)
        result = getattr(client, spec.client_method)(upload, **kwargs)
        return _Case(spec, upload, kwargs, np.asarray(result.image))

    def __enter__(self) -> ClientLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self, offset: int) -> None:
        cases = itertools.islice(itertools.cycle(self._cases), offset, None)
        with VitrineClient(self.url, timeout=self.deadline) as client:
            for case in cases:
                if self._stop.is_set():
                    return
                started = time.monotonic()
                message = ""
                try:
                    result = getattr(client, case.spec.client_method)(case.upload, **case.kwargs)
                    same = np.array_equal(np.asarray(result.image), case.expected)
                    outcome = "ok" if same else "wrong"
                except VitrineError as error:
                    outcome, message = type(error).__name__, str(error)
                ended = time.monotonic()
                call = Call(ended, ended - started, case.spec.pipeline, outcome, message)
                self.calls.append(call)

    def ended_between(self, start: float, end: float) -> list[Call]:
        return [call for call in list(self.calls) if start <= call.ended < end]


@dataclass(frozen=True)
class Cycle:
    """One fault and what followed it, until the end of its settle time."""

    fault: str
    model: str
    victims: int
    detect_seconds: float | None  # from the fault until the watchdog began healing
    heal_seconds: float | None  # from the fault until the watchdog's heal; None: no heal
    action: str | None  # "reload" or "restart"
    ended_stubs: int  # old-generation stubs the watchdog had to kill
    calls: int  # calls that ended during the cycle
    outcomes: dict[str, int]
    messages: dict[str, str]  # per error type, its first message
    slowest: float  # seconds of the slowest call
    rss_before: int
    rss_after: int
    threads_before: int  # of the tritonserver process
    threads_after: int
    stubs_before: dict[str, int]
    stubs_after: dict[str, int]

    @property
    def failed(self) -> int:
        return self.calls - self.outcomes.get("ok", 0)


@dataclass
class ChaosRun:
    """Every cycle of a run, and the server's state before the first and after the last."""

    busy: bool
    deadline: float
    interval: float
    threads: int
    configured_stubs: dict[str, int]
    baseline_rss: int = 0
    final_rss: int = 0
    baseline_threads: int = 0  # of the tritonserver process
    final_threads: int = 0
    final_stubs: dict[str, int] = field(default_factory=dict)
    warmup_outcomes: dict[str, int] = field(default_factory=dict)  # before the first fault
    warmup_messages: dict[str, str] = field(default_factory=dict)
    cycles: list[Cycle] = field(default_factory=list)

    def outcomes(self) -> Counter[str]:
        """How every call ended, warm-up included."""
        total = Counter(self.warmup_outcomes)
        for cycle in self.cycles:
            total.update(cycle.outcomes)
        return total

    def messages(self) -> dict[str, str]:
        """Per error type, the first message it was seen with, warm-up included."""
        first = dict(self.warmup_messages)
        for cycle in self.cycles:
            first = cycle.messages | first
        return first

    @property
    def calls(self) -> int:
        return self.outcomes().total()

    @property
    def failed(self) -> int:
        return self.calls - self.outcomes()["ok"]

    def by_fault(self) -> dict[str, dict[str, Any]]:
        """Per fault kind: cycles, heal seconds (median and worst), calls, failed calls,
        and resident MiB before and after (the mean over its cycles)."""
        summary = {}
        for fault in dict.fromkeys(cycle.fault for cycle in self.cycles):
            cycles = [cycle for cycle in self.cycles if cycle.fault == fault]
            heals = [c.heal_seconds for c in cycles if c.heal_seconds is not None]
            summary[fault] = {
                "cycles": len(cycles),
                "healed": len(heals),
                "heal_s_median": round(statistics.median(heals), 2) if heals else None,
                "heal_s_max": round(max(heals), 2) if heals else None,
                "detect_s_max": round(max(c.detect_seconds or 0.0 for c in cycles), 2),
                "calls": sum(c.calls for c in cycles),
                "failed": sum(c.failed for c in cycles),
                "rss_mib_before": round(statistics.mean(c.rss_before for c in cycles) / 2**20),
                "rss_mib_after": round(statistics.mean(c.rss_after for c in cycles) / 2**20),
            }
        return summary

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "calls": self.calls,
            "failed": self.failed,
            "outcomes": dict(self.outcomes()),
            "by_fault": self.by_fault(),
            "cycles": [asdict(cycle) | {"failed": cycle.failed} for cycle in self.cycles],
        }


def _stub_counts(server: EmbeddedTriton) -> dict[str, int]:
    return dict(sorted(Counter(stub.model for stub in stubs(server.pid or 0)).items()))


def _server_threads(server: EmbeddedTriton) -> int:
    return len(os.listdir(f"/proc/{server.pid}/task"))


def _cycle(
    server: EmbeddedTriton,
    watchdog: Watchdog,
    load: ClientLoad,
    fault: Fault,
    spec: ModelSpec,
    settle: float,
    heal_timeout: float,
    since: float,
) -> tuple[Cycle, float]:
    """The cycle of ``fault``, counting the calls that ended from ``since`` on, and when it
    ended."""
    model = fault.model(spec)
    events_before = len(watchdog.events)
    rss_before, stubs_before = resident_bytes(server.pid or 0), _stub_counts(server)
    threads_before = _server_threads(server)
    pids = [stub.pid for stub in stubs(server.pid or 0) if stub.model == model]
    victims = pids[:1] if fault.scope == "one" else pids
    faulted_at = time.time()
    for pid in victims:
        os.kill(pid, _SIGNALS[fault.signal])
    deadline = time.monotonic() + heal_timeout
    while len(watchdog.events) == events_before and time.monotonic() < deadline:
        time.sleep(0.05)
    event = watchdog.events[events_before] if len(watchdog.events) > events_before else None
    time.sleep(settle)  # the load runs on against the healed server
    until = time.monotonic()
    calls = load.ended_between(since, until)
    cycle = Cycle(
        fault=str(fault),
        model=model,
        victims=len(victims),
        detect_seconds=None if event is None else event.detected_at - faulted_at,
        heal_seconds=None if event is None else event.detected_at + event.seconds - faulted_at,
        action=None if event is None else event.action,
        ended_stubs=0 if event is None else len(event.ended),
        calls=len(calls),
        outcomes=dict(Counter(call.outcome for call in calls)),
        messages=_first_messages(calls),
        slowest=max((call.seconds for call in calls), default=0.0),
        rss_before=rss_before,
        rss_after=resident_bytes(server.pid or 0),
        threads_before=threads_before,
        threads_after=_server_threads(server),
        stubs_before=stubs_before,
        stubs_after=_stub_counts(server),
    )
    return cycle, until


def _first_messages(calls: Sequence[Call]) -> dict[str, str]:
    first: dict[str, str] = {}
    for call in calls:
        if call.message:
            first.setdefault(call.outcome, call.message)
    return first


def run_chaos(
    server: EmbeddedTriton,
    watchdog: Watchdog,
    faults: Sequence[Fault] = FAULTS,
    *,
    specs: Sequence[ModelSpec] = SPECS,
    threads: int = 4,
    deadline: float = 10.0,
    warmup: float = 30.0,
    settle: float = 2.0,
    heal_timeout: float = 30.0,
    busy: bool = False,
) -> ChaosRun:
    """One cycle per fault (decode and core faults alternate between ``specs``) under load
    of ``threads`` clients, on a running ``server`` guarded by a running ``watchdog``."""
    run = ChaosRun(
        busy=busy,
        deadline=deadline,
        interval=watchdog.interval,
        threads=threads,
        configured_stubs=dict(sorted(watchdog.configured.items())),
    )
    with ClientLoad(server.grpc_url, specs, threads, deadline) as load:
        # Stubs grow as they serve; the baseline is a warm server. Measured under this load:
        # 757 MiB after 3 s, 771 MiB after 30 s, then flat for 20 s more.
        time.sleep(warmup)
        mark = time.monotonic()
        warm_up_calls = load.ended_between(0.0, mark)
        run.warmup_outcomes = dict(Counter(call.outcome for call in warm_up_calls))
        run.warmup_messages = _first_messages(warm_up_calls)
        run.baseline_rss = resident_bytes(server.pid or 0)
        run.baseline_threads = _server_threads(server)
        for index, fault in enumerate(faults):
            spec = specs[index % len(specs)]
            cycle, mark = _cycle(server, watchdog, load, fault, spec, settle, heal_timeout, mark)
            logger.info("%s", cycle)
            run.cycles.append(cycle)
        run.final_rss = resident_bytes(server.pid or 0)
        run.final_threads = _server_threads(server)
        run.final_stubs = _stub_counts(server)
    return run


@contextlib.contextmanager
def cpu_burners(count: int | None = None) -> Iterator[None]:
    """``count`` busy-looping processes (default: one per core) for the duration."""
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(count or os.cpu_count() or 1)
    ]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def build_repository(out: Path, specs: Sequence[ModelSpec] = SPECS) -> Path:
    """The embedded-target repository of ``specs`` (exported from the shipped weights)."""
    from vitrine.export.build import build_target
    from vitrine.export.triton_config import Target

    return build_target(Target.EMBEDDED, out, specs=specs)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chaos cycles on a server of its own and write the records as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m vitrine.loadtest.chaos", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--busy", action="store_true", help="a CPU burner per core meanwhile")
    parser.add_argument("--rounds", type=int, default=1, help="times through every fault")
    parser.add_argument("--interval", type=float, default=0.5, help="watchdog interval (s)")
    parser.add_argument("--threads", type=int, default=4, help="client threads")
    parser.add_argument("--deadline", type=float, default=10.0, help="per call (s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="vitrine-chaos-") as work:
        repository = build_repository(Path(work) / "repository")
        ports = free_ports()
        server = EmbeddedTriton(
            repository,
            admin_key=secrets.token_urlsafe(16),
            log_path=Path(work) / "tritonserver.log",
            exit_timeout=CHAOS_EXIT_TIMEOUT_S,
            **ports,
        )
        with server:
            watchdog = Watchdog(server, interval=args.interval, timeout=3.0)
            watchdog.start()
            try:
                burn = cpu_burners() if args.busy else contextlib.nullcontext()
                with burn:
                    run = run_chaos(
                        server,
                        watchdog,
                        FAULTS * args.rounds,
                        threads=args.threads,
                        deadline=args.deadline,
                        busy=args.busy,
                    )
            finally:
                watchdog.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = run.as_json() | {"cpus": os.cpu_count(), "load_average": os.getloadavg()}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for fault, figures in run.by_fault().items():
        print(f"{fault:20} {figures}")
    print(
        f"{run.calls} calls, {run.failed} failed ({dict(run.outcomes())}); resident "
        f"{run.baseline_rss / 2**20:.0f} -> {run.final_rss / 2**20:.0f} MiB, threads "
        f"{run.baseline_threads} -> {run.final_threads}; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
