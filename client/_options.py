"""Client-side checks and wire encodings of the editors' request options.

The checks are :mod:`vitrine.options`, the same code the server's decode step runs, so a
bad value fails before any RPC with the message the server would give.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from PIL import Image

from vitrine.imaging import InvalidImage
from vitrine.options import background_value, encode_mask, mask_value

from ._errors import InvalidRequest

__all__ = [
    "Background",
    "MaskInput",
    "Strength",
    "background_text",
    "mask_pixels",
    "mask_png",
]

Strength: TypeAlias = float | Literal["auto"]
"""Denoising strength in [0, 1]; ``"auto"`` is full strength (the network is noise-blind)."""
Background: TypeAlias = Literal["white", "transparent"] | tuple[int, int, int]
"""A named background (pinned by a test to ``BACKGROUND_NAMES``) or an (r, g, b) colour."""
MaskInput: TypeAlias = Image.Image | npt.NDArray[Any]
"""A mode "L"/"1" image or a 2-D bool/uint8 array of the image's size; non-zero = fill."""

_MASK_LEVELS = frozenset({0, 1, 255})  # uint8 masks: 0 keeps, 1 or 255 fills


def background_text(background: object) -> str:
    """``background`` as its wire text: ``"white"``, ``"transparent"`` or ``"#rrggbb"``."""
    if isinstance(background, tuple) and len(background) == 3:
        if all(isinstance(c, int) and not isinstance(c, bool) for c in background) and all(
            0 <= c <= 255 for c in background
        ):
            return "#{:02x}{:02x}{:02x}".format(*background)
        raise InvalidRequest(f"background colour must be three ints in 0..255, got {background!r}")
    try:
        background_value(background)
    except InvalidImage as exc:
        raise InvalidRequest(f"{exc} (or an (r, g, b) tuple)") from None
    return str(background)


def mask_pixels(mask: object, size: tuple[int, int] | None = None) -> npt.NDArray[np.uint8]:
    """``mask`` as an (H, W) uint8 array of 0 (keep) and 255 (fill), checked as the server
    checks it; ``size`` (width, height) is the image's, when known."""
    if isinstance(mask, Image.Image):
        if mask.mode not in ("L", "1"):
            raise InvalidRequest(f"mask image must have mode 'L' or '1', got {mask.mode!r}")
        mask = np.asarray(mask.convert("L"))
    if not isinstance(mask, np.ndarray):
        raise InvalidRequest(
            f"mask must be a PIL.Image.Image or a numpy.ndarray, got {type(mask).__name__}"
        )
    if mask.ndim != 2:
        raise InvalidRequest(f"mask must be 2-D (H, W), got shape {mask.shape}")
    if mask.dtype == np.bool_:
        return _checked(np.where(mask, 255, 0).astype(np.uint8), size)
    if mask.dtype != np.uint8:
        raise InvalidRequest(f"mask must have dtype bool or uint8, got {mask.dtype}")
    levels = set(np.unique(mask).tolist())
    if not levels <= _MASK_LEVELS or {1, 255} <= levels:
        raise InvalidRequest(
            f"mask must be binary: 0 = keep and 1 or 255 = fill; found {sorted(levels)[:8]}"
        )
    return _checked(np.where(mask > 0, 255, 0).astype(np.uint8), size)


def _checked(mask: npt.NDArray[np.uint8], size: tuple[int, int] | None) -> npt.NDArray[np.uint8]:
    """``mask`` if the server's check passes: the image's size (when known), neither empty
    nor full."""
    height, width = mask.shape if size is None else (size[1], size[0])
    try:
        mask_value(mask, height, width)
    except InvalidImage as exc:
        raise InvalidRequest(str(exc)) from None
    return mask


def mask_png(mask: object, size: tuple[int, int] | None) -> bytes:
    """``mask`` as a greyscale PNG; ``size`` (width, height) of the image when known."""
    return encode_mask(mask_pixels(mask, size))
