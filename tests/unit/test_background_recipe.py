"""The cut-out training shots: pasted distractors change the backdrop, never the true alpha."""

from __future__ import annotations

import dataclasses

import numpy as np

from vitrine.catalog import get_spec
from vitrine.training.background import BackgroundRemovalRecipe
from vitrine.training.config import load_config


def _recipe(distractor_probability: float) -> BackgroundRemovalRecipe:
    config = load_config("remove_background", "smoke")
    recipe = {**config.recipe, "distractor_probability": distractor_probability}
    return BackgroundRemovalRecipe(
        get_spec("remove_background"), dataclasses.replace(config, recipe=recipe)
    )


def test_distractors_are_background() -> None:
    plain, cluttered = _recipe(0.0), _recipe(1.0)
    changed = 0
    for seed in range(4):
        without = plain.sample(np.random.default_rng(seed))
        with_distractors = cluttered.sample(np.random.default_rng(seed))
        assert np.array_equal(with_distractors.alpha, without.alpha)
        changed += int(not np.array_equal(with_distractors.image, without.image))
    assert changed >= 3  # a plain studio backdrop (5 %) is the only one left untouched


def test_distractors_keep_the_backdrop_in_range() -> None:
    recipe = _recipe(1.0)
    rng = np.random.default_rng(7)
    backdrop = np.full((90, 140, 3), 0.5, np.float32)
    cluttered = recipe._with_distractors(backdrop, rng)
    assert cluttered.shape == backdrop.shape
    assert cluttered.min() >= 0.0 and cluttered.max() <= 1.0
    assert np.abs(cluttered - backdrop).max() > 0.1
