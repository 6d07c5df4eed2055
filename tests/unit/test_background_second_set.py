"""The second background-removal evaluation set is built unlike training's shots."""

from __future__ import annotations

import numpy as np

from vitrine.registry import get_spec
from vitrine.training.background import (
    EVAL_COUNT,
    EVAL_SIDES,
    SECOND_SET_SCALES,
    BackgroundSettings,
    boundary_f,
    eval_composites,
    iou,
    second_composites,
)
from vitrine.training.config import load_config


def _box(alpha: np.ndarray) -> tuple[int, int, int, int]:
    rows, columns = np.flatnonzero((alpha > 0.5).any(1)), np.flatnonzero((alpha > 0.5).any(0))
    return rows[0], rows[-1] + 1, columns[0], columns[-1] + 1


def test_second_set_is_fixed_and_sized_as_the_first() -> None:
    composites = second_composites()
    assert len(composites) == EVAL_COUNT
    for composite in composites:
        assert composite.image.dtype == np.uint8 and composite.image.shape[2] == 3
        assert composite.alpha.shape == composite.image.shape[:2]
        assert all(EVAL_SIDES[0] <= side <= EVAL_SIDES[1] for side in composite.alpha.shape)
        assert (composite.alpha > 0.5).any(), "every shot holds a product"
    assert not any(
        np.array_equal(a.image, b.image) for a, b in zip(composites, eval_composites(), strict=True)
    )


def test_garment_scales_lie_outside_training() -> None:
    trained = BackgroundSettings(**load_config("remove_background", "full").recipe).product_scale
    (small_low, small_high), (large_low, large_high) = SECOND_SET_SCALES
    assert small_high <= trained[0] and large_high > trained[1]
    shares = []
    for composite in second_composites():
        top, bottom, left, right = _box(composite.alpha)
        shares.append(max(bottom - top, right - left) / min(composite.alpha.shape))
    small, large = np.array(shares[0::2]), np.array(shares[1::2])
    assert small.max() <= small_high + 0.02  # a garment fills at most its square
    assert np.median(large) > trained[1] * 0.9 > small.max()


def test_products_leave_the_centre_and_half_are_flat() -> None:
    offsets, flat = [], 0
    for composite in second_composites():
        height, width = composite.alpha.shape
        top, bottom, left, right = _box(composite.alpha)
        offsets.append(
            max(
                abs((top + bottom) / 2 - height / 2) / height,
                abs((left + right) / 2 - width / 2) / width,
            )
        )
        solid = composite.alpha > 0.99
        pixels = composite.image[solid].astype(np.int16)
        flat += bool(solid.sum() > 20 and np.ptp(pixels, axis=0).max() <= 60)
    trained_jitter = BackgroundSettings(
        **load_config("remove_background", "full").recipe
    ).centre_jitter
    assert max(offsets) > 2 * trained_jitter
    assert EVAL_COUNT // 4 <= flat <= 3 * EVAL_COUNT // 4


def test_masks_scores_on_a_tiny_case() -> None:
    truth = np.zeros((20, 20), bool)
    truth[5:15, 5:15] = True
    shifted = np.roll(truth, 1, axis=1)
    assert iou(truth, truth) == 1.0 and boundary_f(truth, truth) == 1.0
    assert iou(shifted, truth) == 90 / 110
    assert boundary_f(shifted, truth) == 1.0  # within the 2 px tolerance
    assert boundary_f(np.roll(truth, 5, axis=1), truth) < 1.0


def test_second_set_targets_are_declared() -> None:
    targets = get_spec("remove_background").quality_targets
    assert targets["second_set_iou"] == targets["iou"] == 0.90
