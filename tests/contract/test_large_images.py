"""Every editor takes real photos: upload limits, a plan for them, and margins that cover the
network's receptive field."""

from __future__ import annotations

import pytest
import torch

from vitrine.catalog import (
    OUTPUT_MAX_PIXELS,
    OUTPUT_MAX_SIDE,
    SPECS,
    UPLOAD_MAX_PIXELS,
    UPLOAD_MAX_SIDE,
)
from vitrine.spec import ModelSpec, Tiling
from vitrine.training.architectures import build_architecture

EDITORS = [spec for spec in SPECS.values() if spec.is_editor]
EDITOR_IDS = {"ids": lambda spec: spec.name}


@pytest.mark.parametrize("spec", EDITORS, **EDITOR_IDS)
def test_every_editor_takes_real_photos(spec: ModelSpec) -> None:
    assert spec.large is not None, f"{spec.name} has no plan for photos beyond its core's sides"
    scale = spec.output_scale
    assert spec.limits.max_side == min(UPLOAD_MAX_SIDE, OUTPUT_MAX_SIDE // scale)
    assert spec.limits.max_pixels == min(UPLOAD_MAX_PIXELS, OUTPUT_MAX_PIXELS // scale**2)
    assert spec.limits.max_side * scale <= OUTPUT_MAX_SIDE
    assert spec.limits.max_pixels * scale**2 <= OUTPUT_MAX_PIXELS
    assert spec.large.tile <= spec.core_limits.max_side


def test_the_upload_limits_are_what_real_photos_need() -> None:
    """25 MP and 6,000 px a side in; 8,192 px and 64 MP out: x2 takes 4,096, x4 2,048."""
    assert (UPLOAD_MAX_SIDE, UPLOAD_MAX_PIXELS) == (6000, 25_000_000)
    assert (OUTPUT_MAX_SIDE, OUTPUT_MAX_PIXELS) == (8192, 8192**2)
    assert SPECS["superres_x2"].limits.max_side == 4096
    assert SPECS["superres_x4"].limits.max_side == 2048


def _receptive_radius(spec: ModelSpec) -> int:
    """How far from an output pixel the input pixels it depends on reach (random weights)."""
    torch.manual_seed(0)
    model = build_architecture(spec.architecture, spec.arch_kwargs).eval()
    side = 384
    image = torch.rand(1, 3, side, side, requires_grad=True)
    output = model(image)
    centre = output.shape[-1] // 2
    output[0, :, centre, centre].sum().backward()
    assert image.grad is not None
    rows = torch.nonzero(image.grad[0].abs().sum(dim=(0, 2)) > 0).flatten()
    middle = centre // spec.output_scale
    return int(max(middle - rows.min(), rows.max() - middle))


@pytest.mark.parametrize(
    "spec",
    [s for s in EDITORS if s.large and s.large.tiling is Tiling.TILES and not s.large.blend],
    **EDITOR_IDS,
)
def test_tile_margins_cover_the_receptive_field(spec: ModelSpec) -> None:
    """Then a tile's kept centre is computed exactly as in the whole image."""
    assert spec.large is not None
    assert _receptive_radius(spec) <= spec.large.margin
