"""Super-resolution recipe: patch batches from the training photos, loss and evaluation."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image
from torch import nn

from vitrine.spec import ModelSpec
from vitrine.training.config import TrainConfig
from vitrine.training.corpus import data_settings, describe_corpus, train_sampler
from vitrine.training.degradations import degrade_upload, downscale, random_crop_flip
from vitrine.training.grids import labelled_row, stack_rows
from vitrine.training.hooks import DemoCase, TaskHooks
from vitrine.training.metrics import quality_report
from vitrine.training.photos import load_split
from vitrine.training.recipe import NoSettings, SingleNetworkRecipe
from vitrine.training.uint8_wrapper import image_forward, run_uint8, to_float_batch

__all__ = ["HOOKS", "SuperResolutionRecipe", "comparison_image", "demo_case", "evaluate_superres"]

_CROP = 96  # low-resolution side of each comparison crop (smaller photos: as large as fits)

_BASELINES = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}


class SuperResolutionRecipe(SingleNetworkRecipe[NoSettings]):
    """Batches of (low-res, high-res) float patches; Charbonnier loss."""

    def __init__(self, spec: ModelSpec, config: TrainConfig) -> None:
        self.scale = spec.output_scale
        if config.patch_size % self.scale:
            raise ValueError(f"patch_size {config.patch_size} is not divisible by {self.scale}")
        super().__init__(spec, config)
        self.data = data_settings(config.data)
        self.sampler = train_sampler(self.data)
        if self.sampler is None:
            self.photos = list(load_split("train").values())
            weights = np.array([photo.shape[0] * photo.shape[1] for photo in self.photos], float)
            self.photo_probabilities = weights / weights.sum()  # sample pixels uniformly

    def data_description(self) -> dict[str, Any]:
        """What the model was trained and validated on, for the checkpoint sidecar."""
        return describe_corpus(self.data) | {
            "degradation": "bicubic downscale with antialiasing; optional mild blur and JPEG",
        }

    def _patch(self, rng: np.random.Generator) -> npt.NDArray[Any]:
        if self.sampler is not None:
            return self.sampler(rng, self.config.patch_size)
        photo = self.photos[rng.choice(len(self.photos), p=self.photo_probabilities)]
        return random_crop_flip(photo, self.config.patch_size, rng)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of ``step``: deterministic in (seed, step), so resuming replays exactly."""
        rng = np.random.default_rng([self.config.seed, step])
        low, high = [], []
        for _ in range(self.config.batch_size):
            patch = self._patch(rng)
            small = degrade_upload(
                downscale(patch, self.scale),
                rng,
                blur_probability=self.config.blur_probability,
                jpeg_probability=self.config.jpeg_probability,
            )
            low.append(small)
            high.append(patch)
        return to_float_batch(np.stack(low)), to_float_batch(np.stack(high))

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Charbonnier (smooth L1) loss between upscaled and original patches."""
        low, high = batch
        return torch.sqrt((model(low) - high) ** 2 + 1e-6).mean()


def _crop_to_multiple(image: npt.NDArray[Any], scale: int) -> npt.NDArray[Any]:
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]


def evaluate_superres(model: nn.Module, scale: int) -> dict[str, Any]:
    """PSNR/SSIM (Y and RGB, ``scale`` pixels of border cropped) on the validation photos.

    Each photo is downscaled (bicubic, antialiased), then upscaled by the model and by the
    bicubic and Lanczos baselines. Returns per-photo figures, means and the margins.
    """
    methods = ("model", *_BASELINES)
    per_photo: dict[str, dict[str, dict[str, float]]] = {}
    for name, photo in load_split("validation").items():
        reference = _crop_to_multiple(photo, scale)
        low_res = downscale(reference, scale)
        size = (reference.shape[1], reference.shape[0])
        outputs = {"model": run_uint8(model, low_res)}
        for method, resample in _BASELINES.items():
            outputs[method] = np.asarray(Image.fromarray(low_res).resize(size, resample))
        per_photo[name] = {m: quality_report(reference, outputs[m], border=scale) for m in methods}
    mean = {
        method: {
            metric: float(np.mean([per_photo[photo][method][metric] for photo in per_photo]))
            for metric in ("psnr_y", "psnr_rgb", "ssim_y", "ssim_rgb")
        }
        for method in methods
    }
    margins = {
        f"psnr_y_over_{baseline}_db": mean["model"]["psnr_y"] - mean[baseline]["psnr_y"]
        for baseline in _BASELINES
    }
    return {"scale": scale, "per_photo": per_photo, "mean": mean, "margins": margins}


def comparison_image(model: nn.Module, scale: int) -> Image.Image:
    """Centre crops of each validation photo: input, bicubic, Lanczos, Vitrine, original."""
    rows = []
    for photo in load_split("validation").values():
        side = min(_CROP * scale, *photo.shape[:2]) // scale * scale
        top, left = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
        original = photo[top : top + side, left : left + side]
        small = downscale(original, scale)
        image = Image.fromarray(small)
        panels = {
            "input (nearest)": image.resize((side, side), Image.Resampling.NEAREST),
            "bicubic": image.resize((side, side), Image.Resampling.BICUBIC),
            "lanczos": image.resize((side, side), Image.Resampling.LANCZOS),
            "vitrine": Image.fromarray(run_uint8(model, small)),
            "original": Image.fromarray(original),
        }
        rows.append(labelled_row(panels))
    return stack_rows(rows)


def demo_case(spec: ModelSpec, name: str, photo: npt.NDArray[Any]) -> DemoCase:
    """The photo cropped to fit the limits, downscaled as a low-resolution upload."""
    scale = spec.output_scale
    side = spec.core_limits.max_side * scale
    height = min(photo.shape[0], side) // scale * scale
    width = min(photo.shape[1], side) // scale * scale
    original = photo[:height, :width]
    upload = downscale(original, scale)
    bicubic = Image.fromarray(upload).resize((width, height), Image.Resampling.BICUBIC)
    return DemoCase(upload, original, "bicubic", np.asarray(bicubic))


HOOKS = TaskHooks(
    forward=image_forward,
    evaluate=lambda spec, model: evaluate_superres(model, spec.output_scale),
    comparison=lambda spec, model: comparison_image(model, spec.output_scale),
    recipe=lambda spec: SuperResolutionRecipe,
    demo=demo_case,
)
