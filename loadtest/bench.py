"""`vitrine bench`: the limit, Vitrine and a naive peer, side by side in one run.

For every spec (its family's adapter, :data:`ADAPTERS`, says how), at each input size and each
concurrency level, one after another on the same machine with the same model and inputs:

* ``limit``: the served ``model.onnx`` in onnxruntime in-process, uint8 in and out, at each
  intra-op thread count of ``limit_threads`` (the best one per level is the limit);
* ``raw``: Vitrine's core model through the typed client (``<client_method>_array``);
* ``pipeline``: Vitrine's ensemble through the typed client (encoded bytes in and out);
* ``peer``: a FastAPI service running the PyTorch module eagerly (:mod:`.peer`), over HTTP,
  with the same encoded bytes in and out.

Closed loop: ``concurrency`` threads call back to back for ``duration_s`` (or until
``max_requests``) after a warm-up call each. Writes ``bench.json`` (this run appended to the
file's ``history``, labelled, so before/after figures of tuning stay side by side) and
``bench.png``; prints the three ratios against the targets.

Adapters are keyed by :class:`~vitrine.tasks.Family`, so every image editor added to the
catalog is benchmarked by :class:`EditorAdapter` and every generator by
:class:`GeneratorAdapter` (labels and a seed in, a batch of images out; no input image, so
it runs at the one side it generates) without code here. :class:`LatentEditAdapter`
measures ``variations`` of a catalog image on the limit and pipeline only: a system an
adapter lists as ``unsupported`` is not run, and the run names it with the reason.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from vitrine.errors import ConfigError
from vitrine.provenance import git_commit
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec
from vitrine.tasks import Family

__all__ = [
    "ADAPTERS",
    "SYSTEMS",
    "TARGETS",
    "BenchConfig",
    "BenchRequest",
    "Cell",
    "EditorAdapter",
    "GeneratorAdapter",
    "LatentEditAdapter",
    "bench_sizes",
    "compute_ratios",
    "measure",
    "run_bench",
]

logger = logging.getLogger("vitrine.loadtest.bench")

SYSTEMS = ("limit", "raw", "pipeline", "peer")

TARGETS = {
    "raw_latency_c1_vs_limit": ("<=", 1.10),
    "raw_throughput_top_vs_limit_best": (">=", 0.90),
    "pipeline_throughput_top_vs_peer": (">=", 1.50),
}
"""Ratio → (comparison, target), from the load-test issue."""

Worker = Callable[[], object]
"""One request; raises on failure."""


@dataclass(frozen=True)
class BenchConfig:
    """What ``vitrine bench`` measures; the defaults finish in a few minutes on 2 cores."""

    models: tuple[str, ...] = ()  # empty: every spec with an adapter
    sizes: tuple[int, ...] = ()  # editors' square input sides; empty: per spec (bench_sizes)
    concurrency: tuple[int, ...] = (1, 4, 16)
    duration_s: float = 2.0  # per (system, size, level)
    max_requests: int | None = None  # stop a level earlier after this many requests
    warmup: int = 1  # calls per worker before timing
    systems: tuple[str, ...] = SYSTEMS
    limit_threads: tuple[int, ...] = (1, 0)  # onnxruntime intra-op threads (0: all cores)
    input_format: str = "jpeg"  # upload encoding (pipeline and peer)
    output_format: str = "png"  # result encoding (pipeline and peer)
    out: Path = Path("reports") / "bench"
    label: str = ""
    address: str | None = None  # a running server; default: start the embedded one
    repository: Path | None = None  # serve this built embedded repository instead

    def __post_init__(self) -> None:
        unknown = set(self.systems) - set(SYSTEMS)
        if unknown:
            raise ConfigError(f"unknown systems {sorted(unknown)}; known: {list(SYSTEMS)}")
        missing = set(self.models) - set(SPECS)
        if missing:
            raise ConfigError(f"unknown models {sorted(missing)}; known: {sorted(SPECS)}")
        if not self.concurrency or min(self.concurrency) < 1:
            raise ValueError("concurrency levels must be positive integers")
        if self.duration_s <= 0:
            raise ValueError("duration_s must be positive")


@dataclass(frozen=True)
class Cell:
    """One measured (system, model, size, concurrency) point."""

    system: str
    model: str
    size: int
    concurrency: int
    requests: int
    errors: int
    wall_s: float
    rps: float
    p50_ms: float
    p95_ms: float
    mean_ms: float
    threads: int | None = None  # onnxruntime intra-op threads (limit only)
    first_error: str | None = None


def measure(
    make_worker: Callable[[], Worker],
    concurrency: int,
    *,
    duration_s: float,
    max_requests: int | None = None,
    warmup: int = 1,
) -> dict[str, Any]:
    """Closed-loop measurement: ``concurrency`` threads each call their own worker.

    Every thread builds its worker (connection) and warms up before the clock starts.
    Returns requests, errors, wall_s, rps and latency percentiles (ms) of the successes.
    """
    ready = threading.Barrier(concurrency + 1)
    stop = threading.Event()
    tickets = itertools.count()
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: list[str] = []

    def run(slot: int) -> None:
        try:
            worker = make_worker()
            for _ in range(warmup):
                worker()
        except Exception as exc:  # counted; the level still runs with the others
            errors.append(f"setup: {exc}")
            ready.wait()
            return
        ready.wait()
        own = latencies[slot]
        while not stop.is_set():
            if max_requests is not None and next(tickets) >= max_requests:
                break
            start = time.perf_counter()
            try:
                worker()
            except Exception as exc:
                errors.append(str(exc))
                continue
            own.append((time.perf_counter() - start) * 1000.0)

    threads = [
        threading.Thread(target=run, args=(slot,), daemon=True) for slot in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    deadline = started + duration_s
    while time.perf_counter() < deadline and any(t.is_alive() for t in threads):
        time.sleep(0.01)
    stop.set()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    done = np.array([value for own in latencies for value in own], dtype=np.float64)
    return {
        "requests": int(done.size),
        "errors": len(errors),
        "wall_s": round(wall, 3),
        "rps": round(done.size / wall, 2) if wall > 0 else 0.0,
        "p50_ms": round(float(np.percentile(done, 50)), 2) if done.size else 0.0,
        "p95_ms": round(float(np.percentile(done, 95)), 2) if done.size else 0.0,
        "mean_ms": round(float(done.mean()), 2) if done.size else 0.0,
        "first_error": errors[0][:300] if errors else None,
    }


# -- adapters ---------------------------------------------------------------------------------


@dataclass
class Environment:
    """What the adapters call: the served repository, the server and the peer."""

    repository: Path
    grpc_address: str
    peer_address: str | None
    config: BenchConfig


class Adapter(Protocol):
    """How one task is benchmarked: a worker factory per system it supports."""

    unsupported: ClassVar[Mapping[str, str]]  # system -> why it cannot measure the task

    def workers(
        self, spec: ModelSpec, size: int, env: Environment, threads: int
    ) -> dict[str, Callable[[], Worker]]: ...


@dataclass(frozen=True)
class BenchRequest:
    """One benchmarked request as each system takes it. The callables give each call's
    keyword arguments and peer path: a generator's change their seed every call, as its
    pipeline caches responses (:func:`vitrine.loadtest.payloads.fresh_seeds`)."""

    feed: dict[str, npt.NDArray[Any]]  # limit: the core model's inputs
    raw_args: tuple[object, ...]  # raw: positional arguments of ``<client_method>_array``
    pipeline_args: tuple[object, ...]  # pipeline: positional arguments of ``<client_method>``
    kwargs: Callable[[], dict[str, Any]]  # raw and pipeline: keyword arguments
    peer_path: Callable[[], str]  # peer: the URL path (and query) posted to
    peer_body: bytes
    peer_parse: Callable[[bytes], object]  # peer: decodes the answer as the client would


def _system_workers(
    spec: ModelSpec, request: BenchRequest, env: Environment, threads: int
) -> dict[str, Callable[[], Worker]]:
    """The worker factory of every system for ``request``."""

    def raw() -> Worker:
        method = getattr(_client(env.grpc_address), f"{spec.client_method}_array")
        return lambda: method(*request.raw_args, **request.kwargs())

    def peer() -> Worker:
        if env.peer_address is None:
            raise RuntimeError("the peer is not running")
        return _peer_worker(env.peer_address, request)

    return {
        "limit": _limit(spec, request.feed, env, threads),
        "raw": raw,
        "pipeline": _pipeline(spec, request.pipeline_args, request.kwargs, env),
        "peer": peer,
    }


def _limit(
    spec: ModelSpec, feed: dict[str, npt.NDArray[Any]], env: Environment, threads: int
) -> Callable[[], Worker]:
    """The limit's worker factory: the served core model on ``feed`` in onnxruntime."""

    def limit() -> Worker:
        session = _session(env.repository / spec.core_model / "1" / "model.onnx", threads)
        return lambda: session.run(None, feed)

    return limit


def _pipeline(
    spec: ModelSpec,
    args: tuple[object, ...],
    kwargs: Callable[[], dict[str, Any]],
    env: Environment,
) -> Callable[[], Worker]:
    """The pipeline's worker factory: ``client.<client_method>(*args, **kwargs())``."""

    def pipeline() -> Worker:
        method = getattr(_client(env.grpc_address), spec.client_method)
        fmt = env.config.output_format
        return lambda: method(*args, **kwargs(), output_format=fmt)

    return pipeline


@dataclass
class EditorAdapter:
    """Image-in/image-out editors: raw uint8 core model, encoded-bytes pipeline, peer."""

    photo: int = 0  # which validation photo (chelsea) is the input
    unsupported: ClassVar[Mapping[str, str]] = {}

    def workers(
        self, spec: ModelSpec, size: int, env: Environment, threads: int
    ) -> dict[str, Callable[[], Worker]]:
        from vitrine.loadtest.payloads import encode, fixed, photo_inputs
        from vitrine.options import core_value, example_options

        pixels = photo_inputs(size, size)[self.photo]
        data = encode(pixels, env.config.input_format)
        options = example_options(spec, size, size)
        feed = {spec.input.name: pixels[None]} | {
            o.core.name: core_value(o, options[o.name], pixels[None]) for o in spec.options
        }
        query = urllib.parse.urlencode({"output_format": env.config.output_format})
        request = BenchRequest(
            feed=feed,
            raw_args=(pixels,),
            pipeline_args=(data,),
            kwargs=fixed(spec.selector_kwargs | options),
            peer_path=lambda: f"/v1/models/{spec.name}?{query}",
            peer_body=data,
            peer_parse=_decoded,
        )
        return _system_workers(spec, request, env, threads)


@dataclass
class GeneratorAdapter:
    """Generators: ``count`` images of the example labels per request, from a fresh seed
    each call; the limit runs the core model on latents and labels drawn as the sample
    step draws them. ``count`` None: the batch the core model is optimised for (its
    profile's opt)."""

    count: int | None = None
    unsupported: ClassVar[Mapping[str, str]] = {}

    def workers(
        self, spec: ModelSpec, size: int, env: Environment, threads: int
    ) -> dict[str, Callable[[], Worker]]:
        from vitrine.loadtest.payloads import fresh_seeds
        from vitrine.sampling import example_labels, sample

        assert spec.conditioning is not None, f"{spec.name} is no generator"
        labels = example_labels(spec.conditioning)
        asked = {**labels, "count": self.count or spec.profile.opt[0]}
        feeds = sample(
            spec.conditioning,
            seed=0,
            count=asked["count"],
            category=labels["category"],
            colour=labels["color"],
        )
        query = fresh_seeds(asked | {"output_format": env.config.output_format})
        request = BenchRequest(
            feed={tensor.name: feed for tensor, feed in zip(spec.inputs, feeds, strict=True)},
            raw_args=(),
            pipeline_args=(),
            kwargs=fresh_seeds(spec.selector_kwargs | asked),
            peer_path=lambda: f"/v1/models/{spec.name}/generate?{urllib.parse.urlencode(query())}",
            peer_body=b"",
            peer_parse=_decoded_images,
        )
        return _system_workers(spec, request, env, threads)


@dataclass
class LatentEditAdapter:
    """Latent edits: ``client.variations`` of a catalog test image with its own labels,
    ``count`` variations a request; the limit runs the core model on the rows the decode
    step makes of it. ``count`` None: the batch the core model is optimised for."""

    sample: int = 0  # which catalog sample (the first test image of a category)
    count: int | None = None
    unsupported: ClassVar[Mapping[str, str]] = {
        "raw": "no raw client method (the client has no variations_array)",
        "peer": "the naive peer has no variations endpoint",
    }

    def workers(
        self, spec: ModelSpec, size: int, env: Environment, threads: int
    ) -> dict[str, Callable[[], Worker]]:
        from vitrine.loadtest.payloads import catalog_samples, encode, fixed
        from vitrine.options import core_value, example_options

        pixels, category, color = catalog_samples()[self.sample]
        count = self.count or spec.profile.opt[0]
        asked = {"category": category, "color": color}
        # as variations sends them: the image is its own other, blended by 0
        values = example_options(spec, size, size) | asked | {"other": pixels, "blend": 0.0}
        batch = np.ascontiguousarray(np.repeat(pixels[None], count, axis=0))
        feed = {spec.input.name: batch} | {
            o.core.name: core_value(o, values[o.name], batch) for o in spec.options
        }
        data = encode(pixels, env.config.input_format)
        return {
            "limit": _limit(spec, feed, env, threads),
            "pipeline": _pipeline(spec, (data,), fixed(asked | {"count": count}), env),
        }


ADAPTERS: dict[Family, Adapter] = {
    Family.EDITOR: EditorAdapter(),
    Family.GENERATOR: GeneratorAdapter(),
    Family.LATENT_EDIT: LatentEditAdapter(),
}
"""Family → adapter; a contract test checks every family has one."""


_SESSIONS: dict[tuple[Path, int], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(path: Path, threads: int) -> Any:
    """One shared onnxruntime session per (model, threads); run() is thread-safe."""
    import onnxruntime as ort

    with _SESSIONS_LOCK:
        session = _SESSIONS.get((path, threads))
        if session is None:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            _SESSIONS[(path, threads)] = session
        return session


_CLIENTS = threading.local()

REQUEST_TIMEOUT_S = 60.0
"""Deadline of each benchmarked call (client and peer)."""


def _client(address: str, timeout: float = REQUEST_TIMEOUT_S) -> Any:
    """One typed client (gRPC channel) per thread, as co-located callers would hold."""
    from vitrine.client import VitrineClient

    clients = getattr(_CLIENTS, "clients", None)
    if clients is None:
        clients = _CLIENTS.clients = {}
    if (address, timeout) not in clients:
        clients[address, timeout] = VitrineClient(address, timeout=timeout, retries=0)
    return clients[address, timeout]


def _peer_worker(address: str, request: BenchRequest, timeout: float = REQUEST_TIMEOUT_S) -> Worker:
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    headers = {"Content-Type": "application/octet-stream"}

    def call() -> object:
        connection.request("POST", request.peer_path(), body=request.peer_body, headers=headers)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"peer answered {response.status}: {body[:200]!r}")
        return request.peer_parse(body)

    return call


def _decoded(data: bytes) -> object:
    """One encoded image, decoded (the typed client decodes too)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def _decoded_images(data: bytes) -> object:
    """The peer's generated images (JSON of base64 images), each decoded."""
    return [_decoded(base64.b64decode(item)) for item in json.loads(data)["images"]]


# -- servers ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _vitrine(config: BenchConfig) -> Iterator[tuple[str, Path]]:
    from vitrine.serving.serve import embedded_repository

    repository = config.repository or embedded_repository()
    if config.address is not None:
        yield config.address, repository
        return
    from vitrine.serving.embedded import EmbeddedTriton, free_ports

    ports = free_ports()
    with EmbeddedTriton(repository, **ports) as server:
        yield server.grpc_url, repository


@contextlib.contextmanager
def _peer(models: Sequence[str], needed: bool) -> Iterator[str | None]:
    if not needed:
        yield None
        return
    with peer_process(models) as (address, _):
        yield address


@contextlib.contextmanager
def peer_process(models: Sequence[str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The naive peer serving ``models`` on a free loopback port: its address and process."""
    from vitrine.serving.embedded import free_port

    port = free_port()
    log_path = Path(tempfile.gettempdir()) / f"vitrine-peer-{port}.log"
    command = [sys.executable, "-m", "vitrine.loadtest.peer", "--port", str(port)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*command, "--models", ",".join(models)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", process, log_path, timeout=120)
        yield f"127.0.0.1:{port}", process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the naive peer exited with status {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the naive peer did not answer {url} within {timeout:.0f} s")


# -- the run ----------------------------------------------------------------------------------


def default_sizes(spec: ModelSpec) -> tuple[int, ...]:
    """The spec's load-test side and twice it, within its limits: one side where they allow
    only one (a generator's are the side it generates; vae_edit takes 32 x 32 images)."""
    side = spec.loadtest_side
    return tuple(sorted({side, min(2 * side, spec.core_limits.max_side)}))


def bench_sizes(spec: ModelSpec, config: BenchConfig) -> tuple[int, ...]:
    """The sides ``spec`` is measured at: ``config.sizes`` for an editor (else its defaults);
    a spec whose limits allow one side (every generator, vae_edit) always at that side."""
    if spec.core_limits.min_side == spec.core_limits.max_side or not config.sizes:
        return default_sizes(spec)
    return config.sizes


def bench_specs(config: BenchConfig) -> list[ModelSpec]:
    """The specs to measure: those ``config`` names, else every spec."""
    return [SPECS[name] for name in config.models] if config.models else list(SPECS.values())


def skipped_systems(specs: Sequence[ModelSpec], config: BenchConfig) -> list[str]:
    """A note per chosen system that cannot measure a spec's task, with the reason."""
    return [
        f"{spec.name} {system}: {reason}"
        for spec in specs
        for system, reason in ADAPTERS[spec.family].unsupported.items()
        if system in config.systems
    ]


def _peer_models(specs: Sequence[ModelSpec]) -> list[str]:
    """The specs the naive peer serves: those whose adapter measures the peer."""
    return [spec.name for spec in specs if "peer" not in ADAPTERS[spec.family].unsupported]


def _measure_cells(
    spec: ModelSpec, size: int, env: Environment, echo: Callable[[str], None]
) -> list[Cell]:
    config = env.config
    adapter = ADAPTERS[spec.family]
    cells: list[Cell] = []
    for system in (s for s in config.systems if s not in adapter.unsupported):
        variants = config.limit_threads if system == "limit" else (0,)
        for threads in variants:
            factory = adapter.workers(spec, size, env, threads)[system]
            for level in config.concurrency:
                figures = measure(
                    factory,
                    level,
                    duration_s=config.duration_s,
                    max_requests=config.max_requests,
                    warmup=config.warmup,
                )
                cell = Cell(
                    system=system,
                    model=spec.name,
                    size=size,
                    concurrency=level,
                    threads=threads if system == "limit" else None,
                    **figures,
                )
                cells.append(cell)
                label = f"{system}[t={threads}]" if system == "limit" else system
                echo(
                    f"  {spec.name:12} {size:>4}px {label:10} c={level:<3} "
                    f"{cell.rps:>8.1f} req/s  p50 {cell.p50_ms:>7.1f}  p95 {cell.p95_ms:>7.1f} ms"
                    + (f"  errors {cell.errors}: {cell.first_error}" if cell.errors else "")
                )
    return cells


def best_limit(cells: Sequence[Cell]) -> list[Cell]:
    """Per (model, size, level), the limit variant with the highest throughput."""
    best: dict[tuple[str, int, int], Cell] = {}
    for cell in cells:
        if cell.system != "limit":
            continue
        key = (cell.model, cell.size, cell.concurrency)
        if key not in best or cell.rps > best[key].rps:
            best[key] = cell
    return list(best.values())


def compute_ratios(cells: Sequence[Cell]) -> list[dict[str, Any]]:
    """The issue's three ratios per (model, size), where the systems they need were run.

    ``top`` is the highest concurrency level measured (16 by default); the limit's best
    throughput is its maximum over levels and thread settings.
    """
    table: dict[tuple[str, int], dict[str, dict[int, Cell]]] = {}
    for cell in [*best_limit(cells), *(c for c in cells if c.system != "limit")]:
        table.setdefault((cell.model, cell.size), {}).setdefault(cell.system, {})[
            cell.concurrency
        ] = cell
    rows = []
    for (model, size), systems in sorted(table.items()):
        row: dict[str, Any] = {"model": model, "size": size}
        limit, raw = systems.get("limit", {}), systems.get("raw", {})
        pipeline, peer = systems.get("pipeline", {}), systems.get("peer", {})
        if 1 in limit and 1 in raw and limit[1].p50_ms > 0:
            row["raw_latency_c1_vs_limit"] = round(raw[1].p50_ms / limit[1].p50_ms, 3)
        best = max((cell.rps for cell in limit.values()), default=0.0)
        if raw and best > 0:
            row["raw_throughput_top_vs_limit_best"] = round(raw[max(raw)].rps / best, 3)
        if pipeline and peer:
            top = max(set(pipeline) & set(peer), default=None)
            if top is not None and peer[top].rps > 0:
                row["pipeline_throughput_top_vs_peer"] = round(pipeline[top].rps / peer[top].rps, 3)
                row["top_concurrency"] = top
        rows.append(row)
    return rows


def meets(ratio: str, value: float) -> bool:
    """Whether ``value`` of ``ratio`` meets its target."""
    comparison, target = TARGETS[ratio]
    return value <= target if comparison == "<=" else value >= target


def _config_dict(config: BenchConfig) -> dict[str, Any]:
    values = asdict(config)
    return {key: str(value) if isinstance(value, Path) else value for key, value in values.items()}


def bench(config: BenchConfig, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure everything ``config`` asks for; returns the run (also written to disk)."""
    specs = bench_specs(config)
    skipped = skipped_systems(specs, config)
    for note in skipped:
        echo(f"skipped {note}")
    needs_server = bool({"raw", "pipeline"} & set(config.systems))
    cells: list[Cell] = []
    started = time.time()
    with contextlib.ExitStack() as stack:
        if needs_server:
            address, repository = stack.enter_context(_vitrine(config))
        else:
            from vitrine.serving.serve import embedded_repository

            address, repository = "", config.repository or embedded_repository()
        peered = _peer_models(specs)
        peer = stack.enter_context(_peer(peered, "peer" in config.systems and bool(peered)))
        env = Environment(repository, address, peer, config)
        for spec in specs:
            for size in bench_sizes(spec, config):
                cells.extend(_measure_cells(spec, size, env, echo))
    run = {
        "label": config.label,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "commit": git_commit(short=True),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "config": _config_dict(config),
        "skipped": skipped,
        "cells": [asdict(cell) for cell in cells],
        "ratios": compute_ratios(cells),
        "targets": {name: list(target) for name, target in TARGETS.items()},
    }
    return run


def write_run(
    run: dict[str, Any],
    out: Path,
    plot: Callable[[dict[str, Any], Path], Path] | None = None,
) -> tuple[Path, Path | None]:
    """Append ``run`` to ``out/bench.json``'s history and ``plot`` it (default
    :func:`vitrine.loadtest.plot.plot_run`) to ``out/bench.png``."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "bench.json"
    history: list[dict[str, Any]] = []
    if json_path.is_file():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            history = list(json.loads(json_path.read_text())["history"])
    history.append(run)
    document = {
        "about": "vitrine bench runs, oldest first; each run is labelled (--label) so "
        "tuning before/after figures stay side by side",
        "history": history,
    }
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    png_path = out / "bench.png"
    try:
        from vitrine.loadtest.plot import plot_run

        (plot or plot_run)(run, png_path)
    except ModuleNotFoundError as error:
        logger.warning("no plot (%s is missing; pip install matplotlib)", error.name)
        return json_path, None
    return json_path, png_path


def format_ratios(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The ratio table as text lines, each value marked against its target."""
    names = list(TARGETS)
    header = f"{'model':14} {'size':>5}  " + "  ".join(f"{name:>34}" for name in names)
    lines = [header]
    for row in rows:
        values = []
        for name in names:
            value = row.get(name)
            if value is None:
                values.append(f"{'-':>34}")
                continue
            comparison, target = TARGETS[name]
            mark = "ok" if meets(name, value) else "MISS"
            values.append(f"{f'{value:.2f} ({comparison} {target:g}) {mark}':>34}")
        lines.append(f"{row['model']:14} {row['size']:>5}  " + "  ".join(values))
    return lines


def run_bench(config: BenchConfig | None = None, **options: Any) -> int:
    """`vitrine bench`: measure, write JSON + PNG, print the ratios. Exit code 0.

    Targets missed are reported, not turned into a failing exit code: the benchmark
    measures, the load test gates.
    """
    config = config or BenchConfig(**options)
    print(
        f"bench: systems {', '.join(config.systems)}; concurrency {list(config.concurrency)}; "
        f"{config.duration_s:g} s per level"
    )
    run = bench(config)
    json_path, png_path = write_run(run, config.out)
    print()
    for line in format_ratios(run["ratios"]):
        print(line)
    print(f"\nwrote {json_path}" + (f" and {png_path}" if png_path else ""))
    return 0
