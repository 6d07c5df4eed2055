"""Deterministic random hole masks for inpainting: brush strokes, boxes and watermark text.

Every generator takes the image size and a ``numpy.random.Generator`` and returns a uint8
(H, W) mask of 0/255 (255 = fill). Shapes are added until the hole covers a fraction drawn
from the generator's range, so a mask is never empty; the fraction is capped well below
the whole image:

* ``stroke_mask``: free-form brush strokes (random walks of thick lines with round joints),
  like scribbled-over blemishes and objects; 8 to 30 % of the image.
* ``box_mask``: one to a few axis-aligned rectangles (cut-out stickers, logos, date
  stamps); 8 to 30 %.
* ``text_mask``: watermark text in Pillow's bundled font (no download), thickened with a
  stroke, at a random size, position and angle; 5 to 20 %.
* ``mixed_mask``: one of the three, uniformly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

__all__ = ["MASK_KINDS", "box_mask", "mixed_mask", "stroke_mask", "text_mask"]

_WATERMARKS = ("VITRINE", "(c) Stock", "SAMPLE", "PROOF", "Photo 2026", "www.vitrine.io")
_MAX_SHAPES = 64


def _fraction(mask: Image.Image) -> float:
    return float(np.asarray(mask, dtype=np.float64).mean() / 255.0)


def _fill_until(
    size: tuple[int, int],
    rng: np.random.Generator,
    coverage: tuple[float, float],
    draw_shape: Callable[[Image.Image, np.random.Generator], None],
) -> npt.NDArray[Any]:
    """Draw shapes on an (H, W) canvas until the hole covers a random fraction in ``coverage``.

    A shape that would take the hole past the upper bound is dropped (unless the mask is
    still empty), so the fraction stays in range up to the last shape's area.
    """
    height, width = size
    target = rng.uniform(*coverage)
    mask = Image.new("L", (width, height), 0)
    for _ in range(_MAX_SHAPES):
        candidate = mask.copy()
        draw_shape(candidate, rng)
        fraction = _fraction(candidate)
        if fraction > coverage[1] and _fraction(mask) > 0:
            continue
        mask = candidate
        if fraction >= target:
            break
    return np.asarray(mask, dtype=np.uint8).copy()


def _stroke(mask: Image.Image, rng: np.random.Generator) -> None:
    """One brush stroke: a random walk of 4 to 10 thick segments with round joints."""
    width, height = mask.size
    side = min(width, height)
    brush = int(rng.integers(max(3, side // 40), max(4, side // 10) + 1))
    draw = ImageDraw.Draw(mask)
    x, y = rng.uniform(0, width), rng.uniform(0, height)
    angle = rng.uniform(0, 2 * np.pi)
    points = [(x, y)]
    for _ in range(int(rng.integers(4, 11))):
        angle += rng.uniform(-1.2, 1.2)
        length = rng.uniform(0.05, 0.2) * side
        x = float(np.clip(x + length * np.cos(angle), 0, width - 1))
        y = float(np.clip(y + length * np.sin(angle), 0, height - 1))
        points.append((x, y))
    draw.line(points, fill=255, width=brush, joint="curve")
    radius = brush / 2
    for px, py in (points[0], points[-1]):
        draw.ellipse((px - radius, py - radius, px + radius, py + radius), fill=255)


def _box(mask: Image.Image, rng: np.random.Generator) -> None:
    """One rectangle with sides of 10 to 40 % of the image's."""
    width, height = mask.size
    box_w = int(rng.uniform(0.1, 0.4) * width) + 1
    box_h = int(rng.uniform(0.1, 0.4) * height) + 1
    left = int(rng.integers(0, width - box_w + 1))
    top = int(rng.integers(0, height - box_h + 1))
    ImageDraw.Draw(mask).rectangle((left, top, left + box_w - 1, top + box_h - 1), fill=255)


def _text(mask: Image.Image, rng: np.random.Generator) -> None:
    """One watermark word, thickened by a stroke, rotated, pasted at a random place."""
    width, height = mask.size
    font_size = int(rng.uniform(0.08, 0.2) * min(width, height)) + 8
    font = ImageFont.load_default(size=font_size)
    word = _WATERMARKS[int(rng.integers(len(_WATERMARKS)))]
    stroke = max(1, font_size // 12)
    left, top, right, bottom = font.getbbox(word, stroke_width=stroke)
    label = Image.new("L", (int(right - left) + 2, int(bottom - top) + 2), 0)
    ImageDraw.Draw(label).text(
        (1 - left, 1 - top), word, fill=255, font=font, stroke_width=stroke, stroke_fill=255
    )
    label = label.rotate(
        float(rng.uniform(-35, 35)), expand=True, resample=Image.Resampling.BILINEAR
    )
    label = label.point(lambda value: 255 if value >= 64 else 0)
    x = int(rng.integers(-label.width // 3, max(1, width - 2 * label.width // 3)))
    y = int(rng.integers(-label.height // 3, max(1, height - 2 * label.height // 3)))
    mask.paste(255, (x, y), label)


def stroke_mask(size: tuple[int, int], rng: np.random.Generator) -> npt.NDArray[Any]:
    """Free-form brush strokes covering 8 to 30 % of an (H, W) image."""
    return _fill_until(size, rng, (0.08, 0.3), _stroke)


def box_mask(size: tuple[int, int], rng: np.random.Generator) -> npt.NDArray[Any]:
    """Rectangles covering 8 to 30 % of an (H, W) image."""
    return _fill_until(size, rng, (0.08, 0.3), _box)


def text_mask(size: tuple[int, int], rng: np.random.Generator) -> npt.NDArray[Any]:
    """Watermark text covering 5 to 20 % of an (H, W) image."""
    return _fill_until(size, rng, (0.05, 0.2), _text)


MASK_KINDS: dict[str, Callable[[tuple[int, int], np.random.Generator], npt.NDArray[Any]]] = {
    "strokes": stroke_mask,
    "boxes": box_mask,
    "watermark": text_mask,
}


def mixed_mask(size: tuple[int, int], rng: np.random.Generator) -> npt.NDArray[Any]:
    """A mask of a kind drawn uniformly from ``MASK_KINDS``."""
    kinds = list(MASK_KINDS.values())
    return kinds[int(rng.integers(len(kinds)))](size, rng)
