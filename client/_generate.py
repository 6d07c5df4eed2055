"""Request building and response parsing of ``generate``: labels and a seed in, images out."""

from __future__ import annotations

from functools import partial
from typing import Any, Literal, cast

import numpy as np
import tritonclient.grpc as grpcclient

from vitrine.pipeline import (
    ENCODED_OUTPUT,
    FORMAT_INPUT,
    MIX_SEED_INPUT,
    QUALITY_INPUT,
    generator_pipeline_inputs,
)
from vitrine.sampling import (
    InvalidGeneration,
    check_count,
    check_labels,
    check_mix_seed,
    check_seed,
    check_truncation,
    sample,
)
from vitrine.spec import ModelSpec, Task

from ._errors import InvalidRequest, ServerError
from ._images import decode_image
from ._requests import (
    InferPlan,
    check_output_options,
    infer_input,
    model_version,
    output,
    parse_array,
    resolve_spec,
)
from ._results import ArrayResult, GeneratedImages

__all__ = [
    "Category",
    "Color",
    "GeneratorModel",
    "MixingModel",
    "parse_images",
    "plan_generate",
    "plan_generate_array",
]

GeneratorModel = Literal["dcgan", "vae", "stylegan"]
"""Generator names; pinned by a test to ``specs_for_method("generate")``."""
MixingModel = Literal["stylegan"]
"""The generators that mix styles (``mix_styles``); pinned by a test to the specs."""
Category = Literal[
    "tshirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
]
"""Catalog categories; pinned by a test to every generator's conditioning."""
Color = Literal[
    "black", "white", "grey", "red", "blue", "green", "yellow", "pink", "brown", "orange"
]
"""Catalog colours; pinned by a test to every generator's conditioning."""


def _generator(model: object) -> ModelSpec:
    return resolve_spec(Task.GENERATE.value, "model", model)


def plan_generate(
    *,
    model: object,
    category: object,
    color: object,
    seed: object,
    count: object,
    truncation: object,
    output_format: object,
    quality: object,
    mix_seed: object = None,
) -> InferPlan[GeneratedImages]:
    """Validate a ``generate`` (or ``mix_styles``) call as the sample step will and build its
    pipeline request; a style-mixing generator's ``mix_seed`` defaults to ``seed``."""
    spec = _generator(model)
    conditioning = spec.conditioning
    assert conditioning is not None
    check_output_options(output_format, quality)
    try:
        check_labels(conditioning, category, color)
        first, rows = check_seed(seed), check_count(conditioning, count)
        values = {
            "seed": first,
            "count": rows,
            "category": str(category).encode(),
            "color": str(color).encode(),
            "truncation": check_truncation(truncation),
            MIX_SEED_INPUT.name: check_mix_seed(conditioning, mix_seed, first),
            FORMAT_INPUT: cast(str, output_format).encode(),
            QUALITY_INPUT: quality,
        }
    except InvalidGeneration as exc:
        raise InvalidRequest(str(exc)) from None
    inputs = [
        infer_input(tensor, np.array([values[tensor.name]], dtype=tensor.numpy_dtype))
        for tensor in generator_pipeline_inputs(spec)
    ]
    return InferPlan(
        model=spec.pipeline,
        inputs=inputs,
        outputs=[grpcclient.InferRequestedOutput(ENCODED_OUTPUT)],
        parse=partial(parse_images, spec.pipeline, cast(str, output_format), rows),
    )


def parse_images(
    model: str, output_format: str, count: int, result: Any, latency_ms: float
) -> GeneratedImages:
    array = output(result, ENCODED_OUTPUT, model)
    items = list(array.reshape(-1))
    if len(items) != count or not all(isinstance(item, bytes) for item in items):
        raise ServerError(
            f"{model} returned {ENCODED_OUTPUT!r} of shape {array.shape}, not {count} images"
        )
    return GeneratedImages(
        images=[decode_image(item) for item in items],
        data=list(items),
        format=output_format,
        model=model,
        model_version=model_version(result),
        latency_ms=latency_ms,
    )


def plan_generate_array(
    *,
    model: object,
    category: object,
    color: object,
    seed: object,
    count: object,
    truncation: object,
    mix_seed: object = None,
) -> InferPlan[ArrayResult]:
    """Validate a ``generate_array`` call; latents are drawn here exactly as the sample step
    draws them, so the core model returns the pipeline's images as raw pixels."""
    spec = _generator(model)
    assert spec.conditioning is not None
    try:
        feeds = sample(
            spec.conditioning,
            seed=seed,
            count=count,
            category=category,
            colour=color,
            truncation=truncation,
            mix_seed=mix_seed,
        )
    except InvalidGeneration as exc:
        raise InvalidRequest(str(exc)) from None
    rows = len(feeds[0])
    return InferPlan(
        model=spec.core_model,
        inputs=[infer_input(t, feed) for t, feed in zip(spec.inputs, feeds, strict=True)],
        outputs=[grpcclient.InferRequestedOutput(spec.output.name)],
        parse=partial(parse_array, spec, (rows, *spec.output.dims), False),
    )
