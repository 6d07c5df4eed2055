"""The Vitrine product catalog: Fashion-MNIST garments, coloured and cut out.

Fashion-MNIST (Xiao et al. 2017) comes from the Debian package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``): 28x28 greyscale garments, bright on a black (0)
background, 60 000 train and 10 000 test images in 10 categories. The idx files are parsed
with numpy once and cached as ``.npz`` in the Vitrine cache folder.

A garment becomes a product photo in two deterministic steps:

* ``product_alpha``: which pixels are the product (a soft intensity threshold, small holes
  filled);
* ``garment_rgb``: its colour, the original intensities kept as shading; ``colourise``
  composites it on white, as a catalog shot.
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from vitrine.products import CATEGORIES, COLOURS, RGB
from vitrine.training.array_cache import cached_arrays

__all__ = [
    "ALPHA_HIGH",
    "ALPHA_LOW",
    "CATEGORIES",
    "COLOURS",
    "RGB",
    "DATA_DIR",
    "colourise",
    "garment_rgb",
    "load_fashion",
    "product_alpha",
]

DATA_DIR = Path("/usr/share/datasets/fashion-mnist")


ALPHA_LOW = 8
"""Intensities at or below this are background (Fashion-MNIST backgrounds are 0)."""
ALPHA_HIGH = 40
"""Intensities at or above this are fully product; alpha ramps linearly in between."""
MAX_HOLE_PIXELS = 6
"""Enclosed background regions up to this many pixels are dark spots of the garment."""

_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def _read_idx(path: Path) -> npt.NDArray[Any]:
    """An idx file (gzip): big-endian magic (dtype code, number of dims), dims, then data."""
    with gzip.open(path, "rb") as file:
        data = file.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte idx file")
    ndim = data[3]
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", count=ndim, offset=4))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _parse(split: str) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    prefix = _SPLIT_PREFIX[split]
    paths = [DATA_DIR / f"{prefix}-{kind}-ubyte.gz" for kind in ("images-idx3", "labels-idx1")]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST not found ({', '.join(missing)}): "
            "sudo apt-get install dataset-fashion-mnist"
        )
    images, labels = (_read_idx(path) for path in paths)
    return np.ascontiguousarray(images), labels.astype(np.int64)


@cache
def load_fashion(split: str) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of ``split`` ("train" or "test")."""
    if split not in _SPLIT_PREFIX:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
    arrays = cached_arrays(f"fashion-mnist-{split}", lambda: _parsed_arrays(split))
    return arrays["images"], arrays["labels"]


def _parsed_arrays(split: str) -> dict[str, npt.NDArray[Any]]:
    images, labels = _parse(split)
    return {"images": images, "labels": labels}


def product_alpha(grey: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Float (H, W) alpha in [0, 1]: which pixels of a greyscale garment are the product.

    Alpha ramps linearly from 0 at ``ALPHA_LOW`` to 1 at ``ALPHA_HIGH`` (the anti-aliased
    rim stays soft; dark garments are still opaque). Enclosed regions of background of at
    most ``MAX_HOLE_PIXELS`` are dark spots of the fabric and become opaque; larger holes
    (a bag's handle, the gap of a sandal's straps) stay transparent.
    """
    value = grey.astype(np.float32)
    alpha = np.clip((value - ALPHA_LOW) / (ALPHA_HIGH - ALPHA_LOW), 0.0, 1.0)
    solid = value > ALPHA_LOW
    holes, count = ndimage.label(ndimage.binary_fill_holes(solid) & ~solid)
    if count:
        sizes = ndimage.sum_labels(np.ones_like(holes), holes, index=np.arange(1, count + 1))
        small = np.isin(holes, 1 + np.flatnonzero(sizes <= MAX_HOLE_PIXELS))
        alpha[small] = 1.0
    return alpha


def garment_rgb(grey: npt.NDArray[Any], colour: RGB) -> npt.NDArray[Any]:
    """Float (H, W, 3) in [0, 1]: the garment in ``colour``, shaded by its intensities.

    Shading is the intensity relative to the garment's 95th percentile, mapped to
    [0.35, 1] so folds stay visible without turning black: the brightest fabric shows
    ``colour`` itself. Only meaningful where ``product_alpha`` is positive.
    """
    value = grey.astype(np.float32)
    inside = value[value > ALPHA_LOW]
    reference = float(np.percentile(inside, 95)) if inside.size else 255.0
    shade = 0.35 + 0.65 * np.clip(value / max(reference, 1.0), 0.0, 1.0)
    return shade[:, :, None] * (np.asarray(colour, np.float32) / 255.0)


def colourise(grey: npt.NDArray[Any], colour: RGB) -> npt.NDArray[Any]:
    """(H, W, 3) uint8: the garment in ``colour`` (shading kept) on a white background."""
    alpha = product_alpha(grey)[:, :, None]
    rgb = alpha * garment_rgb(grey, colour) + (1.0 - alpha)
    result: npt.NDArray[Any] = np.round(rgb * 255.0).astype(np.uint8)
    return result
