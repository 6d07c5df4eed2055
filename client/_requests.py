"""Request building and response parsing shared by the sync and async clients."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Literal, TypeVar, cast

import numpy as np
import numpy.typing as npt
import tritonclient.grpc as grpcclient
from PIL import Image

from vitrine.catalog import specs_for_method
from vitrine.imaging import JPEG_WITHOUT_ALPHA, InvalidImage
from vitrine.options import core_value, label_value, strength_value
from vitrine.pipeline import ENCODED_OUTPUT, OUTPUT_FORMATS, pipeline_inputs
from vitrine.spec import ModelSpec, Task, TensorSpec

from ._errors import InvalidRequest, ServerError
from ._images import ImageInput, check_sides, decode_image, encode_image
from ._options import background_text, mask_pixels, mask_png, strength_number
from ._results import ArrayResult, ImageResult

__all__ = [
    "InferPlan",
    "check_output_options",
    "infer_input",
    "known_size",
    "only_spec",
    "model_version",
    "output",
    "parse_array",
    "Direction",
    "OutputFormat",
    "Style",
    "Scale",
    "plan_denoise",
    "plan_denoise_array",
    "plan_enhance",
    "plan_enhance_array",
    "plan_inpaint",
    "plan_inpaint_array",
    "plan_remove_background",
    "plan_remove_background_array",
    "plan_super_resolve",
    "plan_stylize",
    "plan_stylize_array",
    "plan_translate",
    "plan_translate_array",
    "plan_super_resolve_array",
    "resolve_spec",
]

Scale = Literal[2, 4]
"""Super-resolution factors; pinned by a test to ``specs_for_method("super_resolve")``."""
OutputFormat = Literal["png", "jpeg", "webp"]
"""Pipeline output formats; pinned by a test to ``OUTPUT_FORMATS``."""
Direction = Literal["photo_to_sketch", "sketch_to_photo"]
"""Directions of ``translate``; pinned by a test to the spec's ``direction`` option."""
Style = Literal["brick", "grass", "mosaic", "watercolour"]
"""Campaign looks of ``stylize``; pinned by a test to the spec's ``style`` option."""


R = TypeVar("R")


@dataclass(frozen=True)
class InferPlan(Generic[R]):
    """One validated inference request and how to turn its response into a result.

    ``parse`` takes the tritonclient ``InferResult`` and the measured latency in ms.
    """

    model: str
    inputs: list[Any]
    outputs: list[Any]
    parse: Callable[[Any, float], R]


def resolve_spec(method: str, selector: str, value: object) -> ModelSpec:
    """The spec serving ``method`` for ``selector=value``; InvalidRequest names the allowed."""
    specs = specs_for_method(method)
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    spec = specs.get(value) if integral or isinstance(value, str) else None
    if spec is None:
        allowed = ", ".join(repr(key) for key in specs)
        raise InvalidRequest(f"{selector} must be one of {allowed}; got {value!r}")
    return spec


def infer_input(tensor: TensorSpec, data: npt.NDArray[Any]) -> Any:
    infer_input = grpcclient.InferInput(tensor.name, list(data.shape), tensor.dtype)
    infer_input.set_data_from_numpy(data)
    return infer_input


def _pipeline_inputs(
    spec: ModelSpec,
    encoded: bytes,
    options: Mapping[str, object],
    output_format: str,
    quality: int,
) -> list[Any]:
    wires = (options[option.name] for option in spec.options)
    values: tuple[object, ...] = (encoded, *wires, output_format.encode(), quality)
    return [
        infer_input(tensor, np.array([[value]], dtype=tensor.numpy_dtype))
        for tensor, value in zip(pipeline_inputs(spec), values, strict=True)
    ]


def check_output_options(output_format: object, quality: object) -> None:
    if output_format not in OUTPUT_FORMATS:
        allowed = ", ".join(repr(name) for name in OUTPUT_FORMATS)
        raise InvalidRequest(f"output_format must be one of {allowed}; got {output_format!r}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise InvalidRequest(f"quality must be an int in 1..100; got {quality!r}")


def output(result: Any, name: str, model: str) -> npt.NDArray[Any]:
    array = result.as_numpy(name)
    if array is None:
        raise ServerError(f"response of {model} has no output {name!r}")
    return cast("npt.NDArray[Any]", array)


def model_version(result: Any) -> str:
    return str(result.get_response().model_version)


def _parse_image(model: str, output_format: str, result: Any, latency_ms: float) -> ImageResult:
    array = output(result, ENCODED_OUTPUT, model)
    if array.size != 1 or not isinstance(array.flat[0], bytes):
        raise ServerError(
            f"{model} returned {ENCODED_OUTPUT!r} of shape {array.shape}, not one bytes element"
        )
    data: bytes = array.flat[0]
    return ImageResult(
        image=decode_image(data),
        data=data,
        format=output_format,
        model=model,
        model_version=model_version(result),
        latency_ms=latency_ms,
    )


def only_spec(method: str) -> ModelSpec:
    """The single spec behind a client method that takes no selector."""
    (spec,) = specs_for_method(method).values()
    return spec


def plan_super_resolve(
    image: ImageInput, *, scale: object, output_format: object, quality: object
) -> InferPlan[ImageResult]:
    """Validate a ``super_resolve`` call and build its pipeline request."""
    spec = resolve_spec(Task.SUPER_RESOLVE.value, "scale", scale)
    return _plan_image(spec, image, output_format, quality)


def plan_enhance(
    image: ImageInput, *, output_format: object, quality: object
) -> InferPlan[ImageResult]:
    """Validate an ``enhance`` call and build its pipeline request."""
    return _plan_image(only_spec(Task.ENHANCE.value), image, output_format, quality)


def plan_denoise(
    image: ImageInput, *, strength: object, output_format: object, quality: object
) -> InferPlan[ImageResult]:
    """Validate a ``denoise`` call and build its pipeline request."""
    options = {"strength": strength_number(strength)}
    return _plan_image(only_spec(Task.DENOISE.value), image, output_format, quality, options)


def _label(task: Task, name: str, value: object) -> bytes:
    """The wire text of label option ``name`` of ``task``'s spec, checked."""
    (option,) = [o for o in only_spec(task.value).options if o.name == name]
    try:
        label_value(option, value)
    except InvalidImage as exc:
        raise InvalidRequest(str(exc)) from None
    return str(value).encode()


def _style_options(style: object, strength: object) -> dict[str, object]:
    """A ``stylize`` call's checked wire options: the style's name and the strength."""
    label = _label(Task.STYLIZE, "style", style)
    try:
        number = float(strength_value(strength)[0])
    except InvalidImage as exc:
        raise InvalidRequest(str(exc)) from None
    return {"style": label, "strength": number}


def plan_translate(
    image: ImageInput, *, direction: object, output_format: object, quality: object
) -> InferPlan[ImageResult]:
    """Validate a ``translate`` call and build its pipeline request."""
    options = {"direction": _label(Task.TRANSLATE, "direction", direction)}
    return _plan_image(only_spec(Task.TRANSLATE.value), image, output_format, quality, options)


def plan_translate_array(pixels: object, *, direction: object) -> InferPlan[ArrayResult]:
    """Validate a ``translate_array`` call and build its core-model request."""
    options = {"direction": _label(Task.TRANSLATE, "direction", direction)}
    return _plan_array(only_spec(Task.TRANSLATE.value), pixels, options)


def plan_stylize(
    image: ImageInput, *, style: object, strength: object, output_format: object, quality: object
) -> InferPlan[ImageResult]:
    """Validate a ``stylize`` call and build its pipeline request."""
    options = _style_options(style, strength)
    return _plan_image(only_spec(Task.STYLIZE.value), image, output_format, quality, options)


def plan_stylize_array(
    pixels: object, *, style: object, strength: object
) -> InferPlan[ArrayResult]:
    """Validate a ``stylize_array`` call and build its core-model request."""
    options = _style_options(style, strength)
    return _plan_array(only_spec(Task.STYLIZE.value), pixels, options)


def plan_inpaint(
    image: ImageInput, mask: object, *, output_format: object, quality: object
) -> InferPlan[ImageResult]:
    """Validate an ``inpaint`` call and build its pipeline request."""
    options = {"mask": mask_png(mask, known_size(image))}
    return _plan_image(only_spec(Task.INPAINT.value), image, output_format, quality, options)


def plan_remove_background(
    image: ImageInput, *, background: object, output_format: object, quality: object
) -> InferPlan[ImageResult]:
    """Validate a ``remove_background`` call and build its pipeline request."""
    spec = only_spec(Task.REMOVE_BACKGROUND.value)
    text = background_text(background)
    if text == "transparent" and output_format == "jpeg":
        raise InvalidRequest(JPEG_WITHOUT_ALPHA)
    options = {"background": text.encode()}
    return _plan_image(spec, image, output_format, quality, options)


def known_size(image: ImageInput) -> tuple[int, int] | None:
    """(width, height) of a PIL image or array; None for encoded bytes (checked server-side,
    after EXIF orientation)."""
    if isinstance(image, Image.Image):
        return image.size
    if isinstance(image, np.ndarray) and image.ndim >= 2:
        return (image.shape[1], image.shape[0])
    return None


def _plan_image(
    spec: ModelSpec,
    image: ImageInput,
    output_format: object,
    quality: object,
    options: Mapping[str, object] | None = None,
) -> InferPlan[ImageResult]:
    check_output_options(output_format, quality)
    fmt, level = cast(str, output_format), cast(int, quality)
    encoded = encode_image(image, spec)
    return InferPlan(
        model=spec.pipeline,
        inputs=_pipeline_inputs(spec, encoded, options or {}, fmt, level),
        outputs=[grpcclient.InferRequestedOutput(ENCODED_OUTPUT)],
        parse=partial(_parse_image, spec.pipeline, fmt),
    )


def _batch(pixels: object, spec: ModelSpec) -> npt.NDArray[Any]:
    """``pixels`` as a validated HxWxC batch (a single image gains a batch axis)."""
    tensor = spec.input
    channels = tensor.dims[-1]
    if not isinstance(pixels, np.ndarray):
        raise InvalidRequest(f"pixels must be a numpy.ndarray, got {type(pixels).__name__}")
    if pixels.dtype != np.dtype(tensor.numpy_dtype):
        raise InvalidRequest(f"pixels must have dtype {tensor.numpy_dtype}, got {pixels.dtype}")
    if pixels.ndim not in (3, 4):
        raise InvalidRequest(
            f"pixels must have shape (H, W, {channels}) or (N, H, W, {channels}), "
            f"got shape {pixels.shape}"
        )
    if pixels.shape[-1] != channels:
        raise InvalidRequest(
            f"pixels must have {channels} channels (last axis), got {pixels.shape[-1]}"
        )
    batch = pixels if pixels.ndim == 4 else pixels[np.newaxis]
    count, limit = batch.shape[0], spec.batching.max_batch_size
    if not 1 <= count <= limit:
        raise InvalidRequest(f"batch of {count} images; {spec.name} accepts 1 to {limit}")
    check_sides(batch.shape[1], batch.shape[2], spec)
    return batch


def parse_array(
    spec: ModelSpec,
    expected: tuple[int, ...],
    single: bool,
    result: Any,
    latency_ms: float,
) -> ArrayResult:
    tensor = spec.output
    array = output(result, tensor.name, spec.core_model)
    if array.dtype != np.dtype(tensor.numpy_dtype) or array.shape != expected:
        raise ServerError(
            f"{spec.core_model} returned {tensor.name!r} as {array.dtype} {array.shape}, "
            f"expected {tensor.numpy_dtype} {expected}"
        )
    return ArrayResult(
        array=array[0] if single else array,
        model=spec.core_model,
        model_version=model_version(result),
        latency_ms=latency_ms,
    )


def plan_super_resolve_array(pixels: object, *, scale: object) -> InferPlan[ArrayResult]:
    """Validate a ``super_resolve_array`` call and build its core-model request."""
    return _plan_array(resolve_spec(Task.SUPER_RESOLVE.value, "scale", scale), pixels)


def plan_enhance_array(pixels: object) -> InferPlan[ArrayResult]:
    """Validate an ``enhance_array`` call and build its core-model request."""
    return _plan_array(only_spec(Task.ENHANCE.value), pixels)


def plan_denoise_array(pixels: object, *, strength: object) -> InferPlan[ArrayResult]:
    """Validate a ``denoise_array`` call and build its core-model request."""
    options = {"strength": strength_number(strength)}
    return _plan_array(only_spec(Task.DENOISE.value), pixels, options)


def plan_inpaint_array(pixels: object, mask: object) -> InferPlan[ArrayResult]:
    """Validate an ``inpaint_array`` call (one mask for every image) and build its request."""
    return _plan_array(only_spec(Task.INPAINT.value), pixels, {"mask": mask_pixels(mask)})


def plan_remove_background_array(pixels: object, *, background: object) -> InferPlan[ArrayResult]:
    """Validate a ``remove_background_array`` call and build its core-model request."""
    options = {"background": background_text(background)}
    return _plan_array(only_spec(Task.REMOVE_BACKGROUND.value), pixels, options)


def _plan_array(
    spec: ModelSpec, pixels: object, options: Mapping[str, object] | None = None
) -> InferPlan[ArrayResult]:
    batch = _batch(pixels, spec)
    factor = spec.output_scale
    count, height, width, _ = batch.shape
    expected = (count, height * factor, width * factor, spec.output.dims[-1])
    try:
        values = [core_value(o, (options or {})[o.name], batch) for o in spec.options]
    except InvalidImage as exc:
        raise InvalidRequest(str(exc)) from None
    option_inputs = [infer_input(o.core, v) for o, v in zip(spec.options, values, strict=True)]
    return InferPlan(
        model=spec.core_model,
        inputs=[infer_input(spec.input, batch), *option_inputs],
        outputs=[grpcclient.InferRequestedOutput(spec.output.name)],
        parse=partial(parse_array, spec, expected, batch is not pixels),
    )
