"""FP16 variant of an exported ONNX model, keeping the spec's FP32 layers and uint8 I/O."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import onnx
import onnx_ir
from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

from vitrine.spec import ModelSpec

__all__ = ["FP32_OPS", "convert_fp16", "fp32_nodes", "fp32_op_nodes"]

# Resize keeps FP32: the bicubic base image carries most of the output's magnitude (and the
# converter's cast ordering around Resize needs it). The TensorRT build plan keeps it too.
FP32_OPS = ("Resize",)


def fp32_nodes(spec: ModelSpec, model: onnx.ModelProto) -> list[str]:
    """Names of the nodes the precision policy keeps in FP32 (by name substring)."""
    keep = spec.precision.fp32_layers
    return [node.name for node in model.graph.node if any(part in node.name for part in keep)]


def fp32_op_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes kept in FP32 because of their op type (:data:`FP32_OPS`)."""
    return [node.name for node in model.graph.node if node.op_type in FP32_OPS]


def _drop_duplicate_casts(model: onnx.ModelProto) -> None:
    """Remove repeated identical casts: the converter casts a tensor once per FP32 consumer
    (e.g. Resize and a blocked Conv reading the same input) under the same output name."""
    produced: dict[str, onnx.NodeProto] = {}
    kept = []
    for node in model.graph.node:
        twin = produced.get(node.output[0]) if node.op_type == "Cast" else None
        if twin is not None and twin.op_type == "Cast" and twin.input == node.input:
            continue
        produced.update((name, node) for name in node.output)
        kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)


def convert_fp16(
    spec: ModelSpec, source: Path, target: Path, *, extra_fp32_nodes: Iterable[str] = ()
) -> Path:
    """Write the FP16 twin of ``source`` to ``target`` and validate it.

    ``extra_fp32_nodes`` (node names) stay FP32 on top of the policy: the precision gate's
    fallback adds them when the policy alone is not accurate enough.
    """
    model = onnx.load(str(source))
    converted = convert_float_to_float16(
        model,
        keep_io_types=True,
        op_block_list=[*DEFAULT_OP_BLOCK_LIST, *FP32_OPS],
        node_block_list=[*fp32_nodes(spec, model), *extra_fp32_nodes],
    )
    _drop_duplicate_casts(converted)
    graph = onnx_ir.from_proto(converted)
    graph.graph.sort()  # the converter appends its casts after their consumers
    onnx.save(onnx_ir.to_proto(graph), str(target))
    onnx.checker.check_model(str(target), full_check=True)
    return target
