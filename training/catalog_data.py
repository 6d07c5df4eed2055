"""The generated-catalog dataset: Fashion-MNIST garments coloured on white, at 32 x 32.

Each garment of the official train/test split gets one colour of ``CATALOG_COLOURS``,
drawn by a fixed per-split seed, so every build yields the same images and labels. The
garment is coloured with its shading kept (``fashion.colourise``) and padded by 2 white
pixels per side (28 -> 32; no resampling). The arrays are cached as ``.npz`` under the
Vitrine cache folder after the first build (about 15 s for both splits).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from vitrine.products import CATALOG_COLOURS, CATEGORIES, COLOURS
from vitrine.training.array_cache import cached_arrays
from vitrine.training.fashion import colourise, load_fashion

__all__ = ["CATALOG_SIDE", "CatalogSet", "catalog_description", "load_catalog"]

CATALOG_SIDE = 32
_PAD = (CATALOG_SIDE - 28) // 2
_COLOUR_SEEDS = {"train": 20261130, "test": 20261131}
_VERSION = 1  # bump when the recipe changes: the cache file name carries it


@dataclass(frozen=True)
class CatalogSet:
    """One split: ``images`` (N, 32, 32, 3) uint8 RGB, ``categories`` and ``colours`` (N,)
    int64 indices into ``CATEGORIES`` and ``CATALOG_COLOURS``."""

    images: npt.NDArray[Any]
    categories: npt.NDArray[Any]
    colours: npt.NDArray[Any]

    def __len__(self) -> int:
        return len(self.images)


def _build(split: str) -> CatalogSet:
    garments, categories = load_fashion(split)
    rng = np.random.default_rng(_COLOUR_SEEDS[split])
    colours = rng.integers(0, len(CATALOG_COLOURS), size=len(garments))
    images = np.full((len(garments), CATALOG_SIDE, CATALOG_SIDE, 3), 255, np.uint8)
    palette = [COLOURS[name] for name in CATALOG_COLOURS]
    for index in tqdm(range(len(garments)), desc=f"catalog {split}", unit="img", leave=False):
        images[index, _PAD:-_PAD, _PAD:-_PAD] = colourise(garments[index], palette[colours[index]])
    return CatalogSet(images, categories.astype(np.int64), colours.astype(np.int64))


@cache
def load_catalog(split: str) -> CatalogSet:
    """The catalog images and labels of ``split`` ("train": 60 000, "test": 10 000)."""
    if split not in _COLOUR_SEEDS:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
    arrays = cached_arrays(f"catalog-v{_VERSION}-{split}", lambda: vars(_build(split)))
    return CatalogSet(arrays["images"], arrays["categories"], arrays["colours"])


def catalog_description(split: str) -> dict[str, object]:
    """What a checkpoint sidecar records about the data it saw."""
    return {
        "dataset": "Fashion-MNIST (Debian dataset-fashion-mnist), coloured catalog "
        f"v{_VERSION}, {split} split",
        "side": CATALOG_SIDE,
        "categories": list(CATEGORIES),
        "colours": list(CATALOG_COLOURS),
        "colour_seed": _COLOUR_SEEDS[split],
    }
