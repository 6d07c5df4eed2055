"""Image decode/encode shared by the pipeline steps and the client: numpy + Pillow only.

Everything here is pure (no Triton, no torch) so it is unit-tested directly; the python-backend
``model.py`` files only move tensors in and out of these functions.
"""

from __future__ import annotations

import io
import warnings
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from vitrine.pipeline import OUTPUT_FORMATS
from vitrine.spec import ImageLimits

__all__ = ["ACCEPTED_FORMATS", "JPEG_WITHOUT_ALPHA", "InvalidImage", "decode_image", "encode_image"]

# Pillow format names accepted by :func:`decode_image`. MPO is what Pillow calls the
# multi-picture JPEGs many phone cameras write: a plain JPEG to every other reader.
ACCEPTED_FORMATS: Final = ("PNG", "JPEG", "MPO", "WEBP")

JPEG_WITHOUT_ALPHA: Final = (
    "jpeg cannot keep transparency: ask for png or webp, or for an opaque background"
)
"""Why a transparent result is refused as JPEG (the encode step and the client say it)."""

_PIL_FORMATS: Final = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
_PNG_COMPRESS_LEVEL: Final = 1  # speed over size: results are re-encoded downstream anyway
_WHITE: Final = (255, 255, 255, 255)
_ALPHA_MODES: Final = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_WIDE_GREY_MODES: Final = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


class InvalidImage(ValueError):
    """An image payload or pixel array the pipeline refuses; the message says what was wrong."""


def decode_image(data: bytes, limits: ImageLimits) -> npt.NDArray[Any]:
    """Decode PNG/JPEG/WebP bytes into ``(H, W, 3)`` uint8 RGB.

    The declared size is checked against ``limits`` (sides and pixel count) before any
    pixel is decoded, EXIF orientation is applied, and transparent images are composited on
    white.

    Raises:
        InvalidImage: empty, unsupported, corrupt, truncated or out-of-limits payloads.
    """
    if not data:
        raise InvalidImage("empty image payload")
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # A process-wide Pillow switch that makes truncated files decode as grey padding.
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is enabled in this process; "
            "vitrine refuses to decode images with it (truncated uploads would pass silently)"
        )
    try:
        with warnings.catch_warnings():  # the limits below, checked from the header, decide
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(bytes(data)))
    except Image.DecompressionBombError:
        raise InvalidImage(
            f"image declares more than {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} MP: "
            f"exceeds the limit of {limits.max_pixels / 1e6:.1f} MP"
        ) from None
    except UnidentifiedImageError:
        raise InvalidImage(
            "could not decode image: not a PNG, JPEG or WebP file (format not recognised)"
        ) from None
    except Exception as exc:  # Pillow plugins raise many types on hostile headers
        raise InvalidImage(f"could not decode image: {exc}") from None

    with image:
        if image.format not in ACCEPTED_FORMATS:
            raise InvalidImage(
                f"unsupported image format {image.format}; accepted: PNG, JPEG, WEBP"
            )
        problem = limits.problem(*image.size)
        if problem:
            raise InvalidImage(problem)
        try:
            image.load()  # raises on truncated or corrupt pixel data
            oriented = ImageOps.exif_transpose(image)
            return _to_rgb_array(oriented)
        except InvalidImage:
            raise
        except Exception as exc:
            raise InvalidImage(f"could not decode image: {exc}") from None


def encode_image(pixels: npt.NDArray[Any], fmt: str, quality: int) -> bytes:
    """Encode ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA uint8 as ``fmt`` (an ``OUTPUT_FORMATS``).

    ``quality`` (1..100) is used by JPEG and WebP; PNG ignores it and uses fast compression.
    An alpha channel that is opaque everywhere is dropped; JPEG refuses any other.

    Raises:
        InvalidImage: a bad pixel array, format or quality.
    """
    if not isinstance(pixels, np.ndarray):
        raise InvalidImage(f"pixels must be a numpy array, got {type(pixels).__name__}")
    if pixels.dtype != np.uint8:
        raise InvalidImage(f"pixels must be uint8, got {pixels.dtype}")
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise InvalidImage(f"pixels must have shape (H, W, 3 or 4), got {tuple(pixels.shape)}")
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise InvalidImage(f"pixels must not be empty, got shape {tuple(pixels.shape)}")
    if not isinstance(fmt, str) or fmt.lower() not in OUTPUT_FORMATS:
        raise InvalidImage(f"unsupported output format {fmt!r}; expected one of {OUTPUT_FORMATS}")
    if isinstance(quality, (bool, np.bool_)) or not isinstance(quality, (int, np.integer)):
        raise InvalidImage(f"quality must be an integer in [1, 100], got {quality!r}")
    if not 1 <= int(quality) <= 100:
        raise InvalidImage(f"quality must be within [1, 100], got {int(quality)}")

    name = fmt.lower()
    if pixels.shape[2] == 4 and bool((pixels[:, :, 3] == 255).all()):
        pixels = pixels[:, :, :3]  # opaque: a plain RGB file
    if pixels.shape[2] == 4 and name == "jpeg":
        raise InvalidImage(JPEG_WITHOUT_ALPHA)
    options: dict[str, object]
    if name == "png":
        options = {"compress_level": _PNG_COMPRESS_LEVEL}
    else:
        options = {"quality": int(quality)}
    buffer = io.BytesIO()
    try:
        Image.fromarray(np.ascontiguousarray(pixels)).save(
            buffer, format=_PIL_FORMATS[name], **options
        )
    except Exception as exc:  # e.g. WebP's 16383-pixel side limit
        raise InvalidImage(f"could not encode image as {name}: {exc}") from None
    return buffer.getvalue()


def _to_rgb_array(image: Image.Image) -> npt.NDArray[Any]:
    """``(H, W, 3)`` uint8 RGB of any decoded mode; transparency goes on white."""
    mode = image.mode
    if mode in _WIDE_GREY_MODES:
        grey16 = np.asarray(image, dtype=np.uint16)
        grey = (grey16 >> 8).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE)
        image = Image.alpha_composite(background, rgba)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    array = np.asarray(rgb, dtype=np.uint8)
    return np.ascontiguousarray(array)
