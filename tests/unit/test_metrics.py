"""Metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from vitrine.training.metrics import luma, psnr, quality_report, ssim


def test_psnr_of_a_known_error() -> None:
    reference = np.full((16, 16, 3), 100, np.uint8)
    test = reference.copy()
    test[:] = 110  # MSE 100 -> 10*log10(255^2/100)
    assert psnr(reference, test) == pytest.approx(28.1308, abs=1e-3)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # identical -> inf dB
def test_border_is_cropped() -> None:
    reference = np.zeros((20, 20, 3), np.uint8)
    test = reference.copy()
    test[0, :] = 255  # only the border differs
    assert psnr(reference, test, border=2) == float("inf")
    assert ssim(reference, test, border=2) == pytest.approx(1.0)


def test_luma_range_is_bt601() -> None:
    assert luma(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16.0)
    assert luma(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235.0)


def test_quality_report_keys() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert set(quality_report(image, image[::-1].copy(), border=2)) == {
        "psnr_y",
        "psnr_rgb",
        "ssim_y",
        "ssim_rgb",
    }
