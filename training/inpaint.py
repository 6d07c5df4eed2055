"""Inpainting recipe: random hole masks on clean photo crops, a hole-weighted L1 loss plus a
small adversarial loss, and an evaluation against OpenCV's classical inpainting.

Data: random crops (flipped, rotated) of the TRAIN photos, each with a random mask from
``masks.mixed_mask`` (brush strokes, boxes or watermark text). The mask is drawn on a
canvas of a photo's size (``mask_canvas``, the sides of the evaluation photos) and the
crop's window is cut from it, so holes have the pixel size they have at evaluation rather
than being scaled down to the crop. The model sees the photo with the hole zeroed and the
hole itself.

Loss: L1 over hole pixels (weight ``hole_weight``) plus L1 over valid pixels (weight
``valid_weight``, which only keeps the correction quiet outside the hole; serving passes
those pixels through), plus ``adversarial_weight`` times a hinge GAN loss from a
spectral-norm PatchGAN discriminator on the composited image, updated first in each step
on the detached fake (its state is checkpointed with the run's).

Evaluation: the VALIDATION photos (chelsea, coffee, coins), each with one fixed mask per
kind (``EVAL_MASK_SEEDS``), drawn at full resolution by the same generators as training.
Methods: the model (through the served uint8 wrapper), ``cv2.inpaint`` Telea and
Navier-Stokes at ``BASELINE_RADII``, the best radius of 1..15 by mean hole PSNR on this
same evaluation set (``tune_baseline_radii``: Telea peaks at radius 10 with 17.80 dB,
NS rises to 17.81 dB at 15, the end of the range; radius 1 scores 17.25 and 17.32 dB).
Metrics: PSNR and SSIM over hole pixels only (``hole_psnr``: RGB MSE over the hole;
``hole_ssim``: mean of the SSIM map over the hole) and over the whole image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from PIL import Image
from skimage.metrics import structural_similarity
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from vitrine.spec import ModelSpec, Task
from vitrine.training.architectures import build_architecture
from vitrine.training.config import TrainConfig
from vitrine.training.corpus import data_settings, describe_corpus, train_sampler
from vitrine.training.degradations import random_crop_flip
from vitrine.training.grids import labelled_row, stack_rows
from vitrine.training.history import Panel
from vitrine.training.hooks import DemoCase, TaskHooks
from vitrine.training.masks import MASK_KINDS, mixed_mask
from vitrine.training.metrics import psnr, ssim
from vitrine.training.photos import VALIDATION_PHOTOS, load_split
from vitrine.training.recipe import Autocast, Optimized, Recipe, constant_rate, cosine_rate
from vitrine.training.uint8_wrapper import run_uint8, to_float, to_float_batch

__all__ = [
    "BASELINE_RADII",
    "EVAL_MASK_SEEDS",
    "HOOKS",
    "InpaintingRecipe",
    "InpaintingSettings",
    "comparison_image",
    "demo_case",
    "eval_mask",
    "evaluate_inpaint",
    "forward",
    "inpaint_baseline",
    "tune_baseline_radii",
]

EVAL_MASK_SEEDS: dict[str, int] = {"strokes": 101, "boxes": 202, "watermark": 303}
BASELINE_FLAGS: dict[str, int] = {"telea": cv2.INPAINT_TELEA, "navier_stokes": cv2.INPAINT_NS}
BASELINE_RADII: dict[str, int] = {"telea": 10, "navier_stokes": 15}
METRICS = ("hole_psnr", "hole_ssim", "psnr", "ssim")
_HOLE_COLOUR = np.array([255, 0, 255], dtype=np.uint8)


class PatchDiscriminator(nn.Module):
    """Spectral-norm PatchGAN: (N, 4, H, W) composite + hole -> (N, 1, H/8, W/8) scores."""

    def __init__(self, features: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 4
        for out_width in (features, 2 * features, 4 * features):
            layers += [spectral_norm(nn.Conv2d(width, out_width, 4, 2, 1)), nn.LeakyReLU(0.2)]
            width = out_width
        layers.append(spectral_norm(nn.Conv2d(width, 1, 3, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.net(torch.cat([image, hole], dim=1))
        return output


def eval_mask(name: str, kind: str, shape: tuple[int, ...]) -> npt.NDArray[Any]:
    """The fixed mask of validation photo ``name`` for mask ``kind``, ``shape`` (H, W)."""
    photo = VALIDATION_PHOTOS.index(name)
    height, width = shape
    rng = np.random.default_rng([EVAL_MASK_SEEDS[kind], photo])
    return MASK_KINDS[kind]((height, width), rng)


def _eval_cases() -> list[tuple[str, str, npt.NDArray[Any], npt.NDArray[Any]]]:
    """(kind, photo name, clean photo, mask) for every evaluation case."""
    return [
        (kind, name, clean, eval_mask(name, kind, clean.shape[:2]))
        for kind in MASK_KINDS
        for name, clean in load_split("validation").items()
    ]


def hole_psnr(reference: npt.NDArray[Any], test: npt.NDArray[Any], mask: npt.NDArray[Any]) -> float:
    """PSNR (RGB, dB) over the pixels where ``mask`` is set."""
    hole = mask > 0
    error = reference[hole].astype(np.float64) - test[hole].astype(np.float64)
    return float(10.0 * np.log10(255.0**2 / max(np.mean(error**2), 1e-10)))


def hole_ssim(reference: npt.NDArray[Any], test: npt.NDArray[Any], mask: npt.NDArray[Any]) -> float:
    """Mean over hole pixels of the SSIM map (RGB, Gaussian window, sigma 1.5)."""
    _, ssim_map = structural_similarity(
        reference,
        test,
        data_range=255,
        channel_axis=2,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )
    return float(ssim_map[mask > 0].mean())


def _scores(
    clean: npt.NDArray[Any], out: npt.NDArray[Any], mask: npt.NDArray[Any]
) -> dict[str, float]:
    return {
        "hole_psnr": hole_psnr(clean, out, mask),
        "hole_ssim": hole_ssim(clean, out, mask),
        "psnr": psnr(clean, out),
        "ssim": ssim(clean, out),
    }


def inpaint_baseline(
    method: str, image: npt.NDArray[Any], mask: npt.NDArray[Any], radius: int
) -> npt.NDArray[Any]:
    """``cv2.inpaint`` by ``method`` (a BASELINE_FLAGS key) at ``radius``."""
    return cv2.inpaint(image, mask, radius, BASELINE_FLAGS[method])


def tune_baseline_radii(radii: range = range(1, 16)) -> dict[str, dict[int, float]]:
    """Mean hole PSNR of each baseline at each radius over the evaluation cases."""
    cases = _eval_cases()
    return {
        method: {
            radius: float(
                np.mean(
                    [
                        hole_psnr(clean, inpaint_baseline(method, clean, mask, radius), mask)
                        for _, _, clean, mask in cases
                    ]
                )
            )
            for radius in radii
        }
        for method in BASELINE_FLAGS
    }


def inpaint_with_model(
    model: nn.Module, image: npt.NDArray[Any], mask: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    """The served result: uint8 (H, W, 3) image and 0/255 (H, W) mask -> uint8 (H, W, 3)."""
    return run_uint8(model, image, mask[:, :, None], task=Task.INPAINT)


@cache
def _baseline_scores() -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    """Scores of the baselines per (kind, photo); they do not change between evaluations."""
    return {
        (kind, name): {
            method: _scores(clean, inpaint_baseline(method, clean, mask, radius), mask)
            for method, radius in BASELINE_RADII.items()
        }
        for kind, name, clean, mask in _eval_cases()
    }


def evaluate_inpaint(model: nn.Module) -> dict[str, Any]:
    """Hole and whole-image PSNR/SSIM per mask kind and photo; means; margins over baselines."""
    baselines = _baseline_scores()
    per_case: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for kind, name, clean, mask in _eval_cases():
        model_scores = _scores(clean, inpaint_with_model(model, clean, mask), mask)
        per_case.setdefault(kind, {})[name] = {"model": model_scores} | baselines[(kind, name)]
    cells = [cell for photos in per_case.values() for cell in photos.values()]
    methods = ("model", *BASELINE_FLAGS)
    mean = {
        method: {
            metric: float(np.mean([cell[method][metric] for cell in cells])) for metric in METRICS
        }
        for method in methods
    }
    best = max(BASELINE_FLAGS, key=lambda method: mean[method]["hole_psnr"])
    margins = {
        "hole_psnr_over_best_baseline_db": mean["model"]["hole_psnr"] - mean[best]["hole_psnr"],
        "hole_ssim_over_best_baseline": mean["model"]["hole_ssim"]
        - max(mean[method]["hole_ssim"] for method in BASELINE_FLAGS),
    }
    return {
        "per_case": per_case,
        "mean": mean,
        "margins": margins,
        "baseline_radii": dict(BASELINE_RADII),
    }


def _show_holes(image: npt.NDArray[Any], mask: npt.NDArray[Any]) -> npt.NDArray[Any]:
    shown = image.copy()
    shown[mask > 0] = _HOLE_COLOUR
    return shown


def comparison_image(model: nn.Module) -> Image.Image:
    """Per mask kind, on the coffee photo: masked input, Telea, NS, Vitrine, original."""
    name = "coffee"
    clean = load_split("validation")[name]
    rows = []
    for kind in MASK_KINDS:
        mask = eval_mask(name, kind, clean.shape[:2])
        panels = {f"{kind} (input)": _show_holes(clean, mask)}
        panels |= {
            f"{method} r={radius}": inpaint_baseline(method, clean, mask, radius)
            for method, radius in BASELINE_RADII.items()
        }
        panels |= {"vitrine": inpaint_with_model(model, clean, mask), "original": clean}
        rows.append(labelled_row({label: Image.fromarray(p) for label, p in panels.items()}))
    return stack_rows(rows)


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(flag)


@dataclass(frozen=True)
class InpaintingSettings:
    """The ``[recipe]`` table of the inpainting config."""

    hole_weight: float  # L1 over hole pixels
    valid_weight: float  # L1 over valid pixels (passed through when served)
    adversarial_weight: float  # hinge GAN loss of the PatchGAN
    discriminator_features: int
    discriminator_learning_rate: float  # constant; Adam betas 0.5, 0.999
    mask_canvas: tuple[int, int]  # [min, max] side of the canvas masks are drawn on


class InpaintingRecipe(Recipe[InpaintingSettings]):
    """Batches of (clean, hole) float crops; hole-weighted L1 plus a PatchGAN hinge loss.

    Each step updates the discriminator on the detached composite first, then the network
    (the cosine schedule) on its loss through the updated discriminator.
    """

    settings_type = InpaintingSettings
    losses = ("loss", "discriminator")
    panels = (
        Panel(("loss",), "network loss", log_scale=True),
        Panel(("discriminator",), "discriminator hinge loss"),
    )
    model: nn.Module
    discriminator: PatchDiscriminator

    def __init__(self, spec: ModelSpec, config: TrainConfig) -> None:
        super().__init__(spec, config)
        self.data = data_settings(config.data)
        self.sampler = train_sampler(self.data)
        if self.sampler is None:
            self.photos = list(load_split("train").values())

    def build(self) -> None:
        with torch.random.fork_rng():  # keep the model's initialisation independent of it
            torch.manual_seed(self.config.seed + 1)
            self.discriminator = PatchDiscriminator(self.settings.discriminator_features)
        self.model = build_architecture(self.spec.architecture, self.spec.arch_kwargs)

    def networks(self) -> dict[str, nn.Module]:
        return {"model": self.model, "discriminator": self.discriminator}

    def optimized(self) -> dict[str, Optimized]:
        rate = constant_rate(self.settings.discriminator_learning_rate)
        return {
            "model": Optimized(self.model, cosine_rate(self.config)),
            "discriminator": Optimized(self.discriminator, rate, betas=(0.5, 0.999)),
        }

    @property
    def served(self) -> nn.Module:
        return self.model

    def data_description(self) -> dict[str, Any]:
        """What the model was trained and validated on, for the checkpoint sidecar."""
        return describe_corpus(self.data) | {
            "masks": "masks.mixed_mask: brush strokes, boxes or watermark text, drawn on a "
            f"canvas of {list(self.settings.mask_canvas)} px a side, cut to the crop",
            "evaluation_mask_seeds": dict(EVAL_MASK_SEEDS),
            "baseline_radii": dict(BASELINE_RADII),
        }

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of ``step``, (clean, hole): deterministic in (seed, step)."""
        rng = np.random.default_rng([self.config.seed, step])
        size = self.config.patch_size
        clean, holes = [], []
        for _ in range(self.config.batch_size):
            if self.sampler is not None:
                clean.append(self.sampler(rng, size))
            else:
                photo = self.photos[int(rng.integers(len(self.photos)))]
                clean.append(random_crop_flip(photo, size, rng))
            holes.append(self._hole(size, rng)[:, :, None])
        return to_float_batch(np.stack(clean)), (to_float_batch(np.stack(holes)) > 0.5).float()

    def _hole(self, size: int, rng: np.random.Generator) -> npt.NDArray[Any]:
        """A (size, size) window of a mask drawn on a larger canvas, with 2-60 % hole."""
        low, high = self.settings.mask_canvas
        for _ in range(8):
            side = max(size, int(rng.integers(low, high + 1)))
            canvas = mixed_mask((side, side), rng)
            top, left = (int(v) for v in rng.integers(0, side - size + 1, 2))
            window = canvas[top : top + size, left : left + size]
            if 0.02 <= window.mean() / 255.0 <= 0.6:
                return window
        return mixed_mask((size, size), rng)  # rare: no window had a usable hole

    def _discriminator_step(
        self,
        clean: torch.Tensor,
        composite: torch.Tensor,
        hole: torch.Tensor,
        optimizer: torch.optim.Optimizer,
    ) -> float:
        """One hinge-loss update of the discriminator on real and (detached) fake images."""
        _set_requires_grad(self.discriminator, True)
        real = self.discriminator(clean, hole)
        fake = self.discriminator(composite.detach(), hole)
        loss = F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _set_requires_grad(self.discriminator, False)
        return loss.item()

    def train_step(
        self,
        batch: tuple[torch.Tensor, torch.Tensor],
        step: int,
        optimizers: Mapping[str, torch.optim.Optimizer],
        autocast: Autocast,
    ) -> dict[str, float]:
        """The discriminator's update, then the network's."""
        clean, hole = batch
        settings = self.settings
        with autocast():
            output = self.model(clean, hole)
            composite = clean * (1.0 - hole) + output * hole
            d_loss = self._discriminator_step(clean, composite, hole, optimizers["discriminator"])
            error = (output - clean).abs().mean(dim=1, keepdim=True)
            hole_l1 = (error * hole).sum() / hole.sum().clamp(min=1.0)
            valid_l1 = (error * (1.0 - hole)).sum() / (1.0 - hole).sum().clamp(min=1.0)
            adversarial = -self.discriminator(composite, hole).mean()
            loss = (
                float(settings.hole_weight) * hole_l1
                + float(settings.valid_weight) * valid_l1
                + float(settings.adversarial_weight) * adversarial
            )
        optimizer = optimizers["model"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item(), "discriminator": d_loss}


def forward(model: nn.Module, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``model(x, hole) -> y`` with ``hole`` (N, 1, H, W) in {0, 1} from the uint8 mask
    (N, H, W, 1); pixels outside the hole are passed through exactly."""
    x = to_float(image)
    hole = (to_float(mask) > 0.5).float()  # (N, 1, H, W)
    output: torch.Tensor = x * (1.0 - hole) + model(x, hole) * hole
    return output


def demo_case(spec: ModelSpec, name: str, photo: npt.NDArray[Any]) -> DemoCase:
    """The photo (cropped to the limits) under a white watermark; the mask covers it and the
    rival is ``cv2.inpaint`` (Telea) at the radius tuned for the evaluation."""
    clean = photo[: spec.core_limits.max_side, : spec.core_limits.max_side]
    mask = eval_mask(name, "watermark", clean.shape[:2])
    upload = clean.copy()
    upload[mask > 0] = 255
    radius = BASELINE_RADII["telea"]
    baseline = inpaint_baseline("telea", upload, mask, radius)
    return DemoCase(upload, clean, f"telea r={radius}", baseline, {"mask": mask})


HOOKS = TaskHooks(
    forward=forward,
    evaluate=lambda spec, model: evaluate_inpaint(model),
    comparison=lambda spec, model: comparison_image(model),
    recipe=lambda spec: InpaintingRecipe,
    demo=demo_case,
)
