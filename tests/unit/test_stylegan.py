"""StyleGAN-lite: style mixing, truncation towards each label's mean style, fixed noise."""

from __future__ import annotations

import pytest
import torch

from vitrine.registry import SPECS
from vitrine.training.architectures import build_architecture
from vitrine.training.architectures.stylegan import StyleGenerator

SPEC = SPECS["stylegan"]
Z = SPEC.arch_kwargs["latent_dim"]


@pytest.fixture
def generator() -> StyleGenerator:
    torch.manual_seed(0)
    model = build_architecture(SPEC.architecture, SPEC.arch_kwargs)
    assert isinstance(model, StyleGenerator)
    for parameter in (layer.noise_strength for layer in model.layers):
        torch.nn.init.constant_(parameter, 0.5)  # let the noise show
    labels = torch.arange(100)
    latents = torch.randn(100 * 16, Z)
    model.centre_styles(latents, (labels // 10).repeat(16), (labels % 10).repeat(16))
    return model.eval()


def _labels(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.full((count,), 3), torch.full((count,), 4)


def test_served_images_are_deterministic_and_mixing_a_latent_with_itself_is_none(
    generator: StyleGenerator,
) -> None:
    latent = torch.randn(3, Z)
    with torch.no_grad():
        plain = generator(latent, *_labels(3))
        assert torch.equal(plain, generator(latent, *_labels(3)))  # fixed noise when served
        same = generator(latent, *_labels(3), latent, torch.ones(3))
    torch.testing.assert_close(same, plain, rtol=0, atol=1e-6)
    assert plain.shape == (3, 3, 32, 32) and plain.min() >= 0 and plain.max() <= 1


def test_coarse_and_fine_styles_come_from_their_own_latents(generator: StyleGenerator) -> None:
    coarse, fine = torch.randn(2, Z), torch.randn(2, Z)
    with torch.no_grad():
        mixed = generator(coarse, *_labels(2), fine)
        swapped = generator(fine, *_labels(2), coarse)
        unmixed = generator(coarse, *_labels(2))
    assert not torch.allclose(mixed, unmixed) and not torch.allclose(mixed, swapped)


def test_truncation_zero_gives_the_labels_mean_style(generator: StyleGenerator) -> None:
    latents = torch.randn(4, Z)
    with torch.no_grad():
        centred = generator(latents, *_labels(4), latents.flip(0), torch.zeros(4))
        spread = generator(latents, *_labels(4), latents, torch.ones(4))
    torch.testing.assert_close(centred, centred[:1].expand(4, -1, -1, -1))
    assert spread.std(dim=0).mean() > 1e-3


def test_training_draws_noise_and_mixes_styles(generator: StyleGenerator) -> None:
    generator.train()
    latent = torch.randn(4, Z)
    with torch.no_grad():
        first, second = generator(latent, *_labels(4)), generator(latent, *_labels(4))
    assert not torch.equal(first, second)


def test_centre_styles_averages_each_pair() -> None:
    torch.manual_seed(1)
    model = build_architecture(SPEC.architecture, SPEC.arch_kwargs)
    assert isinstance(model, StyleGenerator)
    latents = torch.randn(6, Z)
    categories, colours = torch.tensor([0, 0, 0, 2, 2, 2]), torch.tensor([1, 1, 1, 5, 5, 5])
    model.centre_styles(latents, categories, colours)
    styles = model.styles(latents, categories, colours).detach()
    torch.testing.assert_close(model.mean_style[1], styles[:3].mean(0))
    torch.testing.assert_close(model.mean_style[25], styles[3:].mean(0))
    assert torch.count_nonzero(model.mean_style.abs().sum(1)) == 2
