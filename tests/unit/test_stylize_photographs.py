"""Stylize's structure and colour figures on photographs, on tiny synthetic images."""

from __future__ import annotations

import numpy as np

from vitrine.products import CAMPAIGN_STYLES
from vitrine.registry import get_spec
from vitrine.training.photo_squares import validation_squares
from vitrine.training.stylize import colour_distance, edge_correlation


def _scene() -> np.ndarray:
    y, x = np.mgrid[0:64, 0:64]
    image = np.zeros((64, 64, 3), np.uint8)
    image[(x - 32) ** 2 + (y - 32) ** 2 < 300] = (200, 60, 40)
    image[:, 50:] = (30, 90, 200)
    return image


def test_edge_correlation_keeps_structure_and_drops_a_smear() -> None:
    scene = _scene()
    assert edge_correlation(scene, scene) == 1.0
    recoloured = 255 - scene  # other colours, same edges
    assert edge_correlation(scene, recoloured) > 0.9
    noise = np.random.default_rng(0).integers(0, 256, scene.shape, dtype=np.uint8)
    assert abs(edge_correlation(scene, noise)) < 0.3
    flat = np.full_like(scene, 128)
    assert edge_correlation(scene, flat) == 0.0


def test_colour_distance_is_zero_alike_and_sees_colour_statistics() -> None:
    scene = _scene()
    assert colour_distance(scene, scene) == 0.0
    assert colour_distance(scene, np.ascontiguousarray(scene[::-1, ::-1])) < 1e-9  # layout
    assert colour_distance(scene, scene // 2) > 10.0


def test_validation_squares_are_the_packaged_validation_photographs() -> None:
    squares = validation_squares(48)
    assert list(squares) == ["Dune", "Garden", "Storm", "FallenLeaf", "Path"]
    assert all(
        square.shape == (48, 48, 3) and square.dtype == np.uint8 for square in squares.values()
    )


def test_every_style_has_an_edge_target() -> None:
    targets = get_spec("stylize").quality_targets
    assert {f"edge_correlation_{style}" for style in CAMPAIGN_STYLES} <= set(targets)
    assert all(targets[f"edge_correlation_{style}"] == 0.3 for style in CAMPAIGN_STYLES)
