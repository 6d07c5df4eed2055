"""`vitrine build`: a target's repository, with ONNX exported from the shipped weights."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from vitrine import paths
from vitrine.catalog import SPECS
from vitrine.export.artifacts import export_checkpoint
from vitrine.export.repository import build_repository
from vitrine.export.triton_config import Target
from vitrine.spec import ModelSpec

__all__ = ["build_target"]

BUILD_PARITY_PROFILES = ("min", "opt")  # `vitrine export` checks max too; builds stay quick


def build_target(
    target: Target,
    out: Path,
    *,
    specs: Iterable[ModelSpec] | None = None,
    weights_dir: Path | None = None,
) -> Path:
    """Build ``target``'s repository in ``out``; cpu/embedded export and parity-check ONNX first."""
    specs = list(specs or SPECS.values())
    if target is Target.GPU:
        return build_repository(target, out, specs=specs)
    weights_dir = weights_dir or paths.weights_dir()
    with tempfile.TemporaryDirectory(prefix="vitrine-export-") as work:
        onnx_files = {}
        for spec in specs:
            weights = weights_dir / f"{spec.weights_name}.safetensors"
            result = export_checkpoint(
                spec, weights, Path(work) / spec.name, profiles=BUILD_PARITY_PROFILES, fp16=False
            )
            onnx_files[spec.name] = result.onnx
        return build_repository(target, out, specs=specs, onnx_files=onnx_files)
