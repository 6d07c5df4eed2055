"""Style-transfer recipe: photo crops, each with a random style; content, Gram style and
total-variation losses in a fixed random texture network (``training/texture_features.py``).

Evaluation runs every validation photo in every style through the served uint8 wrapper and
compares the model with three references: the photo itself, histogram matching of the
photo to the style image (a naive colour transfer), and the style image alone (all style,
no photo). Per style:

* ``content_ssim``: SSIM between the Sobel edge maps of the output's and the input's
  luminance (1: the photo's structure is all there);
* ``style_distance``: the Gram-matrix distance to the style image in the texture network,
  each layer's ``|G(out) - G(style)| / |G(style)|`` (Frobenius), averaged over layers
  (0: the style's texture statistics exactly).

On the photo corpus's packaged validation photographs (``photographs``), per style at full
strength:

* ``edge_correlation``: the Pearson correlation of the input's and the output's luminance
  edge maps, each blurred (Gaussian, ``EDGE_BLUR_SIGMA`` px), so that a texture laid over
  the photo's edges still counts as keeping them (1: the same structure; 0: none of it);
* ``colour_distance``: the distance of the output's colour statistics to the style
  image's: the Euclidean distance of the (mean, standard deviation) of L*, a* and b* (in
  CIELAB units; 0: the style's colours exactly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image
from scipy import ndimage
from skimage.color import rgb2lab
from skimage.exposure import match_histograms
from skimage.metrics import structural_similarity
from torch import nn

from vitrine.products import CAMPAIGN_STYLES
from vitrine.spec import ModelSpec, Task
from vitrine.training.config import TrainConfig
from vitrine.training.degradations import random_crop_flip
from vitrine.training.grids import labelled_row, stack_rows
from vitrine.training.hooks import DemoCase, TaskHooks
from vitrine.training.metrics import luminance_edges
from vitrine.training.photo_squares import validation_squares
from vitrine.training.photos import TRAIN_PHOTOS, VALIDATION_PHOTOS, centre_crop, load_split
from vitrine.training.recipe import SingleNetworkRecipe
from vitrine.training.styles import STYLE_NAMES, STYLE_SIDE, style_image
from vitrine.training.texture_features import CONTENT_LAYER, TextureFeatures, gram
from vitrine.training.uint8_wrapper import blend, run_uint8, to_float, to_float_batch

__all__ = [
    "HOOKS",
    "StylizeRecipe",
    "StylizeSettings",
    "comparison_image",
    "demo_case",
    "colour_distance",
    "edge_correlation",
    "evaluate_photographs",
    "evaluate_stylize",
    "forward",
    "histogram_match",
]

_EVAL_SIDE = STYLE_SIDE  # validation photos are centre-cropped to a style-sized square
_PANEL = 192  # px of one panel in the comparison image
EDGE_BLUR_SIGMA = 2.0  # px at the evaluation side: the blur of the edge maps correlated


@dataclass(frozen=True)
class StylizeSettings:
    """The ``[recipe]`` table of the style-transfer config: the loss weights."""

    content_weight: float  # MSE of the texture network's content layer, photo vs output
    style_weight: float  # squared Gram distance, summed over the layers
    tv_weight: float  # total variation


class StylizeRecipe(SingleNetworkRecipe[StylizeSettings]):
    """Batches of (photo crops, style indices); content + style + total-variation loss."""

    settings_type = StylizeSettings

    def __init__(self, spec: ModelSpec, config: TrainConfig) -> None:
        super().__init__(spec, config)
        self.photos = list(load_split("train").values())
        self.features = TextureFeatures()
        styles = to_float_batch(np.stack([style_image(name) for name in STYLE_NAMES]))
        with torch.no_grad():
            self.style_grams = [gram(layer) for layer in self.features(styles)]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(crops (N, 3, P, P) in [0, 1], styles (N,)): deterministic in (seed, step)."""
        rng = np.random.default_rng([self.config.seed, step])
        crops = [
            random_crop_flip(
                self.photos[int(rng.integers(len(self.photos)))], self.config.patch_size, rng
            )
            for _ in range(self.config.batch_size)
        ]
        styles = rng.integers(len(STYLE_NAMES), size=self.config.batch_size)
        return to_float_batch(np.stack(crops)), torch.from_numpy(styles)

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Weighted content (feature MSE), style (Gram MSE, every layer) and TV losses."""
        photos, styles = batch
        output = model(photos, styles)
        settings = self.settings
        out_layers = self.features(output)
        with torch.no_grad():
            content = self.features(photos)[CONTENT_LAYER]
        content_loss = (out_layers[CONTENT_LAYER] - content).square().mean()
        style_loss = sum(
            (gram(layer) - grams[styles]).square().sum(dim=(1, 2)).mean()
            for layer, grams in zip(out_layers, self.style_grams, strict=True)
        )
        tv = (output[..., 1:, :] - output[..., :-1, :]).abs().mean()
        tv = tv + (output[..., 1:] - output[..., :-1]).abs().mean()
        loss: torch.Tensor = (
            settings.content_weight * content_loss
            + settings.style_weight * style_loss
            + settings.tv_weight * tv
        )
        return loss

    def data_description(self) -> dict[str, Any]:
        """What the model was trained and validated on, for the checkpoint sidecar."""
        return {
            "source": "scikit-image 0.26 shipped photos (content); training/styles.py (styles)",
            "train": list(TRAIN_PHOTOS),
            "validation": list(VALIDATION_PHOTOS),
            "styles": list(STYLE_NAMES),
            "style_side": STYLE_SIDE,
        }


def forward(
    model: nn.Module, image: torch.Tensor, style: torch.Tensor, strength: torch.Tensor
) -> torch.Tensor:
    """``model(x, style) -> y`` with ``style`` (N,) int64; served, the ``style`` input is int32
    (N, 1) and ``strength`` (N, 1) blends ``x + s * (y - x)``."""
    x = to_float(image)
    return blend(x, model(x, style[:, 0].long()), strength)


def content_ssim(reference: npt.NDArray[Any], output: npt.NDArray[Any]) -> float:
    """SSIM of the two images' luminance edge maps."""
    a, b = luminance_edges(reference), luminance_edges(output)
    return float(structural_similarity(a, b, data_range=max(a.max(), b.max(), 1e-6)))


def edge_correlation(reference: npt.NDArray[Any], output: npt.NDArray[Any]) -> float:
    """Pearson correlation of the two images' blurred luminance edge maps (0 when either
    map is flat)."""
    a, b = (
        ndimage.gaussian_filter(luminance_edges(image), EDGE_BLUR_SIGMA).ravel()
        for image in (reference, output)
    )
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _lab_statistics(image: npt.NDArray[Any]) -> npt.NDArray[Any]:
    lab = rgb2lab(image).reshape(-1, 3)
    return np.concatenate([lab.mean(axis=0), lab.std(axis=0)])


def colour_distance(output: npt.NDArray[Any], style: npt.NDArray[Any]) -> float:
    """Euclidean distance of the CIELAB (mean, standard deviation) per channel."""
    return float(np.linalg.norm(_lab_statistics(output) - _lab_statistics(style)))


@torch.no_grad()
def style_distance(
    features: TextureFeatures, output: npt.NDArray[Any], style: npt.NDArray[Any]
) -> float:
    """Mean over layers of the relative Frobenius distance between Gram matrices."""
    layers = features(to_float_batch(np.stack([output, style])))
    distances = []
    for layer in layers:
        grams = gram(layer)
        distances.append(float((grams[0] - grams[1]).norm() / grams[1].norm()))
    return float(np.mean(distances))


def histogram_match(photo: npt.NDArray[Any], style: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The naive colour transfer: ``photo``'s histograms matched to ``style``'s, per channel."""
    matched = match_histograms(photo, style, channel_axis=-1)
    result: npt.NDArray[Any] = np.round(np.clip(matched, 0, 255)).astype(np.uint8)
    return result


def stylize(model: nn.Module, photo: npt.NDArray[Any], style: int) -> npt.NDArray[Any]:
    """``photo`` in style ``style`` at full strength, through the served uint8 wrapper."""
    options = (np.array([style], np.int32), np.array([1.0], np.float32))
    return run_uint8(model, photo, *options, task=Task.STYLIZE)


def evaluate_stylize(model: nn.Module) -> dict[str, Any]:
    """Content SSIM and style distance per style and method, with margins over baselines."""
    features = TextureFeatures()
    photos = [centre_crop(photo, _EVAL_SIDE) for photo in load_split("validation").values()]
    per_style: dict[str, dict[str, dict[str, float]]] = {}
    for index, name in enumerate(STYLE_NAMES):
        style = style_image(name)
        outputs = {
            "model": [stylize(model, photo, index) for photo in photos],
            "input": photos,
            "histogram_match": [histogram_match(photo, style) for photo in photos],
            "style_image": [style for _ in photos],
        }
        per_style[name] = {
            method: {
                "content_ssim": float(
                    np.mean([content_ssim(p, o) for p, o in zip(photos, images, strict=True)])
                ),
                "style_distance": float(
                    np.mean([style_distance(features, o, style) for o in images])
                ),
            }
            for method, images in outputs.items()
        }
    mean = {
        method: {
            metric: float(np.mean([per_style[s][method][metric] for s in STYLE_NAMES]))
            for metric in ("content_ssim", "style_distance")
        }
        for method in ("model", "input", "histogram_match", "style_image")
    }
    margins = {
        "style_distance_below_histogram_match": mean["histogram_match"]["style_distance"]
        - mean["model"]["style_distance"],
        "content_ssim_over_style_image": mean["model"]["content_ssim"]
        - mean["style_image"]["content_ssim"],
    }
    photographs, photo_margins = evaluate_photographs(model)
    return {
        "mean": mean,
        "per_style": per_style,
        "photographs": photographs,
        "margins": margins | photo_margins,
    }


def evaluate_photographs(model: nn.Module) -> tuple[dict[str, Any], dict[str, float]]:
    """Per style, the mean edge correlation with the input and colour distance to the style
    image over the photo corpus's validation photographs, for the model at full strength,
    histogram matching and the input; margins ``edge_correlation_<style>`` (the model's)."""
    photos = list(validation_squares(_EVAL_SIDE).values())
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for index, name in enumerate(STYLE_NAMES):
        style = style_image(name)
        outputs = {
            "model": [stylize(model, photo, index) for photo in photos],
            "histogram_match": [histogram_match(photo, style) for photo in photos],
            "input": photos,
        }
        figures[name] = {
            method: {
                "edge_correlation": float(
                    np.mean([edge_correlation(p, o) for p, o in zip(photos, images, strict=True)])
                ),
                "colour_distance": float(np.mean([colour_distance(o, style) for o in images])),
            }
            for method, images in outputs.items()
        }
    margins = {
        f"edge_correlation_{name}": figures[name]["model"]["edge_correlation"]
        for name in STYLE_NAMES
    }
    return figures, margins


def comparison_image(model: nn.Module) -> Image.Image:
    """Per validation photo (the scikit-image ones, then the photo corpus's photographs) a
    row: the photo, then each style by histogram matching and by the model."""
    crops = {
        name: centre_crop(photo, _EVAL_SIDE) for name, photo in load_split("validation").items()
    }
    rows = []
    for photo_name, crop in (crops | validation_squares(_EVAL_SIDE)).items():
        panels = {photo_name: crop}
        for index, name in enumerate(STYLE_NAMES):
            panels[f"{name} (hist)"] = histogram_match(crop, style_image(name))
            panels[name] = stylize(model, crop, index)
        rows.append(
            labelled_row(
                {k: Image.fromarray(v).resize((_PANEL, _PANEL)) for k, v in panels.items()}
            )
        )
    return stack_rows(rows)


def demo_case(spec: ModelSpec, name: str, photo: npt.NDArray[Any]) -> DemoCase:
    """The photo (cropped to the limits) in one campaign look per photo; the rival is
    histogram matching to that style's image. There is no ground truth: the reference is
    the photo itself."""
    clean = photo[: spec.core_limits.max_side, : spec.core_limits.max_side]
    style = CAMPAIGN_STYLES[VALIDATION_PHOTOS.index(name) % len(CAMPAIGN_STYLES)]
    baseline = histogram_match(clean, style_image(style))
    return DemoCase(clean, clean, f"histogram match ({style})", baseline, {"style": style})


HOOKS = TaskHooks(
    forward=forward,
    evaluate=lambda spec, model: evaluate_stylize(model),
    comparison=lambda spec, model: comparison_image(model),
    recipe=lambda spec: StylizeRecipe,
    demo=demo_case,
)
