"""Background-removal recipe: catalog products composited on real photos, and a cut-out
evaluation against GrabCut.

Each training sample is a whole catalog shot, as the model sees one when served: one
Fashion-MNIST TRAIN-split garment (``fashion.py``: coloured from the palette, sometimes
a neutral black, white or grey, sometimes a random colour; shading kept), upscaled
bicubically to a random share of the shot's shorter side and placed near its centre
with a soft drop shadow, on a random crop of a TRAIN photo (rescaled, sometimes blurred
as out-of-focus studio backdrops are, often cluttered with cut-outs of TRAIN photos) or,
sometimes, a plain studio gradient. Shots have random sides (not square); each is
degraded as uploads are (blur, JPEG) and then area-resized, with its alpha, to the
network's working side (``matte_unet.py``). The loss is binary cross-entropy on alpha
(every pixel, soft edges included) plus ``dice_weight`` times a soft Dice loss per image,
which weighs small products as much as large ones.

Evaluation uses ``EVAL_COUNT`` fixed composites of TEST-split garments on crops of the
VALIDATION photos, 128 to 256 px a side (not square), the product roughly centred as in a
catalog shot. The same shots on TRAIN photos, scored for the model alone, tell how much of
its error comes from backdrops it has never seen. The model runs through the served uint8
graph with a transparent background and its alpha channel is cut at 0.5; the baseline is
``cv2.grabCut`` from a centred rectangle (margins ``GRABCUT_MARGIN`` of each side,
``GRABCUT_ITERATIONS`` iterations). Metrics: IoU of the product masks and the boundary
F-score (boundary pixels matched within ``BOUNDARY_TOLERANCE`` px).

A second set (:func:`second_composites`) is built unlike training's shots: garments smaller
and larger than any trained on, anywhere in the frame, half of them one flat colour, on
crops of the photo corpus's packaged validation photographs; it is scored the same way.

At full size (:func:`evaluate_full_size`, run by ``vitrine eval`` only: it takes minutes),
shots of 3 to 12 MP (``FULL_SIZE_SHAPES``) are made the same way but with a crisp product
edge (the upscaled alpha cut at 0.5), on an upscaled crop of a VALIDATION photo, with
sensor-like grain. They go through the served plan (``vitrine.tiling``: the alpha predicted
on a copy at the working side, then upsampled to the photo), once with the guided filter
that is served and once bilinearly; IoU and boundary F are measured at full resolution.
GrabCut runs on the same working-size copy and is upsampled the same two ways: on the
full-size photo it takes minutes per shot (about 4 minutes at 3 MP here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage
from torch import nn

from vitrine.options import background_value
from vitrine.spec import ModelSpec, Task
from vitrine.tiling import PlanSettings, plan_image
from vitrine.training.architectures.matte_unet import MatteUNet, area_resize
from vitrine.training.config import TrainConfig
from vitrine.training.corpus import load_corpus
from vitrine.training.degradations import degrade_upload
from vitrine.training.fashion import (
    CATEGORIES,
    COLOURS,
    RGB,
    garment_rgb,
    load_fashion,
    product_alpha,
)
from vitrine.training.grids import labelled_row, stack_rows
from vitrine.training.hooks import DemoCase, TaskHooks
from vitrine.training.photos import TRAIN_PHOTOS, VALIDATION_PHOTOS, load_split, recolour
from vitrine.training.recipe import SingleNetworkRecipe
from vitrine.training.uint8_wrapper import (
    Uint8ImageModel,
    run_uint8,
    to_float,
    to_float_batch,
)

__all__ = [
    "EVAL_COUNT",
    "HOOKS",
    "BackgroundRemovalRecipe",
    "BackgroundSettings",
    "Composite",
    "boundary_f",
    "comparison_image",
    "demo_case",
    "eval_composites",
    "evaluate_background",
    "evaluate_full_size",
    "forward",
    "full_size_composite",
    "grabcut_mask",
    "iou",
    "on_white",
]

EVAL_COUNT = 48
EVAL_SEED = 20261123
EVAL_SIDES = (128, 256)
GRABCUT_MARGIN = 0.08
GRABCUT_ITERATIONS = 5
BOUNDARY_TOLERANCE = 2
METHODS = ("model", "grabcut")
FULL_SIZE_SHAPES = ((1500, 2000), (2000, 3000), (3000, 4000))
"""(height, width) of the full-size shots: 3, 6 and 12 MP."""
FULL_SIZE_PER_SHAPE = 4
FULL_SIZE_SEED = 20261204
FULL_SIZE_GRAIN = 2.0
"""Standard deviation of the Gaussian grain on full-size shots, in uint8 levels."""
SECOND_SET_SEED = 20261206
SECOND_SET_SCALES = ((0.2, 0.4), (0.9, 1.0))
"""Garment side / shorter side of the second set's shots, alternating: smaller and larger
than training's ``product_scale`` (0.4 to 0.9) and the first set's (0.55 to 0.85)."""
SECOND_SET_FLAT_SHARE = 0.5  # garments of one flat colour, unshaded
SECOND_SET_BACKDROP_SIDE = 512  # the photographs' short side before a backdrop is cropped
UPSAMPLINGS = {"guided": True, "bilinear": False}
"""How the full-size evaluation upsamples the working-size alpha: name -> ``edge_aware``."""


@dataclass(frozen=True)
class BackgroundSettings:
    """The ``[recipe]`` table of the background-removal config."""

    shot_sides: tuple[int, int] = (96, 320)  # each side of a shot, before the working-side resize
    product_scale: tuple[float, float] = (0.4, 0.9)  # product side / shorter side of the shot
    centre_jitter: float = 0.12  # product centre offset / side of the shot, either way
    neutral_probability: float = 0.0  # a black, white or grey garment
    palette_probability: float = 0.8  # else a uniformly random colour
    shadow_probability: float = 0.5
    plain_background_probability: float = 0.05
    background_blur_probability: float = 0.1
    background_recolour_probability: float = 0.0  # recoloured, then inverted half the time
    background_scale: tuple[float, float] = (0.4, 1.2)
    background_turn_probability: float = 0.0  # photo crops turned by 1/4, 1/2 or 3/4 turn
    distractor_probability: float = 0.0  # backdrops with pasted photo cut-outs (not products)
    distractor_count: tuple[int, int] = (1, 3)
    distractor_scale: tuple[float, float] = (0.2, 0.8)  # cut-out side / shorter side of shot
    flat_distractor_share: float = 0.0  # cut-outs filled with a colour gradient, not a photo
    dice_weight: float = 1.0
    eval_count: int = EVAL_COUNT  # composites evaluated during training (fewer: faster smoke)


@dataclass(frozen=True)
class Composite:
    """A product photo: uint8 (H, W, 3) image and its true float (H, W) alpha."""

    image: npt.NDArray[Any]
    alpha: npt.NDArray[Any]


def _neutral_colour(rng: np.random.Generator) -> RGB:
    """Near black, grey or white, slightly tinted: the colours a photo's flat areas share."""
    level = float(rng.choice([0.08, 0.5, 0.95])) + float(rng.uniform(-0.07, 0.05))
    tinted = np.clip(255 * (level + rng.uniform(-0.03, 0.03, 3)), 0, 255)
    red, green, blue = (int(v) for v in tinted)
    return red, green, blue


def _random_colour(rng: np.random.Generator, palette_probability: float) -> RGB:
    if rng.random() < palette_probability:
        names = list(COLOURS)
        return COLOURS[names[int(rng.integers(len(names)))]]
    red, green, blue = (int(v) for v in rng.integers(0, 256, 3))
    return red, green, blue


def _product_layers(
    grey: npt.NDArray[Any], colour: RGB, side: int
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Garment colour (side, side, 3) and alpha (side, side), upscaled bicubically."""
    size = (side, side)
    rgb = cv2.resize(garment_rgb(grey, colour), size, interpolation=cv2.INTER_CUBIC)
    alpha = cv2.resize(product_alpha(grey), size, interpolation=cv2.INTER_CUBIC)
    return np.clip(rgb, 0.0, 1.0), np.clip(alpha, 0.0, 1.0)


def _place(
    layer: npt.NDArray[Any], shape: tuple[int, ...], top: int, left: int
) -> npt.NDArray[Any]:
    """``layer`` on a zero canvas of ``shape`` with its corner at (top, left), clipped."""
    canvas = np.zeros(shape + layer.shape[2:], np.float32)
    height, width = layer.shape[:2]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + height, shape[0]), min(left + width, shape[1])
    if y1 > y0 and x1 > x0:
        canvas[y0:y1, x0:x1] = layer[y0 - top : y1 - top, x0 - left : x1 - left]
    return canvas


def _drop_shadow(alpha: npt.NDArray[Any], rng: np.random.Generator, side: int) -> npt.NDArray[Any]:
    """A soft shadow of ``alpha`` (blurred, offset down-right), as darkening in [0, 1)."""
    sigma = float(rng.uniform(0.03, 0.1)) * side
    dy, dx = (int(v) for v in rng.uniform(0.01, 0.08, 2) * side)
    shadow = ndimage.shift(ndimage.gaussian_filter(alpha, sigma), (dy, dx), order=1)
    result: npt.NDArray[Any] = float(rng.uniform(0.2, 0.6)) * shadow
    return result


def _photo_crop(
    photo: npt.NDArray[Any],
    shape: tuple[int, int],
    rng: np.random.Generator,
    scale: tuple[float, float],
) -> npt.NDArray[Any]:
    """A random crop of ``shape`` from ``photo`` rescaled by a random factor, float [0, 1]."""
    needed = max(shape[0] / photo.shape[0], shape[1] / photo.shape[1])
    factor = max(float(rng.uniform(*scale)), needed)
    size = (
        max(shape[1], round(photo.shape[1] * factor)),
        max(shape[0], round(photo.shape[0] * factor)),
    )
    resized = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    top = int(rng.integers(0, resized.shape[0] - shape[0] + 1))
    left = int(rng.integers(0, resized.shape[1] - shape[1] + 1))
    crop = resized[top : top + shape[0], left : left + shape[1]]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return crop.astype(np.float32) / 255.0


def _ellipse(side: int, rng: np.random.Generator) -> npt.NDArray[Any]:
    """A random ellipse or elliptical ring filling a ``side`` square, float {0, 1}."""
    y, x = np.mgrid[-1.0 : 1.0 : side * 1j, -1.0 : 1.0 : side * 1j]
    ry, rx = rng.uniform(0.4, 1.0, 2)
    radius = (y / ry) ** 2 + (x / rx) ** 2
    inner = float(rng.uniform(0.3, 0.9)) if rng.random() < 0.4 else 0.0
    result: npt.NDArray[Any] = ((radius <= 1.0) & (radius >= inner**2)).astype(np.float32)
    return result


def _plain_background(shape: tuple[int, int], rng: np.random.Generator) -> npt.NDArray[Any]:
    """A studio backdrop: a vertical gradient between two random colours, float [0, 1]."""
    start, end = rng.uniform(0.0, 1.0, (2, 3)).astype(np.float32)
    ramp = np.linspace(0.0, 1.0, shape[0], dtype=np.float32)[:, None, None]
    return np.broadcast_to(start + (end - start) * ramp, (*shape, 3)).copy()


def _composite(
    background: npt.NDArray[Any],
    rgb: npt.NDArray[Any],
    alpha: npt.NDArray[Any],
    corner: tuple[int, int],
    shadow: npt.NDArray[Any] | None,
) -> Composite:
    """The product layers over ``background`` (float), with an optional shadow layer."""
    shape = background.shape[:2]
    placed_alpha = _place(alpha, shape, *corner)
    if shadow is not None:
        background = background * (1.0 - _place(shadow, shape, *corner))[:, :, None]
    image = placed_alpha[:, :, None] * _place(rgb, shape, *corner)
    image += (1.0 - placed_alpha[:, :, None]) * background
    return Composite(np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8), placed_alpha)


def _sharp_product_layers(
    grey: npt.NDArray[Any], colour: RGB, side: int
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """:func:`_product_layers` with the alpha cut at 0.5: a crisp edge at any size."""
    rgb, alpha = _product_layers(grey, colour, side)
    return rgb, (alpha > 0.5).astype(np.float32)


def _large_drop_shadow(
    alpha: npt.NDArray[Any], rng: np.random.Generator, side: int
) -> npt.NDArray[Any]:
    """:func:`_drop_shadow` made at an eighth of the side and resized back: the shadow is
    soft, and a blur of several hundred pixels at full size would take minutes."""
    small_side = max(side // 8, 1)
    small = cv2.resize(alpha, (small_side, small_side), interpolation=cv2.INTER_AREA)
    shadow = _drop_shadow(small, rng, small_side)
    return cv2.resize(shadow, (side, side), interpolation=cv2.INTER_LINEAR)


def _catalog_shot(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    scale: tuple[float, float],
    jitter: float,
    shadow_probability: float,
    garment: Callable[[np.random.Generator], npt.NDArray[Any]],
    colour: Callable[[np.random.Generator], RGB],
    background: Callable[[np.random.Generator, tuple[int, int]], npt.NDArray[Any]],
    layers: Callable[
        [npt.NDArray[Any], RGB, int], tuple[npt.NDArray[Any], npt.NDArray[Any]]
    ] = _product_layers,
    drop_shadow: Callable[
        [npt.NDArray[Any], np.random.Generator, int], npt.NDArray[Any]
    ] = _drop_shadow,
) -> Composite:
    """One product near the centre of a backdrop of ``shape``, as in a catalog shot: its
    side a random share ``scale`` of the shorter side, its centre off by up to ``jitter``
    of each side, a drop shadow with ``shadow_probability``."""
    side = round(min(shape) * float(rng.uniform(*scale)))
    rgb, alpha = layers(garment(rng), colour(rng), side)
    offset = rng.uniform(-jitter, jitter, 2) * shape
    corner = (int((shape[0] - side) / 2 + offset[0]), int((shape[1] - side) / 2 + offset[1]))
    shadow = drop_shadow(alpha, rng, side) if rng.random() < shadow_probability else None
    return _composite(background(rng, shape), rgb, alpha, corner, shadow)


class BackgroundRemovalRecipe(SingleNetworkRecipe[BackgroundSettings]):
    """Batches of (shot, true alpha) at the working side; BCE plus soft Dice loss."""

    settings_type = BackgroundSettings

    def __init__(self, spec: ModelSpec, config: TrainConfig) -> None:
        working_side = spec.arch_kwargs["working_side"]
        if config.patch_size != working_side:
            raise ValueError(
                f"patch_size {config.patch_size} must be the model's working_side "
                f"{working_side}: whole shots are resized to the side the network works at"
            )
        super().__init__(spec, config)
        self.photos = list(load_split("train").values())
        self.garments = load_fashion("train")[0]

    def data_description(self) -> dict[str, Any]:
        """What the model was trained and validated on, for the checkpoint sidecar."""
        return {
            "products": "Fashion-MNIST (Debian dataset-fashion-mnist): train split; "
            "evaluation on the test split",
            "categories": list(CATEGORIES),
            "backgrounds": "scikit-image 0.26 shipped photos",
            "train": list(TRAIN_PHOTOS),
            "validation": list(VALIDATION_PHOTOS),
            "recipe": dataclasses.asdict(self.settings),
            "evaluation": {
                "count": EVAL_COUNT,
                "seed": EVAL_SEED,
                "sides": list(EVAL_SIDES),
                "grabcut": {"margin": GRABCUT_MARGIN, "iterations": GRABCUT_ITERATIONS},
                "boundary_tolerance_px": BOUNDARY_TOLERANCE,
            },
        }

    def _background_photo(
        self, rng: np.random.Generator, shape: tuple[int, int]
    ) -> npt.NDArray[Any]:
        """A random training-photo crop of ``shape``, sometimes turned, sometimes recoloured
        (or inverted)."""
        photo = self.photos[int(rng.integers(len(self.photos)))]
        turned = rng.random() < self.settings.background_turn_probability
        quarters = int(rng.integers(1, 4)) if turned else 0
        low, high = self.settings.background_scale
        scale = (low, high)
        crop = _photo_crop(photo, shape[::-1] if quarters % 2 else shape, rng, scale)
        crop = np.ascontiguousarray(np.rot90(crop, quarters))
        if rng.random() < self.settings.background_recolour_probability:
            crop = recolour(np.round(crop * 255.0).astype(np.uint8), rng) / np.float32(255.0)
            if rng.random() < 0.5:
                crop = 1.0 - crop
        return crop

    def _background(self, rng: np.random.Generator, shape: tuple[int, int]) -> npt.NDArray[Any]:
        if rng.random() < self.settings.plain_background_probability:
            return _plain_background(shape, rng)
        crop = self._background_photo(rng, shape)
        if rng.random() < self.settings.distractor_probability:
            crop = self._with_distractors(crop, rng)
        if rng.random() < self.settings.background_blur_probability:
            crop = cv2.GaussianBlur(crop, (0, 0), float(rng.uniform(1.0, 4.0)))
        return crop

    def _with_distractors(
        self, backdrop: npt.NDArray[Any], rng: np.random.Generator
    ) -> npt.NDArray[Any]:
        """``backdrop`` with photo cut-outs pasted anywhere: garment silhouettes, ellipses
        and rings filled with a training photo's texture. They are salient, sharp-edged and
        often central, like a cup's rim, yet background: the product is told apart by
        its look, not by being the object in the middle. A share of them is filled with a
        plain colour gradient instead, as flat as a product, so that colour alone does not
        tell a product either."""
        shape = backdrop.shape[:2]
        low, high = self.settings.distractor_count
        for _ in range(int(rng.integers(low, high + 1))):
            side = max(8, round(min(shape) * float(rng.uniform(*self.settings.distractor_scale))))
            if rng.random() < 0.5:
                alpha = cv2.resize(product_alpha(self._garment(rng)), (side, side))
            else:
                alpha = _ellipse(side, rng)
            if rng.random() < self.settings.flat_distractor_share:
                texture = _plain_background((side, side), rng)
            else:
                texture = self._background_photo(rng, (side, side))
            corner = (
                int(rng.integers(-side // 3, shape[0] - side // 2)),
                int(rng.integers(-side // 3, shape[1] - side // 2)),
            )
            placed = _place(np.clip(alpha, 0.0, 1.0), shape, *corner)[:, :, None]
            backdrop = placed * _place(texture, shape, *corner) + (1.0 - placed) * backdrop
        return backdrop

    def _garment(self, rng: np.random.Generator) -> npt.NDArray[Any]:
        grey = self.garments[int(rng.integers(len(self.garments)))]
        result: npt.NDArray[Any] = grey[:, ::-1] if rng.random() < 0.5 else grey
        return result

    def _colour(self, rng: np.random.Generator) -> RGB:
        if rng.random() < self.settings.neutral_probability:
            return _neutral_colour(rng)
        return _random_colour(rng, self.settings.palette_probability)

    def sample(self, rng: np.random.Generator) -> Composite:
        """One training shot at its own random size."""
        low, high = self.settings.shot_sides
        shape = (int(rng.integers(low, high + 1)), int(rng.integers(low, high + 1)))
        smallest, largest = self.settings.product_scale
        return _catalog_shot(
            rng,
            shape,
            scale=(smallest, largest),
            jitter=self.settings.centre_jitter,
            shadow_probability=self.settings.shadow_probability,
            garment=self._garment,
            colour=self._colour,
            background=self._background,
        )

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of ``step``: deterministic in (seed, step)."""
        rng = np.random.default_rng([self.config.seed, step])
        side = self.config.patch_size
        images, alphas = [], []
        for _ in range(self.config.batch_size):
            composite = self.sample(rng)
            upload = degrade_upload(
                composite.image,
                rng,
                blur_probability=self.config.blur_probability,
                jpeg_probability=self.config.jpeg_probability,
            )
            images.append(area_resize(to_float_batch(np.stack([upload]))[0], side, side))
            alphas.append(area_resize(torch.from_numpy(composite.alpha)[None], side, side))
        return torch.stack(images), torch.stack(alphas).clamp(0.0, 1.0)

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """BCE on alpha plus ``dice_weight`` x soft Dice loss (mean over images). The batch
        is already at the working side, so the U-Net runs without the served resizes."""
        images, target = batch
        alpha = cast(MatteUNet, model).matte(images).float().clamp(1e-6, 1.0 - 1e-6)
        bce = F.binary_cross_entropy(alpha, target)
        overlap = (alpha * target).sum(dim=(1, 2, 3))
        total = alpha.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
        dice = 1.0 - (2.0 * overlap + 1.0) / (total + 1.0)
        loss: torch.Tensor = bce + self.settings.dice_weight * dice.mean()
        return loss

    def evaluate(self, model: nn.Module) -> dict[str, Any]:
        """Validation metrics of ``model`` and of GrabCut."""
        return evaluate_background(model, self.settings.eval_count)


@cache
def eval_composites(split: str = "validation") -> tuple[Composite, ...]:
    """The fixed evaluation set: TEST garments on crops of ``split``'s photos, centred."""
    rng = np.random.default_rng(EVAL_SEED)
    garments = load_fashion("test")[0]
    photos = list(load_split(split).values())
    composites = []
    for index in range(EVAL_COUNT):
        height, width = (int(v) for v in rng.integers(EVAL_SIDES[0], EVAL_SIDES[1] + 1, 2))
        photo = photos[index % len(photos)]

        def backdrop(
            rng: np.random.Generator, shape: tuple[int, int], photo: npt.NDArray[Any] = photo
        ) -> npt.NDArray[Any]:
            return _photo_crop(photo, shape, rng, (0.6, 1.0))

        composite = _catalog_shot(
            rng,
            (height, width),
            scale=(0.55, 0.85),
            jitter=0.04,
            shadow_probability=0.5,
            garment=lambda rng: garments[int(rng.integers(len(garments)))],
            colour=lambda rng: _random_colour(rng, 1.0),
            background=backdrop,
        )
        composites.append(composite)
    return tuple(composites)


def _flat_layers(
    grey: npt.NDArray[Any], colour: RGB, side: int
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """:func:`_product_layers` with the garment filled by ``colour`` alone, unshaded."""
    _, alpha = _product_layers(grey, colour, side)
    flat = np.asarray(colour, np.float32) / 255.0
    return np.broadcast_to(flat, (side, side, 3)).copy(), alpha


def _shrunk(photo: npt.NDArray[Any], short_side: int) -> npt.NDArray[Any]:
    factor = short_side / min(photo.shape[:2])
    size = (round(photo.shape[1] * factor), round(photo.shape[0] * factor))
    return cv2.resize(photo, size, interpolation=cv2.INTER_AREA)


@cache
def second_composites() -> tuple[Composite, ...]:
    """The second evaluation set, built unlike training's shots: TEST garments, alternately
    small and large (:data:`SECOND_SET_SCALES`), anywhere in the frame rather than near the
    centre, half of them one flat colour (:data:`SECOND_SET_FLAT_SHARE`), uniformly random
    colours, on crops of the photo corpus's packaged validation photographs (never a
    training backdrop), 128 to 256 px a side."""
    rng = np.random.default_rng(SECOND_SET_SEED)
    garments = load_fashion("test")[0]
    backdrops = [
        _shrunk(photo.copy(), SECOND_SET_BACKDROP_SIDE)
        for name, photo in load_corpus("photos", "validation").items()
        if name not in VALIDATION_PHOTOS
    ]
    composites = []
    for index in range(EVAL_COUNT):
        height, width = (int(v) for v in rng.integers(EVAL_SIDES[0], EVAL_SIDES[1] + 1, 2))
        side = round(min(height, width) * float(rng.uniform(*SECOND_SET_SCALES[index % 2])))
        grey = garments[int(rng.integers(len(garments)))]
        layers = _flat_layers if rng.random() < SECOND_SET_FLAT_SHARE else _product_layers
        rgb, alpha = layers(grey, _random_colour(rng, 0.0), side)
        corner = (int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1)))
        shadow = _drop_shadow(alpha, rng, side) if rng.random() < 0.5 else None
        backdrop = _photo_crop(backdrops[index % len(backdrops)], (height, width), rng, (0.4, 1.0))
        composites.append(_composite(backdrop, rgb, alpha, corner, shadow))
    return tuple(composites)


def grabcut_mask(image: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """GrabCut's foreground (bool (H, W)) from a centred rectangle."""
    height, width = image.shape[:2]
    top, left = round(GRABCUT_MARGIN * height), round(GRABCUT_MARGIN * width)
    rect = (left, top, width - 2 * left, height - 2 * top)
    mask = np.zeros((height, width), np.uint8)
    models = (np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64))
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    cv2.setRNGSeed(0)
    cv2.grabCut(bgr, mask, rect, *models, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_RECT)
    result: npt.NDArray[Any] = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return result


@cache
def _grabcut(index: int, second: bool = False) -> npt.NDArray[Any]:
    composites = second_composites() if second else eval_composites()
    return grabcut_mask(composites[index].image)


def model_alpha(model: nn.Module, image: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The served alpha channel (float (H, W) in [0, 1]) for a transparent background."""
    rgba = run_uint8(model, image, background_value("transparent"), task=Task.REMOVE_BACKGROUND)
    return rgba[:, :, 3].astype(np.float32) / 255.0


def model_mask(model: nn.Module, composite: Composite) -> npt.NDArray[Any]:
    """The served alpha of ``composite.image`` cut at 0.5 (bool (H, W))."""
    return model_alpha(model, composite.image) > 0.5


def iou(prediction: npt.NDArray[Any], truth: npt.NDArray[Any]) -> float:
    """Intersection over union of two bool masks (1 when both are empty)."""
    union = np.logical_or(prediction, truth).sum()
    return float(np.logical_and(prediction, truth).sum() / union) if union else 1.0


def _boundary(mask: npt.NDArray[Any]) -> npt.NDArray[Any]:
    result: npt.NDArray[Any] = mask & ~ndimage.binary_erosion(mask, border_value=0)
    return result


def boundary_f(prediction: npt.NDArray[Any], truth: npt.NDArray[Any]) -> float:
    """F-score of boundary pixels matched within ``BOUNDARY_TOLERANCE`` px either way."""
    predicted, true = _boundary(prediction), _boundary(truth)
    if not predicted.any() or not true.any():
        return float(predicted.any() == true.any())
    precision = np.mean(ndimage.distance_transform_edt(~true)[predicted] <= BOUNDARY_TOLERANCE)
    recall = np.mean(ndimage.distance_transform_edt(~predicted)[true] <= BOUNDARY_TOLERANCE)
    return float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0


def _score_set(
    model: nn.Module, composites: tuple[Composite, ...], second: bool
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, dict[str, float]]]:
    """IoU and boundary F of the model and GrabCut per composite, and their means."""
    per_case: dict[str, dict[str, dict[str, float]]] = {}
    for index, composite in enumerate(composites):
        truth = composite.alpha > 0.5
        masks = {"model": model_mask(model, composite), "grabcut": _grabcut(index, second)}
        per_case[f"case{index:02d}"] = {
            method: {"iou": iou(mask, truth), "boundary_f": boundary_f(mask, truth)}
            for method, mask in masks.items()
        }
    mean = {
        method: {
            metric: float(np.mean([case[method][metric] for case in per_case.values()]))
            for metric in ("iou", "boundary_f")
        }
        for method in METHODS
    }
    return per_case, mean


def _set_margins(mean: dict[str, dict[str, float]], prefix: str = "") -> dict[str, float]:
    return {
        f"{prefix}iou": mean["model"]["iou"],
        f"{prefix}iou_over_grabcut": mean["model"]["iou"] - mean["grabcut"]["iou"],
        f"{prefix}boundary_f_over_grabcut": mean["model"]["boundary_f"]
        - mean["grabcut"]["boundary_f"],
    }


def evaluate_background(model: nn.Module, count: int = EVAL_COUNT) -> dict[str, Any]:
    """IoU and boundary F on the first ``count`` composites of both sets, for the model and
    GrabCut; and the model's IoU on the first set's shots made on the training photos."""
    per_case, mean = _score_set(model, eval_composites()[:count], second=False)
    second_cases, second_mean = _score_set(model, second_composites()[:count], second=True)
    seen = [
        iou(model_mask(model, composite), composite.alpha > 0.5)
        for composite in eval_composites("train")[:count]
    ]
    return {
        "per_case": per_case,
        "mean": mean,
        "margins": _set_margins(mean) | _set_margins(second_mean, "second_set_"),
        "second_set": {"mean": second_mean} | second_cases,
        "model_iou_on_training_backdrops": float(np.mean(seen)),
    }


def _upscaled_crop(
    photo: npt.NDArray[Any], shape: tuple[int, int], rng: np.random.Generator
) -> npt.NDArray[Any]:
    """A random crop of ``photo`` at ``shape``'s aspect, 60 to 100% of the largest that
    fits, upscaled to ``shape`` (Lanczos); float [0, 1]."""
    height, width = shape
    fit = min(photo.shape[0] / height, photo.shape[1] / width) * float(rng.uniform(0.6, 1.0))
    crop_height, crop_width = max(round(height * fit), 1), max(round(width * fit), 1)
    top = int(rng.integers(0, photo.shape[0] - crop_height + 1))
    left = int(rng.integers(0, photo.shape[1] - crop_width + 1))
    crop = photo[top : top + crop_height, left : left + crop_width]
    resized = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LANCZOS4)
    return np.clip(resized.astype(np.float32) / 255.0, 0.0, 1.0)


def full_size_composite(shape: tuple[int, int], index: int) -> Composite:
    """Full-size shot ``index`` of ``shape`` (height, width): a TEST garment with a crisp
    edge on an upscaled VALIDATION photo crop, with grain. Made on demand: a 12 MP shot
    and its alpha take 84 MB."""
    rng = np.random.default_rng([FULL_SIZE_SEED, *shape, index])
    garments = load_fashion("test")[0]
    photos = list(load_split("validation").values())
    photo = photos[index % len(photos)]
    shot = _catalog_shot(
        rng,
        shape,
        scale=(0.55, 0.85),
        jitter=0.04,
        shadow_probability=0.5,
        garment=lambda rng: garments[int(rng.integers(len(garments)))],
        colour=lambda rng: _random_colour(rng, 1.0),
        background=lambda rng, shape: _upscaled_crop(photo, shape, rng),
        layers=_sharp_product_layers,
        drop_shadow=_large_drop_shadow,
    )
    grain = rng.standard_normal(shot.image.shape, dtype=np.float32) * FULL_SIZE_GRAIN
    image = np.clip(np.round(shot.image + grain), 0, 255).astype(np.uint8)
    return Composite(image, shot.alpha)


def _grabcut_alpha(image: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """GrabCut's mask as the core model answers: RGBA (1, H, W, 4), alpha 0 or 255."""
    alpha = np.where(grabcut_mask(image), 255, 0).astype(np.uint8)
    result: npt.NDArray[Any] = np.concatenate([image, alpha[:, :, None]], axis=2)[None]
    return result


def _mean_scores(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each (upsampling, method, metric) over ``cases``."""
    return {
        upsampling: {
            method: {
                metric: float(np.mean([case[upsampling][method][metric] for case in cases]))
                for metric in ("iou", "boundary_f")
            }
            for method in METHODS
        }
        for upsampling in UPSAMPLINGS
    }


@torch.inference_mode()
def evaluate_full_size(
    spec: ModelSpec,
    model: nn.Module,
    shapes: tuple[tuple[int, int], ...] = FULL_SIZE_SHAPES,
    per_shape: int = FULL_SIZE_PER_SHAPE,
) -> dict[str, Any]:
    """IoU and boundary F at full resolution on ``per_shape`` shots of each of ``shapes``:
    the model through the served plan (``spec``'s, the core model in-process) and GrabCut on
    the same working-size copy, each upsampled with the guided filter and bilinearly."""
    settings = PlanSettings.of(spec)
    core = Uint8ImageModel(model, spec.task).eval()
    options = {settings.background_input: background_value("transparent")[None]}
    per_shape_scores = {}
    for shape in shapes:
        cases = []
        for index in range(per_shape):
            composite = full_size_composite(shape, index)
            truth = composite.alpha > 0.5
            (call,) = plan_image(composite.image, options, settings).calls
            outputs = {
                "model": core(*(torch.from_numpy(array) for array in call.values())).numpy(),
                "grabcut": _grabcut_alpha(call[settings.image_input][0]),
            }
            scores: dict[str, Any] = {}
            for upsampling, edge_aware in UPSAMPLINGS.items():
                variant = dataclasses.replace(settings, edge_aware=edge_aware)
                plan = plan_image(composite.image, options, variant)
                scores[upsampling] = {}
                for method, output in outputs.items():
                    mask = plan.result([output])[:, :, 3] >= 128  # alpha > 0.5
                    scores[upsampling][method] = {
                        "iou": iou(mask, truth),
                        "boundary_f": boundary_f(mask, truth),
                    }
            cases.append(scores)
        per_shape_scores[f"{shape[1]}x{shape[0]}"] = cases
    return {
        "mean": _mean_scores([case for cases in per_shape_scores.values() for case in cases]),
        "per_shape": {name: _mean_scores(cases) for name, cases in per_shape_scores.items()},
        "setup": {
            "shots_per_shape": per_shape,
            "seed": FULL_SIZE_SEED,
            "grain_levels": FULL_SIZE_GRAIN,
            "working_side": settings.tile,
            "boundary_tolerance_px": BOUNDARY_TOLERANCE,
            "grabcut": "on the working-size copy, upsampled as the model's alpha",
        },
    }


def on_white(image: npt.NDArray[Any], alpha: npt.NDArray[Any]) -> Image.Image:
    """``image`` composited on white with ``alpha`` (float (H, W) in [0, 1])."""
    a = alpha[:, :, None]
    return Image.fromarray(np.round(image * a + 255.0 * (1.0 - a)).astype(np.uint8))


def _on_checkerboard(rgba: npt.NDArray[Any], square: int = 8) -> Image.Image:
    height, width = rgba.shape[:2]
    yy, xx = np.mgrid[:height, :width]
    board = np.where(((yy // square + xx // square) % 2 == 0)[:, :, None], 255.0, 204.0)
    a = rgba[:, :, 3:].astype(np.float64) / 255.0
    return Image.fromarray(np.round(rgba[:, :, :3] * a + board * (1.0 - a)).astype(np.uint8))


def comparison_image(model: nn.Module, count: int = 6) -> Image.Image:
    """Per composite: input, GrabCut on white, Vitrine on white and transparent, truth."""
    rows = []
    for index, composite in enumerate(eval_composites()[:count]):
        image = composite.image
        white = run_uint8(model, image, background_value("white"), task=Task.REMOVE_BACKGROUND)
        clear = run_uint8(
            model, image, background_value("transparent"), task=Task.REMOVE_BACKGROUND
        )
        panels = {
            "input": Image.fromarray(image),
            "grabcut": on_white(image, _grabcut(index).astype(np.float64)),
            "vitrine": Image.fromarray(white[:, :, :3]),
            "vitrine transparent": _on_checkerboard(clear),
            "ground truth": on_white(image, composite.alpha),
        }
        rows.append(labelled_row(panels))
    return stack_rows(rows)


def forward(model: nn.Module, image: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """``model(x) -> alpha`` (N, 1, H, W); the ``background`` input (N, 4) = (r, g, b,
    opaque) composites the product on that colour (opaque 255) or keeps the alpha channel
    (opaque 0). The output has 4 channels (RGBA)."""
    x = to_float(image)
    colour = background[:, :3].float()[:, :, None, None] / 255.0  # (N, 3, 1, 1)
    opaque = background[:, 3:].float()[:, :, None, None] / 255.0  # (N, 1, 1, 1)
    alpha = model(x)
    composite = x * alpha + colour * (1.0 - alpha)
    rgb = opaque * composite + (1.0 - opaque) * x
    return torch.cat([rgb, opaque + (1.0 - opaque) * alpha], dim=1)


def demo_case(spec: ModelSpec, name: str, photo: npt.NDArray[Any]) -> DemoCase:
    """An evaluation composite (a test-split product on this photo) to put on white; the
    rival is GrabCut from a centred rectangle, on white too."""
    composite = eval_composites()[VALIDATION_PHOTOS.index(name)]
    truth = np.asarray(on_white(composite.image, composite.alpha))
    grabcut = grabcut_mask(composite.image).astype(np.float64)
    baseline = np.asarray(on_white(composite.image, grabcut))
    return DemoCase(composite.image, truth, "grabcut", baseline, {"background": "white"})


HOOKS = TaskHooks(
    forward=forward,
    evaluate=lambda spec, model: evaluate_background(model),
    evaluate_full_size=evaluate_full_size,
    comparison=lambda spec, model: comparison_image(model),
    recipe=lambda spec: BackgroundRemovalRecipe,
    demo=demo_case,
)
