"""The gpu-torch target served by the real Triton server: every pipeline through the client,
the raw path against the same artifact in-process, bad input.

Each check runs twice. On the GPU (marked ``gpu``; skipped with the reason where torch
cannot use one) against the server at ``VITRINE_GPU_TRITON_URL`` (``scripts/gpu_check.sh``
starts it, its repository at ``VITRINE_GPU_REPOSITORY``), or else a server this module
builds and starts, for every spec. On the CPU (marked ``integration``) against a CPU build of
a few models, one per kind of request, so CI runs the same checks on the same runner code.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from PIL import Image
from tritonclient.grpc import model_config_pb2 as pb
from tritonclient.utils import InferenceServerException

from vitrine.client import VitrineClient
from vitrine.options import core_value, example_options, wire_value
from vitrine.pipeline import ENCODED_INPUT, FORMAT_INPUT, QUALITY_INPUT, pipeline_steps
from vitrine.registry import SPECS
from vitrine.serving.probe import probe_pipelines, probe_steps, step_probes
from vitrine.spec import ModelSpec
from vitrine.tasks import Family

CPU_MODELS = ("superres_x2", "denoise", "dcgan")  # a scale, an option, a generator
GPU_KIND = {"cuda": pb.ModelInstanceGroup.KIND_GPU, "cpu": pb.ModelInstanceGroup.KIND_CPU}
TIMEOUT_S = 120.0  # a hang guard: first calls on a fresh instance include CUDA's start

CASES = [
    pytest.param("cuda", spec, marks=pytest.mark.gpu, id=f"cuda-{spec.name}")
    for spec in SPECS.values()
] + [
    pytest.param("cpu", SPECS[name], marks=pytest.mark.integration, id=f"cpu-{name}")
    for name in CPU_MODELS
]
EDITOR_CASES = [case for case in CASES if case.values[1].family is Family.EDITOR]  # type: ignore[union-attr]
GENERATOR_CASES = [case for case in CASES if case.values[1].is_generator]  # type: ignore[union-attr]


@dataclass(frozen=True)
class Served:
    """A running gpu-torch server and, where known, the repository it serves."""

    device: str
    url: str
    repository: Path | None


class Servers:
    """One server per device, started on first use and stopped with the module."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: dict[str, Served] = {}
        self.stack = contextlib.ExitStack()

    def get(self, device: str) -> Served:
        if device not in self.started:
            self.started[device] = self._start(device)
        return self.started[device]

    def _start(self, device: str) -> Served:
        url = os.environ.get("VITRINE_GPU_TRITON_URL")
        if device == "cuda" and url:
            repository = os.environ.get("VITRINE_GPU_REPOSITORY")
            return Served(device, url, Path(repository) if repository else None)
        from vitrine.export.build import build_target
        from vitrine.export.gpu_torch import Placement
        from vitrine.export.triton_config import Target
        from vitrine.serving.embedded import EmbeddedTriton, free_port

        names = CPU_MODELS if device == "cpu" else tuple(SPECS)
        placement = Placement(device=device, core_instances=1 if device == "cpu" else None)
        repository = build_target(
            Target.GPU_TORCH,
            self.folder / device,
            specs=[SPECS[name] for name in names],
            placement=placement,
        )
        extra: list[str] = []
        if device == "cuda":
            from vitrine.serving.gpu_torch import require_gpu, server_arguments

            extra = server_arguments(require_gpu())
        ports = {name: free_port() for name in ("grpc_port", "http_port", "metrics_port")}
        server = self.stack.enter_context(EmbeddedTriton(repository, extra_args=extra, **ports))
        return Served(device, server.grpc_url, repository)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    running = Servers(tmp_path_factory.mktemp("gpu-torch"))
    with running.stack:
        yield running


@pytest.fixture()
def triton(servers: Servers, device: str) -> Iterator[grpcclient.InferenceServerClient]:
    client = grpcclient.InferenceServerClient(servers.get(device).url)
    yield client
    client.close()


def _pipeline_call(client: VitrineClient, spec: ModelSpec) -> tuple[list[Image.Image], int]:
    """The spec's pipeline through the typed client, as a storefront calls it: the images and
    the side they must have."""
    from vitrine.loadtest.payloads import catalog_samples, encode, photo_inputs
    from vitrine.sampling import example_labels

    if spec.conditioning is not None:
        labels = example_labels(spec.conditioning)
        result = client.generate(**spec.selector_kwargs, **labels, count=2, seed=11)
        return result.images, spec.conditioning.side
    if spec.family is Family.LATENT_EDIT:
        pixels, category, color = catalog_samples()[0]
        data = encode(pixels, "png")
        result = client.variations(data, category=category, color=color, count=2)
        return result.images, pixels.shape[0]
    side = min(max(spec.limits.min_side, 48), spec.limits.max_side)
    pixels = photo_inputs(side, side)[0]
    options = example_options(spec, side, side)
    call = getattr(client, spec.client_method)
    image = call(encode(pixels, "jpeg"), **spec.selector_kwargs, **options).image
    return [image], side * spec.output_scale


@pytest.mark.parametrize(("device", "spec"), CASES)
def test_every_pipeline_answers_through_the_client(
    servers: Servers, triton: grpcclient.InferenceServerClient, device: str, spec: ModelSpec
) -> None:
    (result,) = probe_pipelines(triton, TIMEOUT_S, [spec])
    assert result.ok, result.error
    with VitrineClient(servers.get(device).url, timeout=TIMEOUT_S) as client:
        images, side = _pipeline_call(client, spec)
    assert images and all(image.size == (side, side) for image in images)


@pytest.mark.parametrize(("device", "spec"), CASES)
def test_core_model_runs_on_the_device_and_every_step_answers(
    triton: grpcclient.InferenceServerClient, device: str, spec: ModelSpec
) -> None:
    config = triton.get_model_config(spec.core_model).config
    assert config.backend == "python"
    assert {group.kind for group in config.instance_group} == {GPU_KIND[device]}
    for result in probe_steps(triton, step_probes(spec), TIMEOUT_S):
        assert result.ok, (result.model, result.error)


@pytest.mark.parametrize(("device", "spec"), EDITOR_CASES)
def test_raw_path_returns_what_the_artifact_computes_in_process(
    servers: Servers, device: str, spec: ModelSpec
) -> None:
    from vitrine.export.torchscript import TorchScriptArtifact
    from vitrine.loadtest.payloads import photo_inputs

    served = servers.get(device)
    if served.repository is None:
        pytest.skip("set VITRINE_GPU_REPOSITORY to the served repository to compare with it")
    limits = spec.core_limits  # the raw path's
    height, width = limits.min_side, min(limits.min_side * 3, limits.max_side)
    pixels = np.stack(photo_inputs(height, width)[:2])
    options = example_options(spec, height, width)
    with VitrineClient(served.url, timeout=TIMEOUT_S) as client:
        call = getattr(client, f"{spec.client_method}_array")
        served_output = call(pixels, **spec.selector_kwargs, **options).array
    artifact = TorchScriptArtifact(served.repository / spec.core_model / "1", device)
    feeds = {spec.input.name: pixels} | {
        o.core.name: core_value(o, options[o.name], pixels) for o in spec.options
    }
    expected, _ = artifact.run(feeds)
    assert served_output.shape == expected.shape
    difference = np.abs(served_output.astype(int) - expected.astype(int)).max()
    assert difference <= spec.precision.fp16_max_abs_error_uint8  # batched with other shapes


def _expect_invalid(call: Callable[[], object], message: str) -> None:
    with pytest.raises(InferenceServerException) as caught:
        call()
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT", caught.value
    assert message in str(caught.value.message()), caught.value.message()


def _infer(
    triton: grpcclient.InferenceServerClient, model: str, arrays: dict[str, tuple[str, np.ndarray]]
) -> object:
    inputs = []
    for name, (dtype, value) in arrays.items():
        tensor = grpcclient.InferInput(name, list(value.shape), dtype)
        tensor.set_data_from_numpy(value)
        inputs.append(tensor)
    return triton.infer(model, inputs, client_timeout=TIMEOUT_S)


def _editor_core_inputs(spec: ModelSpec, image: np.ndarray) -> dict[str, tuple[str, np.ndarray]]:
    values = example_options(spec, *image.shape[1:3])
    options = {
        o.core.name: (o.core.dtype, core_value(o, values[o.name], image)) for o in spec.options
    }
    return {spec.input.name: ("UINT8", image)} | options


@pytest.mark.parametrize(("device", "spec"), EDITOR_CASES)
def test_bad_raw_input_is_invalid_argument_and_the_model_serves_on(
    triton: grpcclient.InferenceServerClient, device: str, spec: ModelSpec
) -> None:
    limits = spec.core_limits  # the raw path's
    side = limits.min_side
    good = np.zeros((1, side, side, 3), np.uint8)
    too_large = np.zeros((1, limits.max_side + 1, side, 3), np.uint8)
    floats = _editor_core_inputs(spec, good) | {spec.input.name: ("FP32", good.astype(np.float32))}
    with pytest.raises(InferenceServerException) as caught:  # Triton checks the config's dtype
        _infer(triton, spec.core_model, floats)
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
    _expect_invalid(
        lambda: _infer(triton, spec.core_model, _editor_core_inputs(spec, too_large)),
        f"each must be within [{limits.min_side}, {limits.max_side}]",
    )
    result = _infer(triton, spec.core_model, _editor_core_inputs(spec, good))
    assert result.as_numpy(spec.output.name).shape[:3] == (  # type: ignore[attr-defined]
        1,
        side * spec.output_scale,
        side * spec.output_scale,
    )


@pytest.mark.parametrize(("device", "spec"), EDITOR_CASES)
def test_an_undecodable_upload_is_invalid_argument(
    triton: grpcclient.InferenceServerClient, device: str, spec: ModelSpec
) -> None:
    side = spec.limits.min_side
    values = example_options(spec, side, side)
    wires = {
        o.name: (o.wire.dtype, np.array([[wire_value(o, values[o.name])]], o.wire.numpy_dtype))
        for o in spec.options
    }
    request = {
        ENCODED_INPUT: ("BYTES", np.array([[b"\x89PNG\r\n\x1a\n garbage"]], dtype=object)),
        **wires,
        FORMAT_INPUT: ("BYTES", np.array([[b"png"]], dtype=object)),
        QUALITY_INPUT: ("INT32", np.array([[90]], np.int32)),
    }
    _expect_invalid(lambda: _infer(triton, spec.pipeline, request), "decode")
    (result,) = probe_pipelines(triton, TIMEOUT_S, [spec])  # the pipeline serves on
    assert result.ok, result.error


@pytest.mark.parametrize(("device", "spec"), GENERATOR_CASES)
def test_a_label_out_of_range_is_refused_before_it_reaches_the_device(
    triton: grpcclient.InferenceServerClient, device: str, spec: ModelSpec
) -> None:
    assert spec.conditioning is not None
    arrays: dict[str, tuple[str, np.ndarray]] = {
        tensor.name: (tensor.dtype, np.zeros((1, *tensor.dims), tensor.numpy_dtype))
        for tensor in spec.inputs
    }
    bad = len(spec.conditioning.categories)
    arrays["category"] = ("INT32", np.array([[bad]], np.int32))
    _expect_invalid(lambda: _infer(triton, spec.core_model, arrays), f"label indices in [0, {bad})")
    arrays["category"] = ("INT32", np.array([[0]], np.int32))  # the instance still serves
    result = _infer(triton, spec.core_model, arrays)
    assert result.as_numpy(spec.output.name).shape == (1, *spec.output.dims)  # type: ignore[attr-defined]


@pytest.mark.integration
def test_bench_measures_limit_raw_and_pipelines_on_the_cpu_build(
    servers: Servers, tmp_path: Path
) -> None:
    from vitrine.loadtest.gpu_torch_bench import (
        BENCH_FILE,
        PIPELINE_FORMATS,
        GpuTorchBenchConfig,
        run_gpu_torch_bench,
    )

    served = servers.get("cpu")
    config = GpuTorchBenchConfig(
        models=("superres_x2",),
        sizes=(32,),
        concurrency=(1, 2),
        processes=2,
        duration_s=0.5,
        warmup=1,
        out=tmp_path,
        address=served.url,
        repository=served.repository,
    )
    run = run_gpu_torch_bench(config, echo=lambda line: None)
    assert (tmp_path / BENCH_FILE).is_file() and (tmp_path / "gpu_torch_bench.png").is_file()
    cells = run["cells"]
    assert all(cell["errors"] == 0 and cell["images_per_s"] > 0 for cell in cells), cells
    assert {(c["system"], c.get("batch")) for c in cells if c["system"].startswith("limit")} == {
        (system, batch) for system in ("limit", "limit_host") for batch in (1, 8)
    }
    assert [c["concurrency"] for c in cells if c["system"] == "raw"] == [1, 2]
    pipelines = [cell for cell in cells if cell["system"] == "pipeline"]
    assert [cell["output_format"] for cell in pipelines] == list(PIPELINE_FORMATS)
    for cell in pipelines:
        steps = cell["steps"]
        assert tuple(steps) == pipeline_steps(SPECS["superres_x2"])
        assert abs(sum(step["share"] for step in steps.values()) - 1.0) < 0.01
        assert all(step["requests"] >= cell["requests"] for step in steps.values())
    (row,) = run["summary"]
    assert row["targets"] == {"not judged": "measured on cpu"}
    assert run["environment"]["instances"]["superres_x2"] == ["1 x KIND_CPU"]
