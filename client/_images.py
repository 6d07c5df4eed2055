"""Conversion of caller images to encoded request bytes, and of result bytes to images."""

from __future__ import annotations

import io
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from vitrine.spec import ModelSpec

from ._errors import InvalidRequest, ServerError

__all__ = ["ImageInput", "check_sides", "decode_image", "encode_image", "to_rgb"]

ImageInput: TypeAlias = Image.Image | npt.NDArray[Any] | bytes
"""A PIL image, an HxW / HxWx1 / HxWx3 / HxWx4 uint8 array, or encoded PNG/JPEG/WebP bytes."""


def to_rgb(pixels: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """An HxWx3 uint8 array from a grey (HxW, HxWx1), RGB or RGBA (alpha dropped) one."""
    if pixels.dtype != np.uint8:
        raise InvalidRequest(f"image array must have dtype uint8, got {pixels.dtype}")
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
        raise InvalidRequest(
            "image array must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), "
            f"got {pixels.shape}"
        )
    if pixels.shape[2] == 1:
        return np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, :3])


def check_sides(height: int, width: int, spec: ModelSpec, *, raw: bool = False) -> None:
    """Raise InvalidRequest unless the image fits the spec's limits: a pipeline call's
    (sides and pixel count), or with ``raw`` the core model's."""
    limits = spec.core_limits if raw else spec.limits
    low, high = limits.min_side, limits.max_side
    for side, size in (("height", height), ("width", width)):
        if not low <= size <= high:
            raise InvalidRequest(
                f"image {side} {size} is outside {spec.name}'s limits {low}..{high}"
            )
    problem = limits.problem(width, height)
    if problem:
        raise InvalidRequest(f"{spec.name}: {problem}")


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def encode_image(image: ImageInput, spec: ModelSpec) -> bytes:
    """Request bytes for a pipeline call: PIL images and arrays as RGB PNG after a size
    check, encoded bytes unchanged (the server decodes and checks them)."""
    if isinstance(image, bytes):
        if not image:
            raise InvalidRequest("image bytes are empty")
        return image
    if isinstance(image, np.ndarray):
        image = Image.fromarray(to_rgb(image))
    elif not isinstance(image, Image.Image):
        raise InvalidRequest(
            "image must be a PIL.Image.Image, a numpy.ndarray or encoded bytes, "
            f"got {type(image).__name__}"
        )
    check_sides(image.height, image.width, spec)
    return _png(image if image.mode == "RGB" else image.convert("RGB"))


def decode_image(data: bytes) -> Image.Image:
    """The image in a response: RGBA when it has transparency, else RGB.

    Raises ServerError when the bytes are not an image.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            return image.convert("RGBA" if transparent else "RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ServerError(
            f"server returned bytes that are not a decodable image: {error}"
        ) from error
