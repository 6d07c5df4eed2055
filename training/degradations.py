"""Low-resolution inputs as real uploads arrive: antialiased downscaling, mild blur, JPEG."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

__all__ = ["downscale", "random_crop_flip", "degrade_upload"]


def downscale(image: npt.NDArray[Any], scale: int) -> npt.NDArray[Any]:
    """Bicubic downscale by ``scale`` with antialiasing (Pillow filters over the full support)."""
    height, width = image.shape[:2]
    if height % scale or width % scale:
        raise ValueError(f"image {width}x{height} is not divisible by scale {scale}")
    small = Image.fromarray(image).resize(
        (width // scale, height // scale), Image.Resampling.BICUBIC
    )
    return np.asarray(small)


def random_crop_flip(
    image: npt.NDArray[Any], size: int, rng: np.random.Generator
) -> npt.NDArray[Any]:
    """A random ``size``x``size`` crop, randomly flipped and rotated by multiples of 90 degrees."""
    height, width = image.shape[:2]
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    crop = image[top : top + size, left : left + size]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(np.rot90(crop, k=int(rng.integers(0, 4))))


def degrade_upload(
    low_res: npt.NDArray[Any],
    rng: np.random.Generator,
    *,
    blur_probability: float,
    jpeg_probability: float,
) -> npt.NDArray[Any]:
    """Optionally blur a little and JPEG-compress, as phone uploads are."""
    image = Image.fromarray(low_res)
    if rng.random() < blur_probability:
        image = image.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.2, 0.8))))
    if rng.random() < jpeg_probability:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=int(rng.integers(75, 96)))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return np.asarray(image)
