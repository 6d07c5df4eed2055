"""The style-transfer network and its random texture loss network."""

from __future__ import annotations

import torch

from vitrine.registry import SPECS
from vitrine.training.architectures import build_architecture
from vitrine.training.styles import STYLE_NAMES, STYLE_SIDE, style_image
from vitrine.training.texture_features import TextureFeatures, gram

SPEC = SPECS["stylize"]


def test_any_size_in_and_out_and_the_style_index_matters() -> None:
    torch.manual_seed(0)
    model = build_architecture(SPEC.architecture, SPEC.arch_kwargs).eval()
    for module in model.modules():  # give every style its own gain and bias
        if isinstance(module, torch.nn.Embedding):
            torch.nn.init.normal_(module.weight, 1.0, 0.5)
    image = torch.rand(2, 3, 37, 50)
    with torch.no_grad():
        first = model(image, torch.tensor([0, 0]))
        second = model(image, torch.tensor([0, 3]))
    assert first.shape == (2, 3, 37, 50) and 0 <= float(first.min()) <= float(first.max()) <= 1
    torch.testing.assert_close(second[0], first[0])
    assert not torch.allclose(second[1], first[1])


def test_texture_features_are_fixed_and_grams_see_texture_not_layout() -> None:
    features = TextureFeatures()
    assert not any(parameter.requires_grad for parameter in features.parameters())
    assert torch.equal(TextureFeatures().convs[0].weight, features.convs[0].weight)  # seeded
    image = torch.rand(1, 3, 64, 64)
    rolled = image.roll(shifts=(13, 29), dims=(2, 3))
    other = torch.rand(1, 3, 64, 64) ** 3  # another texture: darker, more contrast
    with torch.no_grad():
        base, moved, different = (gram(features(x)[0]) for x in (image, rolled, other))
    assert (base - moved).norm() < 0.05 * base.norm()  # layout moved: texture statistics kept
    assert (base - different).norm() > 0.2 * base.norm()


def test_styles_are_deterministic_rgb_squares() -> None:
    for name in STYLE_NAMES:
        image = style_image(name)
        assert image.shape == (STYLE_SIDE, STYLE_SIDE, 3) and image.dtype.name == "uint8"
    assert len({style_image(name).tobytes() for name in STYLE_NAMES}) == len(STYLE_NAMES)
