"""The inpainting network's classical base fill: exact outside the hole, harmonic inside."""

from __future__ import annotations

import torch

from vitrine.training.architectures.gated_unet import GatedUNet, harmonic_fill, push_pull_fill

SIDE = 64


def _ramp_with_hole() -> tuple[torch.Tensor, torch.Tensor]:
    """A horizontal colour ramp (harmonic: its own membrane interpolant) with a 24 px hole."""
    ramp = torch.linspace(0.1, 0.9, SIDE).expand(1, 3, SIDE, SIDE).clone()
    ramp[:, 1] = 1.0 - ramp[:, 1]
    valid = torch.ones(1, 1, SIDE, SIDE)
    valid[:, :, 20:44, 20:44] = 0.0
    return ramp, valid


def test_harmonic_fill_keeps_valid_pixels() -> None:
    image, valid = _ramp_with_hole()
    noisy = image + 0.05 * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))
    filled = harmonic_fill(noisy, valid, levels=5)
    assert torch.equal(filled * valid, noisy * valid)


def test_harmonic_fill_continues_a_ramp_across_the_hole() -> None:
    image, valid = _ramp_with_hole()
    hole = valid == 0
    harmonic_error = (harmonic_fill(image, valid, levels=5) - image).abs()[hole.expand_as(image)]
    push_pull_error = (push_pull_fill(image, valid, levels=5) - image).abs()[hole.expand_as(image)]
    assert harmonic_error.max() < 0.02
    assert harmonic_error.mean() < push_pull_error.mean() / 2


def test_untrained_network_serves_the_harmonic_fill_at_any_size() -> None:
    model = GatedUNet(features=8, levels=3).eval()  # the head starts at zero
    image = torch.rand(2, 3, 37, 53, generator=torch.Generator().manual_seed(1))
    hole = torch.zeros(2, 1, 37, 53)
    hole[:, :, 10:25, 5:30] = 1.0
    with torch.no_grad():
        out = model(image, hole)
    padded = torch.nn.functional.pad(image, (0, 11, 0, 27), mode="replicate")
    valid = torch.nn.functional.pad(1.0 - hole, (0, 11, 0, 27), mode="replicate")
    expected = harmonic_fill(padded, valid, levels=5)[:, :, :37, :53]
    assert out.shape == image.shape
    assert torch.allclose(out, expected.clamp(0.0, 1.0), atol=1e-6)
