"""Generator evaluation: label consistency, a catalog FID and diversity, graded by the judge.

Every (category, colour) pair gets ``PER_PAIR`` images from fixed seeds (pair ``p`` draws
``sample_latents(LATENT_SEED + p, PER_PAIR, Z)``), made through the served uint8 wrapper.
The shipped judge (``vitrine.training.judge``) then measures:

* consistency: how often it names the requested category and colour;
* FID: the Fréchet distance between its features of the images and of the same
  number of real test images per pair. Two rows frame it: the floor (real train images,
  as many per pair) and a naive generator (per-pair mean train image plus Gaussian noise of
  the per-pixel standard deviation);
* diversity: the mean pairwise feature distance within each (category, colour) pair, over
  that of the real test images: what the latent varies once both labels are fixed.

The real and naive rows do not depend on the generator and are computed once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.linalg
import torch
from PIL import Image, ImageDraw
from scipy.spatial.distance import pdist
from torch import nn

from vitrine.sampling import sample_latents
from vitrine.spec import Conditioning, ModelSpec, Task
from vitrine.training.catalog_data import CatalogSet, load_catalog
from vitrine.training.judge import Judgement, judge_images, load_judge
from vitrine.training.uint8_wrapper import Uint8ImageModel

__all__ = [
    "LATENT_SEED",
    "PER_PAIR",
    "evaluate_generator",
    "feature_fid",
    "frechet_distance",
    "generate",
    "sample_grid",
]

PER_PAIR = 20
"""Images per (category, colour) pair in every evaluated set: 2000 for the catalog."""
LATENT_SEED = 20261204
"""Pair ``p``'s evaluation latents come from seed ``LATENT_SEED + p``."""
_NAIVE_SEED = 20261205
_GRID_SEED = 20261206
_BATCH = 500
_CELL = 64  # px of one sample in the grid (2x nearest-neighbour)
_MARGIN = (76, 16)  # px of the category (left) and colour (top) labels in the grid
_COV_OFFSET = 1e-6


def frechet_distance(
    mean_a: npt.NDArray[Any],
    cov_a: npt.NDArray[Any],
    mean_b: npt.NDArray[Any],
    cov_b: npt.NDArray[Any],
) -> float:
    """Fréchet (2-Wasserstein) distance squared between two Gaussians.

    Both covariances get ``_COV_OFFSET`` on the diagonal first, so the square root stays
    defined for a collapsed generator's singular covariance; real features' smallest
    eigenvalues are four orders of magnitude larger.
    """
    offset = np.eye(len(cov_a)) * _COV_OFFSET
    product = scipy.linalg.sqrtm((cov_a + offset) @ (cov_b + offset)).real
    trace = np.trace(cov_a) + np.trace(cov_b) + 2.0 * _COV_OFFSET * len(cov_a)
    trace -= 2.0 * np.trace(product)
    return float(np.sum((mean_a - mean_b) ** 2) + trace)


def feature_fid(features_a: npt.NDArray[Any], features_b: npt.NDArray[Any]) -> float:
    """FID of two (N, F) feature sets: the Fréchet distance of their fitted Gaussians."""
    mean_a, cov_a = features_a.mean(0), np.cov(features_a, rowvar=False)
    mean_b, cov_b = features_b.mean(0), np.cov(features_b, rowvar=False)
    return frechet_distance(mean_a, cov_a, mean_b, cov_b)


def _labels(conditioning: Conditioning) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Requested (category, colour) of every evaluated image, pair by pair."""
    pairs = np.arange(len(conditioning.categories) * len(conditioning.colours))
    pair_of_image = np.repeat(pairs, PER_PAIR)
    return pair_of_image // len(conditioning.colours), pair_of_image % len(conditioning.colours)


@torch.inference_mode()
@torch.no_grad()
def generate(
    model: nn.Module,
    latents: npt.NDArray[Any],
    categories: npt.NDArray[Any],
    colours: npt.NDArray[Any],
) -> npt.NDArray[Any]:
    """(N, side, side, 3) uint8 images as served: through the uint8 wrapper, in batches, in
    eval mode (``model`` is left in the mode it came in: a training loop's samples)."""
    was_training = model.training
    served = Uint8ImageModel(model, Task.GENERATE).eval()
    parts = []
    for start in range(0, len(latents), _BATCH):
        rows = slice(start, start + _BATCH)
        labels = (torch.from_numpy(v[rows, None].astype(np.int32)) for v in (categories, colours))
        parts.append(served(torch.from_numpy(latents[rows]), *labels).numpy())
    model.train(was_training)
    return np.concatenate(parts)


def _consistency(
    verdict: Judgement, categories: npt.NDArray[Any], colours: npt.NDArray[Any]
) -> dict[str, float]:
    return {
        "category_consistency": float(np.mean(verdict.categories == categories)),
        "colour_consistency": float(np.mean(verdict.colours == colours)),
    }


def _diversity(features: npt.NDArray[Any]) -> float:
    """Mean pairwise feature distance within each pair's ``PER_PAIR`` rows, over pairs."""
    groups = features.reshape(-1, PER_PAIR, features.shape[1])
    return float(np.mean([pdist(group).mean() for group in groups]))


def _per_pair(catalog: CatalogSet, colours: int) -> npt.NDArray[Any]:
    """Indices of the first ``PER_PAIR`` images of each pair, in evaluation order."""
    pair = catalog.categories * colours + catalog.colours
    order = np.argsort(pair, kind="stable")
    starts = np.searchsorted(pair[order], np.arange(pair.max() + 1))
    return np.concatenate([order[start : start + PER_PAIR] for start in starts])


def _naive(catalog: CatalogSet, colours: int) -> npt.NDArray[Any]:
    """Per-pair mean train image plus Gaussian noise of the per-pixel standard deviation."""
    rng = np.random.default_rng(_NAIVE_SEED)
    pair = catalog.categories * colours + catalog.colours
    samples = []
    for index in range(pair.max() + 1):
        images = catalog.images[pair == index].astype(np.float32)
        mean, std = images.mean(0), images.std(0)
        samples.append(mean + std * rng.standard_normal((PER_PAIR, *mean.shape)))
    result: npt.NDArray[Any] = np.round(np.clip(np.concatenate(samples), 0, 255)).astype(np.uint8)
    return result


@dataclass(frozen=True)
class _Reference:
    """What does not depend on the generator: the real test set and the two baselines."""

    real: Judgement
    rows: dict[str, dict[str, float]]  # "naive baseline", "real train (floor)"
    real_diversity: float


@cache
def _reference(conditioning: Conditioning) -> _Reference:
    judge = load_judge()
    categories, colours = _labels(conditioning)
    test, train = load_catalog("test"), load_catalog("train")
    real = judge_images(judge, test.images[_per_pair(test, len(conditioning.colours))])
    real_diversity = _diversity(real.features)
    rows: dict[str, dict[str, float]] = {}
    for name, images in (
        ("naive baseline", _naive(train, len(conditioning.colours))),
        ("real train (floor)", train.images[_per_pair(train, len(conditioning.colours))]),
    ):
        verdict = judge_images(judge, images)
        rows[name] = {
            "fid": feature_fid(verdict.features, real.features),
            **_consistency(verdict, categories, colours),
            "diversity": _diversity(verdict.features) / real_diversity,
        }
    return _Reference(real=real, rows=rows, real_diversity=real_diversity)


def evaluate_generator(spec: ModelSpec, model: nn.Module) -> dict[str, Any]:
    """Consistency, FID and diversity of ``model`` next to the naive and real rows."""
    conditioning = spec.conditioning
    if conditioning is None:
        raise ValueError(f"{spec.name} is not a generator")
    reference = _reference(conditioning)
    categories, colours = _labels(conditioning)
    latents = np.concatenate(
        [
            sample_latents(LATENT_SEED + pair, PER_PAIR, conditioning.latent_dim)
            for pair in range(len(categories) // PER_PAIR)
        ]
    )
    verdict = judge_images(load_judge(), generate(model, latents, categories, colours))
    row = {
        "fid": feature_fid(verdict.features, reference.real.features),
        **_consistency(verdict, categories, colours),
        "diversity": _diversity(verdict.features) / reference.real_diversity,
    }
    mean = {"generator": row} | reference.rows
    margins = {
        "category_consistency": row["category_consistency"],
        "colour_consistency": row["colour_consistency"],
        "fid_floor_headroom": 3.0 - row["fid"] / mean["real train (floor)"]["fid"],
        "fid_naive_headroom": 1.0 / 3.0 - row["fid"] / mean["naive baseline"]["fid"],
        "diversity_over_real": row["diversity"],
    }
    judge = _consistency(reference.real, categories, colours)
    return {
        "mean": mean,
        "margins": margins,
        "judge_on_real_test": judge,
        "images_per_set": len(categories),
    }


def sample_grid(spec: ModelSpec, model: nn.Module) -> Image.Image:
    """One sample per (category, colour) from fixed seeds: a row per category, a column per
    colour, each labelled."""
    conditioning = spec.conditioning
    if conditioning is None:
        raise ValueError(f"{spec.name} is not a generator")
    rows, columns = len(conditioning.categories), len(conditioning.colours)
    latents = sample_latents(_GRID_SEED, rows * columns, conditioning.latent_dim)
    cells = np.arange(rows * columns)
    images = generate(model, latents, cells // columns, cells % columns)
    left, top = _MARGIN
    grid = Image.new("RGB", (left + columns * _CELL, top + rows * _CELL), "white")
    draw = ImageDraw.Draw(grid)
    for column, colour in enumerate(conditioning.colours):
        draw.text((left + column * _CELL + 4, 2), colour, fill="black")
    for row, category in enumerate(conditioning.categories):
        draw.text((4, top + row * _CELL + _CELL // 2 - 6), category, fill="black")
        for column in range(columns):
            cell = Image.fromarray(images[row * columns + column])
            cell = cell.resize((_CELL, _CELL), Image.Resampling.NEAREST)
            grid.paste(cell, (left + column * _CELL, top + row * _CELL))
    return grid
