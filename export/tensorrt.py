"""TensorRT FP16 engines: build plan from the spec, engine builder, precision gate, manifest.

The plan is written here, on CPU, and is fully tested against the spec and the Triton
config. The engine is built where TensorRT lives (a GPU node, the serving image) from that
same plan: through the ``tensorrt`` Python API when it is importable, else with the plan's
``trtexec`` command line. Every engine passes the precision gate (engine vs onnxruntime FP32
on validation crops at min/opt/max) before it is installed; when it fails, more layers are
kept FP32 until it passes, and the manifest records which. On CPU the same gate runs on the
FP16 ONNX twin through onnxruntime (:func:`cpu_fp16_gate`).

This module imports neither torch nor TensorRT at import time: the plan and the serving
entrypoint's decisions need neither.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx

from vitrine.export.fp16 import convert_fp16, fp32_nodes, fp32_op_nodes
from vitrine.export.precision_gate import gate_shapes, precision_gate
from vitrine.export.triton_config import engine_filename
from vitrine.spec import ModelSpec

__all__ = [
    "BuildPlan",
    "EngineBuildError",
    "GateFailed",
    "GpuInfo",
    "InputProfile",
    "TensorRTUnavailable",
    "Toolchain",
    "build_gated_engine",
    "build_plan",
    "cpu_fp16_gate",
    "detect_gpu",
    "detect_toolchain",
    "export_all_onnx",
    "fallback_layers",
    "gate_shapes",
    "gate_with_fallback",
    "plan_problems",
    "precision_gate",
    "require_tensorrt",
    "run_export_format",
    "sha256_file",
]

DEFAULT_WORKSPACE_MIB = 4096
PRECISION_CONSTRAINTS = "obey"  # TensorRT must honour the FP32 layers, not treat them as hints
TRTEXEC_LOCATIONS = (Path("/usr/src/tensorrt/bin/trtexec"),)  # NGC images keep it here
PLAN_FILE = "trt_plan.json"
ENGINE_FILE = "model.plan"
MANIFEST_FILE = "manifest.json"
# Candidates for the gate's fallback, tried from the output backwards. The elementwise tail
# (residual Add, x255 Mul) matters: in FP16 it is what moves uint8 values by one level.
FALLBACK_OPS = (
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Clip",
    "Sigmoid",
    "Tanh",
    "Exp",
    "Pow",
    "Sqrt",
    "ReduceMean",
    "Conv",
    "ConvTranspose",
    "Gemm",
    "MatMul",
    "BatchNormalization",
    "InstanceNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "PRelu",
    "Softmax",
)


class TensorRTUnavailable(RuntimeError):
    """TensorRT (Python API or trtexec) or an NVIDIA GPU is missing on this machine."""


class EngineBuildError(RuntimeError):
    """TensorRT could not build the engine the plan describes."""


class GateFailed(RuntimeError):
    """The engine stays inaccurate even with every candidate layer in FP32."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


# --------------------------------------------------------------------------- build plan


@dataclass(frozen=True)
class InputProfile:
    """One input's optimisation profile: full shapes, batch first."""

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def shape(self, label: str) -> str:
        """trtexec's ``name:NxHxWxC`` for ``label`` in min/opt/max."""
        dims: tuple[int, ...] = getattr(self, label)
        return f"{self.name}:{'x'.join(str(dim) for dim in dims)}"


@dataclass(frozen=True)
class BuildPlan:
    """Everything an engine build needs, derived from the spec and the exported ONNX."""

    model: str
    onnx: str
    onnx_sha256: str
    engine: str
    profiles: tuple[InputProfile, ...]
    max_batch_size: int
    preferred_batch_sizes: tuple[int, ...]
    fp16: bool
    precision_constraints: str
    fp32_layers: tuple[str, ...]  # ONNX node names = TensorRT layer names
    workspace_mib: int
    timing_cache: str

    def with_fp32_layers(self, extra: Sequence[str]) -> BuildPlan:
        """The same plan keeping ``extra`` layers FP32 as well (the gate's fallback)."""
        layers = (*self.fp32_layers, *(name for name in extra if name not in self.fp32_layers))
        return replace(self, fp32_layers=layers)

    def with_paths(self, *, engine: Path, timing_cache: Path | None = None) -> BuildPlan:
        """The same plan writing ``engine`` (and reading/writing ``timing_cache``)."""
        cache = str(timing_cache) if timing_cache is not None else self.timing_cache
        return replace(self, engine=str(engine), timing_cache=cache)

    def trtexec_command(self, trtexec: str = "trtexec") -> list[str]:
        """The exact ``trtexec`` invocation that realises this plan."""
        command = [
            trtexec,
            f"--onnx={self.onnx}",
            f"--saveEngine={self.engine}",
            *(
                f"--{label}Shapes={','.join(p.shape(label) for p in self.profiles)}"
                for label in ("min", "opt", "max")
            ),
        ]
        if self.fp16:
            command.append("--fp16")
        command.append(f"--precisionConstraints={self.precision_constraints}")
        if self.fp32_layers:
            command.append(f"--layerPrecisions={','.join(f'{n}:fp32' for n in self.fp32_layers)}")
            command.append(f"--layerOutputTypes={','.join(f'{n}:fp32' for n in self.fp32_layers)}")
        command += [
            f"--memPoolSize=workspace:{self.workspace_mib}",
            f"--timingCacheFile={self.timing_cache}",
            "--skipInference",
        ]
        return command

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the trtexec command line."""
        data = asdict(self)
        data["profiles"] = [
            {"name": p.name, "min": list(p.min), "opt": list(p.opt), "max": list(p.max)}
            for p in self.profiles
        ]
        data["preferred_batch_sizes"] = list(self.preferred_batch_sizes)
        data["fp32_layers"] = list(self.fp32_layers)
        data["trtexec"] = self.trtexec_command()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildPlan:
        fields = {key: value for key, value in data.items() if key != "trtexec"}
        fields["profiles"] = tuple(
            InputProfile(p["name"], tuple(p["min"]), tuple(p["opt"]), tuple(p["max"]))
            for p in data["profiles"]
        )
        fields["preferred_batch_sizes"] = tuple(data["preferred_batch_sizes"])
        fields["fp32_layers"] = tuple(data["fp32_layers"])
        return cls(**fields)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")
        return path


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _policy_fp32_layers(spec: ModelSpec, model: onnx.ModelProto) -> tuple[str, ...]:
    """The spec's FP32 layers resolved to node names (plus the ops fp16.py keeps FP32)."""
    for part in spec.precision.fp32_layers:
        if not any(part in node.name for node in model.graph.node):
            raise ValueError(f"{spec.name}: FP32 layer {part!r} matches no ONNX node")
    wanted = {*fp32_op_nodes(model), *fp32_nodes(spec, model)}
    names = tuple(node.name for node in model.graph.node if node.name in wanted)
    bad = [name for name in names if "," in name or not name]
    if bad:
        raise ValueError(f"{spec.name}: layer names unusable in --layerPrecisions: {bad}")
    return names


def build_plan(
    spec: ModelSpec,
    onnx_path: Path,
    *,
    engine: Path | None = None,
    timing_cache: Path | None = None,
    workspace_mib: int = DEFAULT_WORKSPACE_MIB,
) -> BuildPlan:
    """The build plan of ``spec`` for the exported FP32 ``onnx_path``."""
    model = onnx.load(str(onnx_path), load_external_data=False)
    names = [value.name for value in model.graph.input]
    if names != [tensor.name for tensor in spec.inputs]:
        raise ValueError(f"{onnx_path} inputs {names} differ from the spec's")
    low, opt, high = (spec.input_shapes(shape) for _, shape in spec.profile.items())
    profiles = tuple(
        InputProfile(t.name, low[t.name], opt[t.name], high[t.name]) for t in spec.inputs
    )
    return BuildPlan(
        model=spec.name,
        onnx=str(onnx_path),
        onnx_sha256=sha256_file(onnx_path),
        engine=str(engine or onnx_path.with_name(ENGINE_FILE)),
        profiles=profiles,
        max_batch_size=spec.batching.max_batch_size,
        preferred_batch_sizes=spec.batching.preferred_batch_sizes,
        fp16=spec.precision.fp16,
        precision_constraints=PRECISION_CONSTRAINTS,
        fp32_layers=_policy_fp32_layers(spec, model) if spec.precision.fp16 else (),
        workspace_mib=workspace_mib,
        timing_cache=str(timing_cache or onnx_path.with_name("timing.cache")),
    )


def plan_problems(plan: BuildPlan, config: Any) -> list[str]:
    """Why Triton (``config``, the core model's ModelConfig) would reject the plan's engine.

    A profile whose batch range misses what the dynamic batcher forms, or whose other
    dimensions differ from the config, fails at load or at request time ("expected
    dimension ... between 1 and 1").
    """
    problems = []
    inputs = {tensor.name: list(tensor.dims) for tensor in config.input}
    if {p.name for p in plan.profiles} != set(inputs):
        problems.append(f"profiles cover {[p.name for p in plan.profiles]}, config {list(inputs)}")
    if plan.max_batch_size != config.max_batch_size:
        problems.append(f"max_batch_size {plan.max_batch_size} != config {config.max_batch_size}")
    preferred = list(config.dynamic_batching.preferred_batch_size)
    if list(plan.preferred_batch_sizes) != preferred:
        problems.append(f"preferred sizes {plan.preferred_batch_sizes} != config {preferred}")
    for p in plan.profiles:
        if p.min[0] != 1:
            problems.append(f"{p.name}: min batch {p.min[0]}; the batcher sends batches of 1")
        if p.max[0] != config.max_batch_size:
            problems.append(f"{p.name}: max batch {p.max[0]} != max_batch_size")
        if not all(p.min[0] <= size <= p.max[0] for size in preferred):
            problems.append(f"{p.name}: preferred sizes {preferred} outside the profile")
        if p.opt[0] not in preferred:
            problems.append(f"{p.name}: opt batch {p.opt[0]} is no preferred batch size")
        for label in ("min", "opt", "max"):
            shape = getattr(p, label)
            if len(shape) != len(inputs.get(p.name, [])) + 1:
                problems.append(f"{p.name}: {label} shape {shape} has the wrong rank")
                continue
            for dim, fixed in zip(shape[1:], inputs[p.name], strict=True):
                if fixed != -1 and dim != fixed:
                    problems.append(f"{p.name}: {label} {shape} vs config dims {inputs[p.name]}")
        if not all(a <= b <= c for a, b, c in zip(p.min, p.opt, p.max, strict=True)):
            problems.append(f"{p.name}: min <= opt <= max does not hold")
    return problems


# --------------------------------------------------------------------------- toolchain


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str  # "9.0"

    @property
    def engine_filename(self) -> str:
        return engine_filename(self.compute_capability)


@dataclass(frozen=True)
class Toolchain:
    kind: str  # "python" (the tensorrt module) or "trtexec"
    version: str
    trtexec: str | None = None


def detect_gpu() -> GpuInfo | None:
    """The first NVIDIA GPU (:func:`vitrine.devices.detect`); None without one."""
    from vitrine.devices import detect

    gpus = detect().gpus
    return GpuInfo(gpus[0].name, gpus[0].compute_capability) if gpus else None


def find_trtexec() -> str | None:
    found = shutil.which("trtexec")
    if found:
        return found
    return next((str(path) for path in TRTEXEC_LOCATIONS if path.is_file()), None)


def _trtexec_version(trtexec: str) -> str:
    """TensorRT version from trtexec's banner (``[TensorRT v100500]`` -> ``10.5.0``)."""
    if os.environ.get("TRT_VERSION"):  # set in NVIDIA's NGC images
        return os.environ["TRT_VERSION"]
    result = subprocess.run([trtexec, "--help"], capture_output=True, text=True, timeout=60)
    match = re.search(r"TensorRT v(\d+)", result.stdout + result.stderr)
    if not match:
        return "unknown"
    number = int(match.group(1))
    return f"{number // 10000}.{number // 100 % 100}.{number % 100}"


def detect_toolchain() -> Toolchain | None:
    """The ``tensorrt`` Python API if importable, else trtexec if found, else None."""
    try:
        import tensorrt

        return Toolchain("python", str(tensorrt.__version__), find_trtexec())
    except ImportError:
        pass
    trtexec = find_trtexec()
    if trtexec:
        return Toolchain("trtexec", _trtexec_version(trtexec), trtexec)
    return None


def require_tensorrt(
    toolchain: Toolchain | None = None, gpu: GpuInfo | None = None, *, detect: bool = True
) -> tuple[Toolchain, GpuInfo]:
    """Toolchain and GPU, or :class:`TensorRTUnavailable` naming everything that is missing."""
    if detect:
        toolchain = toolchain or detect_toolchain()
        gpu = gpu or detect_gpu()
    missing = []
    if toolchain is None:
        missing.append(
            "TensorRT: the `tensorrt` Python package is not importable and `trtexec` is not "
            f"on PATH (nor at {', '.join(map(str, TRTEXEC_LOCATIONS))})"
        )
    if gpu is None:
        missing.append("an NVIDIA GPU: nvidia-smi lists none and torch sees none")
    if missing:
        raise TensorRTUnavailable(
            "cannot build TensorRT engines here; missing "
            + " and ".join(missing)
            + ". Build on a GPU node (the serving image does it at start), or write the plan "
            "only with `--format trt-plan`."
        )
    assert toolchain is not None and gpu is not None
    return toolchain, gpu


# --------------------------------------------------------------------------- engine build


def _build_with_python_api(plan: BuildPlan) -> bytes:
    """Build the serialized engine with the TensorRT 10 Python API."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(plan.onnx):
        errors = "; ".join(str(parser.get_error(index)) for index in range(parser.num_errors))
        raise EngineBuildError(f"{plan.model}: the ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mib << 20)
    if plan.fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    profile = builder.create_optimization_profile()
    for entry in plan.profiles:
        profile.set_shape(entry.name, entry.min, entry.opt, entry.max)
    config.add_optimization_profile(profile)
    cache_path = Path(plan.timing_cache)
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    wanted, found = set(plan.fp32_layers), set()
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if layer.name in wanted:
            layer.precision = trt.float32
            for output in range(layer.num_outputs):
                layer.set_output_type(output, trt.float32)
            found.add(layer.name)
    if wanted - found:
        names = [network.get_layer(index).name for index in range(network.num_layers)]
        raise EngineBuildError(
            f"{plan.model}: FP32 layers {sorted(wanted - found)} are not in the network "
            f"(its layers: {names})"
        )
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"{plan.model}: TensorRT built no engine; see its log above")
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    cache_path.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(serialized))


def _build_with_trtexec(plan: BuildPlan, trtexec: str) -> bytes:
    Path(plan.timing_cache).parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(plan.trtexec_command(trtexec), capture_output=True, text=True)
    engine = Path(plan.engine)
    if result.returncode != 0 or not engine.is_file():
        tail = (result.stdout + result.stderr)[-4000:]
        raise EngineBuildError(f"{plan.model}: trtexec failed ({result.returncode}):\n{tail}")
    return engine.read_bytes()


def build_engine(plan: BuildPlan, toolchain: Toolchain) -> bytes:
    """Build ``plan`` into ``plan.engine``; returns the engine bytes."""
    Path(plan.engine).parent.mkdir(parents=True, exist_ok=True)
    if toolchain.kind == "python":
        data = _build_with_python_api(plan)
        Path(plan.engine).write_bytes(data)
        return data
    if toolchain.trtexec is None:
        raise TensorRTUnavailable("trtexec toolchain without a trtexec binary")
    return _build_with_trtexec(plan, toolchain.trtexec)


class _EngineRunner:
    """Runs a serialized engine (polygraphy handles CUDA buffers and dynamic shapes)."""

    def __init__(self, engine: bytes, output_name: str) -> None:
        try:
            from polygraphy.backend.trt import EngineFromBytes, TrtRunner
        except ImportError as error:
            raise TensorRTUnavailable(
                "the precision gate runs engines with polygraphy: pip install polygraphy"
            ) from error
        self.output_name = output_name
        self._runner = TrtRunner(EngineFromBytes(engine))

    def __enter__(self) -> _EngineRunner:
        self._runner.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self._runner.deactivate()

    def run(self, feeds: dict[str, npt.NDArray[Any]]) -> tuple[npt.NDArray[np.uint8], bool | None]:
        output = self._runner.infer(feeds)[self.output_name]
        return np.asarray(output), None  # only the uint8 output is observable in an engine


# --------------------------------------------------------------------------- precision gate


def fallback_layers(model: onnx.ModelProto, already: Sequence[str]) -> list[str]:
    """Layers the gate may add to FP32, nearest the output first."""
    return [
        node.name
        for node in reversed(model.graph.node)
        if node.op_type in FALLBACK_OPS and node.name and node.name not in already
    ]


def gate_with_fallback(
    spec: ModelSpec,
    check: Callable[[tuple[str, ...]], dict[str, Any]],
    candidates: Sequence[str],
) -> dict[str, Any]:
    """Run ``check(extra_fp32_layers)`` until it passes, adding candidates 1, 2, 4, ... at a time.

    Returns the passing report with ``extra_fp32_layers`` (what was needed beyond the
    policy) and every ``attempt``; raises :class:`GateFailed` when all candidates are spent.
    """
    extra: tuple[str, ...] = ()
    attempts = []
    step = 1
    while True:
        report = check(extra)
        worst = min(
            (e["psnr_db"] for e in report["shapes"] if e["psnr_db"] is not None), default=None
        )
        attempts.append(
            {
                "extra_fp32_layers": list(extra),
                "passed": report["passed"],
                "min_psnr_db": worst,
                "max_abs_error": max(e["max_abs_error"] for e in report["shapes"]),
            }
        )
        if report["passed"]:
            return report | {"extra_fp32_layers": list(extra), "attempts": attempts}
        remaining = [name for name in candidates if name not in extra]
        if not remaining:
            report = report | {"extra_fp32_layers": list(extra), "attempts": attempts}
            raise GateFailed(
                f"{spec.name}: precision gate fails even with every candidate layer in FP32",
                report,
            )
        extra += tuple(remaining[:step])
        step *= 2


def cpu_fp16_gate(
    spec: ModelSpec,
    onnx_path: Path,
    work_dir: Path,
    *,
    shapes: Sequence[tuple[str, tuple[int, ...]]] | None = None,
) -> dict[str, Any]:
    """The precision gate on CPU: FP16 ONNX twins (onnxruntime) vs the FP32 ONNX."""
    from vitrine.export.parity import OnnxRunner

    reference = OnnxRunner.open(onnx_path, spec.output.name)
    model = onnx.load(str(onnx_path))
    policy_layers = _policy_fp32_layers(spec, model)

    def check(extra: tuple[str, ...]) -> dict[str, Any]:
        twin = convert_fp16(spec, onnx_path, work_dir / "model.fp16.onnx", extra_fp32_nodes=extra)
        runner = OnnxRunner.open(twin, spec.output.name)
        return precision_gate(spec, reference, runner.run, shapes)

    report = gate_with_fallback(spec, check, fallback_layers(model, policy_layers))
    return report | {"runtime": "onnxruntime-fp16", "policy_fp32_layers": list(policy_layers)}


def build_gated_engine(
    spec: ModelSpec,
    onnx_path: Path,
    out_dir: Path,
    *,
    timing_cache: Path | None = None,
    workspace_mib: int = DEFAULT_WORKSPACE_MIB,
    shapes: Sequence[tuple[str, tuple[int, ...]]] | None = None,
    toolchain: Toolchain | None = None,
    gpu: GpuInfo | None = None,
    fp16_failure: str | None = None,
) -> dict[str, Any]:
    """Build ``out_dir/model.plan`` for the local GPU, gate it, write its manifest.

    With ``fp16_failure`` (why the FP16 engine could not be built) the engine is built in
    FP32 throughout, and the manifest records the reason.

    Raises :class:`TensorRTUnavailable` (naming what is missing) before any work without
    TensorRT or a GPU, and :class:`GateFailed` when no engine passes; nothing is left in
    ``out_dir`` then. Returns the manifest.
    """
    toolchain, gpu = require_tensorrt(toolchain, gpu)
    from vitrine.export.parity import OnnxRunner

    out_dir.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(onnx_path))
    with tempfile.TemporaryDirectory(prefix=".engine-", dir=out_dir) as work:
        plan = build_plan(
            spec,
            onnx_path,
            engine=Path(work) / ENGINE_FILE,
            timing_cache=timing_cache or out_dir / "timing.cache",
            workspace_mib=workspace_mib,
        )
        if fp16_failure is not None:
            plan = replace(plan, fp16=False, fp32_layers=())
        reference = OnnxRunner.open(onnx_path, spec.output.name)
        built: dict[str, Any] = {}

        def check(extra: tuple[str, ...]) -> dict[str, Any]:
            attempt = plan.with_fp32_layers(extra)
            started = time.perf_counter()
            engine = build_engine(attempt, toolchain)
            built.update(plan=attempt, seconds=time.perf_counter() - started, engine=engine)
            with _EngineRunner(engine, spec.output.name) as runner:
                return precision_gate(spec, reference, runner.run, shapes)

        candidates = fallback_layers(model, plan.fp32_layers) if plan.fp16 else []
        gate = gate_with_fallback(spec, check, candidates)
        final: BuildPlan = built["plan"]
        manifest = {
            "model": spec.name,
            "engine": ENGINE_FILE,
            "cc_model_filename": gpu.engine_filename,
            "tensorrt": toolchain.version,
            "builder": toolchain.kind,
            "gpu": {"name": gpu.name, "compute_capability": gpu.compute_capability},
            "profiles": final.as_dict()["profiles"],
            "precision": {
                "fp16": final.fp16,
                "constraints": final.precision_constraints,
                "fp32_layers": list(final.fp32_layers),
                "extra_fp32_layers": gate["extra_fp32_layers"],
                "fp16_failure": fp16_failure,
            },
            "onnx_sha256": final.onnx_sha256,
            "engine_sha256": hashlib.sha256(built["engine"]).hexdigest(),
            "build_seconds": round(built["seconds"], 2),
            "workspace_mib": final.workspace_mib,
            "gate": gate,
            "plan": final.with_paths(engine=out_dir / ENGINE_FILE).as_dict(),
        }
        os.replace(final.engine, out_dir / ENGINE_FILE)
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# --------------------------------------------------------------------------- export formats


def export_all_onnx(out_dir: Path, weights_dir: Path | None = None) -> dict[str, Path]:
    """``out_dir/<model>/model.onnx`` for every spec, from the shipped weights (parity-checked)."""
    from vitrine import paths
    from vitrine.export.artifacts import export_checkpoint
    from vitrine.registry import SPECS

    weights_dir = weights_dir or paths.weights_dir()
    files = {}
    for spec in SPECS.values():
        weights = weights_dir / f"{spec.weights_name}.safetensors"
        result = export_checkpoint(
            spec, weights, out_dir / spec.name, profiles=("min", "opt"), fp16=False
        )
        files[spec.name] = result.onnx
    return files


def run_export_format(
    spec: ModelSpec,
    fmt: str,
    weights: Path,
    out_dir: Path,
    *,
    report_dir: Path | None = None,
) -> int:
    """``vitrine export <model> --format {trt-plan,trt}``; returns the exit status.

    Both export ONNX FP32 + FP16 with its parity report first. ``trt-plan`` writes
    ``trt_plan.json`` (and prints the trtexec command); ``trt`` builds, gates and installs
    ``model.plan`` + ``manifest.json``.
    """
    from vitrine import paths
    from vitrine.export.artifacts import ParityError, export_checkpoint

    if fmt not in ("trt-plan", "trt"):
        raise ValueError(f"unknown TensorRT export format {fmt!r}; use trt-plan or trt")
    report_dir = report_dir or paths.reports_dir() / spec.name
    if fmt == "trt":
        try:
            require_tensorrt()  # fail before the minute of ONNX export and parity
        except TensorRTUnavailable as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    try:
        result = export_checkpoint(spec, weights, out_dir, report_path=report_dir / "parity.json")
    except ParityError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if fmt == "trt-plan":
        plan = build_plan(spec, result.onnx)
        plan.write(out_dir / PLAN_FILE)
        print(" ".join(plan.trtexec_command()))
        print(f"wrote {out_dir / PLAN_FILE}")
        return 0
    try:
        manifest = build_gated_engine(spec, result.onnx, out_dir)
    except TensorRTUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except GateFailed as error:
        (report_dir / "trt_gate.json").write_text(json.dumps(error.report, indent=2) + "\n")
        print(f"error: {error}; engine not installed", file=sys.stderr)
        return 1
    print(
        f"wrote {out_dir / ENGINE_FILE} (install as {manifest['cc_model_filename']}) and "
        f"{out_dir / MANIFEST_FILE}; FP32 layers added by the gate: "
        f"{manifest['precision']['extra_fp32_layers'] or 'none'}"
    )
    return 0
