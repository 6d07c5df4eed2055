"""Plans for photos beyond the core model's sides, checked with small numpy "core models"."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest
from scipy import ndimage

from vitrine.export.triton_config import fullsize_config
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec, Tiling
from vitrine.tiling import (
    Call,
    PlanSettings,
    bilinear_upsample,
    guided_upsample,
    plan_image,
    windows,
)

Core = Callable[[Call], np.ndarray]


def _photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.random((height, width, 3)) * 255, (3, 3, 0))
    return np.clip(smooth * 2 - 128, 0, 255).astype(np.uint8)


def _settings(tiling: Tiling, **fields: Any) -> PlanSettings:
    values: dict[str, Any] = {
        "tile": 64,
        "margin": 4,
        "core_min_side": 8,
        "core_max_side": 96,
        "max_batch": 3,
    }
    return PlanSettings(tiling, **(values | fields))


def _blur(call: Call) -> np.ndarray:
    """A local core model: a 5 x 5 mean with zero padding (receptive radius 2)."""
    images = call["image"].astype(np.float64)
    blurred = ndimage.uniform_filter(images, size=(1, 5, 5, 1), mode="constant")
    return np.round(blurred).astype(np.uint8)


def _blur_x2(call: Call) -> np.ndarray:
    """A local x2 core model: nearest upsampling, then the 5 x 5 mean."""
    images = call["image"].repeat(2, axis=1).repeat(2, axis=2)
    return _blur({"image": images})


def _run(
    image: np.ndarray, options: dict[str, np.ndarray], settings: PlanSettings, core: Core
) -> Any:
    plan = plan_image(image, options, settings)
    for call in plan.calls:
        sides = call["image"].shape[1:3]
        assert len(call["image"]) <= settings.max_batch
        assert all(settings.core_min_side <= side <= settings.core_max_side for side in sides)
    return plan, plan.result([core(call) for call in plan.calls])


@pytest.mark.parametrize(("height", "width"), [(300, 200), (97, 401), (130, 130)])
def test_windows_own_every_pixel_once_and_share_one_size(height: int, width: int) -> None:
    chosen = windows(height, width, tile=64, margin=6)
    owned = np.zeros((height, width), int)
    for window in chosen:
        assert (window.height, window.width) == (min(64, height), min(64, width))
        assert window.top >= 0 and window.top + window.height <= height
        assert window.left >= 0 and window.left + window.width <= width
        row0, column0, row1, column1 = window.keep
        owned[row0:row1, column0:column1] += 1
        # the kept part has the margin of context inside its window, wherever there is photo
        assert row0 - window.top >= min(6, row0) and column0 - window.left >= min(6, column0)
        bottom, right = window.top + window.height, window.left + window.width
        assert bottom - row1 >= min(6, height - row1) and right - column1 >= min(6, width - column1)
    assert (owned == 1).all()


@pytest.mark.parametrize("blend", [False, True])
def test_tiles_of_a_local_network_equal_the_whole_image(blend: bool) -> None:
    image = _photo(230, 170)
    plan, tiled = _run(image, {}, _settings(Tiling.TILES, blend=blend), _blur)
    assert not plan.whole and len(plan.calls) > 1
    assert np.array_equal(tiled, _blur({"image": image[None]})[0])


def test_tiles_scale_with_the_output() -> None:
    image = _photo(150, 110)
    settings = _settings(Tiling.TILES, tile=32, core_max_side=48, scale=2)
    _, tiled = _run(image, {}, settings, _blur_x2)
    assert np.array_equal(tiled, _blur_x2({"image": image[None]})[0])


def test_options_go_with_every_tile() -> None:
    image = _photo(200, 90)
    strength = np.array([[0.25]], np.float32)
    plan = plan_image(image, {"strength": strength}, _settings(Tiling.TILES))
    for call in plan.calls:
        assert call["strength"].shape == (len(call["image"]), 1)
        assert (call["strength"] == 0.25).all()


def test_a_photo_within_the_core_sides_goes_whole() -> None:
    image = _photo(96, 50)
    for tiling in Tiling:
        plan = plan_image(image, {}, _settings(tiling, thumbnail=16))
        assert plan.whole and len(plan.calls) == 1
        assert plan.calls[0]["image"].shape == (1, 96, 50, 3)


def test_feathering_hides_a_per_tile_offset() -> None:
    """A network with a global statistic (here: each tile shifted by its own mean) shows its
    tile boundaries as steps; the feathered blend turns them into ramps."""

    def shifted(call: Call) -> np.ndarray:
        images = call["image"].astype(np.float64)
        means = images.mean(axis=(1, 2, 3), keepdims=True)
        return np.clip(images + means - 128, 0, 255).astype(np.uint8)

    rows = np.linspace(0, 255, 300)[:, None, None] * np.ones((1, 60, 3))
    image = rows.astype(np.uint8)
    settings = _settings(Tiling.TILES, margin=12)
    _, hard = _run(image, {}, settings, shifted)
    _, soft = _run(image, {}, dataclasses.replace(settings, blend=True), shifted)

    def largest_step(result: np.ndarray) -> float:
        return float(np.abs(np.diff(result[:, 30, 0].astype(int))).max())

    assert largest_step(soft) < largest_step(hard) / 2


def _thumbnail_curves(call: Call) -> np.ndarray:
    """A core model like the enhancer: per-channel gains from its input's bilinear 16 px
    thumbnail (half-pixel centres, no antialias), applied pixel by pixel."""
    images = call["image"].astype(np.float64) / 255.0
    count, height, width, _ = images.shape

    def taps(length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        source = np.maximum((np.arange(16) + 0.5) * length / 16 - 0.5, 0.0)
        low = np.minimum(np.floor(source).astype(int), length - 1)
        return low, np.minimum(low + 1, length - 1), source - low

    r0, r1, rw = taps(height)
    c0, c1, cw = taps(width)
    top = images[:, r0] * (1 - rw)[None, :, None, None] + images[:, r1] * rw[None, :, None, None]
    thumb = top[:, :, c0] * (1 - cw)[None, None, :, None] + top[:, :, c1] * cw[None, None, :, None]
    gains = 0.5 / np.maximum(thumb.mean(axis=(1, 2), keepdims=True), 1e-3)
    return np.round(np.clip(images * gains, 0, 1) ** 0.8 * 255).astype(np.uint8)


def test_curves_from_a_probe_equal_the_whole_image() -> None:
    image = _photo(300, 220)
    settings = _settings(Tiling.CURVES, tile=64, thumbnail=16)
    plan, result = _run(image, {}, settings, _thumbnail_curves)
    assert len(plan.calls) == 1 and plan.calls[0]["image"].shape == (1, 64, 64, 3)
    whole = _thumbnail_curves({"image": image[None]})[0]
    assert np.abs(result.astype(int) - whole.astype(int)).max() <= 1  # thumbnail in uint8


def test_a_probe_side_that_is_no_even_multiple_of_the_thumbnail_is_refused() -> None:
    with pytest.raises(ValueError, match="even multiple of the thumbnail"):
        plan_image(_photo(200, 200), {}, _settings(Tiling.CURVES, tile=48, thumbnail=16))


def _fill_holes(call: Call) -> np.ndarray:
    """An inpainting core model: each hole pixel becomes the mean of its window's
    non-hole pixels; the rest passes through."""
    images, masks = call["image"], call["mask"][..., 0] > 0
    out = images.copy()
    for image, mask, result in zip(images, masks, out, strict=True):
        result[mask] = image[~mask].mean(axis=0).round()
    return out


def test_holes_are_filled_in_windows_around_them_and_nothing_else_changes() -> None:
    image = _photo(400, 300)
    mask = np.zeros((400, 300), np.uint8)
    mask[20:30, 40:60] = 255  # two small holes far apart
    mask[350:360, 250:290] = 255
    mask[100:390, 150:155] = 255  # a long stroke: taller than a tile
    settings = _settings(Tiling.HOLES, margin=8, mask_input="mask")
    plan, result = _run(image, {"mask": mask[None, :, :, None]}, settings, _fill_holes)
    read = sum(call["image"].shape[0] * np.prod(call["image"].shape[1:3]) for call in plan.calls)
    assert read < image.shape[0] * image.shape[1]  # not the whole photo
    hole = mask > 0
    assert np.array_equal(result[~hole], image[~hole])
    assert not np.array_equal(result[hole], image[hole])


def test_guided_upsampling_follows_the_photos_edges() -> None:
    """An alpha predicted at low resolution, upsampled: the guided filter puts its edge where
    the photo's edge is; bilinear interpolation leaves it blurred across low-res pixels."""
    height, width = 400, 400
    truth = np.zeros((height, width), bool)
    truth[:, 203:] = True  # the product edge, between low-res pixels
    photo = np.where(truth[:, :, None], 220, 40).astype(np.uint8).repeat(3, axis=2)
    low = truth.reshape(50, 8, 50, 8).mean(axis=(1, 3)).astype(np.float32)
    guided = guided_upsample(low, photo) > 0.5
    bilinear = bilinear_upsample(low, photo) > 0.5
    assert np.array_equal(
        bilinear, cv2.resize(low, (width, height), interpolation=cv2.INTER_LINEAR) > 0.5
    )

    def wrong(mask: np.ndarray) -> int:
        return int((mask != truth).sum())

    assert wrong(guided) < wrong(bilinear) / 2


def test_the_matte_is_composited_at_full_size() -> None:
    image = _photo(500, 360)
    background = np.array([[0, 0, 255, 255]], np.uint8)  # opaque blue

    def matte(call: Call) -> np.ndarray:
        images = call["image"]
        assert (call["background"] == 0).all()  # the core is asked for the alpha
        alpha = np.full(images.shape[:3] + (1,), 255, np.uint8)
        alpha[:, :, : images.shape[2] // 2] = 0  # left half background
        return np.concatenate([images, alpha], axis=3)

    settings = _settings(Tiling.MATTE, tile=90, background_input="background")
    plan, result = _run(image, {"background": background}, settings, matte)
    assert plan.calls[0]["image"].shape == (1, 90, 65, 3)
    assert result.shape == (500, 360, 4) and (result[:, :, 3] == 255).all()
    assert np.array_equal(result[:, :100, :3], np.broadcast_to([0, 0, 255], (500, 100, 3)))
    assert np.array_equal(result[:, -100:, :3], image[:, -100:])


def test_the_matte_without_edge_aware_upsampling_is_the_bilinear_alpha() -> None:
    """The comparison variant: the same plan and composite, the alpha resized bilinearly."""
    image = _photo(500, 360)
    transparent = np.zeros((1, 4), np.uint8)

    def matte(call: Call) -> np.ndarray:
        images = call["image"]
        rows, columns = np.mgrid[: images.shape[1], : images.shape[2]]
        alpha = np.where(rows + columns < images.shape[1], 0, 255).astype(np.uint8)
        return np.concatenate(
            [images, np.broadcast_to(alpha[None, :, :, None], (1, *alpha.shape, 1))], 3
        )

    settings = _settings(Tiling.MATTE, tile=90, background_input="background")
    guided = _run(image, {"background": transparent}, settings, matte)[1]
    variant = dataclasses.replace(settings, edge_aware=False)
    plan, bilinear = _run(image, {"background": transparent}, variant, matte)
    low = matte(plan.calls[0])[0, :, :, 3].astype(np.float32) / 255.0
    expected = np.round(bilinear_upsample(low, image) * 255.0).astype(np.uint8)
    assert np.array_equal(bilinear[:, :, 3], expected)
    assert np.array_equal(bilinear[:, :, :3], image)  # opaque 0: the photo with its alpha
    assert not np.array_equal(bilinear[:, :, 3], guided[:, :, 3])


_EDITORS = [spec for spec in SPECS.values() if spec.large is not None]


@pytest.mark.parametrize("spec", _EDITORS, ids=lambda spec: spec.name)
def test_plan_settings_are_what_the_full_size_step_is_configured_with(spec: ModelSpec) -> None:
    settings = PlanSettings.of(spec)
    config = fullsize_config(spec)
    parameters = {key: value.string_value for key, value in config.parameters.items()}
    assert PlanSettings.from_parameters(parameters) == settings
    assert settings.image_input == config.input[0].name
    assert settings.edge_aware  # served: the guided filter
