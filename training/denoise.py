"""Denoising recipe: Gaussian noise (sigma 5-50) and JPEG artefacts on clean photo crops, an
L1 loss, and an evaluation against tuned classical denoisers.

Evaluation adds fixed, seeded degradations (``EVAL_CASES``: Gaussian sigma 15, 25, 50 and
JPEG quality 20) to each validation photo, quantised to uint8 as an upload would be. The
baselines are OpenCV's ``fastNlMeansDenoisingColored`` and scikit-image's
``denoise_nl_means`` and ``denoise_bilateral``; each is tuned per case over a grid
(``BASELINE_GRIDS``) and reported at the setting with the best mean PSNR on these very
photos, an oracle choice that favours the baselines.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
from PIL import Image
from skimage.restoration import denoise_bilateral, denoise_nl_means, estimate_sigma
from torch import nn

from vitrine import paths
from vitrine.spec import ModelSpec, Task
from vitrine.training.grids import labelled_row, stack_rows
from vitrine.training.hooks import DemoCase, TaskHooks
from vitrine.training.metrics import psnr, ssim
from vitrine.training.photos import VALIDATION_PHOTOS, load_split, recolour
from vitrine.training.restoration import RestorationRecipe
from vitrine.training.uint8_wrapper import blend, run_uint8, to_float

__all__ = [
    "BASELINE_GRIDS",
    "EVAL_CASES",
    "HOOKS",
    "DenoisingRecipe",
    "DenoisingSettings",
    "Noise",
    "best_baseline",
    "comparison_image",
    "demo_case",
    "evaluate_denoise",
    "forward",
]

FULL_STRENGTH = np.array([1.0], dtype=np.float32)


@dataclass(frozen=True)
class Noise:
    """Additive Gaussian noise of ``sigma`` (0-255 scale), then JPEG at ``jpeg_quality``."""

    sigma: float = 0.0
    jpeg_quality: int | None = None

    def apply(self, image: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        """Degrade a uint8 RGB image into a uint8 upload."""
        noisy = image.astype(np.float64) + rng.normal(0.0, self.sigma, image.shape)
        out: npt.NDArray[np.uint8] = np.round(np.clip(noisy, 0.0, 255.0)).astype(np.uint8)
        if self.jpeg_quality is None:
            return out
        buffer = io.BytesIO()
        Image.fromarray(out).save(buffer, format="JPEG", quality=self.jpeg_quality)
        return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))

    @classmethod
    def random(
        cls, rng: np.random.Generator, jpeg_probability: float, *, log_sigma: bool = False
    ) -> Noise:
        """Gaussian noise (sigma 5-50: uniform, or log-uniform with ``log_sigma``), JPEG
        (quality 10-60), or both; never neither."""
        jpeg = rng.random() < jpeg_probability
        noisy = not jpeg or rng.random() < 0.3
        if not noisy:
            sigma = 0.0
        elif log_sigma:
            sigma = float(np.exp(rng.uniform(np.log(5.0), np.log(50.0))))
        else:
            sigma = float(rng.uniform(5.0, 50.0))
        return cls(sigma=sigma, jpeg_quality=int(rng.integers(10, 61)) if jpeg else None)


EVAL_CASES: dict[str, Noise] = {
    "sigma15": Noise(sigma=15.0),
    "sigma25": Noise(sigma=25.0),
    "sigma50": Noise(sigma=50.0),
    "jpeg20": Noise(jpeg_quality=20),
}
_EVAL_SEED = 2026


def _cv2_nl_means(image: npt.NDArray[Any], h: float) -> npt.NDArray[Any]:
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    out = cv2.fastNlMeansDenoisingColored(bgr, None, h, h, 7, 21)
    return np.ascontiguousarray(out[:, :, ::-1])


def _noise_sigma(image: npt.NDArray[Any]) -> float:
    """Estimated noise sigma (0-1 scale), the usual companion of ``denoise_nl_means``."""
    return float(
        estimate_sigma(image.astype(np.float64) / 255.0, channel_axis=-1, average_sigmas=True)
    )


def _skimage_nl_means(image: npt.NDArray[Any], factor: float) -> npt.NDArray[Any]:
    sigma = _noise_sigma(image)
    out = denoise_nl_means(
        image.astype(np.float64) / 255.0,
        h=factor * sigma,
        sigma=sigma,
        patch_size=5,
        patch_distance=6,
        fast_mode=True,
        channel_axis=-1,
    )
    result: npt.NDArray[Any] = np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
    return result


def _bilateral(image: npt.NDArray[Any], setting: tuple[float, float]) -> npt.NDArray[Any]:
    colour_sigma, spatial_sigma = setting
    out = denoise_bilateral(
        image.astype(np.float64) / 255.0,
        sigma_color=colour_sigma,
        sigma_spatial=spatial_sigma,
        channel_axis=-1,
    )
    result: npt.NDArray[Any] = np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
    return result


BASELINE_GRIDS: dict[
    str, tuple[Callable[[npt.NDArray[Any], Any], npt.NDArray[Any]], tuple[Any, ...]]
] = {
    "cv2_nl_means": (_cv2_nl_means, (5.0, 10.0, 15.0, 20.0, 30.0, 45.0)),  # h = hColor
    "skimage_nl_means": (_skimage_nl_means, (0.4, 0.5, 0.6, 0.8, 1.0, 1.3)),  # h / est. sigma
    "skimage_bilateral": (
        _bilateral,
        ((0.02, 1.0), (0.05, 1.0), (0.05, 1.5), (0.1, 1.5), (0.1, 3.0), (0.2, 3.0)),
    ),
}
"""Baseline -> (function of (image, setting), settings tried)."""


def best_baseline(metrics: dict[str, Any], case: str) -> tuple[str, Any]:
    """The best baseline of ``case`` and its tuned setting, from an evaluation report."""
    name = max(BASELINE_GRIDS, key=lambda baseline: metrics["mean"][baseline][f"psnr_{case}"])
    setting = metrics["per_case"][case]["baseline_settings"][name]
    return name, tuple(setting) if isinstance(setting, list) else setting


def _degraded(case: str, name: str, clean: npt.NDArray[Any]) -> npt.NDArray[Any]:
    index = (list(EVAL_CASES).index(case), VALIDATION_PHOTOS.index(name))
    return EVAL_CASES[case].apply(clean, np.random.default_rng([_EVAL_SEED, *index]))


@cache
def _tuned_baselines() -> dict[str, dict[str, Any]]:
    """Per case and baseline: the best setting, and its PSNR/SSIM per photo."""
    photos = load_split("validation")
    tuned: dict[str, dict[str, Any]] = {}
    for case in EVAL_CASES:
        tuned[case] = {}
        degraded = {name: _degraded(case, name, clean) for name, clean in photos.items()}
        for baseline, (denoise, settings) in BASELINE_GRIDS.items():
            outputs = {
                setting: {name: denoise(image, setting) for name, image in degraded.items()}
                for setting in settings
            }
            scores = {
                setting: float(np.mean([psnr(photos[n], out) for n, out in results.items()]))
                for setting, results in outputs.items()
            }
            best = max(scores, key=scores.__getitem__)
            tuned[case][baseline] = {
                "setting": list(best) if isinstance(best, tuple) else best,
                "psnr_by_setting": {str(s): v for s, v in scores.items()},
                "photos": {
                    name: {"psnr": psnr(photos[name], out), "ssim": ssim(photos[name], out)}
                    for name, out in outputs[best].items()
                },
            }
    return tuned


@dataclass(frozen=True)
class DenoisingSettings:
    """The ``[recipe]`` table of a denoiser's training config."""

    rescale: tuple[float, float] = (1.0, 1.0)  # shrink factor of a photo before cropping
    recolour_probability: float = 0.0  # permute channels and remap each
    log_sigma: bool = False  # sigma log-uniform rather than uniform


class DenoisingRecipe(RestorationRecipe[DenoisingSettings]):
    """Gaussian noise (sigma 5-50) and/or JPEG artefacts on clean crops; L1 loss."""

    settings_type = DenoisingSettings
    degradation = "Gaussian sigma 5-50 and/or JPEG quality 10-60, quantised to uint8"
    eval_cases = EVAL_CASES

    def clean_crop(self, rng: np.random.Generator) -> npt.NDArray[Any]:
        """A clean crop recoloured (:func:`recolour`) with ``recolour_probability``: most
        scikit-image TRAIN photos are grey, the photos a storefront cleans are not."""
        crop = super().clean_crop(rng)
        if rng.random() < self.settings.recolour_probability:
            crop = recolour(crop, rng)
        return crop

    def crop(self, photo: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        """A crop of ``photo`` shrunk by a random factor in ``[recipe] rescale`` (finer
        detail per pixel); the ``photos`` corpus scales its crops by ``[data] scale``."""
        low, high = self.settings.rescale
        factor = max(float(rng.uniform(low, high)), self.config.patch_size / min(photo.shape[:2]))
        if factor < 1.0:
            size = (round(photo.shape[1] * factor), round(photo.shape[0] * factor))
            photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
        return super().crop(photo, rng)

    def degrade(self, crop: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        """A random :class:`Noise` applied to ``crop``. With ``[recipe] log_sigma`` sigma is
        drawn log-uniformly (as many samples below 16 as above): uploads' noise is mostly low."""
        noise = Noise.random(rng, self.config.jpeg_probability, log_sigma=self.settings.log_sigma)
        return noise.apply(crop, rng)


def forward(model: nn.Module, image: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """``model(x) -> y``, served with ``strength`` (N, 1) blending ``x + s * (y - x)``."""
    x = to_float(image)
    return blend(x, model(x), strength)


def _denoised(model: nn.Module, image: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return run_uint8(model, image, FULL_STRENGTH, task=Task.DENOISE)


def evaluate_denoise(model: nn.Module) -> dict[str, Any]:
    """PSNR/SSIM (RGB) per case and photo for the model, the input and the tuned baselines."""
    photos = load_split("validation")
    tuned = _tuned_baselines()
    per_case: dict[str, Any] = {}
    mean: dict[str, dict[str, float]] = {}
    for case in EVAL_CASES:
        scores: dict[str, dict[str, dict[str, float]]] = {"model": {}, "input": {}}
        for name, clean in photos.items():
            degraded = _degraded(case, name, clean)
            for method, out in (("model", _denoised(model, degraded)), ("input", degraded)):
                scores[method][name] = {"psnr": psnr(clean, out), "ssim": ssim(clean, out)}
        scores |= {baseline: entry["photos"] for baseline, entry in tuned[case].items()}
        per_case[case] = {
            "photos": scores,
            "baseline_settings": {b: entry["setting"] for b, entry in tuned[case].items()},
        }
        for method, by_photo in scores.items():
            for metric in ("psnr", "ssim"):
                value = float(np.mean([cell[metric] for cell in by_photo.values()]))
                mean.setdefault(method, {})[f"{metric}_{case}"] = value
    margins = {
        f"psnr_over_best_baseline_db_{case}": mean["model"][f"psnr_{case}"]
        - max(mean[b][f"psnr_{case}"] for b in BASELINE_GRIDS)
        for case in EVAL_CASES
    }
    return {"per_case": per_case, "mean": mean, "margins": margins}


def comparison_image(model: nn.Module) -> Image.Image:
    """Per case, on a crop of a validation photo: noisy, each tuned baseline, Vitrine, clean."""
    photos = load_split("validation")
    tuned = _tuned_baselines()
    rows = []
    for case in EVAL_CASES:
        clean = photos["chelsea"][40:232, 120:312]
        degraded = _degraded(case, "chelsea", photos["chelsea"])[40:232, 120:312]
        panels = {case: degraded}
        for baseline, (denoise, _) in BASELINE_GRIDS.items():
            setting = tuned[case][baseline]["setting"]
            panels[baseline] = denoise(
                degraded, tuple(setting) if isinstance(setting, list) else setting
            )
        panels |= {"vitrine": _denoised(model, degraded), "clean": clean}
        rows.append(labelled_row({label: Image.fromarray(p) for label, p in panels.items()}))
    return stack_rows(rows)


def demo_case(spec: ModelSpec, name: str, photo: npt.NDArray[Any]) -> DemoCase:
    """The photo with Gaussian noise (sigma 25); the rival is the best classical denoiser at
    the setting ``vitrine eval`` tuned (read from the shipped weights' report)."""
    upload = EVAL_CASES["sigma25"].apply(photo, np.random.default_rng(0))
    report = json.loads(paths.weights_path(spec.weights_name).with_suffix(".json").read_text())
    rival, setting = best_baseline(report["metrics"], "sigma25")
    baseline = BASELINE_GRIDS[rival][0](upload, setting)
    return DemoCase(upload, photo, rival, baseline, {"strength": "auto"})


HOOKS = TaskHooks(
    forward=forward,
    evaluate=lambda spec, model: evaluate_denoise(model),
    comparison=lambda spec, model: comparison_image(model),
    recipe=lambda spec: DenoisingRecipe,
    demo=demo_case,
)
