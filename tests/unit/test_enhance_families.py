"""Enhancement's degradation families: wider than training, exact, and scored per family."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from vitrine.registry import ENHANCE_FAMILIES, get_spec
from vitrine.training.enhance import (
    BASELINES,
    Degradation,
    evaluate_families,
    mean_delta_e,
)
from vitrine.training.enhance_families import (
    FAMILIES,
    FAMILY_RANGES,
    MIN_GAMMA_STEP,
    TRAINING_RANGES,
    TRAINING_SHARES,
    Adjustment,
    draw_cases,
    draw_training,
)
from vitrine.training.metrics import psnr


def _stops(gain: float) -> float:
    """Stops of a gain on sRGB values (sRGB is about linear light to the power 1 / 2.2)."""
    return 2.2 * math.log2(gain)


def test_family_ranges_are_wider_than_training() -> None:
    assert FAMILY_RANGES["scale"][0] < TRAINING_RANGES["contrast"][0]
    for key in ("scale", "under_ev"):
        assert FAMILY_RANGES[key][0] < TRAINING_RANGES[key][0], key
    assert FAMILY_RANGES["over_ev"][1] > TRAINING_RANGES["over_ev"][1]
    for key in ("gamma", "cast"):
        (low, high), (train_low, train_high) = FAMILY_RANGES[key], TRAINING_RANGES[key]
        assert low < train_low and high > train_high, key
    assert FAMILY_RANGES["under_ev"][0] < _stops(TRAINING_RANGES["gain"][0])
    assert FAMILY_RANGES["over_ev"][1] > _stops(TRAINING_RANGES["gain"][1])


def test_training_mixture_stays_within_training_ranges() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = Degradation.random(rng)
        assert TRAINING_RANGES["gamma"][0] <= d.gamma <= TRAINING_RANGES["gamma"][1]
        assert TRAINING_RANGES["contrast"][0] <= d.contrast <= 1.0
        assert all(TRAINING_RANGES["cast"][0] <= g <= TRAINING_RANGES["cast"][1] for g in d.cast)


def test_registry_names_every_family_and_its_targets() -> None:
    assert set(FAMILIES) == set(ENHANCE_FAMILIES)
    targets = get_spec("enhance").quality_targets
    for family in FAMILIES:
        assert f"{family}_psnr_over_best_baseline_db" in targets
        assert f"{family}_delta_e_below_best_baseline" in targets
    assert targets["linear_psnr_vs_autocontrast_db"] == -1.0
    assert targets["neutral_psnr_db"] == 35.0


def test_training_draws_stay_within_training_ranges_and_leave_some_photos_alone() -> None:
    rng = np.random.default_rng(0)
    draws = [draw_training(rng) for _ in range(2000)]
    ranges = TRAINING_RANGES
    for d in draws:
        assert ranges["gamma"][0] <= d.gamma <= ranges["gamma"][1]
        assert ranges["under_ev"][0] <= d.ev <= ranges["over_ev"][1]
        assert d.scale == 1.0 or ranges["scale"][0] <= d.scale <= ranges["scale"][1]
        assert 0.0 <= d.offset <= 1.0 - d.scale + 1e-12
        assert all(
            d.gains == (1.0, 1.0, 1.0) or ranges["cast"][0] <= g <= ranges["cast"][1]
            for g in d.gains
        )
    alone = np.mean([d == Adjustment() for d in draws])
    assert alone >= TRAINING_SHARES["identity"] - 0.03
    assert any(d.ev < 0 for d in draws) and any(d.ev > 0 for d in draws)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_draws_lie_in_the_family_ranges_and_repeat(family: str) -> None:
    cases = draw_cases(family, ["a", "b"], 20, seed=3)
    assert cases == draw_cases(family, ["a", "b"], 20, seed=3)
    assert [name for name, _ in cases] == ["a"] * 20 + ["b"] * 20
    for _, adjustment in cases:
        assert adjustment != Adjustment(), "a family draw must degrade"
        assert FAMILY_RANGES["gamma"][0] <= adjustment.gamma <= FAMILY_RANGES["gamma"][1]
        if adjustment.gamma != 1.0:
            assert abs(math.log(adjustment.gamma)) >= math.log(MIN_GAMMA_STEP) - 1e-12
        assert all(
            FAMILY_RANGES["cast"][0] <= g <= FAMILY_RANGES["cast"][1] for g in adjustment.gains
        )
        if adjustment.scale != 1.0:
            assert FAMILY_RANGES["scale"][0] <= adjustment.scale <= FAMILY_RANGES["scale"][1]
            assert 0.0 <= adjustment.offset <= 1.0 - adjustment.scale
        if adjustment.ev:
            low, high = FAMILY_RANGES["under_ev" if adjustment.ev < 0 else "over_ev"]
            assert low <= adjustment.ev <= high


def test_families_draw_their_own_parameters_only() -> None:
    first = {family: draw_cases(family, ["a"], 1, seed=1)[0][1] for family in FAMILIES}
    assert first["linear"].gamma == 1.0 and first["linear"].ev == 0.0
    assert first["gamma"].scale == 1.0 and first["gamma"].gains == (1.0, 1.0, 1.0)
    assert first["colour_cast"].gamma == 1.0 and first["colour_cast"].scale == 1.0
    assert first["under_exposure"].ev < 0 < first["over_exposure"].ev
    combined = first["combined"]
    assert combined.ev and combined.gamma != 1.0 and combined.scale != 1.0


def _ramp() -> np.ndarray:
    levels = np.repeat(np.arange(256, dtype=np.uint8)[None, :], 8, axis=0)
    return np.stack([levels, levels[:, ::-1], levels], axis=2)


def test_adjustment_is_exact_on_a_ramp() -> None:
    ramp = _ramp()
    assert np.array_equal(Adjustment().apply(ramp), ramp)
    linear = Adjustment(scale=0.5, offset=0.25).apply(ramp).astype(np.float64)
    assert np.abs(linear - (ramp * 0.5 + 63.75)).max() <= 0.5
    assert Adjustment(gamma=2.0).apply(ramp)[0, 128, 0] == round((128 / 255) ** 2 * 255)
    # +1 stop doubles linear light: sRGB 0.5 (linear 0.214) becomes linear 0.428, sRGB ~0.686
    assert abs(int(Adjustment(ev=1.0).apply(ramp)[0, 128, 0]) - 175) <= 1
    cast = Adjustment(gains=(1.3, 1.0, 0.7)).apply(ramp)
    assert cast[0, 255, 0] == 255 and cast[0, 200, 2] == round(200 * 0.7)


def test_autocontrast_undoes_a_linear_change() -> None:
    rng = np.random.default_rng(0)
    photo = np.clip(rng.normal(128, 50, (64, 64, 3)), 0, 255).astype(np.uint8)
    upload = Adjustment(scale=0.5, offset=0.2).apply(photo)
    assert psnr(photo, BASELINES["autocontrast"](upload)) > psnr(photo, upload) + 10


def test_mean_delta_e_is_zero_alike_and_grows_with_a_cast() -> None:
    photo = _ramp()
    assert mean_delta_e(photo, photo) == 0.0
    weak = mean_delta_e(photo, Adjustment(gains=(1.05, 1.0, 0.95)).apply(photo))
    strong = mean_delta_e(photo, Adjustment(gains=(1.2, 1.0, 0.8)).apply(photo))
    assert 0.0 < weak < strong


class _Dimmer(nn.Module):
    """A stand-in editor: 90 % of its input."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image * 0.9


def test_evaluate_families_scores_each_family_and_the_checks() -> None:
    rng = np.random.default_rng(1)
    photos = {
        name: np.clip(rng.normal(120, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
        for name in ("p", "q")
    }
    entries, margins = evaluate_families(_Dimmer(), photos, draws=1)
    assert set(entries) == {f"family_{family}" for family in FAMILIES} | {"neutral"}
    targets = set(get_spec("enhance").quality_targets)
    assert set(margins) == targets - {"psnr_over_best_baseline_db", "delta_e_below_best_baseline"}
    linear = entries["family_linear"]
    assert len(linear) == 3  # the mean row and one draw per photo
    mean_psnr = np.mean([row["model"]["psnr"] for key, row in linear.items() if key != "mean"])
    assert linear["mean"]["model"]["psnr"] == pytest.approx(mean_psnr)
    expected = linear["mean"]["model"]["psnr"] - linear["mean"]["autocontrast"]["psnr"]
    assert margins["linear_psnr_vs_autocontrast_db"] == pytest.approx(expected)
    dimmed = {
        name: psnr(photo, np.round(photo * 0.9).astype(np.uint8)) for name, photo in photos.items()
    }
    assert margins["neutral_psnr_db"] == pytest.approx(min(dimmed.values()), abs=0.5)
    assert set(entries["neutral"]["p"]) == {"model", "clahe", "autocontrast", "grey_world"}
