"""Generator evaluation: the Fréchet distance is right, and the shipped judge tells a
generator of real catalog images from an untrained one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from vitrine.registry import GENERATOR_TARGETS, get_spec
from vitrine.spec import Task
from vitrine.training.catalog_data import load_catalog
from vitrine.training.evaluate import as_rows
from vitrine.training.generator_eval import (
    evaluate_generator,
    feature_fid,
    frechet_distance,
    sample_grid,
)
from vitrine.training.hooks import task_hooks

SPEC = get_spec("dcgan")
CONDITIONING = SPEC.conditioning
assert CONDITIONING is not None
ROWS = {"generator", "naive baseline", "real train (floor)"}
COLUMNS = ["fid", "category_consistency", "colour_consistency", "diversity"]


class UntrainedGenerator(nn.Module):
    """The generator contract, with random weights: label embeddings + latent -> pixels."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.category = nn.Embedding(len(CONDITIONING.categories), 8)
        self.colour = nn.Embedding(len(CONDITIONING.colours), 8)
        self.to_pixels = nn.Linear(CONDITIONING.latent_dim + 16, 3 * 32 * 32)
        for parameter in self.parameters():
            parameter.data = torch.randn(parameter.shape, generator=generator) * 0.1

    def forward(self, latent: torch.Tensor, category: torch.Tensor, colour: torch.Tensor):
        code = torch.cat([latent, self.category(category), self.colour(colour)], dim=1)
        return torch.sigmoid(self.to_pixels(code)).view(-1, 3, 32, 32)


class CheatingGenerator(nn.Module):
    """Real train images of the requested labels, one picked by the latent's first entry."""

    def __init__(self) -> None:
        super().__init__()
        self.catalog = load_catalog("train")
        pair = self.catalog.categories * len(CONDITIONING.colours) + self.catalog.colours
        self.order = np.argsort(pair, kind="stable")  # the images of each pair, contiguous
        self.starts = np.searchsorted(pair[self.order], np.arange(pair.max() + 2))

    def forward(self, latent: torch.Tensor, category: torch.Tensor, colour: torch.Tensor):
        pair = (category * len(CONDITIONING.colours) + colour).numpy()
        start, end = self.starts[pair], self.starts[pair + 1]
        quantile = torch.special.ndtr(latent[:, 0].double()).numpy()  # uniform in (0, 1)
        rows = self.order[np.minimum(start + (quantile * (end - start)).astype(int), end - 1)]
        return torch.from_numpy(self.catalog.images[rows]).permute(0, 3, 1, 2).float() / 255.0


@pytest.fixture(scope="module")
def cheating_report() -> dict[str, Any]:
    return evaluate_generator(SPEC, CheatingGenerator())


@pytest.fixture(scope="module")
def untrained_report() -> dict[str, Any]:
    return evaluate_generator(SPEC, UntrainedGenerator().eval())


def test_frechet_distance_of_gaussians_matches_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    mean_a, mean_b = rng.normal(size=5), rng.normal(size=5)
    std_a, std_b = rng.uniform(0.5, 2.0, 5), rng.uniform(0.5, 2.0, 5)
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((std_a - std_b) ** 2)
    cov_a, cov_b = np.diag(std_a**2), np.diag(std_b**2)
    assert frechet_distance(mean_a, cov_a, mean_b, cov_b) == pytest.approx(expected, abs=1e-5)
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))  # the distance is rotation-invariant
    rotated = frechet_distance(
        rotation @ mean_a,
        rotation @ cov_a @ rotation.T,
        rotation @ mean_b,
        rotation @ cov_b @ rotation.T,
    )
    assert rotated == pytest.approx(expected, abs=1e-5)


def test_feature_fid_is_zero_for_one_set_and_estimates_known_gaussians() -> None:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(500, 16))
    assert feature_fid(features, features) == pytest.approx(0.0, abs=1e-6)
    a = rng.normal(0.0, 1.0, size=(20000, 4))
    b = rng.normal(1.0, 2.0, size=(20000, 4))
    assert feature_fid(a, b) == pytest.approx(4 * 1.0 + 4 * (2.0 - 1.0) ** 2, rel=0.03)


def test_report_has_the_table_rows_and_exactly_the_target_margins(
    untrained_report: dict[str, Any],
) -> None:
    assert set(untrained_report["mean"]) == ROWS
    for values in untrained_report["mean"].values():
        assert list(values) == COLUMNS
    assert untrained_report["margins"].keys() == GENERATOR_TARGETS.keys()
    columns, rows = as_rows(untrained_report)
    assert columns == ["method", *COLUMNS] and len(rows) == 3


def test_reference_rows_are_sane(untrained_report: dict[str, Any]) -> None:
    floor, naive = (
        untrained_report["mean"][row] for row in ("real train (floor)", "naive baseline")
    )
    assert 0 < floor["fid"] < naive["fid"] / 5
    assert floor["category_consistency"] >= 0.9 and floor["colour_consistency"] >= 0.98
    assert 0.85 < floor["diversity"] < 1.15
    judge = untrained_report["judge_on_real_test"]
    assert judge["category_consistency"] >= 0.85 and judge["colour_consistency"] >= 0.98


def test_cheating_generator_scores_like_real_images(cheating_report: dict[str, Any]) -> None:
    row, floor = cheating_report["mean"]["generator"], cheating_report["mean"]["real train (floor)"]
    margins = cheating_report["margins"]
    assert margins["category_consistency"] >= 0.9
    assert margins["colour_consistency"] >= 0.98
    assert row["fid"] < 1.5 * floor["fid"]
    assert margins["fid_floor_headroom"] > 1.0 and margins["fid_naive_headroom"] > 0.0
    assert 0.85 < margins["diversity_over_real"] < 1.15


def test_untrained_generator_fails_every_target(
    untrained_report: dict[str, Any], cheating_report: dict[str, Any]
) -> None:
    margins = untrained_report["margins"]
    assert margins["category_consistency"] < 0.5 and margins["colour_consistency"] < 0.5
    assert margins["fid_floor_headroom"] < 0 and margins["fid_naive_headroom"] < 0
    fid = untrained_report["mean"]["generator"]["fid"]
    assert fid > 10 * cheating_report["mean"]["generator"]["fid"]
    assert margins["diversity_over_real"] < GENERATOR_TARGETS["diversity_over_real"]


def test_evaluation_is_deterministic_and_registered(untrained_report: dict[str, Any]) -> None:
    hooks = task_hooks(Task.GENERATE)
    assert hooks.evaluate(SPEC, UntrainedGenerator().eval()) == untrained_report
    grid = hooks.comparison(SPEC, UntrainedGenerator().eval())
    assert grid is not None and hooks.comparison is sample_grid
    rows, columns = len(CONDITIONING.categories), len(CONDITIONING.colours)
    assert grid.size == (76 + columns * 64, 16 + rows * 64)
