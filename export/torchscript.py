"""TorchScript artifacts of the ``gpu-torch`` target: traced where served, gated, described.

An artifact is the uint8 wrapper (:class:`vitrine.training.uint8_wrapper.Uint8ImageModel`:
normalisation, layout, clamping and rounding inside the graph) traced with ``torch.jit.trace``
and frozen, on the device that will serve it, from the checkpoint alone: serving loads
``model.pt`` and never imports the training code. It is built where it is served because a
TorchScript file carries its device and is only sure to load in the torch that wrote it.

On CUDA the artifact runs in FP16: the traced forward runs under autocast (float16), and the
modules the spec's precision policy keeps in FP32 (``fp32_layers``, matched against module
names as they are against ONNX node names) run outside it on FP32 inputs. The FP16 artifact
is served only when it passes the precision gate (:mod:`vitrine.export.precision_gate`)
against the FP32 artifact on the same device, at the spec's profile shapes; otherwise the
FP32 artifact is served and ``manifest.json`` says why. Either way the FP32 trace must match
the eager module (the parity gate of the ONNX export) at the profile shapes and at an odd size.

Loading and running (:class:`TorchScriptArtifact`) needs torch alone: the serving stub
imports it. Building imports the training code, the photos and the gate lazily.

Why TorchScript: it loads in seconds with no compile step, and tracing through the uint8
wrapper works for every architecture here. torch marks it deprecated in favour of
``torch.export``; a ``.pt2`` program compiled ahead of time (AOTInductor) is the successor,
at the price of minutes of compiling per model and shape range on the node.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import platform
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from vitrine.spec import ModelSpec

__all__ = [
    "ARTIFACT_FILE",
    "MANIFEST_FILE",
    "ArtifactMismatch",
    "ServedModule",
    "TorchScriptArtifact",
    "build_artifact",
    "exact_fp32",
    "fp32_modules",
    "inference",
    "parity_shapes",
    "read_manifest",
]

ARTIFACT_FILE = "model.pt"
MANIFEST_FILE = "manifest.json"
FORMAT = "torchscript: torch.jit.trace of the uint8 wrapper, frozen"
Shapes = Sequence[tuple[str, tuple[int, ...]]]


class ArtifactMismatch(RuntimeError):
    """An artifact was built for another device type or torch release than this one."""


@contextlib.contextmanager
def _torchscript() -> Iterator[None]:
    """torch 2.13 marks TorchScript deprecated (for torch.export and torch.compile) on every
    call; it is still what this target builds, deliberately (see the module docstring)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        yield


def exact_fp32() -> None:
    """FP32 means FP32 here: no TF32 in CUDA convolutions and matrix products (torch lets
    cuDNN use it by default), so the FP32 artifact is the precision gate's true reference
    and the fallback of a model that fails it."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


@contextlib.contextmanager
def inference() -> Iterator[None]:
    """How artifacts run, in serving and in the benchmark's limit alike: no autograd, and
    the frozen graph run as it is, without the profiling executor re-specialising (and
    recompiling) it for every new input shape."""
    # torch.jit's __all__ leaves out optimized_execution and TracerWarning, which it exports.
    with torch.inference_mode(), torch.jit.optimized_execution(False):  # type: ignore[attr-defined]
        yield


def fp32_modules(spec: ModelSpec, model: nn.Module) -> list[str]:
    """Names of the modules of ``model`` that the spec's precision policy keeps in FP32.

    A policy entry matches a module whose name, as the uint8 wrapper nests it
    (``model.<name>``), contains it: the scope the ONNX node names carry too.
    """
    names = [name for name, _ in model.named_modules() if name]
    matched = []
    for part in spec.precision.fp32_layers:
        found = [name for name in names if part in f"model.{name}"]
        if not found:
            raise ValueError(f"{spec.name}: FP32 layer {part!r} matches no module")
        matched += [name for name in found if name not in matched]
    return matched


def _as_fp32(value: Any) -> Any:
    is_reduced = isinstance(value, torch.Tensor) and value.is_floating_point()
    return value.float() if is_reduced else value


def _keep_fp32(module: nn.Module, device_type: str) -> None:
    """Run ``module`` outside autocast, on FP32 inputs (the tracer records both)."""
    states: list[bool] = []

    def enter(_: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        states.append(torch.is_autocast_enabled(device_type))
        torch.set_autocast_enabled(device_type, False)
        return tuple(_as_fp32(a) for a in args), {k: _as_fp32(v) for k, v in kwargs.items()}

    def leave(_: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        torch.set_autocast_enabled(device_type, states.pop())

    module.register_forward_pre_hook(enter, with_kwargs=True)
    module.register_forward_hook(leave, with_kwargs=True, always_call=True)


class ServedModule(nn.Module):
    """What an artifact holds: the uint8 wrapper of ``model``, in FP32 or under FP16 autocast
    with the policy's FP32 modules outside it. ``float_output`` is the float tensor before
    the rounding to uint8 (for the gate's finiteness check)."""

    def __init__(self, spec: ModelSpec, model: nn.Module, device: torch.device, fp16: bool):
        from vitrine.training.uint8_wrapper import Uint8ImageModel

        super().__init__()
        model = copy.deepcopy(model).to(device).eval()
        self.kept_fp32 = fp32_modules(spec, model) if fp16 else []
        modules = dict(model.named_modules())
        for name in self.kept_fp32:
            _keep_fp32(modules[name], device.type)
        self.wrapper = Uint8ImageModel(model, spec.task)
        self.device_type = device.type
        self.fp16 = fp16

    def float_output(self, *inputs: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=torch.float16, enabled=self.fp16):
            return self.wrapper.float_forward(self.wrapper.model, *inputs).float()

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        from vitrine.training.uint8_wrapper import to_uint8

        return to_uint8(self.float_output(*inputs))


def _tensors(feeds: dict[str, npt.NDArray[Any]], device: torch.device) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(feed)).to(device) for feed in feeds.values()]


def _trace(module: ServedModule, example: list[torch.Tensor]) -> torch.jit.ScriptModule:
    with torch.inference_mode(False), torch.no_grad(), _torchscript():
        # torch's own size checks warn harmlessly; a branch of ours decided at the trace shape
        # would be baked into the artifact: fail rather than serve it.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch\.")  # type: ignore[attr-defined]
        warnings.filterwarnings("error", category=torch.jit.TracerWarning, module=r"vitrine\.")  # type: ignore[attr-defined]
        traced = torch.jit.trace(module.eval(), tuple(example), check_trace=False)
        frozen: torch.jit.ScriptModule = torch.jit.freeze(traced.eval())
    return frozen


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of the artifact in ``folder``."""
    manifest: dict[str, Any] = json.loads((folder / MANIFEST_FILE).read_text())
    return manifest


def _release(version: str) -> str:
    return version.split("+")[0]


class TorchScriptArtifact:
    """An artifact folder (``model.pt`` + ``manifest.json``) loaded on ``device``.

    Refuses (:class:`ArtifactMismatch`) an artifact built for another device type or torch
    release: rebuild it where it is served.
    """

    def __init__(self, folder: Path, device: str | torch.device) -> None:
        self.device = torch.device(device)
        self.manifest = read_manifest(folder)
        built = self.manifest["device"]["type"]
        if built != self.device.type:
            raise ArtifactMismatch(
                f"{folder} was built for {built}, not {self.device.type}: "
                f"rebuild it with `vitrine build --target gpu-torch --device {self.device.type}`"
            )
        if _release(self.manifest["torch"]) != _release(torch.__version__):
            raise ArtifactMismatch(
                f"{folder} was built with torch {self.manifest['torch']}, this is torch "
                f"{torch.__version__}: rebuild it where it is served"
            )
        exact_fp32()
        with _torchscript():
            self.module = torch.jit.load(str(folder / ARTIFACT_FILE), map_location=self.device)

    @property
    def precision(self) -> str:
        """``"fp16"`` or ``"fp32"``: what this artifact serves in."""
        served: str = self.manifest["precision"]["served"]
        return served

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The uint8 output of one batch (inputs already on the device)."""
        with inference():
            output: torch.Tensor = self.module(*inputs)
        return output

    def run(self, feeds: dict[str, npt.NDArray[Any]]) -> tuple[npt.NDArray[np.uint8], bool | None]:
        """The uint8 output for numpy feeds (as the gate's reference takes them); finiteness
        is not observable behind the uint8 cast (None)."""
        output = self(*_tensors(feeds, self.device))
        return output.cpu().numpy(), None


def parity_shapes(
    spec: ModelSpec,
    labels: Sequence[str] = ("min", "opt", "max", "odd"),
    *,
    max_batch: int | None = None,
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Shapes a trace is checked at: profile shapes, and for editors whose sides may vary an
    ``odd`` size (no power of two divides it) that a size-dependent branch baked into the
    trace at the trace shape would get wrong."""
    shapes = dict(spec.profile.items())
    limits = spec.core_limits  # what the core model, and so the artifact, takes
    if not spec.is_generator and limits.min_side < limits.max_side:
        side, top = limits.min_side, limits.max_side
        shapes["odd"] = (1, min(top, 2 * side + 1), min(top, 3 * side + 5), 3)
    chosen = []
    for label in labels:
        if label not in shapes:
            continue
        shape = shapes[label]
        if max_batch is not None and shape[0] > max_batch:
            shape = (max_batch, *shape[1:])
        chosen.append((label, tuple(shape)))
    return tuple(chosen)


def _trace_shape(spec: ModelSpec) -> tuple[int, ...]:
    """Two images at the profile's optimal size (a generator: two latents)."""
    return (2, *spec.profile.opt[1:])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _device_info(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        name = torch.cuda.get_device_name(device)
        return {"type": "cuda", "name": name, "compute_capability": f"{major}.{minor}"}
    return {"type": device.type, "name": platform.processor() or platform.machine()}


def _parity(
    spec: ModelSpec, eager: ServedModule, traced: TorchScriptArtifact, shapes: Shapes
) -> dict[str, Any]:
    """The FP32 trace against the eager FP32 module (``max_abs_error_uint8`` at most)."""
    from vitrine.export.parity import compare_uint8, sample_inputs

    entries = []
    for label, shape in shapes:
        feeds = sample_inputs(spec, shape)
        with inference():
            expected = eager(*_tensors(feeds, traced.device)).cpu().numpy()
        actual, _ = traced.run(feeds)
        metrics = compare_uint8(expected, actual)
        passed = metrics["max_abs_error"] <= spec.precision.max_abs_error_uint8
        entries.append({"profile": label, "shape": list(shape), **metrics, "passed": passed})
    return {
        "gate": {"max_abs_error_uint8": spec.precision.max_abs_error_uint8},
        "shapes": entries,
        "passed": all(entry["passed"] for entry in entries),
    }


def _save(traced: torch.jit.ScriptModule, folder: Path, manifest: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with _torchscript():
        torch.jit.save(traced, str(folder / ARTIFACT_FILE))
    manifest = manifest | {"artifact": ARTIFACT_FILE, "sha256": _sha256(folder / ARTIFACT_FILE)}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return folder


class _Observed:
    """A saved artifact as the precision gate runs it: its uint8 output, and whether the
    same module run eagerly keeps the float tensor before the rounding finite."""

    def __init__(self, artifact: TorchScriptArtifact, module: ServedModule) -> None:
        self.artifact, self.module = artifact, module

    def run(self, feeds: dict[str, npt.NDArray[Any]]) -> tuple[npt.NDArray[np.uint8], bool]:
        output, _ = self.artifact.run(feeds)
        with inference():
            raw = self.module.float_output(*_tensors(feeds, self.artifact.device))
        return output, bool(torch.isfinite(raw).all())


def build_artifact(
    spec: ModelSpec,
    weights: Path,
    out_dir: Path,
    *,
    device: str = "cuda",
    fp16: bool | None = None,
    gate_shapes: Shapes | None = None,
    check_shapes: Shapes | None = None,
) -> dict[str, Any]:
    """Trace ``weights`` of ``spec`` on ``device`` into ``out_dir`` and return its manifest.

    ``fp16`` (default: on CUDA, where the spec allows it) makes the FP16 artifact a
    candidate: it is served if it passes the precision gate at ``gate_shapes`` (default: the
    profile's min, opt and max), else the FP32 one is and the manifest says why. The FP32
    trace must match the eager module at ``check_shapes`` (default: :func:`parity_shapes`),
    else ``ValueError``.
    """
    from vitrine.export.parity import sample_inputs
    from vitrine.export.precision_gate import gate_shapes as profile_shapes
    from vitrine.export.precision_gate import precision_gate
    from vitrine.training.checkpoint import load_checkpoint

    started = time.perf_counter()
    target = torch.device(device)
    exact_fp32()
    checkpoint = load_checkpoint(weights)
    if checkpoint.meta.get("spec") != spec.weights_name:
        raise ValueError(
            f"{weights} holds {checkpoint.meta.get('spec')!r}, not {spec.weights_name!r}"
        )
    candidate = (target.type == "cuda" and spec.precision.fp16) if fp16 is None else fp16
    example = _tensors(sample_inputs(spec, _trace_shape(spec)), target)
    manifest: dict[str, Any] = {
        "model": spec.name,
        "format": FORMAT,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": _device_info(target),
        "weights": {"file": weights.name, "sha256": _sha256(weights)},
        "trace_shape": [list(tensor.shape) for tensor in example],
        "tf32": False,
    }
    staged = {precision: out_dir / f".{precision}" for precision in ("fp32", "fp16")}
    try:
        fp32 = ServedModule(spec, checkpoint.model, target, fp16=False)
        served = _trace(fp32, example)
        _save(served, staged["fp32"], manifest | {"precision": {"served": "fp32"}})
        reference = _Observed(TorchScriptArtifact(staged["fp32"], target), fp32)
        parity = _parity(spec, fp32, reference.artifact, check_shapes or parity_shapes(spec))
        if not parity["passed"]:
            failed = [entry["profile"] for entry in parity["shapes"] if not entry["passed"]]
            raise ValueError(f"{spec.name}: the TorchScript trace differs from PyTorch at {failed}")
        precision: dict[str, Any] = {"served": "fp32", "candidate": "fp16" if candidate else "fp32"}
        gate = None
        if candidate:
            half = ServedModule(spec, checkpoint.model, target, fp16=True)
            traced = _trace(half, example)
            precision["fp32_modules"] = half.kept_fp32
            _save(traced, staged["fp16"], manifest | {"precision": {"served": "fp16"}})
            observed = _Observed(TorchScriptArtifact(staged["fp16"], target), half)
            gate = precision_gate(
                spec, reference, observed.run, gate_shapes or profile_shapes(spec)
            )
            if gate["passed"]:
                precision["served"], served = "fp16", traced
            else:
                failed = [entry["profile"] for entry in gate["shapes"] if not entry["passed"]]
                precision["fallback"] = f"FP16 failed the precision gate at {failed}; serving FP32"
    finally:
        for folder in staged.values():
            for path in folder.glob("*"):
                path.unlink()
            with contextlib.suppress(FileNotFoundError):
                folder.rmdir()
    manifest |= {
        "precision": precision,
        "fp16_gate": gate,
        "parity": parity,
        "build_seconds": round(time.perf_counter() - started, 2),
    }
    _save(served, out_dir, manifest)
    return read_manifest(out_dir)
