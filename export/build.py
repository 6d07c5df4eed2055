"""`vitrine build`: a target's repository, with ONNX or TorchScript exported from the shipped
weights."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from vitrine import paths
from vitrine.errors import ConfigError
from vitrine.export.gpu_torch import Placement
from vitrine.export.repository import build_repository
from vitrine.export.triton_config import Target
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec

__all__ = ["build_target"]

BUILD_PARITY_PROFILES = ("min", "opt")  # `vitrine export` checks max too; builds stay quick


def build_target(
    target: Target,
    out: Path,
    *,
    specs: Iterable[ModelSpec] | None = None,
    weights_dir: Path | None = None,
    placement: Placement | None = None,
    echo: Callable[[str], None] = lambda line: None,
) -> Path:
    """Build ``target``'s repository in ``out``; cpu/embedded export and parity-check ONNX
    first, gpu-torch traces and gates TorchScript artifacts for ``placement``."""
    specs = list(specs or SPECS.values())
    if target is Target.GPU:
        return build_repository(target, out, specs=specs)
    weights_dir = weights_dir or paths.weights_dir()
    if target is Target.GPU_TORCH:
        return _build_gpu_torch(out, specs, weights_dir, placement or Placement(), echo)
    from vitrine.export.artifacts import export_checkpoint  # onnx and onnxruntime

    with tempfile.TemporaryDirectory(prefix="vitrine-export-") as work:
        onnx_files = {}
        for spec in specs:
            weights = weights_dir / f"{spec.weights_name}.safetensors"
            result = export_checkpoint(
                spec, weights, Path(work) / spec.name, profiles=BUILD_PARITY_PROFILES, fp16=False
            )
            onnx_files[spec.name] = result.onnx
        return build_repository(target, out, specs=specs, onnx_files=onnx_files)


def _build_gpu_torch(
    out: Path,
    specs: list[ModelSpec],
    weights_dir: Path,
    placement: Placement,
    echo: Callable[[str], None],
) -> Path:
    """Trace (and on CUDA, gate) every spec's artifact on ``placement.device``, then lay out
    the repository. A CPU build checks its traces at batch 1 and skips the max shape: it
    exists for machines without a GPU and for the tests."""
    from vitrine.devices import detect
    from vitrine.export.torchscript import build_artifact, parity_shapes

    if placement.device == "cuda":
        problem = detect().torch_problem()
        if problem is not None:
            raise ConfigError(
                f"the gpu-torch target for CUDA is built on the GPU that serves it: {problem}. "
                "Build it for the CPU with --device cpu"
            )
    with tempfile.TemporaryDirectory(prefix="vitrine-torchscript-") as work:
        folders = {}
        for spec in specs:
            quick = parity_shapes(spec, ("min", "opt", "odd"), max_batch=1)
            folder = Path(work) / spec.name
            manifest = build_artifact(
                spec,
                weights_dir / f"{spec.weights_name}.safetensors",
                folder,
                device=placement.device,
                check_shapes=quick if placement.device == "cpu" else None,
            )
            precision = manifest["precision"]
            echo(
                f"{spec.name}: {precision['served']} on {manifest['device']['name']}"
                + (f" ({precision['fallback']})" if "fallback" in precision else "")
                + f", {manifest['build_seconds']:.1f} s"
            )
            folders[spec.name] = folder
        return build_repository(
            Target.GPU_TORCH, out, specs=specs, artifact_dirs=folders, placement=placement
        )
