"""Evaluation of a latent editor (the VAE's encoder + decoder) on held-out catalog images.

Every figure is measured through the served uint8 wrapper on real test images, which the
VAE never trained on, graded by PSNR and by the shipped judge (``vitrine.training.judge``):

* reconstruction (blend 0, spread 0), next to a baseline that keeps nothing of the image
  but its labels: the mean train image of its category and colour;
* variations (spread ``VARIATION_SPREAD``, one seed per image): whether the judge still
  sees the source's category and colour;
* interpolation: the midpoint between two test images with the same labels.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image
from torch import nn

from vitrine.spec import ModelSpec, Task
from vitrine.training.architectures.cvae import ConditionalVAE
from vitrine.training.catalog_data import CatalogSet, load_catalog
from vitrine.training.hooks import TaskHooks
from vitrine.training.judge import judge_images, load_judge
from vitrine.training.metrics import psnr
from vitrine.training.uint8_wrapper import Uint8ImageModel, to_float

__all__ = ["HOOKS", "VARIATION_SPREAD", "comparison_image", "evaluate_latent_edit", "forward"]

EVAL_IMAGES = 1000
VARIATION_SPREAD = 1.0
"""The client's default spread, evaluated."""
_SEED = 20261207
_BATCH = 250
_GRID_ROWS = 8
_GRID_STEPS = 5  # interpolation columns, both ends included


def forward(model: ConditionalVAE, image: torch.Tensor, *options: torch.Tensor) -> torch.Tensor:
    """A VAE's ``model.encode(x, category, colour) -> (mean, log_variance)`` and ``model(latent,
    category, colour) -> y``: the inputs ``other`` (a second image), ``category``, ``color``
    (N, 1), ``blend``, ``noise`` (N, Z) and ``spread`` decode ``lerp(mean(x), mean(other),
    blend) + spread * noise``."""
    x = to_float(image)
    other, category, colour, blend, noise, spread = options
    labels = (category[:, 0].long(), colour[:, 0].long())
    mean, _ = model.encode(x, *labels)
    towards, _ = model.encode(to_float(other), *labels)
    latent = mean + blend * (towards - mean) + spread * noise
    output: torch.Tensor = model(latent, *labels)
    return output


def _edit(
    model: nn.Module,
    images: npt.NDArray[Any],
    others: npt.NDArray[Any],
    labels: tuple[npt.NDArray[Any], npt.NDArray[Any]],
    blend: float,
    spread: float,
    seed: int,
) -> npt.NDArray[Any]:
    """(N, H, W, 3) uint8 results of the served edit, each image with its own noise row."""
    served = Uint8ImageModel(model, Task.LATENT_EDIT).eval()
    shape = (len(images), cast(ConditionalVAE, model).latent_dim)
    noise = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    parts = []
    with torch.inference_mode():
        for start in range(0, len(images), _BATCH):
            rows = slice(start, start + _BATCH)
            count = len(images[rows])
            feeds = (
                images[rows],
                others[rows],
                *(label[rows, None].astype(np.int32) for label in labels),
                np.full((count, 1), blend, np.float32),
                noise[rows],
                np.full((count, 1), spread, np.float32),
            )
            parts.append(served(*(torch.from_numpy(feed) for feed in feeds)).numpy())
    return np.concatenate(parts)


def _label_means(
    train: CatalogSet, categories: npt.NDArray[Any], colours: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    """The mean train image of each requested (category, colour)."""
    means = {}
    for pair in set(zip(categories.tolist(), colours.tolist(), strict=True)):
        chosen = (train.categories == pair[0]) & (train.colours == pair[1])
        means[pair] = np.round(train.images[chosen].mean(0)).astype(np.uint8)
    return np.stack([means[pair] for pair in zip(categories, colours, strict=True)])


def _partners(test: CatalogSet, chosen: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """For each chosen image, another test image with the same labels (fixed draw)."""
    rng = np.random.default_rng(_SEED + 1)
    pair = test.categories * 100 + test.colours
    partners = []
    for index in chosen:
        same = np.flatnonzero((pair == pair[index]) & (np.arange(len(pair)) != index))
        partners.append(rng.choice(same))
    return np.array(partners)


def _row(
    images: npt.NDArray[Any],
    reference: npt.NDArray[Any],
    categories: npt.NDArray[Any],
    colours: npt.NDArray[Any],
) -> dict[str, float]:
    verdict = judge_images(load_judge(), images)
    return {
        "psnr_db": float(np.mean([psnr(a, b) for a, b in zip(images, reference, strict=True)])),
        "category_consistency": float(np.mean(verdict.categories == categories)),
        "colour_consistency": float(np.mean(verdict.colours == colours)),
    }


def evaluate_latent_edit(spec: ModelSpec, model: nn.Module) -> dict[str, Any]:
    """Reconstruction, variation and interpolation figures (``mean``) and ``margins``."""
    test = load_catalog("test")
    chosen = np.random.default_rng(_SEED).choice(len(test.images), EVAL_IMAGES, replace=False)
    images, labels = test.images[chosen], (test.categories[chosen], test.colours[chosen])
    partners = test.images[_partners(test, chosen)]
    results = {
        "reconstruction": _edit(model, images, images, labels, 0.0, 0.0, _SEED),
        "label mean (baseline)": _label_means(load_catalog("train"), *labels),
        f"variations (spread {VARIATION_SPREAD})": _edit(
            model, images, images, labels, 0.0, VARIATION_SPREAD, _SEED
        ),
        "interpolation midpoint": _edit(model, images, partners, labels, 0.5, 0.0, _SEED),
    }
    mean = {name: _row(result, images, *labels) for name, result in results.items()}
    reconstruction, baseline = mean["reconstruction"], mean["label mean (baseline)"]
    margins = {
        "reconstruction_psnr_over_label_mean_db": reconstruction["psnr_db"] - baseline["psnr_db"],
        "variation_category_consistency": mean[f"variations (spread {VARIATION_SPREAD})"][
            "category_consistency"
        ],
        "interpolation_category_consistency": mean["interpolation midpoint"][
            "category_consistency"
        ],
    }
    return {"mean": mean, "margins": margins, "images": EVAL_IMAGES, "model": spec.name}


def comparison_image(spec: ModelSpec, model: nn.Module) -> Image.Image:
    """One test image per row: source, reconstruction, four variations, then a five-step
    interpolation to another image with the same labels, and that image."""
    test = load_catalog("test")
    chosen = np.random.default_rng(_SEED + 2).choice(len(test.images), _GRID_ROWS, replace=False)
    images, labels = test.images[chosen], (test.categories[chosen], test.colours[chosen])
    partners = test.images[_partners(test, chosen)]
    columns = [images, _edit(model, images, images, labels, 0.0, 0.0, _SEED)]
    columns += [
        _edit(model, images, images, labels, 0.0, VARIATION_SPREAD, _SEED + seed)
        for seed in range(4)
    ]
    columns += [
        _edit(model, images, partners, labels, step / (_GRID_STEPS - 1), 0.0, _SEED)
        for step in range(_GRID_STEPS)
    ]
    columns.append(partners)
    grid = np.concatenate(
        [np.concatenate(list(row), axis=1) for row in zip(*columns, strict=True)], axis=0
    )
    image = Image.fromarray(grid)
    return image.resize((image.width * 2, image.height * 2), Image.Resampling.NEAREST)


HOOKS = TaskHooks(
    forward=forward,
    evaluate=evaluate_latent_edit,
    comparison=comparison_image,
)
