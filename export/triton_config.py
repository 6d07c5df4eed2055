"""Triton ``config.pbtxt`` generation from the specs, with ``model_config_pb2``.

One function per kind of model (core per target, decode, encode, ensemble); the
repository builder lays them out. No string templates: configs are protobuf messages
rendered by ``text_format``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from vitrine.pipeline import (
    DECODED_PIXELS,
    ENCODE_MODEL,
    ENCODED_INPUT,
    ENCODED_OUTPUT,
    FORMAT_INPUT,
    PIPELINE_INPUTS,
    PIPELINE_OUTPUTS,
    QUALITY_INPUT,
)
from vitrine.spec import ModelSpec, TensorSpec

__all__ = [
    "Target",
    "core_config",
    "decode_config",
    "encode_config",
    "pipeline_config",
    "render",
]

PYTHON_STEP_INSTANCES = 2  # decode/encode instances: one per core of the smallest node


class Target(str, Enum):
    """A repository layout: same tensors and ensembles, different core-model runtime."""

    GPU = "gpu"  # TensorRT FP16 engines on the official Triton image
    CPU = "cpu"  # onnxruntime backend on the official Triton image
    EMBEDDED = "embedded"  # onnxruntime inside a python-backend model (nvidia-pytriton's server)


def render(config: pb.ModelConfig) -> str:
    """The config as ``config.pbtxt`` text."""
    return text_format.MessageToString(config)


def _dtype(tensor: TensorSpec) -> int:
    return pb.DataType.Value("TYPE_STRING" if tensor.dtype == "BYTES" else f"TYPE_{tensor.dtype}")


def _inputs(tensors: Iterable[TensorSpec]) -> list[pb.ModelInput]:
    return [pb.ModelInput(name=t.name, data_type=_dtype(t), dims=t.dims) for t in tensors]


def _outputs(tensors: Iterable[TensorSpec]) -> list[pb.ModelOutput]:
    return [pb.ModelOutput(name=t.name, data_type=_dtype(t), dims=t.dims) for t in tensors]


def _parameters(values: Mapping[str, object]) -> dict[str, pb.ModelParameter]:
    return {key: pb.ModelParameter(string_value=str(value)) for key, value in values.items()}


def _dynamic_batching(spec: ModelSpec) -> pb.ModelDynamicBatching:
    policy = spec.batching
    return pb.ModelDynamicBatching(
        preferred_batch_size=policy.preferred_batch_sizes,
        max_queue_delay_microseconds=policy.max_queue_delay_us,
        default_queue_policy=pb.ModelQueuePolicy(max_queue_size=policy.max_queue_size),
    )


def _cpu_instances(count: int) -> list[pb.ModelInstanceGroup]:
    return [pb.ModelInstanceGroup(kind=pb.ModelInstanceGroup.KIND_CPU, count=count)]


def _limits(spec: ModelSpec) -> dict[str, object]:
    return {"min_side": spec.limits.min_side, "max_side": spec.limits.max_side}


def core_config(spec: ModelSpec, target: Target) -> pb.ModelConfig:
    """The core model (raw uint8 tensors) for ``target``."""
    config = pb.ModelConfig(
        name=spec.core_model,
        max_batch_size=spec.batching.max_batch_size,
        input=_inputs(spec.inputs),
        output=_outputs(spec.outputs),
        dynamic_batching=_dynamic_batching(spec),
    )
    if target is Target.GPU:
        config.platform = "tensorrt_plan"
        config.default_model_filename = "model.plan"
        config.instance_group.append(
            pb.ModelInstanceGroup(kind=pb.ModelInstanceGroup.KIND_GPU, count=1)
        )
    elif target is Target.CPU:
        config.platform = "onnxruntime_onnx"
        config.default_model_filename = "model.onnx"
        config.instance_group.extend(_cpu_instances(1))
    else:
        config.backend = "python"
        config.instance_group.extend(_cpu_instances(1))
        for key, value in _parameters({"onnx_file": "model.onnx", **_limits(spec)}).items():
            config.parameters[key].CopyFrom(value)
    return config


def decode_config(spec: ModelSpec) -> pb.ModelConfig:
    """The pipeline's decode step: bytes -> uint8 pixels within the spec's size limits."""
    return pb.ModelConfig(
        name=spec.decode_model,
        backend="python",
        max_batch_size=spec.batching.max_batch_size,
        input=_inputs(PIPELINE_INPUTS[:1]),
        output=_outputs([DECODED_PIXELS]),
        instance_group=_cpu_instances(PYTHON_STEP_INSTANCES),
        dynamic_batching=pb.ModelDynamicBatching(),
        parameters=_parameters(_limits(spec)),
    )


def encode_config(max_batch_size: int) -> pb.ModelConfig:
    """The encode step shared by every pipeline: pixels + format + quality -> bytes."""
    return pb.ModelConfig(
        name=ENCODE_MODEL,
        backend="python",
        max_batch_size=max_batch_size,
        input=_inputs([DECODED_PIXELS, *PIPELINE_INPUTS[1:]]),
        output=_outputs(PIPELINE_OUTPUTS),
        instance_group=_cpu_instances(PYTHON_STEP_INSTANCES),
        dynamic_batching=pb.ModelDynamicBatching(),
    )


def _step(
    model: str, inputs: Mapping[str, str], outputs: Mapping[str, str]
) -> pb.ModelEnsembling.Step:
    return pb.ModelEnsembling.Step(
        model_name=model, model_version=-1, input_map=inputs, output_map=outputs
    )


def pipeline_config(spec: ModelSpec) -> pb.ModelConfig:
    """The public ensemble: decode -> core model -> encode."""
    decoded, upscaled = f"{spec.name}_decoded", f"{spec.name}_output"
    steps = [
        _step(spec.decode_model, {ENCODED_INPUT: ENCODED_INPUT}, {DECODED_PIXELS.name: decoded}),
        _step(spec.core_model, {spec.input.name: decoded}, {spec.output.name: upscaled}),
        _step(
            ENCODE_MODEL,
            {
                DECODED_PIXELS.name: upscaled,
                FORMAT_INPUT: FORMAT_INPUT,
                QUALITY_INPUT: QUALITY_INPUT,
            },
            {ENCODED_OUTPUT: ENCODED_OUTPUT},
        ),
    ]
    return pb.ModelConfig(
        name=spec.pipeline,
        platform="ensemble",
        max_batch_size=spec.batching.max_batch_size,
        input=_inputs(PIPELINE_INPUTS),
        output=_outputs(PIPELINE_OUTPUTS),
        ensemble_scheduling=pb.ModelEnsembling(step=steps),
    )
