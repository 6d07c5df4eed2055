"""The shipped weights' ONNX exports at the min, opt and max profile shapes: FP32 against
PyTorch, FP16 within each model's own gate, and the committed ``reports/<model>/parity.json``
equal to what ``vitrine export <model>`` writes today.

Each model is exported once per session and all its tests read that one report (about 4 min
for the twelve on 2 cores, most of it inpaint's and denoise's max shapes). The comparison
with the committed report is exact: on one machine with the pinned torch and onnxruntime,
the export and both runtimes are deterministic, so any difference means the code, the
weights or a library changed and the report must be written again.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vitrine import paths
from vitrine.export.artifacts import ParityError, export_checkpoint
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec

pytestmark = pytest.mark.expensive  # exports every model's shipped weights

ALL_SPECS = pytest.mark.parametrize("spec", SPECS.values(), ids=lambda spec: spec.name)
FP16_SPECS = pytest.mark.parametrize(
    "spec", [spec for spec in SPECS.values() if spec.precision.fp16], ids=lambda spec: spec.name
)
GATE_MARGIN_LEVELS = 1
GATE_MARGIN_DB = 4.0
"""How far outside the measured FP16 error a model's gate may sit: the catalog sets each gate
1 level and 3 dB (rounded down to a whole dB) outside what the model measures."""

Report = dict[str, Any]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Callable[[ModelSpec], Report]:
    """``regenerated(spec)``: the parity report ``vitrine export`` writes now, made once."""

    @functools.cache
    def report(name: str) -> Report:
        spec = SPECS[name]
        out = tmp_path_factory.mktemp(name)
        weights = paths.weights_path(spec.weights_name)
        # the report is written before a failing gate raises; the tests below say what failed
        with contextlib.suppress(ParityError):
            export_checkpoint(spec, weights, out, report_path=out / "parity.json")
        return dict(json.loads((out / "parity.json").read_text()))

    return lambda spec: report(spec.name)


def _committed(spec: ModelSpec) -> Report:
    path: Path = paths.reports_dir() / spec.name / "parity.json"
    return dict(json.loads(path.read_text()))


def _differences(now: object, committed: object, path: str = "") -> list[str]:
    """Every leaf where two JSON values differ, as ``path: now != committed``."""
    if isinstance(now, dict) and isinstance(committed, dict):
        keys = sorted(set(now) | set(committed))
        return [
            line
            for key in keys
            for line in _differences(now.get(key), committed.get(key), f"{path}.{key}")
        ]
    if isinstance(now, list) and isinstance(committed, list) and len(now) == len(committed):
        return [
            line
            for index, (a, b) in enumerate(zip(now, committed, strict=True))
            for line in _differences(a, b, f"{path}[{index}]")
        ]
    return [] if now == committed else [f"{path}: {now!r} != {committed!r}"]


@ALL_SPECS
def test_committed_parity_report_is_current(
    spec: ModelSpec, regenerated: Callable[[ModelSpec], Report]
) -> None:
    """Bit for bit: every number, flag and version as ``vitrine export`` writes it now."""
    differences = _differences(regenerated(spec), _committed(spec))
    assert not differences, (
        f"reports/{spec.name}/parity.json is stale (now != committed); run "
        f"`vitrine export {spec.name}`:\n" + "\n".join(differences)
    )


@ALL_SPECS
def test_fp32_export_matches_pytorch_at_every_profile_shape(
    spec: ModelSpec, regenerated: Callable[[ModelSpec], Report]
) -> None:
    report = regenerated(spec)
    profile = [(label, list(shape)) for label, shape in spec.profile.items()]
    assert [(entry["profile"], entry["shape"]) for entry in report["shapes"]] == profile
    assert [label for label, _ in profile] == ["min", "opt", "max"]
    for entry in report["shapes"]:
        fp32 = entry["onnx_fp32_vs_torch"]
        assert fp32["finite"], entry["profile"]
        assert fp32["max_abs_error"] <= spec.precision.max_abs_error_uint8, entry


@FP16_SPECS
def test_fp16_export_holds_the_models_gate(
    spec: ModelSpec, regenerated: Callable[[ModelSpec], Report]
) -> None:
    policy, report = spec.precision, regenerated(spec)
    assert report["gates"]["fp16_min_psnr_db"] == policy.fp16_min_psnr_db
    assert report["gates"]["fp16_max_abs_error_uint8"] == policy.fp16_max_abs_error_uint8
    for entry in report["shapes"]:
        fp16 = entry["onnx_fp16_vs_fp32"]
        assert fp16["finite"], entry["profile"]
        assert fp16["max_abs_error"] <= policy.fp16_max_abs_error_uint8, entry
        assert fp16["psnr_db"] is None or fp16["psnr_db"] >= policy.fp16_min_psnr_db, entry
    assert report["passed"]


@FP16_SPECS
def test_fp16_gate_is_close_to_what_the_model_measures(
    spec: ModelSpec, regenerated: Callable[[ModelSpec], Report]
) -> None:
    """A loose gate (the old 8 levels and 40 dB for all) would let a real regression pass."""
    measured = [entry["onnx_fp16_vs_fp32"] for entry in regenerated(spec)["shapes"]]
    worst_error = max(entry["max_abs_error"] for entry in measured)
    psnrs = [entry["psnr_db"] for entry in measured if entry["psnr_db"] is not None]
    gate = spec.precision
    assert gate.fp16_max_abs_error_uint8 <= worst_error + GATE_MARGIN_LEVELS, (
        f"{spec.name}: the gate allows {gate.fp16_max_abs_error_uint8} levels, FP16 is at most "
        f"{worst_error} off"
    )
    if psnrs:
        assert gate.fp16_min_psnr_db >= min(psnrs) - GATE_MARGIN_DB, (
            f"{spec.name}: the gate allows {gate.fp16_min_psnr_db} dB, FP16 measures "
            f"{min(psnrs):.2f} dB"
        )
