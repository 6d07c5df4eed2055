"""Request options (:class:`vitrine.spec.Option`): checks and conversions of their values.

Each option is declared once on its spec. It names a pipeline input (what the client
sends) and the core-model input it becomes; the pipeline's decode step turns one into the
other with :func:`parse_option`, and the client's raw path with :func:`core_value`, so both
paths check values with the same code and the same messages. Pure numpy + Pillow.
"""

from __future__ import annotations

import io
import re
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from PIL import Image

from vitrine.imaging import InvalidImage
from vitrine.sampling import InvalidGeneration, check_seed, sample_latents
from vitrine.spec import ModelSpec, Option, OptionKind

__all__ = [
    "BACKGROUND_NAMES",
    "background_value",
    "core_value",
    "encode_mask",
    "encode_png",
    "image_value",
    "label_value",
    "seed_value",
    "example_options",
    "mask_value",
    "options_from_parameter",
    "options_parameter",
    "parse_option",
    "parse_option_column",
    "strength_value",
    "wire_value",
]

BACKGROUND_NAMES: Final = ("white", "transparent")
"""Named backgrounds; any ``#rrggbb`` colour is accepted as well."""
_HEX_COLOUR: Final = re.compile(r"#[0-9a-fA-F]{6}")


def strength_value(value: object, name: str = "strength") -> npt.NDArray[Any]:
    """A number in [0, 1] (a strength, a blend) as the core's FP32 (1,) tensor."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise InvalidImage(f"{name} must be a number in [0, 1], got {value!r}")
    number = float(value)
    if not 0.0 <= number <= 1.0:  # NaN fails too
        raise InvalidImage(f"{name} must be within [0, 1], got {number}")
    return np.array([number], dtype=np.float32)


def background_value(value: object) -> npt.NDArray[Any]:
    """A background as the core's uint8 (r, g, b, opaque) tensor; opaque 0 keeps the alpha."""
    if value == "transparent":
        return np.array([0, 0, 0, 0], dtype=np.uint8)
    if value == "white":
        return np.array([255, 255, 255, 255], dtype=np.uint8)
    if isinstance(value, str) and _HEX_COLOUR.fullmatch(value):
        red, green, blue = (int(value[i : i + 2], 16) for i in (1, 3, 5))
        return np.array([red, green, blue, 255], dtype=np.uint8)
    raise InvalidImage(
        f"background must be 'white', 'transparent' or a '#rrggbb' colour, got {value!r}"
    )


def mask_value(mask: npt.NDArray[Any], height: int, width: int) -> npt.NDArray[Any]:
    """A (H, W) uint8 mask of 0 (keep) and 255 (fill) as the core's (H, W, 1) tensor."""
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise InvalidImage(f"mask must be a 2-D uint8 image, got {mask.dtype} {mask.shape}")
    if mask.shape != (height, width):
        raise InvalidImage(
            f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {width}x{height}"
        )
    values = np.unique(mask)
    if not set(values.tolist()) <= {0, 255}:
        raise InvalidImage(
            f"mask must be binary (0 = keep, 255 = fill); found values {values[:8].tolist()}"
        )
    if values.tolist() == [0]:
        raise InvalidImage("mask is empty: mark at least one pixel to fill")
    if values.tolist() == [255]:
        raise InvalidImage("mask covers the whole image: nothing is left to fill from")
    return mask[:, :, np.newaxis]


def label_value(option: Option, value: object) -> npt.NDArray[Any]:
    """A label's name as the core's int32 (1,) index."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if text not in option.choices:
        raise InvalidImage(
            f"{option.name} must be one of {', '.join(option.choices)}; got {text!r}"
        )
    return np.array([option.choices.index(str(text))], dtype=np.int32)


def seed_value(option: Option, value: object) -> npt.NDArray[Any]:
    """A seed as the core's float32 (size,) standard-normal noise, drawn as generators do."""
    number = value.item() if isinstance(value, np.generic) else value
    try:
        seed = check_seed(number, option.name)
    except InvalidGeneration as exc:
        raise InvalidImage(str(exc)) from None
    noise: npt.NDArray[Any] = sample_latents(seed, 1, option.size)[0]
    return noise


def image_value(
    option: Option, image: npt.NDArray[Any], height: int, width: int
) -> npt.NDArray[Any]:
    """A second (H, W, 3) uint8 image, which must have the first one's size."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InvalidImage(
            f"{option.name} must be an RGB uint8 image, got {image.dtype} {image.shape}"
        )
    if image.shape[:2] != (height, width):
        raise _size_mismatch(option, (image.shape[1], image.shape[0]), (width, height))
    return image


def _size_mismatch(
    option: Option, size: tuple[int, int], expected: tuple[int, int]
) -> InvalidImage:
    """The error for a second image whose (width, height) is not the first one's."""
    return InvalidImage(
        f"{option.name} is {size[0]}x{size[1]} but the image is {expected[0]}x{expected[1]}"
    )


def _decode_second_image(option: Option, data: bytes, height: int, width: int) -> npt.NDArray[Any]:
    if not data:
        raise InvalidImage(f"empty {option.name} payload")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.size != (width, height):  # checked before the pixels are decoded
                raise _size_mismatch(option, image.size, (width, height))
            pixels = np.asarray(image.convert("RGB"))
    except InvalidImage:
        raise
    except Exception as exc:  # Pillow raises many types on hostile payloads
        raise InvalidImage(f"could not decode {option.name}: {exc}") from None
    return pixels


def _decode_mask(data: bytes, height: int, width: int) -> npt.NDArray[Any]:
    if not data:
        raise InvalidImage("empty mask payload")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.size != (width, height):  # checked before the pixels are decoded
                raise InvalidImage(
                    f"mask is {image.width}x{image.height} but the image is {width}x{height}"
                )
            if image.mode not in ("L", "1"):
                raise InvalidImage(f"mask must be a greyscale ('L') image, got mode {image.mode}")
            pixels = np.asarray(image.convert("L"))
    except InvalidImage:
        raise
    except Exception as exc:  # Pillow raises many types on hostile payloads
        raise InvalidImage(f"could not decode mask: {exc}") from None
    return mask_value(pixels, height, width)


def parse_option(option: Option, value: object, pixels: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Decode-step conversion of one request's option ``value`` (its wire element).

    ``pixels`` is the request's decoded (H, W, 3) image, against which masks are checked.
    """
    if option.kind in (OptionKind.MASK, OptionKind.IMAGE):
        if not isinstance(value, bytes):
            raise InvalidImage(f"{option.name} must be encoded image bytes")
        if option.kind is OptionKind.MASK:
            return _decode_mask(value, pixels.shape[0], pixels.shape[1])
        return _decode_second_image(option, value, pixels.shape[0], pixels.shape[1])
    if option.kind is OptionKind.BACKGROUND:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        return background_value(text)
    if option.kind is OptionKind.LABEL:
        return label_value(option, value)
    if option.kind is OptionKind.SEED:
        return seed_value(option, value)
    return strength_value(value, option.name)


def parse_option_column(
    option: Option, column: npt.NDArray[Any], images: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    """Decode-step conversion of one option's (B, 1) wire column for the (B, H, W, 3) images."""
    if column.shape != (len(images), 1):
        raise InvalidImage(
            f"input {option.name!r} must have shape ({len(images)}, 1), got {column.shape}"
        )
    rows = zip(column[:, 0], images, strict=True)
    return np.stack([parse_option(option, value, image) for value, image in rows])


def options_parameter(options: tuple[Option, ...]) -> str:
    """The decode step's ``options`` config parameter, e.g. ``"mask:mask"``; a label adds
    its choices (``"color:label:black|white"``), a seed its noise size (``"seed:seed:64"``)."""

    def item(option: Option) -> str:
        extra = "|".join(option.choices) or (str(option.size) if option.size else "")
        return ":".join(filter(None, (option.name, option.kind.value, extra)))

    return ",".join(item(option) for option in options)


def _option_from_item(item: str) -> Option:
    name, kind, *extra = (part.strip() for part in item.split(":"))
    option_kind = OptionKind(kind)
    if option_kind is OptionKind.LABEL:
        return Option(name, option_kind, choices=tuple(extra[0].split("|")))
    if option_kind is OptionKind.SEED:
        return Option(name, option_kind, size=int(extra[0]))
    return Option(name, option_kind)


def options_from_parameter(text: str) -> tuple[Option, ...]:
    """Inverse of :func:`options_parameter`."""
    return tuple(_option_from_item(item) for item in text.split(",") if item.strip())


def core_value(option: Option, value: object, pixels: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Raw-path conversion of a client value for a (N, H, W, 3) batch: (N, *core dims)."""
    count, height, width = pixels.shape[:3]
    if option.kind is OptionKind.MASK:
        if not isinstance(value, np.ndarray):
            raise InvalidImage(f"{option.name} must be a numpy array for the raw path")
        masks = value if value.ndim == 3 else np.broadcast_to(value, (count, *value.shape))
        if masks.ndim != 3 or masks.shape[0] != count:
            raise InvalidImage(f"{option.name} must be (H, W) or (N, H, W), got {value.shape}")
        return np.stack([mask_value(m, height, width) for m in masks])
    if option.kind is OptionKind.IMAGE:
        if not isinstance(value, np.ndarray):
            raise InvalidImage(f"{option.name} must be a numpy array for the raw path")
        images = value if value.ndim == 4 else np.broadcast_to(value, (count, *value.shape))
        if images.ndim != 4 or images.shape[0] != count:
            raise InvalidImage(
                f"{option.name} must be (H, W, 3) or (N, H, W, 3), got {value.shape}"
            )
        return np.stack([image_value(option, image, height, width) for image in images])
    if option.kind is OptionKind.BACKGROUND:
        single = background_value(value)
    elif option.kind is OptionKind.LABEL:
        single = label_value(option, value)
    elif option.kind is OptionKind.SEED:
        single = seed_value(option, value)
    else:
        single = strength_value(value, option.name)
    return np.ascontiguousarray(np.broadcast_to(single, (count, *single.shape)))


def example_options(spec: ModelSpec, height: int, width: int) -> dict[str, object]:
    """Valid client keyword values of ``spec``'s options for an image of ``height x width``.

    What the demo, load test and benchmarks send: full strength, a white background, a
    centred box (a quarter of each side) to fill, a mid-grey second image, the first label
    and seed 0. Good for both the pipeline and raw calls.
    """
    values: dict[str, object] = {}
    for option in spec.options:
        if option.kind is OptionKind.STRENGTH:
            values[option.name] = 1.0
        elif option.kind is OptionKind.BACKGROUND:
            values[option.name] = "white"
        elif option.kind is OptionKind.IMAGE:
            values[option.name] = np.full((height, width, 3), 128, dtype=np.uint8)
        elif option.kind is OptionKind.LABEL:
            values[option.name] = option.choices[0]
        elif option.kind is OptionKind.SEED:
            values[option.name] = 0
        else:
            mask = np.zeros((height, width), dtype=np.uint8)
            mask[height * 3 // 8 : height * 5 // 8, width * 3 // 8 : width * 5 // 8] = 255
            values[option.name] = mask
    return values


def encode_mask(mask: npt.NDArray[np.uint8]) -> bytes:
    """An (H, W) uint8 0/255 mask as the greyscale PNG the pipeline expects."""
    return encode_png(mask)


def encode_png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """(H, W) grey or (H, W, 3) RGB uint8 pixels as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def wire_value(option: Option, value: object) -> object:
    """A canonical value (number, 0/255 mask array, image array, background or label text,
    seed) as its wire element."""
    if option.kind is OptionKind.MASK:
        return encode_mask(np.asarray(value, dtype=np.uint8))
    if option.kind is OptionKind.IMAGE:
        return encode_png(np.asarray(value, dtype=np.uint8))
    if option.kind in (OptionKind.BACKGROUND, OptionKind.LABEL):
        return str(value).encode()
    if option.kind is OptionKind.SEED:
        return np.int64(check_seed(value, option.name))
    return np.float32(strength_value(value, option.name)[0])
