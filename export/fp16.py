"""FP16 variant of an exported ONNX model, keeping the spec's FP32 layers and uint8 I/O."""

from __future__ import annotations

from pathlib import Path

import onnx
import onnx_ir
from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

from vitrine.spec import ModelSpec

__all__ = ["convert_fp16", "fp32_nodes"]

# Resize keeps FP32: the bicubic base image carries most of the output's magnitude.
_FP32_OPS = ("Resize",)


def fp32_nodes(spec: ModelSpec, model: onnx.ModelProto) -> list[str]:
    """Names of the nodes the precision policy keeps in FP32 (by name substring)."""
    keep = spec.precision.fp32_layers
    return [node.name for node in model.graph.node if any(part in node.name for part in keep)]


def convert_fp16(spec: ModelSpec, source: Path, target: Path) -> Path:
    """Write the FP16 twin of ``source`` to ``target`` and validate it."""
    model = onnx.load(str(source))
    converted = convert_float_to_float16(
        model,
        keep_io_types=True,
        op_block_list=[*DEFAULT_OP_BLOCK_LIST, *_FP32_OPS],
        node_block_list=fp32_nodes(spec, model),
    )
    graph = onnx_ir.from_proto(converted)
    graph.graph.sort()  # the converter appends its casts after their consumers
    onnx.save(onnx_ir.to_proto(graph), str(target))
    onnx.checker.check_model(str(target), full_check=True)
    return target
