"""Enhancement recipe: synthetic exposure, contrast and colour-cast degradations of clean
photos, an L1 loss, and an evaluation against classical corrections.

Evaluation degrades each validation photo in five fixed, documented ways (``EVAL_CASES``)
and compares the model with doing nothing, CLAHE, auto-contrast and grey-world white
balance on PSNR (RGB) and mean CIEDE2000 colour difference against the clean photo. It
then does the same per degradation family (:mod:`vitrine.training.enhance_families`, drawn
wider than training's mixture) on the photo corpus's validation photographs, and checks
that a photo needing no correction comes back unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image, ImageOps
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.exposure import equalize_adapthist
from torch import nn

from vitrine.spec import ModelSpec, Task
from vitrine.tiling import PlanSettings, plan_image
from vitrine.training.corpus import load_corpus
from vitrine.training.degradations import degrade_upload
from vitrine.training.enhance_families import (
    FAMILIES,
    TRAINING_RANGES,
    draw_cases,
    draw_training,
)
from vitrine.training.grids import labelled_row, stack_rows
from vitrine.training.hooks import DemoCase, TaskHooks
from vitrine.training.metrics import psnr
from vitrine.training.photo_squares import validation_squares
from vitrine.training.photos import load_split
from vitrine.training.restoration import RestorationRecipe
from vitrine.training.uint8_wrapper import Uint8ImageModel, image_forward, run_uint8

__all__ = [
    "EVAL_CASES",
    "HOOKS",
    "Degradation",
    "EnhancementRecipe",
    "comparison_image",
    "demo_case",
    "evaluate_enhance",
    "evaluate_families",
    "family_photos",
]


@dataclass(frozen=True)
class Degradation:
    """Exposure (gamma, then gain), contrast around the mean, and per-channel colour cast."""

    gamma: float = 1.0
    gain: float = 1.0
    contrast: float = 1.0
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def apply(self, image: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Degrade a uint8 RGB image; the result is uint8, as an uploaded photo is."""
        x = (image.astype(np.float64) / 255.0) ** self.gamma * self.gain
        x = x.mean() + (x - x.mean()) * self.contrast
        x = x * np.array(self.cast)
        result: npt.NDArray[Any] = np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
        return result

    @classmethod
    def random(cls, rng: np.random.Generator) -> Degradation:
        """A random mix, each part present with some probability, drawn from wide ranges."""
        ranges = TRAINING_RANGES
        low, high = np.log(ranges["gamma"])
        gamma = np.exp(rng.uniform(low, high)) if rng.random() < 0.7 else 1.0
        gain = rng.uniform(*ranges["gain"]) if rng.random() < 0.4 else 1.0
        contrast = rng.uniform(*ranges["contrast"]) if rng.random() < 0.5 else 1.0
        cast = rng.uniform(*ranges["cast"], 3) if rng.random() < 0.6 else (1.0, 1.0, 1.0)
        red, green, blue = cast
        return cls(
            float(gamma), float(gain), float(contrast), (float(red), float(green), float(blue))
        )


EVAL_CASES: dict[str, Degradation] = {
    "under-exposed": Degradation(gamma=2.0, gain=0.8),
    "over-exposed": Degradation(gamma=0.5),
    "low-contrast": Degradation(contrast=0.5),
    "colour-cast": Degradation(cast=(1.2, 1.0, 0.8)),
    "combined": Degradation(gamma=1.6, contrast=0.7, cast=(0.85, 1.0, 1.15)),
}


def _clahe(image: npt.NDArray[Any]) -> npt.NDArray[Any]:
    result: npt.NDArray[Any] = np.round(equalize_adapthist(image) * 255.0).astype(np.uint8)
    return result


def _autocontrast(image: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return np.asarray(ImageOps.autocontrast(Image.fromarray(image), cutoff=1))


def _grey_world(image: npt.NDArray[Any]) -> npt.NDArray[Any]:
    x = image.astype(np.float64)
    means = x.reshape(-1, 3).mean(axis=0)
    result: npt.NDArray[Any] = np.round(
        np.clip(x * (means.mean() / np.maximum(means, 1e-6)), 0, 255)
    ).astype(np.uint8)
    return result


BASELINES = {
    "input": lambda image: image,
    "clahe": _clahe,
    "autocontrast": _autocontrast,
    "grey_world": _grey_world,
}


def mean_delta_e(reference: npt.NDArray[Any], test: npt.NDArray[Any]) -> float:
    """Mean CIEDE2000 colour difference between two uint8 RGB images."""
    return float(np.mean(deltaE_ciede2000(rgb2lab(reference), rgb2lab(test))))


MIXTURES = ("degradation", "families")
"""Training mixtures: :meth:`Degradation.random`, or :func:`draw_training` (the evaluation
families' kinds of change, in :data:`TRAINING_RANGES`, some photos left as they are)."""


@dataclass(frozen=True)
class EnhanceSettings:
    """The ``[recipe]`` table: the training mixture, and the weight of an L1 term on CIELAB
    values (scaled by 1/100) beside the L1 on RGB."""

    mixture: str = "degradation"
    lab_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.mixture not in MIXTURES:
            raise ValueError(f"[recipe] mixture {self.mixture!r}: expected one of {MIXTURES}")


def _srgb_to_lab(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) sRGB in [0, 1] -> CIELAB (D65), differentiable."""
    x = image.clamp(0.0, 1.0)
    linear = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).clamp_min(1e-8) ** 2.4)
    matrix = linear.new_tensor(
        [
            [0.412453, 0.357580, 0.180423],
            [0.212671, 0.715160, 0.072169],
            [0.019334, 0.119193, 0.950227],
        ]
    )
    xyz = torch.einsum("ij,njhw->nihw", matrix, linear)
    xyz = xyz / xyz.new_tensor([0.95047, 1.0, 1.08883])[None, :, None, None]
    epsilon = 0.008856
    f = torch.where(xyz > epsilon, xyz.clamp_min(epsilon) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], dim=1
    )


class EnhancementRecipe(RestorationRecipe[EnhanceSettings]):
    """Bad exposure, low contrast and colour casts (then blur/JPEG) on clean crops; L1 loss
    on RGB, plus optionally on CIELAB."""

    settings_type = EnhanceSettings
    eval_cases = EVAL_CASES

    @property
    def degradation(self) -> str:  # type: ignore[override]
        if self.settings.mixture == "families":
            return (
                "random exposure (linear light), gamma, a·x + b and colour gains, or none, "
                "then optional JPEG"
            )
        return "random gamma, gain, contrast and colour cast, then optional JPEG"

    def degrade(self, crop: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        """A random adjustment of ``crop`` (the mixture's), then the usual upload blur/JPEG."""
        if self.settings.mixture == "families":
            adjusted = draw_training(rng).apply(crop)
        else:
            adjusted = Degradation.random(rng).apply(crop)
        return degrade_upload(
            adjusted,
            rng,
            blur_probability=self.config.blur_probability,
            jpeg_probability=self.config.jpeg_probability,
        )

    def data_description(self) -> dict[str, Any]:
        """The corpus and degradation, and the recipe settings."""
        return super().data_description() | {"recipe": dataclasses.asdict(self.settings)}

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """L1 between the restored and the clean crops, plus ``lab_weight`` times the L1
        of their CIELAB values over 100."""
        degraded, clean = batch
        restored = model(degraded).float()
        loss: torch.Tensor = (restored - clean).abs().mean()
        if self.settings.lab_weight:
            lab = (_srgb_to_lab(restored) - _srgb_to_lab(clean)).abs().mean() / 100.0
            loss = loss + self.settings.lab_weight * lab
        return loss


def evaluate_enhance(model: nn.Module) -> dict[str, Any]:
    """PSNR (RGB) and mean CIEDE2000 per case and photo; means and margins over baselines."""
    methods = ("model", *BASELINES)
    per_case: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for case, degradation in EVAL_CASES.items():
        per_case[case] = {}
        for name, clean in load_split("validation").items():
            degraded = degradation.apply(clean)
            outputs = {"model": run_uint8(model, degraded, task=Task.ENHANCE)}
            outputs |= {method: fix(degraded) for method, fix in BASELINES.items()}
            per_case[case][name] = {
                method: {"psnr": psnr(clean, out), "delta_e": mean_delta_e(clean, out)}
                for method, out in outputs.items()
            }
    cells = [cell for photos in per_case.values() for cell in photos.values()]
    mean = {
        method: {
            metric: float(np.mean([cell[method][metric] for cell in cells]))
            for metric in ("psnr", "delta_e")
        }
        for method in methods
    }
    best_psnr = max(mean[method]["psnr"] for method in BASELINES)
    best_delta_e = min(mean[method]["delta_e"] for method in BASELINES)
    margins = {
        "psnr_over_best_baseline_db": mean["model"]["psnr"] - best_psnr,
        "delta_e_below_best_baseline": best_delta_e - mean["model"]["delta_e"],
    }
    families, family_margins = evaluate_families(model, family_photos())
    return {"per_case": per_case, "mean": mean, "margins": margins | family_margins} | families


FAMILY_SIDE = 256  # px: the family evaluation's square crops (the core model takes them whole)
FAMILY_DRAWS = 2  # adjustments per family and photo
FAMILY_SEED = 20261205
FAMILY_BASELINES = ("clahe", "autocontrast", "grey_world")  # the rivals a family is judged on


def family_photos(side: int = FAMILY_SIDE) -> dict[str, npt.NDArray[Any]]:
    """The photos the families are drawn on (:func:`validation_squares` at ``side``)."""
    return validation_squares(side)


def _scores(
    model: nn.Module,
    clean: npt.NDArray[Any],
    upload: npt.NDArray[Any],
    baselines: Iterable[str] = BASELINES,
) -> dict[str, dict[str, float]]:
    """PSNR and mean CIEDE2000 against ``clean`` of the model and ``baselines`` on ``upload``."""
    outputs = {"model": run_uint8(model, upload, task=Task.ENHANCE)}
    outputs |= {method: BASELINES[method](upload) for method in baselines}
    return {
        method: {"psnr": psnr(clean, out), "delta_e": mean_delta_e(clean, out)}
        for method, out in outputs.items()
    }


def _mean_rows(rows: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        method: {metric: float(np.mean([row[method][metric] for row in rows])) for metric in values}
        for method, values in rows[0].items()
    }


def evaluate_families(
    model: nn.Module, photos: dict[str, npt.NDArray[Any]], draws: int = FAMILY_DRAWS
) -> tuple[dict[str, Any], dict[str, float]]:
    """Per family, ``draws`` adjustments of each photo: the figures of every case and their
    mean (report entries ``family_<name>``), and the margins over the best of
    :data:`FAMILY_BASELINES`. Also ``neutral``: the photos as they are, where the model must
    change nothing (``neutral_psnr_db``, the worst photo's PSNR against itself), and
    ``linear_psnr_vs_autocontrast_db``, which auto-contrast undoes up to its 1 % cutoff."""
    entries: dict[str, Any] = {}
    margins: dict[str, float] = {}
    for family in FAMILIES:
        rows: dict[str, dict[str, dict[str, float]]] = {}
        for name, adjustment in draw_cases(family, list(photos), draws, FAMILY_SEED):
            rows[f"{name} {adjustment.label()}"] = _scores(
                model, photos[name], adjustment.apply(photos[name])
            )
        mean = _mean_rows(list(rows.values()))
        entries[f"family_{family}"] = {"mean": mean} | rows
        best_psnr = max(mean[method]["psnr"] for method in FAMILY_BASELINES)
        best_delta_e = min(mean[method]["delta_e"] for method in FAMILY_BASELINES)
        margins[f"{family}_psnr_over_best_baseline_db"] = mean["model"]["psnr"] - best_psnr
        margins[f"{family}_delta_e_below_best_baseline"] = best_delta_e - mean["model"]["delta_e"]
        if family == "linear":
            lead = mean["model"]["psnr"] - mean["autocontrast"]["psnr"]
            margins["linear_psnr_vs_autocontrast_db"] = lead
    neutral = {
        name: _scores(model, photo, photo, FAMILY_BASELINES) for name, photo in photos.items()
    }
    entries["neutral"] = neutral
    margins["neutral_psnr_db"] = min(scores["model"]["psnr"] for scores in neutral.values())
    return entries, margins


FULL_SIZE_PHOTO = "Garden"  # the whole photograph the full-size evaluation adjusts


def evaluate_full_size(spec: ModelSpec, model: nn.Module) -> dict[str, Any]:
    """One draw of each family on the whole :data:`FULL_SIZE_PHOTO` (millions of pixels),
    the model through the served plan (``spec``'s curves probe, the core model in-process)
    and the baselines on the whole photo, scored as :func:`evaluate_families` does."""
    settings = PlanSettings.of(spec)
    core = Uint8ImageModel(model, spec.task).eval()
    clean = load_corpus("photos", "validation")[FULL_SIZE_PHOTO]
    rows: dict[str, Any] = {}
    for family in FAMILIES:
        ((_, adjustment),) = draw_cases(family, [FULL_SIZE_PHOTO], 1, FAMILY_SEED)
        upload = adjustment.apply(clean)
        plan = plan_image(upload, {}, settings)
        with torch.inference_mode():
            outputs = [
                core(*(torch.from_numpy(a) for a in call.values())).numpy() for call in plan.calls
            ]
        results = {"model": plan.result(outputs)}
        results |= {method: BASELINES[method](upload) for method in FAMILY_BASELINES}
        rows[f"{family}: {adjustment.label()}"] = {
            method: {"psnr": psnr(clean, out), "delta_e": mean_delta_e(clean, out)}
            for method, out in results.items()
        }
    return {"photo": FULL_SIZE_PHOTO, "shape": "x".join(map(str, clean.shape[:2])), "cases": rows}


def comparison_image(model: nn.Module) -> Image.Image:
    """Per case, on a downsized validation photo: degraded, each baseline, Vitrine, original."""
    clean = np.asarray(Image.fromarray(load_split("validation")["coffee"]).reduce(2))
    rows = []
    for case, degradation in EVAL_CASES.items():
        degraded = degradation.apply(clean)
        panels = {case: degraded} | {
            name: fix(degraded) for name, fix in BASELINES.items() if name != "input"
        }
        panels |= {"vitrine": run_uint8(model, degraded, task=Task.ENHANCE), "original": clean}
        rows.append(labelled_row({label: Image.fromarray(p) for label, p in panels.items()}))
    return stack_rows(rows)


def demo_case(spec: ModelSpec, name: str, photo: npt.NDArray[Any]) -> DemoCase:
    """The photo under-exposed, flattened and colour-cast (the "combined" evaluation case)."""
    upload = EVAL_CASES["combined"].apply(photo)
    return DemoCase(upload, photo, "autocontrast", BASELINES["autocontrast"](upload))


HOOKS = TaskHooks(
    forward=image_forward,
    evaluate=lambda spec, model: evaluate_enhance(model),
    comparison=lambda spec, model: comparison_image(model),
    recipe=lambda spec: EnhancementRecipe,
    evaluate_full_size=evaluate_full_size,
    demo=demo_case,
)
