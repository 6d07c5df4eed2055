"""Request building of ``variations`` and ``interpolate``: catalog images through the VAE.

Both call one pipeline (the ``vae_edit`` spec), one row per result image: the encoder
maps the image and ``other`` to latents, each row decodes
``lerp(latent(image), latent(other), blend) + spread * noise(seed)``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, cast

import numpy as np
import tritonclient.grpc as grpcclient

from vitrine.imaging import InvalidImage
from vitrine.options import label_value, seed_value, strength_value
from vitrine.pipeline import ENCODED_OUTPUT, pipeline_inputs
from vitrine.sampling import MAX_SEED, InvalidGeneration, check_seed
from vitrine.spec import ModelSpec, Option, OptionKind

from ._errors import InvalidRequest
from ._generate import parse_images
from ._images import ImageInput, encode_image
from ._requests import InferPlan, check_output_options, infer_input, known_size, only_spec
from ._results import GeneratedImages

__all__ = ["plan_interpolate", "plan_variations"]


def _spec() -> ModelSpec:
    """The latent editor: the spec behind ``variations`` (``interpolate`` calls it too)."""
    return only_spec("variations")


def _rows(name: str, value: object, low: int) -> int:
    """A row count in ``[low, max batch]``: one result image per row."""
    limit = _spec().batching.max_batch_size
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= limit:
        raise InvalidRequest(f"{name} must be an int in {low}..{limit}; got {value!r}")
    return value


def _strength(option: Option, value: object) -> object:
    return strength_value(value, option.name)


_CHECKS: dict[OptionKind, Callable[[Option, object], object]] = {
    OptionKind.LABEL: label_value,
    OptionKind.SEED: seed_value,
    OptionKind.STRENGTH: _strength,
}
"""The server's checks of the scalar options (:mod:`vitrine.options`)."""


def _check(spec: ModelSpec, values: dict[str, object]) -> None:
    """Run the server's checks of every row's scalar options here first."""
    try:
        for option in spec.options:
            check = _CHECKS.get(option.kind)
            if check is None:
                continue
            for value in np.atleast_1d(cast(Any, values[option.name])):
                check(option, value)
    except InvalidImage as exc:
        raise InvalidRequest(str(exc)) from None


def _plan(
    image: ImageInput,
    other: ImageInput,
    rows: dict[str, object],
    output_format: object,
    quality: object,
) -> InferPlan[GeneratedImages]:
    """One pipeline request; ``rows`` maps each option to one value or a value per row."""
    spec = _spec()
    check_output_options(output_format, quality)
    _check(spec, rows)
    size, other_size = known_size(image), known_size(other)
    if size and other_size and size != other_size:
        raise InvalidRequest(
            f"other is {other_size[0]}x{other_size[1]} but the image is {size[0]}x{size[1]}"
        )
    count = max(len(np.atleast_1d(cast(Any, value))) for value in rows.values())
    columns: dict[str, object] = {
        "image_bytes": encode_image(image, spec),
        "other": encode_image(other, spec),
    }
    columns |= {key: str(value).encode() for key, value in rows.items() if isinstance(value, str)}
    columns |= {key: value for key, value in rows.items() if not isinstance(value, str)}
    columns |= {"format": cast(str, output_format).encode(), "quality": quality}
    inputs = []
    for tensor in pipeline_inputs(spec):
        column = np.empty((count, 1), dtype=tensor.numpy_dtype)
        column[:, 0] = columns[tensor.name]
        inputs.append(infer_input(tensor, column))
    return InferPlan(
        model=spec.pipeline,
        inputs=inputs,
        outputs=[grpcclient.InferRequestedOutput(ENCODED_OUTPUT)],
        parse=partial(parse_images, spec.pipeline, cast(str, output_format), count),
    )


def plan_variations(
    image: ImageInput,
    *,
    category: object,
    color: object,
    count: object,
    seed: object,
    spread: object,
    output_format: object,
    quality: object,
) -> InferPlan[GeneratedImages]:
    """``count`` decodings of ``image``'s latent plus noise; variation ``i`` draws its
    noise from seed ``seed + i`` (modulo 2**32)."""
    rows = _rows("count", count, low=1)
    try:
        first = check_seed(seed)
    except InvalidGeneration as exc:
        raise InvalidRequest(str(exc)) from None
    seeds = (first + np.arange(rows)) % (MAX_SEED + 1)
    values = {"category": category, "color": color, "blend": 0.0}
    values |= {"seed": seeds, "spread": spread}
    return _plan(image, image, values, output_format, quality)


def plan_interpolate(
    image_a: ImageInput,
    image_b: ImageInput,
    *,
    category: object,
    color: object,
    steps: object,
    output_format: object,
    quality: object,
) -> InferPlan[GeneratedImages]:
    """``steps`` images from ``image_a`` to ``image_b`` (both included), evenly spaced in
    latent space."""
    rows = _rows("steps", steps, low=2)
    blends = np.linspace(0.0, 1.0, rows, dtype=np.float32)
    values = {"category": category, "color": color, "blend": blends, "seed": 0, "spread": 0.0}
    return _plan(image_a, image_b, values, output_format, quality)
