"""The cut-out network's working-side resize (exact area averages, any size in and out) and
its mirror averaging."""

from __future__ import annotations

import pytest
import torch

from vitrine.training.architectures.matte_unet import MatteUNet, area_resize, area_weights


def test_area_weights_average_the_covered_pixels() -> None:
    assert torch.equal(area_weights(5, 5), torch.eye(5))
    halving = area_weights(4, 2)
    assert torch.allclose(halving, torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]]))
    thirds = area_weights(2, 3)  # the middle target pixel straddles both sources equally
    assert torch.allclose(thirds[1], torch.tensor([0.5, 0.5]))
    for source, target in ((1024, 128), (37, 128), (200, 7)):
        assert torch.allclose(area_weights(source, target).sum(dim=1), torch.ones(target))


def test_area_resize_keeps_the_mean_of_an_image() -> None:
    image = torch.rand(2, 3, 96, 160, generator=torch.Generator().manual_seed(0))
    small = area_resize(image, 32, 32)  # integer factors: every source pixel weighs the same
    assert small.shape == (2, 3, 32, 32)
    assert torch.allclose(small.mean(dim=(2, 3)), image.mean(dim=(2, 3)), atol=1e-6)


def test_a_photo_and_its_enlargement_get_the_same_matte() -> None:
    model = MatteUNet(features=8, levels=3, working_side=32).eval()
    image = torch.rand(1, 3, 40, 24, generator=torch.Generator().manual_seed(1))
    enlarged = image.repeat_interleave(3, dim=2).repeat_interleave(3, dim=3)
    with torch.no_grad():
        assert model(image).shape == (1, 1, 40, 24)
        assert model(enlarged).shape == (1, 1, 120, 72)
        matte = model.matte(area_resize(image, 32, 32))
        matte_enlarged = model.matte(area_resize(enlarged, 32, 32))
    assert torch.allclose(matte_enlarged, matte, atol=1e-5)


def test_at_the_working_side_the_served_matte_averages_the_shot_and_its_mirror() -> None:
    model = MatteUNet(features=8, levels=3, working_side=32).eval()
    image = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        averaged = 0.5 * (model.matte(image) + model.matte(image.flip(-1)).flip(-1))
        assert torch.allclose(model(image), averaged, atol=1e-6)
        assert not torch.allclose(model(image), model.matte(image), atol=1e-3)


def test_the_served_matte_of_a_mirrored_photo_is_the_mirrored_matte() -> None:
    model = MatteUNet(features=8, levels=3, working_side=32).eval()
    image = torch.rand(1, 3, 50, 70, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(model(image.flip(-1)), model(image).flip(-1), atol=1e-6)


def test_the_working_side_must_suit_the_levels() -> None:
    with pytest.raises(ValueError, match="multiple of 2 \\*\\* levels = 16"):
        MatteUNet(levels=4, working_side=120)
