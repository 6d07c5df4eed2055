"""`vitrine bench --target gpu`: PyTorch eager vs onnxruntime CUDA vs TensorRT FP16 per model.

For every spec, input size (the spec's resolution buckets by default; a generator's one
output side, as it takes no input image) and batch size (1 and the Triton config's
preferred sizes; a generator's images per request), on one GPU, one after another with the
same inputs (photo crops, or a generator's seeded latents and labels):

* ``torch_cuda``: the checkpoint's module behind the uint8 wrapper, eager, on CUDA;
* ``ort_cuda``: the exported ``model.onnx`` with onnxruntime's CUDA execution provider;
* ``trt_fp16``: the engine :func:`vitrine.export.tensorrt.build_gated_engine` builds (the
  same plan and precision gate as the serving image), run with the TensorRT runtime.

Each cell is a closed loop at concurrency 1 (:func:`vitrine.loadtest.bench.measure`), so
throughput is images per second at that batch size. Needs a CUDA GPU, torch with CUDA,
onnxruntime-gpu and ``tensorrt``; without them it stops and names what is missing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy.typing as npt

from vitrine import paths
from vitrine.loadtest.bench import Worker, measure
from vitrine.provenance import git_commit
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec

__all__ = ["GPU_SYSTEMS", "GpuBenchConfig", "missing_gpu_stack", "run_gpu_bench", "workloads"]

GPU_SYSTEMS = ("torch_cuda", "ort_cuda", "trt_fp16")


@dataclass(frozen=True)
class GpuBenchConfig:
    """What ``vitrine bench --target gpu`` measures."""

    models: tuple[str, ...] = ()  # empty: every spec
    sizes: tuple[int, ...] = ()  # editors' square sides; empty: the opt and max buckets
    duration_s: float = 3.0
    warmup: int = 3
    out: Path = Path("reports") / "bench-gpu"
    label: str = ""


def missing_gpu_stack() -> list[str]:
    """What this machine lacks for the GPU benchmark (empty: all there)."""
    from vitrine.devices import detect

    missing = []
    problem = detect().torch_problem()
    if problem is not None:
        missing.append(f"a GPU torch can use ({problem})")
    try:
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            missing.append("onnxruntime's CUDAExecutionProvider (pip install onnxruntime-gpu)")
    except ImportError:
        missing.append("onnxruntime-gpu")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        missing.append("the tensorrt Python package")
    return missing


def _sizes(spec: ModelSpec, config: GpuBenchConfig) -> tuple[int, ...]:
    if spec.is_generator:  # no input image: the side it generates
        return (spec.core_limits.max_side,)
    return config.sizes or (spec.profile.opt[1], spec.profile.max[1])


def _batches(spec: ModelSpec) -> tuple[int, ...]:
    return tuple(sorted({1, *spec.batching.preferred_batch_sizes}))


def _batch_shape(spec: ModelSpec, size: int, batch: int) -> tuple[int, ...]:
    """Shape of the first core input: ``batch`` images of ``size`` (editors) or latents."""
    if spec.is_generator:
        return (batch, *spec.inputs[0].dims)
    return (batch, size, size, 3)


def workloads(
    spec: ModelSpec, config: GpuBenchConfig
) -> Iterator[tuple[int, int, dict[str, npt.NDArray[Any]]]]:
    """``(size, batch, feeds)`` of every cell measured for ``spec``: the core inputs."""
    from vitrine.export.parity import sample_inputs

    for size in _sizes(spec, config):
        for batch in _batches(spec):
            yield size, batch, sample_inputs(spec, _batch_shape(spec, size, batch))


def _torch_worker(spec: ModelSpec, feeds: dict[str, npt.NDArray[Any]]) -> Callable[[], Worker]:
    import torch

    from vitrine.training.checkpoint import load_checkpoint
    from vitrine.training.uint8_wrapper import Uint8ImageModel

    weights = load_checkpoint(paths.weights_path(spec.weights_name)).model
    model = Uint8ImageModel(weights, spec.task).cuda().eval()
    tensors = [torch.from_numpy(feed).cuda() for feed in feeds.values()]

    def run() -> None:
        with torch.inference_mode():
            model(*tensors)
        torch.cuda.synchronize()

    return lambda: run


def _ort_worker(
    spec: ModelSpec, onnx_path: Path, feeds: dict[str, npt.NDArray[Any]]
) -> Callable[[], Worker]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CUDAExecutionProvider"])
    return lambda: lambda: session.run(None, feeds)


def _trt_worker(
    spec: ModelSpec, engine_path: Path, feeds: dict[str, npt.NDArray[Any]]
) -> Callable[[], Worker]:
    import tensorrt as trt
    import torch

    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
    context = engine.create_execution_context()
    inputs = {name: torch.from_numpy(feed).cuda() for name, feed in feeds.items()}
    for name, tensor in inputs.items():
        context.set_input_shape(name, tuple(tensor.shape))
        context.set_tensor_address(name, tensor.data_ptr())
    shape = tuple(context.get_tensor_shape(spec.output.name))
    output = torch.empty(shape, dtype=torch.uint8, device="cuda")
    context.set_tensor_address(spec.output.name, output.data_ptr())
    stream = torch.cuda.current_stream()

    def run() -> None:
        context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()

    return lambda: run


def _artifacts(spec: ModelSpec, folder: Path) -> tuple[Path, Path]:
    """The exported ONNX and a gated TensorRT FP16 engine for this GPU."""
    from vitrine.export.artifacts import export_checkpoint
    from vitrine.export.tensorrt import ENGINE_FILE, build_gated_engine

    onnx = export_checkpoint(
        spec, paths.weights_path(spec.weights_name), folder, profiles=("min",)
    ).onnx
    build_gated_engine(spec, onnx, folder)
    return onnx, folder / ENGINE_FILE


def _measure_spec(spec: ModelSpec, config: GpuBenchConfig, folder: Path) -> list[dict[str, Any]]:
    onnx, engine = _artifacts(spec, folder)
    cells = []
    for size, count, feeds in workloads(spec, config):
        workers = {
            "torch_cuda": _torch_worker(spec, feeds),
            "ort_cuda": _ort_worker(spec, onnx, feeds),
            "trt_fp16": _trt_worker(spec, engine, feeds),
        }
        for system, make in workers.items():
            cell = measure(make, 1, duration_s=config.duration_s, warmup=config.warmup)
            images_per_s = round(cell["rps"] * count, 2)
            cells.append(
                {"system": system, "model": spec.name, "size": size, "batch": count}
                | cell
                | {"images_per_s": images_per_s}
            )
            print(
                f"  {spec.name:12} {size:5}px batch {count:2} {system:10} "
                f"{images_per_s:9.1f} img/s  p50 {cell['p50_ms']:8.2f} ms"
            )
    return cells


def run_gpu_bench(config: GpuBenchConfig, models: Sequence[str] = ()) -> int:
    """Measure and write ``<out>/gpu_bench.json``; 2 when the GPU stack is missing."""
    missing = missing_gpu_stack()
    if missing:
        print(f"error: the GPU benchmark needs {', '.join(missing)}; run it on a GPU node")
        return 2
    import torch

    specs = [SPECS[name] for name in (config.models or models or tuple(SPECS))]
    cells: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vitrine-gpu-bench-") as work:
        for spec in specs:
            cells += _measure_spec(spec, config, Path(work) / spec.name)
    run = {
        "label": config.label,
        "commit": git_commit(short=True),
        "gpu": torch.cuda.get_device_name(0),
        "cells": cells,
    }
    config.out.mkdir(parents=True, exist_ok=True)
    path = config.out / "gpu_bench.json"
    path.write_text(json.dumps(run, indent=2) + "\n")
    print(f"wrote {path}")
    return 0
