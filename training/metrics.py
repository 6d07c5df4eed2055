"""Image quality metrics on uint8 RGB images: PSNR and SSIM on the Y channel and on RGB."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from skimage.filters import sobel
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

__all__ = ["luma", "luminance", "luminance_edges", "psnr", "ssim", "quality_report"]

_BT601 = np.array([0.299, 0.587, 0.114])


def luminance(image: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """BT.601-weighted sum of an RGB image's channels, float64 in the image's own units."""
    result: npt.NDArray[Any] = image.astype(np.float64) @ _BT601
    return result


def luminance_edges(image: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Sobel edge magnitude of a uint8 RGB image's luminance scaled to [0, 1]."""
    return np.asarray(sobel(luminance(image) / 255.0))


def luma(image: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """ITU-R BT.601 luma (Y of YCbCr, range 16..235) as float64, as SR papers measure it."""
    rgb = image.astype(np.float64) / 255.0
    result: npt.NDArray[Any] = 16.0 + rgb @ np.array([65.481, 128.553, 24.966])
    return result


def _crop(image: npt.NDArray[Any], border: int) -> npt.NDArray[Any]:
    return image[border:-border, border:-border] if border else image


def psnr(
    reference: npt.NDArray[Any], test: npt.NDArray[Any], *, border: int = 0, y_only: bool = False
) -> float:
    """PSNR in dB with ``border`` pixels cropped on every side."""
    ref, out = _crop(reference, border), _crop(test, border)
    if y_only:
        return float(peak_signal_noise_ratio(luma(ref), luma(out), data_range=255.0))
    return float(peak_signal_noise_ratio(ref, out, data_range=255))


def ssim(
    reference: npt.NDArray[Any], test: npt.NDArray[Any], *, border: int = 0, y_only: bool = False
) -> float:
    """SSIM (Gaussian window, sigma 1.5, as Wang et al.) with ``border`` pixels cropped."""
    ref, out = _crop(reference, border), _crop(test, border)
    options = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    if y_only:
        return float(structural_similarity(luma(ref), luma(out), data_range=255.0, **options))
    return float(structural_similarity(ref, out, data_range=255, channel_axis=2, **options))


def quality_report(
    reference: npt.NDArray[Any], test: npt.NDArray[Any], *, border: int
) -> dict[str, float]:
    """PSNR and SSIM on Y and RGB, border cropped."""
    return {
        "psnr_y": psnr(reference, test, border=border, y_only=True),
        "psnr_rgb": psnr(reference, test, border=border),
        "ssim_y": ssim(reference, test, border=border, y_only=True),
        "ssim_rgb": ssim(reference, test, border=border),
    }
