"""The photo <-> sketch translator, its unpaired data and the procedural sketches."""

from __future__ import annotations

import numpy as np
import torch

from vitrine.registry import SPECS
from vitrine.training.architectures import build_architecture
from vitrine.training.architectures.cyclegan import CycleTranslator, PatchCritic
from vitrine.training.photo_sketch import _PHOTO_NAMES, _SKETCH_NAMES, pencil_sketch, sobel_sketch
from vitrine.training.photos import TRAIN_PHOTOS

SPEC = SPECS["translate"]


def test_the_direction_picks_the_generator_at_any_size() -> None:
    torch.manual_seed(0)
    model = build_architecture(SPEC.architecture, SPEC.arch_kwargs).eval()
    assert isinstance(model, CycleTranslator)
    image = torch.rand(2, 3, 35, 50)
    with torch.no_grad():
        mixed = model(image, torch.tensor([0, 1]))
        torch.testing.assert_close(mixed[0], model.to_sketch(image)[0])
        torch.testing.assert_close(mixed[1], model.to_photo(image)[1])
    assert mixed.shape == (2, 3, 35, 50)
    assert PatchCritic()(image).shape[:2] == (2, 1)


def test_the_domains_come_from_disjoint_photos() -> None:
    assert _PHOTO_NAMES and _SKETCH_NAMES and not set(_PHOTO_NAMES) & set(_SKETCH_NAMES)
    assert set(_PHOTO_NAMES) | set(_SKETCH_NAMES) == set(TRAIN_PHOTOS)


def test_sketches_are_grey_dark_lines_on_white() -> None:
    photo = np.full((64, 64, 3), 200, np.uint8)
    photo[20:44, 20:44] = (30, 60, 200)  # a dark square on a light ground
    for sketch in (pencil_sketch(photo), sobel_sketch(photo)):
        assert sketch.shape == photo.shape and sketch.dtype == np.uint8
        assert np.array_equal(sketch[..., 0], sketch[..., 1])  # grey
        assert np.median(sketch) > 240  # mostly paper white
        assert sketch[20, 10:30, 0].min() < 200  # a line where the square's edge is
