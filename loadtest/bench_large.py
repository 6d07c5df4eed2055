"""`vitrine bench --large`: every editor on camera-sized photos, Vitrine against the naive peer.

For each editor with a large-image plan, on the photos of :func:`large_shapes` (12 and 24 MP),
each worker of a concurrency level sends one photo: 1 and 4 at a time on the 12 MP photo, 1 at
a time on the 24 MP one (four at once there would quadruple the run's longest cells, about
13 minutes for denoising, to tell what four 12 MP photos at once tell: whether they fit in
memory and how they share the cores). The systems:

* ``pipeline``: Vitrine's ensemble through the typed client (decode, ``<model>_fullsize``,
  which runs the core model in pieces, encode);
* ``peer``: the naive FastAPI service (:mod:`.peer`), PyTorch eager on the whole photo.

Each system runs alone in fresh processes, started for the editor and stopped after it: the
embedded server (every model, as served), then a peer serving that editor only. So one
system's memory is never counted against the other, and what an editor leaves allocated
(onnxruntime keeps its arenas at their peak) does not weigh on the next. The resident memory
of the system's processes (:mod:`.memory`) is sampled while the requests run; past
the memory ceiling the system is killed, as a container's memory limit would, and the cell
reads "out of memory"; a call past its deadline reads "timed out". After a failure the
system is started again, and the cells that ask at least as much of it (as many pixels and
at least as many calls at once) are not run. Writes ``bench.json`` (runs appended to its
``history``) and ``bench.png`` to ``reports/bench-large/``.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vitrine.errors import ConfigError
from vitrine.provenance import git_commit
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec

__all__ = [
    "LARGE_PHOTOS",
    "LargeBenchConfig",
    "LargeCell",
    "dominated",
    "format_summary",
    "large_shapes",
    "outcome",
    "run_large_bench",
    "summarise",
    "time_per_photo",
]

Shape = tuple[int, int]
"""(height, width) of a photo."""

LARGE_PHOTOS: tuple[Shape, ...] = ((3000, 4000), (4000, 6000))
"""The photos sent to an editor: 12 MP (4:3) and 24 MP (3:2), as cameras take them."""
LARGE_SYSTEMS = ("pipeline", "peer")
_GIB = 1024**3


@dataclass(frozen=True)
class LargeBenchConfig:
    """What ``vitrine bench --large`` measures; about an hour on 2 cores for every editor."""

    models: tuple[str, ...] = ()  # empty: every editor with a large-image plan
    concurrency: tuple[int, ...] = (1, 4)  # on every photo but the largest
    largest_concurrency: tuple[int, ...] = (1,)  # on the largest photo
    requests_per_worker: int = 1
    systems: tuple[str, ...] = LARGE_SYSTEMS
    timeout_s: float = 1800.0  # deadline of each call
    memory_ceiling_gib: float | None = 12.0  # per system; None: no ceiling
    input_format: str = "jpeg"
    output_format: str = "png"
    out: Path = Path("reports") / "bench-large"
    label: str = ""
    address: str | None = None  # a running server: no restarts, no memory figures
    repository: Path | None = None  # serve this built embedded repository instead

    def __post_init__(self) -> None:
        unknown = set(self.systems) - set(LARGE_SYSTEMS)
        if unknown:
            raise ConfigError(
                f"--large measures {list(LARGE_SYSTEMS)} only (the core model alone takes at "
                f"most its profile's side); got {sorted(unknown)}"
            )
        missing = set(self.models) - set(SPECS)
        if missing:
            raise ConfigError(f"unknown models {sorted(missing)}; known: {sorted(SPECS)}")
        whole = [name for name in self.models if SPECS[name].large is None]
        if whole:
            raise ConfigError(f"{whole} take no large photos (no large-image plan)")
        levels = (*self.concurrency, *self.largest_concurrency)
        if not self.concurrency or not self.largest_concurrency or min(levels) < 1:
            raise ValueError("concurrency levels must be positive integers")
        if self.requests_per_worker < 1:
            raise ValueError("requests per worker must be positive")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")


@dataclass(frozen=True)
class LargeCell:
    """One measured (system, model, photo, concurrency) point. ``outcome`` is "ok", "out of
    memory", "timed out", "failed" or "not run: ..." (a smaller cell already failed)."""

    system: str
    model: str
    height: int
    width: int
    concurrency: int
    outcome: str
    requests: int = 0
    errors: int = 0
    wall_s: float = 0.0
    photos_per_min: float = 0.0
    p50_s: float = 0.0
    mean_s: float = 0.0
    peak_memory_gib: float | None = None  # the system's processes (.memory); None: not read
    first_error: str | None = None

    @property
    def megapixels(self) -> float:
        return self.height * self.width / 1e6


def large_shapes(spec: ModelSpec) -> tuple[Shape, ...]:
    """The photos ``spec`` is measured on: :data:`LARGE_PHOTOS`. A super-resolution spec's
    limits keep its result within 8,192 px a side and 64 MP, so it takes instead the photo
    whose result is the 12 MP one, and its largest photo (the most its limits take)."""
    scale = spec.output_scale
    if scale == 1:
        return LARGE_PHOTOS
    (height, width), limits = LARGE_PHOTOS[0], spec.limits
    side = min(limits.max_side, math.isqrt(limits.max_pixels))
    return (height // scale, width // scale), (side, side)


def large_specs(config: LargeBenchConfig) -> list[ModelSpec]:
    """The editors to measure: those ``config`` names, else every one with a large plan."""
    names = config.models or tuple(name for name, spec in SPECS.items() if spec.large)
    return [SPECS[name] for name in names]


def outcome(errors: int, first_error: str | None, out_of_memory: bool) -> str:
    """A cell's outcome from its errors and whether the memory ceiling ended the system."""
    if out_of_memory:
        return "out of memory"
    if not errors:
        return "ok"
    return "timed out" if "timed out" in (first_error or "") else "failed"


def dominated(failed: Sequence[LargeCell], shape: Shape, level: int) -> LargeCell | None:
    """The failed cell that asked no more than ``shape`` at ``level`` does, if any: a cell
    with as many pixels or more and as many calls at once or more would fail as well."""
    pixels = shape[0] * shape[1]
    for cell in failed:
        if pixels >= cell.height * cell.width and level >= cell.concurrency:
            return cell
    return None


# -- the systems ------------------------------------------------------------------------------


@dataclass
class _System:
    """A running system: its address and, when this process started it, how to read the
    memory its processes hold and how to end them."""

    address: str
    memory: Callable[[], int] | None = None
    kill: Callable[[], None] | None = None


@contextlib.contextmanager
def _server(config: LargeBenchConfig) -> Iterator[_System]:
    if config.address is not None:
        yield _System(config.address)
        return
    from vitrine.loadtest.memory import server_memory
    from vitrine.serving.embedded import EmbeddedTriton, free_ports
    from vitrine.serving.serve import embedded_repository

    repository = config.repository or embedded_repository()
    ports = free_ports()
    with EmbeddedTriton(repository, **ports) as server:
        pid = server.pid
        assert pid is not None
        yield _System(
            server.grpc_url,
            memory=lambda: server_memory(pid),
            kill=lambda: _kill_group(pid),  # the server runs in its own session, stubs too
        )


@contextlib.contextmanager
def _peer(spec: ModelSpec) -> Iterator[_System]:
    from vitrine.loadtest.bench import peer_process
    from vitrine.loadtest.memory import process_memory

    with peer_process([spec.name]) as (address, process):
        yield _System(address, memory=lambda: process_memory(process.pid), kill=process.kill)


def _kill_group(leader: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)


# -- the calls --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Upload:
    """One photo as each system takes it."""

    data: bytes  # encoded in the config's input format
    kwargs: dict[str, Any]  # the client method's keyword arguments


def _upload(spec: ModelSpec, shape: Shape, config: LargeBenchConfig) -> _Upload:
    from vitrine.loadtest.payloads import encode, large_photo
    from vitrine.options import example_options

    height, width = shape
    pixels = large_photo(height, width)
    options = example_options(spec, height, width)
    return _Upload(encode(pixels, config.input_format), spec.selector_kwargs | options)


def _warm_up(spec: ModelSpec, config: LargeBenchConfig) -> _Upload:
    """A small photo each worker sends once before the clock starts: its connection and
    every step are warm, and no full-size call is spent on it."""
    side = spec.loadtest_side
    return _upload(spec, (side, side), config)


def _pipeline_call(
    spec: ModelSpec, upload: _Upload, warm: _Upload, address: str, config: LargeBenchConfig
) -> Callable[[], object]:
    """A worker sending ``upload`` through the pipeline, warmed up with ``warm``."""
    from vitrine.client import DeadlineExceeded
    from vitrine.loadtest.bench import _client

    method = getattr(_client(address, config.timeout_s), spec.client_method)

    def call(photo: _Upload) -> object:
        try:
            result = method(photo.data, **photo.kwargs, output_format=config.output_format)
            result.image.load()  # the pixels, as the peer's caller decodes them too
            return result
        except DeadlineExceeded as exc:
            raise TimeoutError(f"timed out after {config.timeout_s:g} s ({exc})") from exc

    call(warm)
    return lambda: call(upload)


def _peer_call(
    spec: ModelSpec, upload: _Upload, warm: _Upload, address: str, config: LargeBenchConfig
) -> Callable[[], object]:
    """A worker posting ``upload`` to the peer, warmed up with ``warm``."""
    from vitrine.loadtest.bench import BenchRequest, _decoded, _peer_worker

    query = urllib.parse.urlencode({"output_format": config.output_format})

    def worker(photo: _Upload) -> Callable[[], object]:
        request = BenchRequest(
            feed={},
            raw_args=(),
            pipeline_args=(),
            kwargs=dict,
            peer_path=lambda: f"/v1/models/{spec.name}?{query}",
            peer_body=photo.data,
            peer_parse=_decoded,
        )
        return _peer_worker(address, request, config.timeout_s)

    worker(warm)()
    send = worker(upload)

    def call() -> object:
        try:
            return send()
        except TimeoutError as exc:
            raise TimeoutError(f"timed out after {config.timeout_s:g} s ({exc})") from exc

    return call


_WORKERS = {"pipeline": _pipeline_call, "peer": _peer_call}
_SYSTEMS: dict[str, Callable[..., contextlib.AbstractContextManager[_System]]] = {
    "pipeline": lambda spec, config: _server(config),
    "peer": lambda spec, config: _peer(spec),
}


# -- the run ----------------------------------------------------------------------------------


def _measure_cell(
    spec: ModelSpec,
    system_name: str,
    system: _System,
    shape: Shape,
    level: int,
    upload: _Upload,
    config: LargeBenchConfig,
) -> LargeCell:
    from vitrine.loadtest.bench import measure
    from vitrine.loadtest.memory import MemoryCeiling

    warm = _warm_up(spec, config)

    def factory() -> Callable[[], object]:
        return _WORKERS[system_name](spec, upload, warm, system.address, config)

    ceiling = config.memory_ceiling_gib
    memory = MemoryCeiling(
        system.memory or int,
        ceiling=int(ceiling * _GIB) if ceiling and system.memory else None,
        on_exceed=system.kill,
    )
    with memory:
        figures = measure(
            factory,
            level,
            duration_s=config.timeout_s * (config.requests_per_worker + 1),
            max_requests=level * config.requests_per_worker,
            warmup=0,
        )
    return LargeCell(
        system=system_name,
        model=spec.name,
        height=shape[0],
        width=shape[1],
        concurrency=level,
        outcome=outcome(figures["errors"], figures["first_error"], memory.exceeded),
        requests=figures["requests"],
        errors=figures["errors"],
        wall_s=figures["wall_s"],
        photos_per_min=round(figures["rps"] * 60.0, 2),
        p50_s=round(figures["p50_ms"] / 1000.0, 2),
        mean_s=round(figures["mean_ms"] / 1000.0, 2),
        peak_memory_gib=round(memory.peak / _GIB, 2) if system.memory else None,
        first_error=figures["first_error"],
    )


def _system_cells(
    spec: ModelSpec, system_name: str, config: LargeBenchConfig, echo: Callable[[str], None]
) -> list[LargeCell]:
    """Every cell of one system for ``spec``: the system started for it (and again after
    a failure), the cells a failure dominates not run."""
    cells: list[LargeCell] = []
    failed: list[LargeCell] = []
    with contextlib.ExitStack() as running:
        system: _System | None = None
        shapes = large_shapes(spec)
        for shape in shapes:
            upload: _Upload | None = None
            largest = shape == shapes[-1]
            for level in config.largest_concurrency if largest else config.concurrency:
                cause = dominated(failed, shape, level)
                if cause is not None:
                    note = f"not run: {cause.outcome} at {cause.width}x{cause.height}, "
                    cell = LargeCell(
                        system_name, spec.name, *shape, level, note + f"c={cause.concurrency}"
                    )
                else:
                    if system is None:
                        system = running.enter_context(_SYSTEMS[system_name](spec, config))
                    upload = upload or _upload(spec, shape, config)
                    cell = _measure_cell(spec, system_name, system, shape, level, upload, config)
                    if cell.outcome != "ok":
                        failed.append(cell)
                        running.close()  # a failed system is started afresh
                        system = None
                cells.append(cell)
                echo(_cell_line(cell))
    return cells


def _cell_line(cell: LargeCell) -> str:
    memory = f"{cell.peak_memory_gib:5.2f} GiB" if cell.peak_memory_gib is not None else "   -"
    figures = (
        f"{cell.p50_s:8.1f} s  {cell.photos_per_min:6.2f} photos/min  peak {memory}"
        if cell.requests
        else ""
    )
    shown = cell.outcome if cell.outcome != "ok" else ""
    return (
        f"  {cell.model:18} {cell.width}x{cell.height:<5} {cell.system:8} c={cell.concurrency:<2}"
        f" {figures} {shown}".rstrip()
    )


def summarise(cells: Sequence[LargeCell]) -> list[dict[str, Any]]:
    """One row per (model, photo): per system, the latency at its lowest level, the
    throughput at its highest (None where that cell did not succeed), the peak memory over
    its levels, and each level's outcome."""
    grouped: dict[tuple[str, int, int], dict[str, list[LargeCell]]] = {}
    for cell in cells:
        key = (cell.model, cell.height, cell.width)
        grouped.setdefault(key, {}).setdefault(cell.system, []).append(cell)
    summary = []
    for (model, height, width), systems in grouped.items():
        row: dict[str, Any] = {
            "model": model,
            "photo": f"{width}x{height}",
            "megapixels": round(height * width / 1e6, 1),
        }
        for system, measured in systems.items():
            ordered = sorted(measured, key=lambda c: c.concurrency)
            low, high = ordered[0], ordered[-1]
            peaks = [c.peak_memory_gib for c in measured if c.peak_memory_gib is not None]
            row[system] = {
                "latency_s": low.p50_s if low.outcome == "ok" else None,
                "latency_concurrency": low.concurrency,
                "photos_per_min": high.photos_per_min if high.outcome == "ok" else None,
                "throughput_concurrency": high.concurrency,
                "peak_memory_gib": max(peaks) if peaks else None,
                "outcomes": {f"c{c.concurrency}": c.outcome for c in measured},
            }
        summary.append(row)
    return summary


def _figure(value: float | None, text: str, level: int, unit: str) -> str:
    """A figure and its concurrency, or in its place what happened (out of memory, ...)."""
    shown = f"{value:.1f}{unit}" if value is not None else text.removeprefix("not run: ")
    return f"{shown} (c={level})"


def format_summary(summary: Sequence[dict[str, Any]]) -> list[str]:
    """The summary as text lines: per (model, photo) and system, the latency, the
    throughput and the peak memory, or what happened instead."""
    lines = [
        f"{'model':18} {'photo':>10} {'MP':>5}  {'system':8} {'latency':>36} "
        f"{'throughput':>36} {'peak memory':>12}"
    ]
    for row in summary:
        for system in LARGE_SYSTEMS:
            figures = row.get(system)
            if figures is None:
                continue
            outcomes = list(figures["outcomes"].values())
            memory = figures["peak_memory_gib"]
            latency = _figure(
                figures["latency_s"], outcomes[0], figures["latency_concurrency"], " s"
            )
            rate = _figure(
                figures["photos_per_min"],
                outcomes[-1],
                figures["throughput_concurrency"],
                " photos/min",
            )
            lines.append(
                f"{row['model']:18} {row['photo']:>10} {row['megapixels']:>5}  {system:8} "
                f"{latency:>36} {rate:>36} "
                f"{f'{memory:.2f} GiB' if memory is not None else '-':>12}"
            )
    return lines


def time_per_photo(summary: Sequence[dict[str, Any]], megapixels: float) -> dict[str, float]:
    """Per model, the pipeline's latency for the photo of ``megapixels`` (the README's time
    per 12 MP photo); for super-resolution, the photo whose result has ``megapixels``."""
    times: dict[str, float] = {}
    for row in summary:
        result = row["megapixels"] * SPECS[row["model"]].output_scale ** 2
        latency = (row.get("pipeline") or {}).get("latency_s")
        if latency is not None and math.isclose(result, megapixels, rel_tol=0.05):
            times[row["model"]] = latency
    return times


def bench_large(config: LargeBenchConfig, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure every (editor, system, photo, level) of ``config``; returns the run."""
    specs = large_specs(config)
    started = time.time()
    cells: list[LargeCell] = []
    for spec in specs:
        shapes = ", ".join(f"{w}x{h}" for h, w in large_shapes(spec))
        echo(f"{spec.name}: {shapes}")
        for system in config.systems:
            cells.extend(_system_cells(spec, system, config, echo))
    return {
        "label": config.label,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "commit": git_commit(short=True),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / _GIB, 1),
            "python": sys.version.split()[0],
            "load_average_at_end": [round(load, 2) for load in os.getloadavg()],  # 1, 5, 15 min
        },
        "config": {
            key: str(value) if isinstance(value, Path) else value
            for key, value in asdict(config).items()
        },
        "photos": {spec.name: [f"{w}x{h}" for h, w in large_shapes(spec)] for spec in specs},
        "cells": [asdict(cell) for cell in cells],
        "summary": summarise(cells),
    }


def run_large_bench(config: LargeBenchConfig) -> int:
    """`vitrine bench --large`: measure, write JSON + PNG, print the summary. Exit code 0."""
    from vitrine.loadtest.bench import write_run

    ceiling = f"{config.memory_ceiling_gib:g} GiB" if config.memory_ceiling_gib else "none"
    print(
        f"bench --large: systems {', '.join(config.systems)}; concurrency "
        f"{list(config.concurrency)} (largest photo {list(config.largest_concurrency)}), "
        f"{config.requests_per_worker} photo(s) per worker; "
        f"deadline {config.timeout_s:g} s; memory ceiling {ceiling}"
    )
    run = bench_large(config)
    json_path, png_path = write_run(run, config.out, plot=_plot)
    print()
    for line in format_summary(run["summary"]):
        print(line)
    twelve = time_per_photo(run["summary"], 12.0)
    if twelve:
        print("\ntime per 12 MP photo (pipeline, one at a time):")
        for model, seconds in twelve.items():
            print(f"  {model:18} {seconds:.1f} s")
    print(f"\nwrote {json_path}" + (f" and {png_path}" if png_path else ""))
    return 0


def _plot(run: dict[str, Any], path: Path) -> Path:
    from vitrine.loadtest.plot import plot_large_run

    return plot_large_run(run, path)
