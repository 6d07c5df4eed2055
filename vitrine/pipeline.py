"""Tensors of the pipeline steps shared by every ensemble (batch axis excluded)."""

from __future__ import annotations

from typing import Final

from vitrine.spec import ModelSpec, TensorSpec

__all__ = [
    "DECODED_OUTPUT",
    "DECODED_PIXELS",
    "ENCODE_PIXELS",
    "ENCODE_MODEL",
    "ENCODED_INPUT",
    "ENCODED_OUTPUT",
    "FORMAT_INPUT",
    "GENERATED_OUTPUTS",
    "GENERATE_INPUTS",
    "MIX_SEED_INPUT",
    "SAMPLED",
    "OUTPUT_FORMATS",
    "PIPELINE_INPUTS",
    "PIPELINE_OUTPUTS",
    "QUALITY_INPUT",
    "decode_inputs",
    "generator_pipeline_inputs",
    "pipeline_inputs",
    "pipeline_steps",
    "sampled_outputs",
]

ENCODE_MODEL: Final = "encode_image"  # shared encode step (uint8 HWC -> image bytes)
ENCODED_INPUT: Final = "image_bytes"  # pipeline input: PNG/JPEG/WebP bytes
ENCODED_OUTPUT: Final = "result_bytes"  # pipeline output: encoded result
FORMAT_INPUT: Final = "format"  # BYTES: one of OUTPUT_FORMATS
QUALITY_INPUT: Final = "quality"  # INT32: 1..100, used by JPEG and WebP
OUTPUT_FORMATS: Final = ("png", "jpeg", "webp")
DECODED_OUTPUT: Final = "pixels"  # decode step output / encode step input: uint8 HWC


def _scalar(name: str, dtype: str) -> TensorSpec:
    return TensorSpec(name=name, dtype=dtype, dims=(1,), axis_names=(None,))


PIPELINE_INPUTS: Final = (
    _scalar(ENCODED_INPUT, "BYTES"),
    _scalar(FORMAT_INPUT, "BYTES"),
    _scalar(QUALITY_INPUT, "INT32"),
)
"""Inputs every pipeline ensemble has, in order (options go after the image)."""
PIPELINE_OUTPUTS: Final = (_scalar(ENCODED_OUTPUT, "BYTES"),)
"""Outputs of every pipeline ensemble."""
DECODED_PIXELS: Final = TensorSpec(
    name=DECODED_OUTPUT, dtype="UINT8", dims=(-1, -1, 3), axis_names=("height", "width", None)
)
"""Decode output: RGB pixels."""
ENCODE_PIXELS: Final = TensorSpec(
    name=DECODED_OUTPUT,
    dtype="UINT8",
    dims=(-1, -1, -1),
    axis_names=("height", "width", "channels"),
)
"""Encode input: RGB (3 channels) or RGBA (4 channels, e.g. a cut-out product)."""


def decode_inputs(spec: ModelSpec) -> tuple[TensorSpec, ...]:
    """Inputs of ``spec``'s decode step: the encoded image, then its options' wire tensors."""
    return (PIPELINE_INPUTS[0], *(option.wire for option in spec.options))


def pipeline_inputs(spec: ModelSpec) -> tuple[TensorSpec, ...]:
    """Inputs of ``spec``'s ensemble: the decode step's, then format and quality."""
    return (*decode_inputs(spec), *PIPELINE_INPUTS[1:])


def pipeline_steps(spec: ModelSpec) -> tuple[str, ...]:
    """Triton models of ``spec``'s ensemble, in order: its decode step (editors, latent
    edits) or sample step (generators), an editor's full-size step, the model running the
    core model (itself otherwise), the shared encode step."""
    if spec.is_generator:
        return (spec.sample_model, spec.core_model, ENCODE_MODEL)
    if spec.large is None:
        return (spec.decode_model, spec.core_model, ENCODE_MODEL)
    return (spec.decode_model, spec.fullsize_model, spec.core_model, ENCODE_MODEL)


GENERATE_INPUTS: Final = (
    _scalar("seed", "INT64"),
    _scalar("count", "INT32"),
    _scalar("category", "BYTES"),
    _scalar("color", "BYTES"),
    _scalar("truncation", "FP32"),
)
"""What a generator pipeline is asked (no batch axis: one request, ``count`` images)."""
MIX_SEED_INPUT: Final = _scalar("mix_seed", "INT64")
"""Style-mixing generators only: the seed of the fine styles (the ``seed``'s own: none)."""
GENERATED_OUTPUTS: Final = (
    TensorSpec(name=ENCODED_OUTPUT, dtype="BYTES", dims=(-1, 1), axis_names=("images", None)),
)
"""Outputs of a generator's ensemble: one encoded image per row (full shape, no batch axis)."""
SAMPLED: Final = "_sampled"
"""Suffix of the sample step's outputs: the core inputs, then format and quality per image."""


def generator_pipeline_inputs(spec: ModelSpec) -> tuple[TensorSpec, ...]:
    """Inputs of a generator's ensemble and sample step: the request (with ``mix_seed`` if
    it mixes styles), then format and quality."""
    assert spec.conditioning is not None, f"{spec.name} is no generator"
    mixing = (MIX_SEED_INPUT,) if spec.conditioning.style_mixing else ()
    return (*GENERATE_INPUTS, *mixing, *PIPELINE_INPUTS[1:])


def sampled_outputs(spec: ModelSpec) -> tuple[TensorSpec, ...]:
    """The sample step's outputs, one row per image: ``spec``'s core inputs, format, quality."""
    return tuple(
        TensorSpec(f"{tensor.name}{SAMPLED}", tensor.dtype, tensor.dims, tensor.axis_names)
        for tensor in (*spec.inputs, *PIPELINE_INPUTS[1:])
    )
