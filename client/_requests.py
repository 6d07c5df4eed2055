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

from vitrine.imaging import JPEG_WITHOUT_ALPHA, InvalidImage
from vitrine.options import core_value, label_value, strength_value
from vitrine.pipeline import ENCODED_OUTPUT, OUTPUT_FORMATS, pipeline_inputs
from vitrine.registry import specs_for_method
from vitrine.spec import ModelSpec, Option, OptionKind, TensorSpec

from ._errors import InvalidRequest, ServerError
from ._images import ImageInput, check_sides, decode_image, encode_image, header_size
from ._options import background_text, mask_pixels, mask_png
from ._results import ArrayResult, ImageResult

__all__ = [
    "Direction",
    "InferPlan",
    "OutputFormat",
    "Scale",
    "Style",
    "check_output_options",
    "infer_input",
    "known_size",
    "model_version",
    "only_spec",
    "output",
    "parse_array",
    "plan_edit",
    "plan_edit_array",
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
    work_seconds: float = 0.0  # added to the client's default deadline (a large photo)


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


def _editor_spec(method: str, options: Mapping[str, object]) -> tuple[ModelSpec, dict[str, object]]:
    """The spec serving editor ``method`` (picked by its selector keyword among ``options``,
    when the method has one), and the options left for it."""
    specs = specs_for_method(method)
    rest = dict(options)
    if None in specs:
        return specs[None], rest
    selector = next(iter(specs.values())).selector
    assert selector is not None
    return resolve_spec(method, selector[0], rest.pop(selector[0])), rest


def _label(option: Option, value: object) -> bytes:
    """The wire text of label ``option``, checked against its choices."""
    try:
        label_value(option, value)
    except InvalidImage as exc:
        raise InvalidRequest(str(exc)) from None
    return str(value).encode()


def _strength(option: Option, value: object) -> float:
    """A strength as a number in [0, 1]; ``"auto"`` (full strength) where the spec allows it."""
    if option.auto and value == "auto":
        return 1.0
    try:
        return float(strength_value(value, option.name)[0])
    except InvalidImage as exc:
        raise InvalidRequest(f"{exc} (or 'auto')" if option.auto else str(exc)) from None


def _wire_options(
    spec: ModelSpec, options: Mapping[str, object], size: tuple[int, int] | None
) -> dict[str, object]:
    """A pipeline call's options as the decode step takes them, checked as it checks them;
    ``size`` (width, height) of the image, when known."""
    wires: dict[str, object] = {}
    for option in spec.options:
        value = options[option.name]
        if option.kind is OptionKind.STRENGTH:
            wires[option.name] = _strength(option, value)
        elif option.kind is OptionKind.LABEL:
            wires[option.name] = _label(option, value)
        elif option.kind is OptionKind.MASK:
            wires[option.name] = mask_png(value, size)
        elif option.kind is OptionKind.BACKGROUND:
            wires[option.name] = background_text(value).encode()
        else:
            raise TypeError(f"{spec.name}: option kind {option.kind.value} is no editor option")
    return wires


def _array_options(spec: ModelSpec, options: Mapping[str, object]) -> dict[str, object]:
    """A raw call's options as :func:`vitrine.options.core_value` takes them, checked."""
    values: dict[str, object] = {}
    for option in spec.options:
        value = options[option.name]
        if option.kind is OptionKind.STRENGTH:
            values[option.name] = _strength(option, value)
        elif option.kind is OptionKind.LABEL:
            values[option.name] = _label(option, value)
        elif option.kind is OptionKind.MASK:
            values[option.name] = mask_pixels(value)
        elif option.kind is OptionKind.BACKGROUND:
            values[option.name] = background_text(value)
        else:
            raise TypeError(f"{spec.name}: option kind {option.kind.value} is no editor option")
    return values


def plan_edit(
    method: str,
    image: ImageInput,
    *,
    options: Mapping[str, object],
    output_format: object,
    quality: object,
) -> InferPlan[ImageResult]:
    """Validate a call of editor ``method`` (``options`` are its keywords, the selector
    included) and build its pipeline request."""
    spec, rest = _editor_spec(method, options)
    wires = _wire_options(spec, rest, known_size(image))
    if wires.get("background") == b"transparent" and output_format == "jpeg":
        raise InvalidRequest(JPEG_WITHOUT_ALPHA)
    return _plan_image(spec, image, output_format, quality, wires)


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
    size = known_size(image) or header_size(encoded)
    megapixels = size[0] * size[1] / 1e6 if size else 0.0
    return InferPlan(
        model=spec.pipeline,
        inputs=_pipeline_inputs(spec, encoded, options or {}, fmt, level),
        outputs=[grpcclient.InferRequestedOutput(ENCODED_OUTPUT)],
        parse=partial(_parse_image, spec.pipeline, fmt),
        work_seconds=spec.seconds_per_megapixel * megapixels,
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
    check_sides(batch.shape[1], batch.shape[2], spec, raw=True)
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


def plan_edit_array(
    method: str, pixels: object, *, options: Mapping[str, object]
) -> InferPlan[ArrayResult]:
    """Validate a raw call of editor ``method`` (``options`` are its keywords, the selector
    included; a mask serves every image of the batch) and build its core-model request."""
    spec, rest = _editor_spec(method, options)
    return _plan_array(spec, pixels, _array_options(spec, rest))


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
