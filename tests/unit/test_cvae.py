"""The conditional VAE: both halves' shapes, an exportable encoder, the KL and the averaging."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from vitrine.registry import SPECS
from vitrine.training.architectures import build_architecture
from vitrine.training.vae import _standing_statistics, kl_divergence

SPEC = SPECS["vae"]
Z = SPEC.arch_kwargs["latent_dim"]


class _Encoder(nn.Module):
    """The encode half as a module of its own, as an image pipeline would export it."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(
        self, image: torch.Tensor, category: torch.Tensor, colour: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.vae.encode(image, category, colour)


@pytest.fixture
def vae() -> nn.Module:
    torch.manual_seed(0)
    return build_architecture(SPEC.architecture, SPEC.arch_kwargs).eval()


def test_decoder_and_encoder_shapes(vae: nn.Module) -> None:
    labels = torch.tensor([0, 9, 4]), torch.tensor([3, 0, 9])
    images = vae(torch.randn(3, Z), *labels)
    assert images.shape == (3, 3, 32, 32) and images.min() >= 0 and images.max() <= 1
    mean, log_variance = vae.encode(images, *labels)
    assert mean.shape == log_variance.shape == (3, Z)


def test_encoder_exports_to_onnx_with_a_dynamic_batch(vae: nn.Module, tmp_path: Path) -> None:
    import onnxruntime as ort

    path = tmp_path / "encoder.onnx"
    feeds = (torch.rand(2, 3, 32, 32), torch.tensor([1, 2]), torch.tensor([3, 4]))
    batch = {0: "batch"}
    torch.onnx.export(
        _Encoder(vae).eval(),
        feeds,
        str(path),
        input_names=["image", "category", "color"],
        output_names=["mean", "log_variance"],
        dynamic_axes={name: batch for name in ("image", "category", "color", "mean")},
        opset_version=17,
        dynamo=False,
    )
    onnx.checker.check_model(onnx.load(str(path)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image, category, colour = torch.rand(5, 3, 32, 32), torch.arange(5), torch.arange(5) + 5
    got = session.run(
        None, {"image": image.numpy(), "category": category.numpy(), "color": colour.numpy()}
    )
    with torch.inference_mode():
        want = vae.encode(image, category, colour)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-4, atol=1e-4)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere() -> None:
    zeros = torch.zeros(2, Z)
    assert torch.equal(kl_divergence(zeros, zeros), torch.zeros(2))
    assert (kl_divergence(zeros + 0.5, zeros - 1.0) > 0).all()


def test_standing_statistics_touch_only_the_decoder(vae: nn.Module) -> None:
    before = copy.deepcopy(vae.state_dict())
    _standing_statistics(vae, SPEC, seed=1)
    after = vae.state_dict()
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    assert changed and all(key.startswith("norms.") for key in changed)
    assert not vae.training
