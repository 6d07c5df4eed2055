"""The same contract for every spec of the registry (tiny or untrained weights)."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from vitrine.client import AsyncVitrineClient, VitrineClient
from vitrine.export.fp16 import convert_fp16
from vitrine.export.onnx_export import dynamic_axes, export_onnx
from vitrine.export.parity import parity_report, sample_inputs
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec, OptionKind, Task
from vitrine.training.architectures import build_architecture
from vitrine.training.config import load_config
from vitrine.training.uint8_wrapper import Uint8ImageModel

ALL_SPECS = pytest.mark.parametrize("spec", SPECS.values(), ids=lambda spec: spec.name)


def _input_shape(spec: ModelSpec) -> tuple[int, ...]:
    """A batch of 2 first inputs: odd-sized images (the one side of a fixed-size editor),
    or latents (generators)."""
    if spec.conditioning is not None:
        return (2, spec.conditioning.latent_dim)
    if spec.limits.min_side == spec.limits.max_side:
        return (2, spec.limits.min_side, spec.limits.min_side, 3)
    return (2, spec.limits.min_side + 3, spec.limits.min_side + 9, 3)


def _expected_output_shape(spec: ModelSpec, shape: tuple[int, ...]) -> tuple[int, ...]:
    if spec.conditioning is not None:
        return (shape[0], *spec.output.dims)
    scale = spec.output_scale
    return (shape[0], shape[1] * scale, shape[2] * scale, spec.output.dims[-1])


def _model(spec: ModelSpec) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_architecture(spec.architecture, spec.arch_kwargs).eval()


@ALL_SPECS
def test_forward_shapes_and_dtype_at_the_serving_boundary(spec: ModelSpec) -> None:
    shape = _input_shape(spec)
    feeds = [torch.from_numpy(feed) for feed in sample_inputs(spec, shape).values()]
    with torch.inference_mode():
        output = Uint8ImageModel(_model(spec), spec.task)(*feeds)
    assert output.dtype == torch.uint8
    assert tuple(output.shape) == _expected_output_shape(spec, shape)


@ALL_SPECS
def test_profile_and_limits_agree(spec: ModelSpec) -> None:
    assert all(1 <= shape[0] <= spec.batching.max_batch_size for _, shape in spec.profile.items())
    assert spec.batching.max_batch_size in spec.batching.preferred_batch_sizes
    if spec.conditioning is not None:  # latents in, fixed-size images out, count-bounded
        conditioning = spec.conditioning
        assert {shape[1:] for _, shape in spec.profile.items()} == {(conditioning.latent_dim,)}
        assert spec.profile.max[0] == spec.batching.max_batch_size == conditioning.max_count
        assert spec.output.dims == (conditioning.side, conditioning.side, 3)
        return
    core = spec.core_limits
    for _, shape in spec.profile.items():
        assert all(core.min_side <= side <= core.max_side for side in shape[1:3])
    assert (spec.profile.min[1], spec.profile.max[1]) == (core.min_side, core.max_side)
    assert spec.limits.min_side == core.min_side and spec.limits.max_side >= core.max_side


@pytest.mark.expensive
@ALL_SPECS
def test_onnx_export_names_axes_and_parity(spec: ModelSpec, tmp_path: Path) -> None:
    model = _model(spec)
    path = export_onnx(spec, model, tmp_path / "model.onnx")
    graph = onnx.load(str(path)).graph
    assert [value.name for value in graph.input] == [tensor.name for tensor in spec.inputs]
    assert [value.name for value in graph.output] == [tensor.name for tensor in spec.outputs]
    for value in (*graph.input, *graph.output):
        dims = value.type.tensor_type.shape.dim
        named = {index: dim.dim_param for index, dim in enumerate(dims) if dim.dim_param}
        assert named == dynamic_axes(spec)[value.name]
    assert min(opset.version for opset in onnx.load(str(path)).opset_import) >= 17
    fp16 = convert_fp16(spec, path, tmp_path / "model.fp16.onnx")
    small = (("min", spec.profile.min), ("small", _input_shape(spec)))
    report = parity_report(spec, model, path, fp16, shapes=small)
    for entry in report["shapes"]:  # FP16 accuracy is gated on the shipped weights (test_parity)
        assert entry["onnx_fp32_vs_torch"]["max_abs_error"] <= spec.precision.max_abs_error_uint8
        assert entry["onnx_fp32_vs_torch"]["finite"] and entry["onnx_fp16_vs_fp32"]["finite"]


@ALL_SPECS
def test_training_config_presets_load(spec: ModelSpec) -> None:
    full, smoke = load_config(spec.weights_name, "full"), load_config(spec.weights_name, "smoke")
    assert smoke.steps < full.steps
    assert full.patch_size % spec.output_scale == 0


LATENT_EDIT_METHODS = ("variations", "interpolate")  # their options are derived, not keywords


@ALL_SPECS
@pytest.mark.parametrize("client_class", [VitrineClient, AsyncVitrineClient])
def test_client_method_routes_by_selector(spec: ModelSpec, client_class: type) -> None:
    if spec.task is Task.LATENT_EDIT:
        labels = [o.name for o in spec.options if o.kind is OptionKind.LABEL]
        for name in LATENT_EDIT_METHODS:
            parameters = inspect.signature(getattr(client_class, name)).parameters
            assert all(parameters[label].kind is inspect.Parameter.KEYWORD_ONLY for label in labels)
        return
    method = getattr(client_class, spec.client_method)
    for name in spec.selector_kwargs:
        assert inspect.signature(method).parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
    raw = getattr(client_class, f"{spec.client_method}_array")
    for option in spec.options:  # every option is a keyword of both calls
        assert option.name in inspect.signature(method).parameters
        assert option.name in inspect.signature(raw).parameters


@pytest.mark.expensive
@ALL_SPECS
def test_parity_gate_catches_a_wrong_export(spec: ModelSpec, tmp_path: Path) -> None:
    model = _model(spec)
    path = export_onnx(spec, model, tmp_path / "model.onnx")
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05)  # PyTorch now differs from the exported graph
    report = parity_report(spec, model, path, shapes=(("min", spec.profile.min),))
    assert not report["passed"]
    assert np.isfinite(report["shapes"][0]["onnx_fp32_vs_torch"]["max_abs_error"])
