"""The gpu-torch target's TorchScript artifacts from the shipped weights, on CPU.

Every spec traces, and its trace matches the eager module at the profile shapes and an odd
size. The FP16 gate runs on real FP16 arithmetic here too (CPU autocast), on a small model at
small shapes; a candidate that fails it is served in FP32 with the reason recorded. On CUDA
the same build runs on the GPU (tests/gpu/test_gpu_torch_serving.py).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from vitrine import paths
from vitrine.export.parity import sample_inputs
from vitrine.export.precision_gate import precision_gate
from vitrine.export.torchscript import (
    ARTIFACT_FILE,
    MANIFEST_FILE,
    ArtifactMismatch,
    TorchScriptArtifact,
    build_artifact,
    parity_shapes,
)
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec
from vitrine.training.checkpoint import load_checkpoint
from vitrine.training.uint8_wrapper import Uint8ImageModel

pytestmark = pytest.mark.expensive
ALL_SPECS = pytest.mark.parametrize("spec", SPECS.values(), ids=lambda spec: spec.name)
SMALL = SPECS["superres_x4"]


def _build(spec: ModelSpec, folder: Path, **options: object) -> dict:
    shapes = parity_shapes(spec, ("min", "opt", "odd"), max_batch=1)
    weights = paths.weights_path(spec.weights_name)
    return build_artifact(spec, weights, folder, device="cpu", check_shapes=shapes, **options)


@ALL_SPECS
def test_every_spec_traces_and_matches_pytorch(spec: ModelSpec, tmp_path: Path) -> None:
    manifest = _build(spec, tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == [MANIFEST_FILE, ARTIFACT_FILE]
    assert manifest["parity"]["passed"]
    assert [entry["profile"] for entry in manifest["parity"]["shapes"]] == [
        label for label, _ in parity_shapes(spec, ("min", "opt", "odd"))
    ]
    assert manifest["precision"] == {"served": "fp32", "candidate": "fp32"}  # CPU: FP32
    assert manifest["fp16_gate"] is None
    assert (manifest["device"]["type"], manifest["torch"]) == ("cpu", torch.__version__)
    # the saved file, loaded as the runner loads it, at a batch and size the trace never saw
    artifact = TorchScriptArtifact(tmp_path, "cpu")
    shape = (3, *spec.profile.min[1:])
    feeds = sample_inputs(spec, shape, seed=7)
    model = Uint8ImageModel(load_checkpoint(paths.weights_path(spec.weights_name)).model, spec.task)
    with torch.inference_mode():
        expected = model.eval()(*(torch.from_numpy(feed) for feed in feeds.values())).numpy()
    actual, finite = artifact.run(feeds)
    assert finite is None and actual.dtype == expected.dtype and actual.shape == expected.shape
    assert (
        abs(actual.astype(int) - expected.astype(int)).max() <= spec.precision.max_abs_error_uint8
    )


def test_fp16_on_real_fp16_arithmetic_passes_the_gate_and_is_served(tmp_path: Path) -> None:
    shapes = (("min", SMALL.profile.min), ("opt", (1, 32, 32, 3)))
    manifest = _build(SMALL, tmp_path, fp16=True, gate_shapes=shapes)
    assert manifest["precision"] == {
        "served": "fp16",
        "candidate": "fp16",
        "fp32_modules": ["to_subpixels"],  # the spec's precision policy
    }
    gate = manifest["fp16_gate"]
    assert gate["passed"] and [entry["profile"] for entry in gate["shapes"]] == ["min", "opt"]
    for entry in gate["shapes"]:
        assert entry["finite"] is True
        assert entry["max_abs_error"] <= SMALL.precision.fp16_max_abs_error_uint8
        assert entry["max_abs_error"] > 0  # FP16 really ran: not bit-identical to FP32
    assert TorchScriptArtifact(tmp_path, "cpu").precision == "fp16"


def test_a_model_failing_the_gate_serves_fp32_and_the_manifest_says_why(tmp_path: Path) -> None:
    strict = dataclasses.replace(
        SMALL, precision=dataclasses.replace(SMALL.precision, fp16_max_abs_error_uint8=-1)
    )
    manifest = _build(strict, tmp_path, fp16=True, gate_shapes=(("min", SMALL.profile.min),))
    assert manifest["precision"]["served"] == "fp32"
    assert manifest["precision"]["candidate"] == "fp16"
    assert manifest["precision"]["fallback"] == (
        "FP16 failed the precision gate at ['min']; serving FP32"
    )
    assert manifest["fp16_gate"]["passed"] is False
    assert json.loads((tmp_path / MANIFEST_FILE).read_text()) == manifest
    assert TorchScriptArtifact(tmp_path, "cpu").precision == "fp32"


def test_the_gate_passes_an_fp32_candidate_against_itself(tmp_path: Path) -> None:
    _build(SMALL, tmp_path)
    artifact = TorchScriptArtifact(tmp_path, "cpu")
    report = precision_gate(SMALL, artifact, artifact.run, (("min", SMALL.profile.min),))
    assert report["passed"]
    assert report["shapes"][0]["max_abs_error"] == 0 and report["shapes"][0]["psnr_db"] is None


def test_an_artifact_built_elsewhere_is_refused(tmp_path: Path) -> None:
    _build(SMALL, tmp_path / "built")
    for change, message in (
        ({"device": {"type": "cuda", "name": "NVIDIA H200"}}, "built for cuda, not cpu"),
        ({"torch": "2.11.0+cu130"}, r"built with torch 2\.11\.0\+cu130"),
    ):
        folder = tmp_path / "copy"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(tmp_path / "built", folder)
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest | change))
        with pytest.raises(ArtifactMismatch, match=message):
            TorchScriptArtifact(folder, "cpu")


def test_weights_of_another_model_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="holds 'superres_x2'"):
        build_artifact(SMALL, paths.weights_path("superres_x2"), tmp_path, device="cpu")


@ALL_SPECS
def test_every_served_forward_keeps_to_its_inputs_device(spec: ModelSpec) -> None:
    """Run on the ``meta`` device: a tensor made on a fixed device (the CPU) inside the
    forward fails here as it would on a GPU, before any GPU session."""
    model = load_checkpoint(paths.weights_path(spec.weights_name)).model
    wrapper = Uint8ImageModel(model, spec.task).eval().to("meta")
    feeds = sample_inputs(spec, (2, *spec.profile.min[1:]))
    with torch.inference_mode():
        output = wrapper(*(torch.from_numpy(feed).to("meta") for feed in feeds.values()))
    assert output.device.type == "meta" and output.dtype == torch.uint8
