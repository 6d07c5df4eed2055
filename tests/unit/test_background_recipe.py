"""The cut-out training shots: distractors and turned backdrops change the backdrop, never the
true alpha."""

from __future__ import annotations

import dataclasses

import numpy as np

from vitrine.registry import get_spec
from vitrine.training.background import BackgroundRemovalRecipe
from vitrine.training.config import load_config


def _recipe(distractor_probability: float, **settings: float) -> BackgroundRemovalRecipe:
    config = load_config("remove_background", "smoke")
    recipe = {**config.recipe, "distractor_probability": distractor_probability, **settings}
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


def test_turned_backdrops_keep_the_shot_and_its_alpha() -> None:
    upright, turned = _recipe(0.0), _recipe(0.0, background_turn_probability=1.0)
    for seed in range(3):
        a = upright.sample(np.random.default_rng(seed))
        b = turned.sample(np.random.default_rng(seed))
        assert b.image.shape == a.image.shape
        assert np.array_equal(b.alpha, a.alpha)
        assert not np.array_equal(b.image, a.image)


def test_flat_distractors_take_no_photo_texture() -> None:
    """With every cut-out flat, the photos behind the cut-outs do not matter."""
    backdrop = np.full((90, 140, 3), 0.5, np.float32)
    results = {}
    for share in (0.0, 1.0):
        for fill in (0, 255):
            recipe = _recipe(1.0, flat_distractor_share=share)
            recipe.photos = [np.full((200, 200, 3), fill, np.uint8)]
            cluttered = recipe._with_distractors(backdrop, np.random.default_rng(3))
            results[share, fill] = cluttered
    assert not np.array_equal(results[0.0, 0], results[0.0, 255])
    assert np.array_equal(results[1.0, 0], results[1.0, 255])
    assert np.abs(results[1.0, 0] - backdrop).max() > 0.1
