"""`vitrine bench --target gpu-torch`: the GPU limit, Vitrine's raw path and its pipelines.

For each model (default: denoise, superres_x2, inpaint) at each size (default 512), against
a running gpu-torch server, one measurement after another on the same machine:

* ``limit``: the served TorchScript artifact (the same file, :class:`TorchScriptArtifact`)
  in-process on the server's device, closed loop, batch 1 and 8. ``limit`` keeps tensors on
  the device; ``limit_host`` adds the copies in and out of host memory that any server pays.
* ``raw``: ``client.<method>_array`` (uint8 tensors over gRPC) at each concurrency level;
  the top level is driven by several client processes so that the client is not the
  bottleneck. Bytes per second in and out are reported beside images per second.
* ``pipeline``: the ensemble through the client (JPEG upload; JPEG, PNG and WebP results)
  at the top concurrency, with each step's share of the time Triton spent on the request
  (queue and compute, from its statistics): decode, core model, encode.

Writes ``gpu_torch_bench.json`` (every cell, the summary against the issue's targets, the
GPU, driver and versions) and ``gpu_torch_bench.png``. On a CPU build of the target the same
run measures the CPU (the ``--smoke`` mode of ``scripts/gpu_check.sh``): the figures say
which device they come from.
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
import os
import platform
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vitrine.errors import ConfigError
from vitrine.provenance import git_commit
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec
from vitrine.tasks import Family

__all__ = [
    "BENCH_FILE",
    "PIPELINE_FORMATS",
    "TARGETS",
    "GpuTorchBenchConfig",
    "measure_processes",
    "run_gpu_torch_bench",
    "step_shares",
    "summarise",
]

BENCH_FILE = "gpu_torch_bench.json"
PIPELINE_FORMATS = ("jpeg", "png", "webp")
LIMIT_BATCHES = (1, 8)
START_TIMEOUT_S = 300  # a hang guard: spawning clients that import torch and load the photos

TARGETS: dict[str, dict[str, tuple[str, float]]] = {
    "raw_top_vs_limit_best": {"denoise": (">=", 0.7), "superres_x2": (">=", 0.3)},
    "raw_c1_p50_minus_limit_ms": {"denoise": ("<=", 3.0), "superres_x2": ("<=", 6.0)},
    "pipeline_jpeg_vs_raw_top": {"*": (">=", 0.5)},
}
"""Summary figure -> model ("*": every model) -> (comparison, target), from the issue."""


def _default_processes() -> int:
    return max(1, min(8, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class GpuTorchBenchConfig:
    """What ``vitrine bench --target gpu-torch`` measures."""

    models: tuple[str, ...] = ("denoise", "superres_x2", "inpaint")
    sizes: tuple[int, ...] = (512,)
    concurrency: tuple[int, ...] = (1, 16)
    processes: int = field(default_factory=_default_processes)  # client processes at the top
    duration_s: float = 3.0
    warmup: int = 2
    out: Path = Path("reports") / "gpu"
    label: str = ""
    address: str | None = None  # a running server; default: start one on ``repository``
    repository: Path | None = None  # the served gpu-torch repository (default: build one)

    def __post_init__(self) -> None:
        unknown = set(self.models) - set(SPECS)
        if unknown:
            raise ConfigError(f"unknown models {sorted(unknown)}; known: {sorted(SPECS)}")
        editors = [name for name in self.models if SPECS[name].family is Family.EDITOR]
        if editors != list(self.models):
            raise ConfigError("the gpu-torch bench measures image editors (a raw path and a size)")
        if not self.concurrency or min(self.concurrency) < 1 or self.processes < 1:
            raise ConfigError("concurrency levels and processes must be positive")


# -- the limit -------------------------------------------------------------------------------------


def _editor_feeds(spec: ModelSpec, size: int, batch: int) -> dict[str, npt.NDArray[Any]]:
    """The first validation photo at ``size`` (and the example options), ``batch`` times."""
    from vitrine.loadtest.payloads import photo_inputs
    from vitrine.options import core_value, example_options

    pixels = np.repeat(photo_inputs(size, size)[0][None], batch, axis=0)
    options = example_options(spec, size, size)
    return {spec.input.name: pixels} | {
        o.core.name: core_value(o, options[o.name], pixels) for o in spec.options
    }


def _limit_worker(
    artifact: Any, feeds: dict[str, npt.NDArray[Any]], on_device: bool
) -> Callable[[], object]:
    """One in-process call of the artifact: on tensors already on its device (``on_device``),
    or from host arrays to a host array, as a server must."""
    import torch

    device = artifact.device
    arrays = [feed.copy() for feed in feeds.values()]  # writable, as a request's buffers are
    tensors = [torch.from_numpy(array).to(device) for array in arrays]

    def resident() -> object:
        output = artifact(*tensors)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return output

    def from_host() -> object:
        inputs = [torch.from_numpy(array).to(device) for array in arrays]
        return artifact(*inputs).cpu().numpy()

    return resident if on_device else from_host


def _measure_limit(
    spec: ModelSpec, size: int, artifact: Any, config: GpuTorchBenchConfig
) -> list[dict[str, Any]]:
    from vitrine.loadtest.bench import measure

    cells = []
    for batch in LIMIT_BATCHES:
        feeds = _editor_feeds(spec, size, batch)
        for system, on_device in (("limit", True), ("limit_host", False)):
            figures = measure(
                functools.partial(_limit_worker, artifact, feeds, on_device),
                1,
                duration_s=config.duration_s,
                warmup=config.warmup,
            )
            cells.append(
                _cell(system, spec, size, 1, figures, batch=batch, precision=artifact.precision)
            )
    return cells


# -- client processes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Load:
    """What one client process runs: ``threads`` callers of one system for ``duration_s``."""

    system: str  # "raw" or "pipeline"
    model: str
    size: int
    address: str
    output_format: str
    threads: int
    duration_s: float
    warmup: int


def _worker_factory(load: _Load) -> Callable[[], Callable[[], object]]:
    """The bench's own worker for ``load.system`` (:mod:`vitrine.loadtest.bench` adapters)."""
    from vitrine.loadtest.bench import ADAPTERS, BenchConfig, Environment

    spec = SPECS[load.model]
    config = BenchConfig(models=(load.model,), output_format=load.output_format)
    env = Environment(Path("."), load.address, None, config)
    factory: Callable[[], Callable[[], object]] = ADAPTERS[spec.family].workers(
        spec, load.size, env, 0
    )[load.system]
    return factory


def _run_load(load: _Load, start: Any, results: Any) -> None:
    """A client process: warm its callers up, wait for every process, call for the duration."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    try:
        make: Callable[[], Callable[[], object]] | None = _worker_factory(load)
    except Exception as error:  # reported by the parent; the other processes still run
        make, errors = None, [f"setup: {error}"]

    def caller() -> None:
        own: list[float] = []
        failed: list[str] = []
        try:
            if make is None:
                raise RuntimeError("no worker")
            worker = make()
            for _ in range(load.warmup):
                worker()
        except Exception as error:
            start.wait()
            with lock:
                errors.append(f"setup: {error}")
            return
        start.wait()
        deadline = time.perf_counter() + load.duration_s
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                worker()
            except Exception as error:
                failed.append(str(error))
                continue
            own.append((time.perf_counter() - began) * 1000.0)
        with lock:
            latencies.extend(own)
            errors.extend(failed)

    callers = [threading.Thread(target=caller) for _ in range(load.threads)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    results.put((latencies, errors))


def measure_processes(load: _Load, processes: int) -> dict[str, Any]:
    """``processes`` client processes of ``load.threads`` callers each, released together.

    Returns requests, errors, rps and latency percentiles (ms) over every caller.
    """
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes * load.threads + 1)
    results = context.Queue()
    children = [
        context.Process(target=_run_load, args=(load, start, results)) for _ in range(processes)
    ]
    for child in children:
        child.start()
    try:
        start.wait(timeout=START_TIMEOUT_S)  # every caller connected and warmed up
        began = time.perf_counter()
        gathered = [results.get(timeout=load.duration_s + START_TIMEOUT_S) for _ in children]
    except (threading.BrokenBarrierError, queue.Empty):
        gathered = [([], [f"client processes did not start or finish in {START_TIMEOUT_S} s"])]
        began = time.perf_counter()
    wall = time.perf_counter() - began
    for child in children:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
    done = np.array([value for latencies, _ in gathered for value in latencies])
    errors = [error for _, failed in gathered for error in failed]
    return {
        "requests": int(done.size),
        "errors": len(errors),
        "wall_s": round(wall, 3),
        "rps": round(done.size / load.duration_s, 2),
        "p50_ms": round(float(np.percentile(done, 50)), 2) if done.size else 0.0,
        "p95_ms": round(float(np.percentile(done, 95)), 2) if done.size else 0.0,
        "mean_ms": round(float(done.mean()), 2) if done.size else 0.0,
        "first_error": errors[0][:300] if errors else None,
    }


def _split(concurrency: int, processes: int) -> tuple[int, int]:
    """(processes, threads each) for a concurrency level: one process at 1, else spread."""
    count = max(1, min(processes, concurrency))
    return count, max(1, concurrency // count)


# -- Triton statistics -----------------------------------------------------------------------------

_PHASES = ("queue", "compute_input", "compute_infer", "compute_output")


def _statistics(triton: Any, models: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per model: successful requests and nanoseconds per phase, so far."""
    totals: dict[str, dict[str, int]] = {}
    for model in models:
        stats = triton.get_inference_statistics(model_name=model, as_json=True)["model_stats"]
        inference = stats[0].get("inference_stats", {})
        entry = {"count": int(inference.get("success", {}).get("count", 0))}
        entry |= {phase: int(inference.get(phase, {}).get("ns", 0)) for phase in _PHASES}
        entry["executions"] = int(stats[0].get("execution_count", 0))
        totals[model] = entry
    return totals


def step_shares(
    before: Mapping[str, Mapping[str, int]],
    after: Mapping[str, Mapping[str, int]],
    calls: Mapping[str, str] | None = None,
) -> dict[str, dict[str, float]]:
    """Each step's requests, mean time (queue + compute) per request and share of the sum.

    ``calls`` maps a step to the step it calls from inside (the full-size step calls the
    core model): the caller keeps only its own time, the callee's counted once, as its own.
    """
    spent = {}
    for model, end in after.items():
        start = before[model]
        requests = end["count"] - start["count"]
        ns = sum(end[phase] - start[phase] for phase in _PHASES)
        queue = end["queue"] - start["queue"]
        batches = end["executions"] - start["executions"]
        spent[model] = (requests, ns, queue, batches)
    for caller, callee in (calls or {}).items():
        requests, ns, queue, batches = spent[caller]
        spent[caller] = (requests, max(0, ns - spent[callee][1]), queue, batches)
    total = sum(ns for _, ns, _, _ in spent.values()) or 1
    return {
        model: {
            "requests": requests,
            "mean_ms": round(ns / requests / 1e6, 3) if requests else 0.0,
            "queue_ms": round(queue / requests / 1e6, 3) if requests else 0.0,
            "mean_batch": round(requests / batches, 2) if batches else 0.0,
            "share": round(ns / total, 3),
        }
        for model, (requests, ns, queue, batches) in spent.items()
    }


# -- the run ---------------------------------------------------------------------------------------


def _cell(
    system: str,
    spec: ModelSpec,
    size: int,
    concurrency: int,
    figures: Mapping[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    batch = int(extra.get("batch", 1))
    pixels_in = size * size * 3
    pixels_out = pixels_in * spec.output_scale**2 * spec.output.dims[-1] // 3
    images = figures["rps"] * batch
    return {
        "system": system,
        "model": spec.name,
        "size": size,
        "concurrency": concurrency,
        **extra,
        **figures,
        "images_per_s": round(images, 2),
        "mb_per_s_in": round(images * pixels_in / 1e6, 1),
        "mb_per_s_out": round(images * pixels_out / 1e6, 1),
    }


def _measure_served(
    spec: ModelSpec, size: int, address: str, triton: Any, config: GpuTorchBenchConfig
) -> list[dict[str, Any]]:
    from vitrine.pipeline import pipeline_steps

    cells = []
    top = max(config.concurrency)
    for level in config.concurrency:
        processes, threads = _split(level, config.processes)
        load = _Load("raw", spec.name, size, address, "png", threads, config.duration_s, 1)
        figures = measure_processes(load, processes)
        cells.append(_cell("raw", spec, size, processes * threads, figures, processes=processes))
    steps = list(pipeline_steps(spec))
    calls = {spec.fullsize_model: spec.core_model} if spec.fullsize_model in steps else {}
    processes, threads = _split(top, config.processes)
    for fmt in PIPELINE_FORMATS:
        load = _Load("pipeline", spec.name, size, address, fmt, threads, config.duration_s, 1)
        before = _statistics(triton, steps)
        figures = measure_processes(load, processes)
        shares = step_shares(before, _statistics(triton, steps), calls)
        cells.append(
            _cell(
                "pipeline",
                spec,
                size,
                processes * threads,
                figures,
                processes=processes,
                output_format=fmt,
                steps=shares,
            )
        )
    return cells


def _best(cells: Sequence[Mapping[str, Any]], **match: Any) -> Mapping[str, Any] | None:
    chosen = [c for c in cells if all(c.get(key) == value for key, value in match.items())]
    return max(chosen, key=lambda cell: cell["images_per_s"], default=None)


def summarise(cells: Sequence[Mapping[str, Any]], device: str = "cuda") -> list[dict[str, Any]]:
    """Per (model, size): the figures the issue asks for, and each against its target (the
    targets are for the GPU: on another ``device`` they are not judged)."""
    rows = []
    for model, size in sorted({(cell["model"], cell["size"]) for cell in cells}):
        mine = [cell for cell in cells if (cell["model"], cell["size"]) == (model, size)]
        row: dict[str, Any] = {"model": model, "size": size}
        limit_b1 = _best(mine, system="limit", batch=1)
        limit_best = _best(mine, system="limit")
        raw = [cell for cell in mine if cell["system"] == "raw"]
        raw_c1 = next((cell for cell in raw if cell["concurrency"] == 1), None)
        raw_top = max(raw, key=lambda cell: cell["concurrency"], default=None)
        if limit_b1:
            row["limit_b1_p50_ms"] = limit_b1["p50_ms"]
        if limit_best:
            row["limit_best_images_per_s"] = limit_best["images_per_s"]
        if raw_c1:
            row["raw_c1_p50_ms"] = raw_c1["p50_ms"]
        if raw_top:
            row["raw_top_images_per_s"] = raw_top["images_per_s"]
            row["raw_top_mb_per_s_out"] = raw_top["mb_per_s_out"]
        if raw_top and limit_best and limit_best["images_per_s"]:
            ratio = raw_top["images_per_s"] / limit_best["images_per_s"]
            row["raw_top_vs_limit_best"] = round(ratio, 3)
        if raw_c1 and limit_b1:
            row["raw_c1_p50_minus_limit_ms"] = round(raw_c1["p50_ms"] - limit_b1["p50_ms"], 2)
        for fmt in PIPELINE_FORMATS:
            pipeline = _best(mine, system="pipeline", output_format=fmt)
            if pipeline:
                row[f"pipeline_{fmt}_images_per_s"] = pipeline["images_per_s"]
                if fmt == "jpeg" and raw_top and raw_top["images_per_s"]:
                    ratio = pipeline["images_per_s"] / raw_top["images_per_s"]
                    row["pipeline_jpeg_vs_raw_top"] = round(ratio, 3)
        row["targets"] = (
            _verdicts(model, row) if device == "cuda" else {"not judged": f"measured on {device}"}
        )
        rows.append(row)
    return rows


def _verdicts(model: str, row: Mapping[str, Any]) -> dict[str, str]:
    verdicts = {}
    for figure, by_model in TARGETS.items():
        target = by_model.get(model) or by_model.get("*")
        if target is None or figure not in row:
            continue
        comparison, value = target
        met = row[figure] >= value if comparison == ">=" else row[figure] <= value
        verdicts[figure] = f"{'met' if met else 'MISSED'} ({row[figure]} {comparison} {value})"
    return verdicts


def _environment(triton: Any, repository: Path, specs: Sequence[ModelSpec]) -> dict[str, Any]:
    """The device, driver and versions the figures come from, and the instances of each
    measured model's steps."""
    import torch

    from vitrine.devices import detect
    from vitrine.pipeline import pipeline_steps

    report = detect()
    manifests = {
        folder.parent.name: json.loads((folder / "manifest.json").read_text())
        for folder in sorted(repository.glob("*/1"))
        if (folder / "manifest.json").is_file()
    }
    devices = {manifest["device"]["name"] for manifest in manifests.values()}
    return {
        "device": sorted(devices),
        "gpus": [asdict(gpu) for gpu in report.gpus],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "triton": triton.get_server_metadata(as_json=True).get("version"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "precision": {name: m["precision"]["served"] for name, m in manifests.items()},
        "instances": {
            model: [
                f"{group.get('count', 1)} x {group.get('kind', 'KIND_AUTO')}"
                for group in triton.get_model_config(model, as_json=True)["config"].get(
                    "instance_group", []
                )
            ]
            for model in sorted({step for spec in specs for step in pipeline_steps(spec)})
        },
    }


@contextlib.contextmanager
def _server(config: GpuTorchBenchConfig) -> Iterator[tuple[str, Path]]:
    """The address and repository to measure: given, or a server started here."""
    repository = config.repository
    if config.address is not None and repository is not None:
        yield config.address, repository
        return
    from vitrine.serving.embedded import EmbeddedTriton, free_ports
    from vitrine.serving.gpu_torch import gpu_torch_repository, require_gpu, server_arguments

    if config.address is not None:
        raise ConfigError("--address needs --repository: the limit runs the served artifacts")
    extra: list[str] = []
    if repository is None:
        report = require_gpu()
        repository, extra = gpu_torch_repository(report), server_arguments(report)
    ports = free_ports()
    with EmbeddedTriton(repository, extra_args=extra, **ports) as server:
        yield server.grpc_url, repository


def run_gpu_torch_bench(
    config: GpuTorchBenchConfig, echo: Callable[[str], None] = print
) -> dict[str, Any]:
    """Measure everything ``config`` asks for, write JSON + PNG to ``config.out``; the run."""
    import tritonclient.grpc as grpcclient

    from vitrine.export.torchscript import TorchScriptArtifact

    started = time.time()
    cells: list[dict[str, Any]] = []
    devices: set[str] = set()

    def run_so_far() -> dict[str, Any]:
        return {
            "label": config.label,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "seconds": round(time.time() - started, 1),
            "commit": git_commit(short=True),
            "environment": environment,
            "config": {
                key: str(value) if isinstance(value, Path) else value
                for key, value in asdict(config).items()
            },
            "cells": cells,
            "summary": summarise(cells, "/".join(sorted(devices))),
            "targets": {figure: dict(by_model) for figure, by_model in TARGETS.items()},
        }

    with _server(config) as (address, repository):
        triton = grpcclient.InferenceServerClient(address)
        environment = _environment(triton, repository, [SPECS[name] for name in config.models])
        for name in config.models:
            spec = SPECS[name]
            folder = repository / spec.core_model / "1"
            device = json.loads((folder / "manifest.json").read_text())["device"]["type"]
            devices.add(device)
            artifact = TorchScriptArtifact(folder, device)
            for size in config.sizes:
                measured = _measure_limit(spec, size, artifact, config)
                measured += _measure_served(spec, size, address, triton, config)
                for cell in measured:
                    echo(_line(cell))
                cells += measured
            del artifact
            _write_json(run_so_far(), config.out)  # a run cut short keeps what it measured
        triton.close()
    run = run_so_far()
    _write(run, config.out, echo)
    return run


def _line(cell: Mapping[str, Any]) -> str:
    label = cell["system"]
    if "batch" in cell:
        label += f"[b={cell['batch']}]"
    if "output_format" in cell:
        label += f"[{cell['output_format']}]"
    return (
        f"  {cell['model']:12} {cell['size']:>4}px {label:18} c={cell['concurrency']:<3} "
        f"{cell['images_per_s']:>9.1f} img/s  p50 {cell['p50_ms']:>7.2f} ms  "
        f"out {cell['mb_per_s_out']:>8.1f} MB/s"
        + (f"  errors {cell['errors']}: {cell['first_error']}" if cell["errors"] else "")
    )


def _write_json(run: Mapping[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / BENCH_FILE).write_text(json.dumps(run, indent=2) + "\n")


def _write(run: Mapping[str, Any], out: Path, echo: Callable[[str], None]) -> None:
    _write_json(run, out)
    for row in run["summary"]:
        echo(f"{row['model']} {row['size']}px: " + json.dumps(row["targets"]))
    try:
        from vitrine.loadtest.gpu_torch_plot import plot_gpu_torch_run

        plot_gpu_torch_run(run, out / BENCH_FILE.replace(".json", ".png"))
    except ModuleNotFoundError as error:
        echo(f"no plot ({error.name} is missing)")
    echo(f"wrote {out / BENCH_FILE}")
