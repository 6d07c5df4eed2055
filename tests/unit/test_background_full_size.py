"""The full-size cut-out evaluation: its shots, and the served plan scored both ways."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from vitrine.registry import get_spec
from vitrine.training.architectures.matte_unet import MatteUNet
from vitrine.training.background import (
    METHODS,
    UPSAMPLINGS,
    _drop_shadow,
    _large_drop_shadow,
    evaluate_full_size,
    full_size_composite,
)


def test_full_size_shots_have_a_crisp_product_edge_and_are_reproducible() -> None:
    shot = full_size_composite((300, 400), 1)
    again = full_size_composite((300, 400), 1)
    assert shot.image.shape == (300, 400, 3) and shot.image.dtype == np.uint8
    assert np.array_equal(shot.image, again.image) and np.array_equal(shot.alpha, again.alpha)
    assert set(np.unique(shot.alpha)) == {0.0, 1.0}  # no soft rim: the true edge is exact
    assert 0.05 < shot.alpha.mean() < 0.6  # a garment 55 to 85 % of the shorter side
    rows, columns = np.nonzero(shot.alpha)
    assert abs(rows.mean() - 150) < 60 and abs(columns.mean() - 200) < 60  # near the centre
    other = full_size_composite((300, 400), 2)
    assert not np.array_equal(shot.alpha, other.alpha)


def test_the_large_drop_shadow_is_close_to_the_full_resolution_one() -> None:
    """Made at an eighth of the side: its offset is rounded to 8 px, its darkness kept."""
    alpha = np.zeros((256, 256), np.float32)
    alpha[64:192, 80:176] = 1.0
    for seed in range(4):
        exact = _drop_shadow(alpha, np.random.default_rng(seed), 256)
        fast = _large_drop_shadow(alpha, np.random.default_rng(seed), 256)
        assert fast.shape == exact.shape
        assert np.abs(fast - exact).mean() < 0.05 * exact.max()
        assert abs(fast.sum() / exact.sum() - 1.0) < 0.05


def test_full_size_evaluation_scores_both_upsamplings_of_model_and_grabcut() -> None:
    """With a tiny network and a 128 px working side, so GrabCut stays cheap."""
    spec = get_spec("remove_background")
    assert spec.large is not None
    small = dataclasses.replace(spec, large=dataclasses.replace(spec.large, tile=128))
    torch.manual_seed(0)
    model = MatteUNet(features=4, levels=2, working_side=16).eval()
    report = evaluate_full_size(small, model, shapes=((1040, 1100),), per_shape=2)
    assert set(report["per_shape"]) == {"1100x1040"}
    assert report["per_shape"]["1100x1040"] == report["mean"]  # one shape: its mean is all
    for upsampling in UPSAMPLINGS:
        for method in METHODS:
            scores = report["mean"][upsampling][method]
            assert set(scores) == {"iou", "boundary_f"}
            assert all(0.0 <= value <= 1.0 for value in scores.values())
    # the two upsamplings are different methods: GrabCut's binary alpha comes out differently
    assert report["mean"]["guided"]["grabcut"] != report["mean"]["bilinear"]["grabcut"]
    assert report["setup"]["working_side"] == 128
