"""Export one checkpoint: ONNX FP32 + FP16, validated, with a parity report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitrine.export.fp16 import convert_fp16
from vitrine.export.onnx_export import export_onnx
from vitrine.export.parity import parity_report
from vitrine.spec import ModelSpec
from vitrine.training.checkpoint import load_checkpoint

__all__ = ["ExportResult", "ParityError", "export_checkpoint"]


class ParityError(RuntimeError):
    """The exported model does not match PyTorch within the spec's gates."""


@dataclass(frozen=True)
class ExportResult:
    """Files written by :func:`export_checkpoint` and the parity report."""

    onnx: Path
    onnx_fp16: Path | None
    report: dict[str, Any]


def export_checkpoint(
    spec: ModelSpec,
    weights: Path,
    out_dir: Path,
    *,
    profiles: tuple[str, ...] = ("min", "opt", "max"),
    fp16: bool = True,
    report_path: Path | None = None,
) -> ExportResult:
    """Export ``weights`` of ``spec`` into ``out_dir`` and check parity at ``profiles``.

    Raises :class:`ParityError` (after writing the report) when a gate fails.
    """
    checkpoint = load_checkpoint(weights)
    if checkpoint.meta.get("spec") != spec.weights_name:
        raise ValueError(
            f"{weights} holds {checkpoint.meta.get('spec')!r}, not {spec.weights_name!r}"
        )
    onnx_path = export_onnx(spec, checkpoint.model, out_dir / "model.onnx")
    fp16_path = None
    if fp16 and spec.precision.fp16:
        fp16_path = convert_fp16(spec, onnx_path, out_dir / "model.fp16.onnx")
    shapes = tuple((label, shape) for label, shape in spec.profile.items() if label in profiles)
    report = parity_report(spec, checkpoint.model, onnx_path, fp16_path, shapes=shapes)
    report["weights"] = {"path": weights.name, "steps": checkpoint.meta.get("steps")}
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report, indent=2) + "\n")
    if not report["passed"]:
        failed = [entry["profile"] for entry in report["shapes"] if not entry["passed"]]
        raise ParityError(f"{spec.name}: parity gate failed at {failed}; see the report")
    return ExportResult(onnx=onnx_path, onnx_fp16=fp16_path, report=report)
