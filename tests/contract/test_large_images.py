"""Every editor takes real photos: upload limits, a plan for them, and margins that cover the
network's receptive field."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from vitrine import paths
from vitrine.options import background_value
from vitrine.registry import (
    OUTPUT_MAX_PIXELS,
    OUTPUT_MAX_SIDE,
    SPECS,
    UPLOAD_MAX_PIXELS,
    UPLOAD_MAX_SIDE,
)
from vitrine.spec import ModelSpec, OptionKind, Tiling
from vitrine.tiling import PlanSettings, plan_image, windows
from vitrine.training.architectures import build_architecture
from vitrine.training.checkpoint import load_checkpoint
from vitrine.training.photos import load_split
from vitrine.training.uint8_wrapper import Uint8ImageModel

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


def _photo_beyond_the_core(spec: ModelSpec) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A validation photo upscaled past the core model's sides, with valid options."""
    side = spec.core_limits.max_side
    height, width = side + side // 4, side + side // 8
    source = load_split("validation")["coffee"]
    photo = np.asarray(Image.fromarray(source).resize((width, height), Image.Resampling.BICUBIC))
    options: dict[str, np.ndarray] = {}
    for option in spec.options:
        if option.kind is OptionKind.STRENGTH:
            options[option.core.name] = np.ones((1, 1), np.float32)
        elif option.kind is OptionKind.LABEL:
            options[option.core.name] = np.zeros((1, 1), np.int32)
        elif option.kind is OptionKind.BACKGROUND:
            options[option.core.name] = background_value("white")[None]
        elif option.kind is OptionKind.MASK:
            mask = np.zeros((height, width), np.uint8)
            mask[40:70, 30 : width - 30] = 255  # a stroke wider than a tile
            mask[height - 90 : height - 40, width // 2 : width // 2 + 60] = 255
            options[option.core.name] = mask[None, :, :, None]
    return photo, options


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(255.0**2 / error))


def _served(spec: ModelSpec) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    model = Uint8ImageModel(load_checkpoint(paths.weights_path(spec.weights_name)).model, spec.task)
    model.eval()

    @torch.inference_mode()
    def core(call: dict[str, np.ndarray]) -> np.ndarray:
        return model(*(torch.from_numpy(call[tensor.name]) for tensor in spec.inputs)).numpy()

    return core


@pytest.mark.expensive
@pytest.mark.parametrize(
    "spec",
    [s for s in EDITORS if s.large and not s.large.blend and s.large.tiling is not Tiling.MATTE],
    **EDITOR_IDS,
)
def test_a_photo_in_pieces_equals_the_whole_image_inference(spec: ModelSpec) -> None:
    """The shipped weights, on a photo the core model could still take whole: the plan's
    pieces give the same image within 45 dB."""
    photo, options = _photo_beyond_the_core(spec)
    core = _served(spec)
    plan = plan_image(photo, options, PlanSettings.of(spec))
    assert not plan.whole
    pieces = plan.result([core(call) for call in plan.calls])
    whole = core({spec.input.name: photo[None], **options})[0]
    assert pieces.shape == whole.shape
    assert _psnr(pieces, whole) >= 45.0


@pytest.mark.expensive
@pytest.mark.parametrize("spec", [s for s in EDITORS if s.large and s.large.blend], **EDITOR_IDS)
def test_feathered_tiles_leave_no_seam(spec: ModelSpec) -> None:
    """Instance norm gives each tile its own statistics, so the pieces differ from the whole
    image; across the tile boundaries the result must still change no more than it does
    elsewhere."""
    photo, options = _photo_beyond_the_core(spec)
    plan = plan_image(photo, options, PlanSettings.of(spec))
    result = plan.result([_served(spec)(call) for call in plan.calls]).astype(np.int32)
    assert spec.large is not None
    boundaries = {w.keep[2] for w in windows(*photo.shape[:2], spec.large.tile, spec.large.margin)}
    boundaries.discard(photo.shape[0])
    steps = np.abs(np.diff(result, axis=0)).mean(axis=(1, 2))  # between rows r and r + 1
    across = max(steps[row - 1] for row in boundaries)
    assert across <= 2.0 * np.percentile(steps, 90)
