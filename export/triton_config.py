"""Triton ``config.pbtxt`` generation from the specs, with ``model_config_pb2``.

One function per kind of model (core per target, decode, encode, ensemble); the
repository builder lays them out. No string templates: configs are protobuf messages
rendered by ``text_format``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Mapping
from enum import Enum

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from vitrine.options import options_parameter
from vitrine.pipeline import (
    DECODED_PIXELS,
    ENCODE_MODEL,
    ENCODE_PIXELS,
    ENCODED_INPUT,
    ENCODED_OUTPUT,
    FORMAT_INPUT,
    GENERATE_INPUTS,
    GENERATED_OUTPUTS,
    MIX_SEED_INPUT,
    OUTPUT_FORMATS,
    PIPELINE_INPUTS,
    PIPELINE_OUTPUTS,
    QUALITY_INPUT,
    decode_inputs,
    generator_pipeline_inputs,
    pipeline_inputs,
    sampled_outputs,
)
from vitrine.sampling import conditioning_parameters
from vitrine.spec import ImageLimits, ModelSpec, Option, OptionKind, TensorSpec
from vitrine.tiling import PlanSettings

__all__ = [
    "ENGINE_ARCHITECTURES",
    "RESPONSE_CACHE_ARGUMENT",
    "Target",
    "core_config",
    "decode_config",
    "encode_config",
    "engine_filename",
    "fullsize_config",
    "pipeline_config",
    "render",
    "sample_config",
    "sample_warmup_files",
    "warmup_files",
]

PYTHON_STEP_INSTANCES = 2  # decode/encode instances: one per core of the smallest node
# CPU core models, measured with `vitrine bench` (labelled runs in reports/bench/bench.json):
# 1 instance x default threads with spinning stalled ~0.5 s under load; 2 x 1 thread doubled
# throughput but cost c=1 latency; 1 x 2 threads matched the limit at c=1 but halved
# throughput; 2 x 2 threads without spinning keeps most of both.
CPU_CORE_INSTANCES = 2
CPU_CORE_THREADS = 2
# GPU architectures (compute capability) of the fleet: T4, A100, A10/RTX, L4/L40, H100/H200.
# An engine only runs on the architecture it was built for; Triton picks the file by the
# local GPU's capability through `cc_model_filenames`, else `model.plan`.
ENGINE_ARCHITECTURES = ("7.5", "8.0", "8.6", "8.9", "9.0")
WARMUP_SIDE = 32  # side of the warm-up image of the python steps
RESPONSE_CACHE_ARGUMENT = "--cache-config=local,size=67108864"
"""The ``tritonserver`` flag that backs ``response_cache`` (64 MiB for every model)."""


class Target(str, Enum):
    """A repository layout: same tensors and ensembles, different core-model runtime."""

    GPU = "gpu"  # TensorRT FP16 engines on the official Triton image
    CPU = "cpu"  # onnxruntime backend on the official Triton image
    EMBEDDED = "embedded"  # onnxruntime inside a python-backend model (nvidia-pytriton's server)
    GPU_TORCH = "gpu-torch"  # TorchScript in a python-backend model on the GPU (gpu_torch.py)


def engine_filename(compute_capability: str) -> str:
    """The engine file of one GPU architecture, e.g. ``"9.0"`` -> ``model.sm90.plan``."""
    major, minor = compute_capability.split(".")
    return f"model.sm{int(major)}{int(minor)}.plan"


def render(config: pb.ModelConfig) -> str:
    """The config as ``config.pbtxt`` text."""
    text: str = text_format.MessageToString(config)
    return text


def _dtype(tensor: TensorSpec) -> int:
    data_type: int = pb.DataType.Value(
        "TYPE_STRING" if tensor.dtype == "BYTES" else f"TYPE_{tensor.dtype}"
    )
    return data_type


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


def _limits(limits: ImageLimits) -> dict[str, object]:
    return {
        "min_side": limits.min_side,
        "max_side": limits.max_side,
        "max_pixels": limits.max_pixels,
    }


def _warmup_input(tensor: TensorSpec, dims: Iterable[int], **data: object) -> pb.ModelWarmup.Input:
    return pb.ModelWarmup.Input(data_type=_dtype(tensor), dims=list(dims), **data)


def _core_warmup(spec: ModelSpec) -> pb.ModelWarmup:
    """Zero inputs at the profile's opt shape: the engine's tuned shape is warm at start."""
    shapes = spec.input_shapes(spec.profile.opt)
    inputs = {t.name: _warmup_input(t, shapes[t.name][1:], zero_data=True) for t in spec.inputs}
    return pb.ModelWarmup(name="opt_zeros", batch_size=spec.profile.opt[0], inputs=inputs, count=1)


def _bounded_queue(max_queue_size: int) -> pb.ModelDynamicBatching:
    """Dynamic batching whose queue rejects work beyond ``max_queue_size`` (fail fast)."""
    return pb.ModelDynamicBatching(
        default_queue_policy=pb.ModelQueuePolicy(max_queue_size=max_queue_size)
    )


def _gpu_python_step(config: pb.ModelConfig) -> None:
    """GPU-target settings of a decode/encode step (python backend, KIND_CPU instances).

    Both steps do CPU work (codecs), so inputs are handed over as CPU numpy arrays
    (``FORCE_CPU_ONLY_INPUT_TENSORS``): the one GPU->CPU copy of the engine's output happens
    in Triton, not in model code.
    """
    config.parameters["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value = "yes"


def _length_prefixed(*items: bytes) -> bytes:
    """Triton's raw layout of a BYTES tensor: each element as uint32 LE length + bytes."""
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def _png(side: int, row: bytes, colour_type: int) -> bytes:
    """A deterministic PNG (stored, uncompressed deflate) of ``side`` equal rows of pixels."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(tag + data))
        return struct.pack(">I", len(data)) + tag + data + crc

    rows = b"".join(b"\x00" + row for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 0))
        + chunk(b"IEND", b"")
    )


def _option_warmup_value(option: Option) -> bytes:
    """A valid request value of ``option`` for a WARMUP_SIDE square, as raw tensor data."""
    if option.kind is OptionKind.STRENGTH:
        return struct.pack("<f", 1.0)
    if option.kind is OptionKind.MASK:  # left half filled: neither empty nor full
        half = WARMUP_SIDE // 2
        return _length_prefixed(_png(WARMUP_SIDE, b"\xff" * half + b"\x00" * half, 0))
    if option.kind is OptionKind.IMAGE:
        return _length_prefixed(_grey_png())
    if option.kind is OptionKind.LABEL:
        return _length_prefixed(option.choices[0].encode())
    if option.kind is OptionKind.SEED:
        return struct.pack("<q", 0)
    return _length_prefixed(b"white")


def _grey_png() -> bytes:
    """A mid-grey WARMUP_SIDE square as an 8-bit RGB PNG."""
    return _png(WARMUP_SIDE, b"\x80" * (3 * WARMUP_SIDE), 2)


def warmup_files(model: str, options: tuple[Option, ...] = ()) -> dict[str, bytes]:
    """Files of ``<model>/warmup/`` read by the GPU target's python-step warm-ups.

    ``options`` are those of the decode step's spec.
    """
    if model == ENCODE_MODEL:
        formats = {f"format_{fmt}": _length_prefixed(fmt.encode()) for fmt in OUTPUT_FORMATS}
        return {**formats, "quality": struct.pack("<i", 90)}
    image = {PIPELINE_INPUTS[0].name: _length_prefixed(_grey_png())}
    return image | {option.name: _option_warmup_value(option) for option in options}


def sample_warmup_files(spec: ModelSpec) -> dict[str, bytes]:
    """Files of ``<generator>_sample/warmup/``: one valid request for one image."""
    assert spec.conditioning is not None, f"{spec.name} is no generator"
    seed, count, category, colour, truncation = GENERATE_INPUTS
    mixing = {MIX_SEED_INPUT.name: struct.pack("<q", 1)} if spec.conditioning.style_mixing else {}
    return {
        seed.name: struct.pack("<q", 0),
        count.name: struct.pack("<i", 1),
        category.name: _length_prefixed(spec.conditioning.categories[0].encode()),
        colour.name: _length_prefixed(spec.conditioning.colours[0].encode()),
        truncation.name: struct.pack("<f", 1.0),
        **mixing,
        FORMAT_INPUT: _length_prefixed(b"png"),
        QUALITY_INPUT: struct.pack("<i", 90),
    }


def _decode_warmup(spec: ModelSpec) -> pb.ModelWarmup:
    inputs = {t.name: _warmup_input(t, t.dims, input_data_file=t.name) for t in decode_inputs(spec)}
    return pb.ModelWarmup(name="png", batch_size=1, inputs=inputs, count=1)


def _encode_warmups() -> list[pb.ModelWarmup]:
    _, format_tensor, quality_tensor = PIPELINE_INPUTS
    warmups = []
    for fmt in OUTPUT_FORMATS:  # each codec initialises on first use
        inputs = {
            ENCODE_PIXELS.name: _warmup_input(
                ENCODE_PIXELS, (WARMUP_SIDE, WARMUP_SIDE, 3), zero_data=True
            ),
            FORMAT_INPUT: _warmup_input(format_tensor, (1,), input_data_file=f"format_{fmt}"),
            QUALITY_INPUT: _warmup_input(quality_tensor, (1,), input_data_file="quality"),
        }
        warmups.append(pb.ModelWarmup(name=fmt, batch_size=1, inputs=inputs, count=1))
    return warmups


def core_config(spec: ModelSpec, target: Target) -> pb.ModelConfig:
    """The core model (raw uint8 tensors) for ``target``."""
    if target is Target.GPU_TORCH:
        from vitrine.export.gpu_torch import torch_core_config

        return torch_core_config(spec)
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
        for capability in ENGINE_ARCHITECTURES:
            config.cc_model_filenames[capability] = engine_filename(capability)
        config.instance_group.append(
            pb.ModelInstanceGroup(kind=pb.ModelInstanceGroup.KIND_GPU, count=1)
        )
        config.model_warmup.append(_core_warmup(spec))
    elif target is Target.CPU:
        config.platform = "onnxruntime_onnx"
        config.default_model_filename = "model.onnx"
        config.instance_group.extend(_cpu_instances(CPU_CORE_INSTANCES))
        config.parameters["intra_op_thread_count"].string_value = str(CPU_CORE_THREADS)
    else:
        config.backend = "python"
        config.instance_group.extend(_cpu_instances(CPU_CORE_INSTANCES))
        settings = {"onnx_file": "model.onnx", "intra_op_threads": CPU_CORE_THREADS}
        for key, value in _parameters({**settings, **_limits(spec.core_limits)}).items():
            config.parameters[key].CopyFrom(value)
    return config


def decode_config(spec: ModelSpec, target: Target | None = None) -> pb.ModelConfig:
    """The pipeline's decode step: bytes -> uint8 pixels within the spec's size limits.

    Each request option is checked and converted here too (wire value -> core tensor).
    """
    options = {"options": options_parameter(spec.options)} if spec.options else {}
    config = pb.ModelConfig(
        name=spec.decode_model,
        backend="python",
        max_batch_size=spec.batching.max_batch_size,
        input=_inputs(decode_inputs(spec)),
        output=_outputs((DECODED_PIXELS, *(option.decoded for option in spec.options))),
        instance_group=_cpu_instances(PYTHON_STEP_INSTANCES),
        dynamic_batching=_bounded_queue(spec.batching.max_queue_size),
        parameters=_parameters({**_limits(spec.limits), **options}),
    )
    if target is Target.GPU:
        _gpu_python_step(config)
        config.model_warmup.append(_decode_warmup(spec))
    return config


FULLSIZE_CALLS_IN_FLIGHT = CPU_CORE_INSTANCES
"""Core-model calls one photo keeps in flight: one per core instance, so a 25 MP photo keeps
them busy without queueing batches whose memory would add up."""


def fullsize_config(spec: ModelSpec, target: Target | None = None) -> pb.ModelConfig:
    """An editor's full-size step: the core model's tensors at the upload limits. It runs
    the photo through the core model (BLS) in the calls ``vitrine.tiling`` plans, from the
    settings its parameters carry."""
    settings = {
        **PlanSettings.of(spec).parameters(),
        "core_model": spec.core_model,
        "in_flight": FULLSIZE_CALLS_IN_FLIGHT,
    }
    config = pb.ModelConfig(
        name=spec.fullsize_model,
        backend="python",
        max_batch_size=spec.batching.max_batch_size,
        input=_inputs(spec.inputs),
        output=_outputs(spec.outputs),
        instance_group=_cpu_instances(PYTHON_STEP_INSTANCES),
        dynamic_batching=_bounded_queue(spec.batching.max_queue_size),
        parameters=_parameters({**settings, **_limits(spec.limits)}),
    )
    if target is Target.GPU:
        _gpu_python_step(config)
    return config


def encode_config(
    max_batch_size: int, target: Target | None = None, *, max_queue_size: int
) -> pb.ModelConfig:
    """The encode step shared by every pipeline: pixels + format + quality -> bytes."""
    config = pb.ModelConfig(
        name=ENCODE_MODEL,
        backend="python",
        max_batch_size=max_batch_size,
        input=_inputs([ENCODE_PIXELS, *PIPELINE_INPUTS[1:]]),
        output=_outputs(PIPELINE_OUTPUTS),
        instance_group=_cpu_instances(PYTHON_STEP_INSTANCES),
        dynamic_batching=_bounded_queue(max_queue_size),
    )
    if target is Target.GPU:
        _gpu_python_step(config)
        config.model_warmup.extend(_encode_warmups())
    return config


def _step(
    model: str, inputs: Mapping[str, str], outputs: Mapping[str, str]
) -> pb.ModelEnsembling.Step:
    return pb.ModelEnsembling.Step(
        model_name=model, model_version=-1, input_map=inputs, output_map=outputs
    )


def sample_config(spec: ModelSpec, target: Target | None = None) -> pb.ModelConfig:
    """A generator pipeline's first step: (seed, count, labels, truncation) -> ``count`` rows.

    Not batched (max_batch_size 0): one request fans out into ``count`` images, which the
    ensemble hands to the batching core model and encode step as one batch.
    """
    assert spec.conditioning is not None, f"{spec.name} is no generator"
    config = pb.ModelConfig(
        name=spec.sample_model,
        backend="python",
        max_batch_size=0,
        input=_inputs(generator_pipeline_inputs(spec)),
        output=[
            pb.ModelOutput(name=t.name, data_type=_dtype(t), dims=(-1, *t.dims))
            for t in sampled_outputs(spec)
        ],
        instance_group=_cpu_instances(PYTHON_STEP_INSTANCES),
        parameters=_parameters(conditioning_parameters(spec.conditioning)),
    )
    if target is Target.GPU:
        _gpu_python_step(config)
        config.model_warmup.append(_sample_warmup(spec))
    return config


def _sample_warmup(spec: ModelSpec) -> pb.ModelWarmup:
    inputs = {
        t.name: _warmup_input(t, t.dims, input_data_file=t.name)
        for t in generator_pipeline_inputs(spec)
    }
    return pb.ModelWarmup(name="request", batch_size=1, inputs=inputs, count=1)


def _generator_pipeline(spec: ModelSpec) -> pb.ModelConfig:
    """A generator's ensemble: sample -> core model -> encode; ``count`` encoded images out."""
    rows = {t.name: f"{spec.name}_{t.name}" for t in sampled_outputs(spec)}
    fanned_format, fanned_quality = list(rows.values())[-2:]
    result = f"{spec.name}_output"
    request = {t.name: t.name for t in generator_pipeline_inputs(spec)}
    core_inputs = dict(zip((t.name for t in spec.inputs), rows.values(), strict=False))
    steps = [
        _step(spec.sample_model, request, rows),
        _step(spec.core_model, core_inputs, {spec.output.name: result}),
        _step(
            ENCODE_MODEL,
            {
                ENCODE_PIXELS.name: result,
                FORMAT_INPUT: fanned_format,
                QUALITY_INPUT: fanned_quality,
            },
            {ENCODED_OUTPUT: ENCODED_OUTPUT},
        ),
    ]
    return pb.ModelConfig(
        name=spec.pipeline,
        platform="ensemble",
        max_batch_size=0,
        input=_inputs(generator_pipeline_inputs(spec)),
        output=_outputs(GENERATED_OUTPUTS),
        ensemble_scheduling=pb.ModelEnsembling(step=steps),
    )


def pipeline_config(spec: ModelSpec) -> pb.ModelConfig:
    """The public ensemble: decode -> core model -> encode (generators: sample first)."""
    config = _generator_pipeline(spec) if spec.is_generator else _editor_pipeline(spec)
    if spec.response_cache:  # the server runs with RESPONSE_CACHE_ARGUMENT
        config.response_cache.enable = True
    return config


def _editor_pipeline(spec: ModelSpec) -> pb.ModelConfig:
    """An editor's ensemble: decode -> full-size step (or the core model) -> encode."""
    decoded, result = f"{spec.name}_decoded", f"{spec.name}_output"
    wires = {option.name: option.name for option in spec.options}
    decoded_options = {option.decoded.name: f"{spec.name}_{option.name}" for option in spec.options}
    core_options = {option.core.name: f"{spec.name}_{option.name}" for option in spec.options}
    steps = [
        _step(
            spec.decode_model,
            {ENCODED_INPUT: ENCODED_INPUT, **wires},
            {DECODED_PIXELS.name: decoded, **decoded_options},
        ),
        _step(
            spec.core_model if spec.large is None else spec.fullsize_model,
            {spec.input.name: decoded, **core_options},
            {spec.output.name: result},
        ),
        _step(
            ENCODE_MODEL,
            {
                ENCODE_PIXELS.name: result,
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
        input=_inputs(pipeline_inputs(spec)),
        output=_outputs(PIPELINE_OUTPUTS),
        ensemble_scheduling=pb.ModelEnsembling(step=steps),
    )
