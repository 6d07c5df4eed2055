"""The precision gate on CPU: every model's FP16 ONNX (onnxruntime) vs FP32, shipped weights.

The same gate (:func:`vitrine.export.tensorrt.precision_gate` with its FP32 fallback) runs on
the TensorRT engine on GPU nodes. Here the max shape runs at batch 1 to stay quick: the
numerics per image do not depend on the batch.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from vitrine import paths
from vitrine.export.onnx_export import export_onnx
from vitrine.export.tensorrt import GateFailed, cpu_fp16_gate, gate_shapes
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec
from vitrine.training.checkpoint import load_checkpoint

pytestmark = pytest.mark.expensive  # exports and converts every model's shipped weights

ALL_SPECS = pytest.mark.parametrize("spec", SPECS.values(), ids=lambda spec: spec.name)


def _shipped_onnx(spec: ModelSpec, folder: Path) -> Path:
    model = load_checkpoint(paths.weights_path(spec.weights_name)).model
    return export_onnx(spec, model, folder / "model.onnx")


@ALL_SPECS
def test_fp16_passes_the_precision_gate_without_extra_fp32_layers(
    spec: ModelSpec, tmp_path: Path
) -> None:
    onnx_path = _shipped_onnx(spec, tmp_path)
    report = cpu_fp16_gate(spec, onnx_path, tmp_path, shapes=gate_shapes(spec, max_batch=1))
    (tmp_path / "fp16_gate.json").write_text(json.dumps(report, indent=2))  # the CPU report
    assert report["passed"], report
    assert [entry["profile"] for entry in report["shapes"]] == ["min", "opt", "max"]
    assert report["extra_fp32_layers"] == []  # the policy's FP32 layers suffice
    for part in spec.precision.fp32_layers:  # every layer the spec keeps FP32 was found
        assert any(part in name for name in report["policy_fp32_layers"]), part
    for entry in report["shapes"]:
        assert entry["finite"] is True
        assert entry["max_abs_error"] <= spec.precision.fp16_max_abs_error_uint8
        assert entry["psnr_db"] is None or entry["psnr_db"] >= spec.precision.fp16_min_psnr_db


def test_an_unreachable_gate_spends_every_fallback_layer_then_refuses(tmp_path: Path) -> None:
    spec = SPECS["superres_x4"]
    strict = dataclasses.replace(
        spec, precision=dataclasses.replace(spec.precision, fp16_max_abs_error_uint8=-1)
    )
    onnx_path = _shipped_onnx(spec, tmp_path)
    with pytest.raises(GateFailed) as error:
        cpu_fp16_gate(strict, onnx_path, tmp_path, shapes=(("min", spec.profile.min),))
    report = error.value.report
    assert len(report["attempts"]) > 2
    assert "/model/Add" in report["extra_fp32_layers"]  # the residual add was tried
    assert not report["passed"]
