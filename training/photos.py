"""Real photos shipped inside scikit-image, with the fixed train/validation split.

Only images bundled in the scikit-image 0.26 wheel are used (no download). The split
is by whole image, so no validation pixel is ever seen in training:

* validation: chelsea (cat), coffee (cup), coins (greyscale)
* train: everything else listed in ``TRAIN_PHOTOS``.
Greyscale photos are replicated to RGB.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "COLOUR_TRAIN_PHOTOS",
    "TRAIN_PHOTOS",
    "VALIDATION_PHOTOS",
    "load_photo",
    "load_split",
    "recolour",
]

COLOUR_TRAIN_PHOTOS: tuple[str, ...] = (
    "astronaut",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "stereo_motorcycle",
)
"""The training photos in colour; the other eight are grey."""
TRAIN_PHOTOS: tuple[str, ...] = (
    *COLOUR_TRAIN_PHOTOS,
    "camera",
    "moon",
    "page",
    "text",
    "clock",
    "brick",
    "grass",
    "gravel",
)
VALIDATION_PHOTOS: tuple[str, ...] = ("chelsea", "coffee", "coins")


def _skimage_data() -> ModuleType:
    try:
        import skimage.data
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the training photos come from scikit-image: pip install 'vitrine[train]' "
            "(scikit-image==0.26.0)"
        ) from error
    return skimage.data


@cache
def load_photo(name: str) -> npt.NDArray[Any]:
    """Photo ``name`` as (H, W, 3) uint8 RGB."""
    data = _skimage_data()
    loader = getattr(data, name, None)
    if loader is None:
        raise ValueError(f"scikit-image has no shipped photo {name!r}")
    image = loader()
    if isinstance(image, tuple):  # stereo pairs: take the left view
        image = image[0]
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3].astype(np.uint8))


def load_split(split: str) -> dict[str, npt.NDArray[Any]]:
    """All photos of ``split`` ("train" or "validation") by name."""
    names = {"train": TRAIN_PHOTOS, "validation": VALIDATION_PHOTOS}.get(split)
    if names is None:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'validation'")
    return {name: load_photo(name) for name in names}


def centre_crop(photo: npt.NDArray[Any], side: int) -> npt.NDArray[Any]:
    """The central ``side`` x ``side`` square of ``photo`` (the evaluations' crops)."""
    top, left = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
    return photo[top : top + side, left : left + side]


def recolour(crop: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
    """``crop`` (uint8 RGB) with its channels permuted and each mapped by its own gamma and
    range: a grey photo becomes a tinted one, a colour photo changes hue."""
    channels = crop[:, :, rng.permutation(3)].astype(np.float64) / 255.0
    gamma = np.exp(rng.uniform(-0.5, 0.5, 3))
    low = rng.uniform(0.0, 0.2, 3)
    high = rng.uniform(0.8, 1.0, 3)
    mapped = low + (high - low) * channels**gamma
    result: npt.NDArray[Any] = np.round(mapped * 255.0).astype(np.uint8)
    return result
