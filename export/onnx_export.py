"""ONNX export of a checkpoint: names and dynamic axes from the spec, checked by onnx.checker."""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from vitrine.spec import ModelSpec
from vitrine.training.uint8_wrapper import Uint8ImageModel

__all__ = ["dynamic_axes", "export_onnx"]


def dynamic_axes(spec: ModelSpec) -> dict[str, dict[int, str]]:
    """ONNX dynamic axes of every input and output: the batch axis plus the spec's named axes."""
    axes: dict[str, dict[int, str]] = {}
    for tensor in (*spec.inputs, *spec.outputs):
        named = {index + 1: name for index, name in enumerate(tensor.axis_names) if name}
        axes[tensor.name] = {0: "batch", **named}
    return axes


def export_onnx(spec: ModelSpec, model: nn.Module, path: Path) -> Path:
    """Export ``model`` behind the uint8 NHWC boundary to ``path`` and validate the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = Uint8ImageModel(model, spec.task).eval()
    dtypes = {tensor.name: getattr(torch, tensor.numpy_dtype) for tensor in spec.inputs}
    samples = tuple(
        torch.zeros(shape, dtype=dtypes[name])
        for name, shape in spec.input_shapes(spec.profile.opt).items()
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        torch.onnx.export(
            wrapper,
            samples,
            str(path),
            input_names=[tensor.name for tensor in spec.inputs],
            output_names=[tensor.name for tensor in spec.outputs],
            dynamic_axes=dynamic_axes(spec),
            opset_version=spec.onnx_opset,
            dynamo=False,
        )
    model = onnx.load(str(path))
    _declare_io_shapes(spec, model)
    onnx.save(model, str(path))
    onnx.checker.check_model(str(path), full_check=True)
    return path


def _declare_io_shapes(spec: ModelSpec, model: onnx.ModelProto) -> None:
    """Declare every input and output shape exactly as the spec has it.

    The exporter names a dimension it could not trace (``Transposeresult_dim_3``) even
    where the spec fixes it (3 channels); the spec is the source of truth.
    """
    tensors = {tensor.name: tensor for tensor in (*spec.inputs, *spec.outputs)}
    for value in (*model.graph.input, *model.graph.output):
        tensor = tensors[value.name]
        dims = value.type.tensor_type.shape.dim
        for dim, size, name in zip(
            dims, (-1, *tensor.dims), ("batch", *tensor.axis_names), strict=True
        ):
            if size == -1:
                dim.dim_param = name or "batch"
            else:
                dim.dim_value = size
