"""On a GPU node: build every engine from the shipped weights, gate it, serve it.

Skipped with the reason where no CUDA device is present (tests/conftest.py). Needs the
`tensorrt` Python package (or trtexec) of the serving image's TensorRT release and
polygraphy; serving also needs ``VITRINE_GPU_TRITON_URL`` (a running serving image).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from vitrine import paths
from vitrine.catalog import SPECS
from vitrine.export.onnx_export import export_onnx
from vitrine.export.tensorrt import build_gated_engine, detect_gpu, gate_shapes
from vitrine.options import example_options
from vitrine.sampling import example_labels
from vitrine.spec import ModelSpec
from vitrine.training.checkpoint import load_checkpoint

pytestmark = pytest.mark.gpu
ALL_SPECS = pytest.mark.parametrize("spec", SPECS.values(), ids=lambda spec: spec.name)


@ALL_SPECS
def test_engine_builds_passes_the_gate_and_describes_itself(
    spec: ModelSpec, tmp_path: Path
) -> None:
    model = load_checkpoint(paths.weights_path(spec.weights_name)).model
    onnx_path = export_onnx(spec, model, tmp_path / "model.onnx")
    manifest = build_gated_engine(spec, onnx_path, tmp_path / "engine", shapes=gate_shapes(spec))
    gpu = detect_gpu()
    assert gpu is not None
    assert (tmp_path / "engine" / "model.plan").is_file()
    assert manifest["gate"]["passed"]
    assert manifest["cc_model_filename"] == gpu.engine_filename
    assert manifest["gpu"]["compute_capability"] == gpu.compute_capability
    assert manifest["profiles"][0]["max"] == list(spec.profile.max)
    print(spec.name, "extra FP32 layers:", manifest["precision"]["extra_fp32_layers"])


@ALL_SPECS
def test_served_engine_answers_through_the_client(spec: ModelSpec) -> None:
    url = os.environ.get("VITRINE_GPU_TRITON_URL")
    if not url:
        pytest.skip("set VITRINE_GPU_TRITON_URL to a running serving image (gRPC host:port)")
    from vitrine.client import VitrineClient

    with VitrineClient(url) as client:
        client.verify()
        call = getattr(client, f"{spec.client_method}_array")
        if spec.conditioning is not None:  # latents drawn client-side, as the pipeline does
            result = call(**spec.selector_kwargs, **example_labels(spec.conditioning), count=2)
            assert result.array.shape == (2, *spec.output.dims)
        else:
            pixels = np.full((2, 64, 48, 3), 128, dtype=np.uint8)
            options = example_options(spec, 64, 48)
            result = call(pixels, **spec.selector_kwargs, **options)
            scale, channels = spec.output_scale, spec.output.dims[-1]
            assert result.array.shape == (2, 64 * scale, 48 * scale, channels)
    assert result.model == spec.core_model


@pytest.mark.gpu
def test_gpu_bench_reports_every_system(tmp_path: Path) -> None:
    from vitrine.loadtest.gpu_bench import GPU_SYSTEMS, GpuBenchConfig, run_gpu_bench

    config = GpuBenchConfig(models=("superres_x4",), sizes=(64,), duration_s=0.5, out=tmp_path)
    assert run_gpu_bench(config) == 0
    cells = json.loads((tmp_path / "gpu_bench.json").read_text())["cells"]
    assert {cell["system"] for cell in cells} == set(GPU_SYSTEMS)
    assert all(cell["errors"] == 0 and cell["images_per_s"] > 0 for cell in cells)
