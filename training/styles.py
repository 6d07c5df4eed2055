"""The style images of the style-transfer model: two scikit-image textures and two made here.

Every style is a (256, 256, 3) uint8 RGB image, deterministic, nothing downloaded:

* ``brick``: scikit-image's brick-wall photo, tinted terracotta;
* ``grass``: scikit-image's grass photo, tinted green;
* ``mosaic``: Voronoi cells of saturated colours with dark grout (procedural);
* ``watercolour``: soft overlapping washes of colour on paper white (procedural).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter
from skimage import data

from vitrine.products import CAMPAIGN_STYLES

__all__ = ["STYLE_NAMES", "STYLE_SIDE", "style_image"]

STYLE_SIDE = 256
_SEED = 20261208


def _tinted(
    grey: npt.NDArray[Any], dark: tuple[int, int, int], light: tuple[int, int, int]
) -> npt.NDArray[Any]:
    """A grey texture mapped between two colours, resized to the style side."""
    small = Image.fromarray(grey).resize((STYLE_SIDE, STYLE_SIDE), Image.Resampling.LANCZOS)
    level = np.asarray(small, dtype=np.float64)[:, :, None] / 255.0
    rgb = np.array(dark) * (1.0 - level) + np.array(light) * level
    result: npt.NDArray[Any] = np.round(rgb).astype(np.uint8)
    return result


def _brick() -> npt.NDArray[Any]:
    return _tinted(data.brick(), (70, 25, 15), (235, 140, 95))


def _grass() -> npt.NDArray[Any]:
    return _tinted(data.grass(), (10, 45, 10), (170, 225, 90))


def _mosaic() -> npt.NDArray[Any]:
    rng = np.random.default_rng(_SEED)
    centres = rng.uniform(0, STYLE_SIDE, (90, 2))
    palette = rng.choice(
        np.array([(220, 40, 40), (240, 190, 30), (30, 110, 200), (40, 160, 80), (245, 245, 235)]),
        size=len(centres),
    )
    rows, columns = np.mgrid[0:STYLE_SIDE, 0:STYLE_SIDE]
    distance = np.hypot(rows[..., None] - centres[:, 0], columns[..., None] - centres[:, 1])
    nearest = np.sort(distance, axis=-1)
    image = palette[np.argmin(distance, axis=-1)].astype(np.float64)
    grout = (nearest[..., 1] - nearest[..., 0]) < 3.0  # near a cell border
    image[grout] = (40, 35, 30)
    result: npt.NDArray[Any] = image.astype(np.uint8)
    return result


def _watercolour() -> npt.NDArray[Any]:
    rng = np.random.default_rng(_SEED + 1)
    paper = np.full((STYLE_SIDE, STYLE_SIDE, 3), (250, 246, 235), dtype=np.float64)
    colours = np.array([(60, 120, 200), (220, 90, 120), (250, 180, 60), (90, 170, 140)])
    for _ in range(45):
        mask = Image.new("L", (STYLE_SIDE, STYLE_SIDE), 0)
        centre, radii = rng.uniform(0, STYLE_SIDE, 2), rng.uniform(10, 40, 2)
        ImageDraw.Draw(mask).ellipse((*(centre - radii), *(centre + radii)), fill=255)
        soft = np.asarray(mask.filter(ImageFilter.GaussianBlur(3)), np.float64) / 255.0
        rim = soft * (1.0 - soft) * 4.0  # pigment gathers at a wash's edge
        alpha = (0.4 * soft + 0.25 * rim)[..., None]
        paper = paper * (1.0 - alpha) + colours[rng.integers(len(colours))] * alpha
    return np.round(paper).astype(np.uint8)


_STYLES: dict[str, Callable[[], npt.NDArray[Any]]] = {
    "brick": _brick,
    "grass": _grass,
    "mosaic": _mosaic,
    "watercolour": _watercolour,
}
STYLE_NAMES = CAMPAIGN_STYLES
"""Style names in index order: style ``i`` of the model is ``STYLE_NAMES[i]``."""
if set(_STYLES) != set(STYLE_NAMES):
    raise RuntimeError("training/styles.py must make exactly vitrine.products.CAMPAIGN_STYLES")


@cache
def style_image(name: str) -> npt.NDArray[Any]:
    """Style ``name`` as a (STYLE_SIDE, STYLE_SIDE, 3) uint8 image."""
    return _STYLES[name]()
