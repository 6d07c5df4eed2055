"""On a GPU node with TensorRT: build every engine from the shipped weights, gate it, serve it.

Skipped with the reason where torch cannot use a GPU (tests/conftest.py) or TensorRT is not
installed (the H200 node has none: tests/gpu/test_gpu_torch_serving.py covers it). Needs the
`tensorrt` Python package (or trtexec) of the serving image's TensorRT release and
polygraphy; serving also needs ``VITRINE_GPU_TENSORRT_URL`` (a running serving image).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from vitrine import paths
from vitrine.export.onnx_export import export_onnx
from vitrine.export.tensorrt import build_gated_engine, detect_gpu, detect_toolchain, gate_shapes
from vitrine.options import example_options
from vitrine.registry import SPECS
from vitrine.sampling import example_labels
from vitrine.spec import ModelSpec
from vitrine.tasks import Family
from vitrine.training.checkpoint import load_checkpoint

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        detect_toolchain() is None,
        reason="TensorRT is not installed: neither the tensorrt package nor trtexec",
    ),
]
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
    url = os.environ.get("VITRINE_GPU_TENSORRT_URL")
    if not url:
        pytest.skip("set VITRINE_GPU_TENSORRT_URL to a running serving image (gRPC host:port)")
    from vitrine.client import VitrineClient
    from vitrine.loadtest.payloads import catalog_samples, encode

    with VitrineClient(url) as client:
        client.verify()
        if spec.conditioning is not None:  # latents drawn client-side, as the pipeline does
            labels = example_labels(spec.conditioning)
            result = client.generate_array(**spec.selector_kwargs, **labels, count=2)
            assert result.array.shape == (2, *spec.output.dims)
            assert result.model == spec.core_model
        elif spec.family is Family.LATENT_EDIT:  # no raw method: through the pipeline
            pixels, category, color = catalog_samples()[0]
            data = encode(pixels, "png")
            images = client.variations(data, category=category, color=color, count=2).images
            assert [image.size for image in images] == [pixels.shape[1::-1]] * 2
        else:  # within the core model's limits, and not square
            limits = spec.core_limits
            height = min(max(64, limits.min_side), limits.max_side)
            width = min(max(48, limits.min_side), limits.max_side)
            pixels = np.full((2, height, width, 3), 128, dtype=np.uint8)
            options = example_options(spec, height, width)
            call = getattr(client, f"{spec.client_method}_array")
            result = call(pixels, **spec.selector_kwargs, **options)
            scale, channels = spec.output_scale, spec.output.dims[-1]
            assert result.array.shape == (2, height * scale, width * scale, channels)
            assert result.model == spec.core_model


def test_gpu_bench_reports_every_system(tmp_path: Path) -> None:
    from vitrine.loadtest.gpu_bench import (
        GPU_SYSTEMS,
        GpuBenchConfig,
        missing_gpu_stack,
        run_gpu_bench,
    )

    missing = missing_gpu_stack()
    if missing:
        pytest.skip(f"the GPU benchmark needs {', '.join(missing)}")

    config = GpuBenchConfig(models=("superres_x4",), sizes=(64,), duration_s=0.5, out=tmp_path)
    assert run_gpu_bench(config) == 0
    cells = json.loads((tmp_path / "gpu_bench.json").read_text())["cells"]
    assert {cell["system"] for cell in cells} == set(GPU_SYSTEMS)
    assert all(cell["errors"] == 0 and cell["images_per_s"] > 0 for cell in cells)
