"""The product vocabulary of the Vitrine catalog: categories, named colours, campaign styles.

Torch-free, so the client, the pipeline steps and training share one list. Category names
follow Fashion-MNIST's ten classes in label order; colours are sRGB triples that a
garment's shading multiplies (see ``vitrine.training.fashion``).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CAMPAIGN_STYLES",
    "CATALOG_COLOURS",
    "CATEGORIES",
    "COLOURS",
    "RGB",
    "TRANSLATIONS",
]

TRANSLATIONS: Final[tuple[str, ...]] = ("photo_to_sketch", "sketch_to_photo")
"""The directions ``translate`` takes, in the model's direction-index order."""

CAMPAIGN_STYLES: Final[tuple[str, ...]] = ("brick", "grass", "mosaic", "watercolour")
"""The looks ``stylize`` applies, in the model's style-index order (``training/styles.py``)."""

RGB = tuple[int, int, int]

CATEGORIES: Final[tuple[str, ...]] = (
    "tshirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)
"""Fashion-MNIST's classes, in label order (label i is ``CATEGORIES[i]``)."""

COLOURS: Final[dict[str, RGB]] = {
    "black": (25, 25, 28),
    "white": (245, 245, 240),
    "grey": (128, 128, 128),
    "red": (200, 30, 40),
    "blue": (30, 70, 190),
    "navy": (20, 30, 90),
    "green": (40, 140, 60),
    "yellow": (240, 200, 40),
    "pink": (240, 140, 180),
    "brown": (120, 75, 40),
    "beige": (215, 195, 160),
    "orange": (240, 130, 30),
}
"""Named product colours (sRGB); background-removal composites draw from all of them."""

CATALOG_COLOURS: Final[tuple[str, ...]] = (
    "black",
    "white",
    "grey",
    "red",
    "blue",
    "green",
    "yellow",
    "pink",
    "brown",
    "orange",
)
"""Colours of the generated catalog: ``COLOURS`` without navy and beige, which shaded at
32 px read as black and white."""
