"""Conditional DCGAN for the 32 px catalog: a generator and its projection discriminator.

The generator (the served module) maps a latent and two labels, category and colour, to
an RGB image in [0, 1]. The latent and both label embeddings, concatenated (the "style"),
feed the first layer and set the gain and bias of every BatchNorm (conditional
BatchNorm), so each upsampling stage is told what to draw and the latent keeps its say.
In eval mode everything is Gather, Gemm, ConvTranspose, Conv and BatchNormalization:
plain ONNX.

The discriminator (training only) has spectral norm on every layer and scores
``linear(h) + <embed(category), h> + <embed(colour), h>`` from pooled features ``h``
(Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["ConditionalGenerator", "ProjectionDiscriminator"]

_BASE = 4  # side of the first feature map; three x2 upsamplings reach 32


class ConditionalBatchNorm(nn.Module):
    """BatchNorm whose gain and bias are predicted from a conditioning vector."""

    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(style_dim, channels)
        self.bias = nn.Linear(style_dim, channels)
        for layer in (self.gain, self.bias):  # starts as the identity: gain 1, bias 0
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + self.gain(style)[:, :, None, None]
        output: torch.Tensor = self.norm(x) * gain + self.bias(style)[:, :, None, None]
        return output


class ConditionalGenerator(nn.Module):
    """(latent (N, Z), category (N,), colour (N,)) -> (N, 3, 32, 32) RGB in [0, 1].

    Widths are ``4 * features`` at 4 x 4, halving at each transposed-convolution
    upsampling to ``features / 2`` at 32 x 32, where a 3 x 3 convolution makes the RGB
    (smoother colour than a last transposed convolution); ``embedding`` is the size of
    each label's embedding.
    """

    def __init__(
        self,
        latent_dim: int,
        features: int,
        categories: int,
        colours: int,
        embedding: int = 32,
    ) -> None:
        super().__init__()
        self.category = nn.Embedding(categories, embedding)
        self.colour = nn.Embedding(colours, embedding)
        style = latent_dim + 2 * embedding
        widths = (4 * features, 2 * features, features, features // 2)
        self.project = nn.Linear(style, widths[0] * _BASE * _BASE)
        self.norms = nn.ModuleList(ConditionalBatchNorm(width, style) for width in widths)
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(a, b, 4, stride=2, padding=1, bias=False)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.to_rgb = nn.Conv2d(widths[-1], 3, 3, padding=1)
        self.base_width = widths[0]

    def forward(
        self, latent: torch.Tensor, category: torch.Tensor, colour: torch.Tensor
    ) -> torch.Tensor:
        style = torch.cat([latent, self.category(category), self.colour(colour)], dim=1)
        x = self.project(style).unflatten(1, (self.base_width, _BASE, _BASE))
        x = torch.relu(self.norms[0](x, style))
        for up, norm in zip(self.ups, self.norms[1:], strict=True):
            x = torch.relu(norm(up(x), style))
        return torch.sigmoid(self.to_rgb(x))


class ProjectionDiscriminator(nn.Module):
    """(image (N, 3, 32, 32) in [0, 1], category (N,), colour (N,)) -> (N,) realness score.

    Strided 4 x 4 convolutions (``features``, 2x, 4x wide) halve 32 -> 4; spectral norm on
    every layer, the label embeddings included, keeps the critic 1-Lipschitz-ish.
    """

    def __init__(self, features: int, categories: int, colours: int) -> None:
        super().__init__()
        widths = (3, features, 2 * features, 4 * features)
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [spectral_norm(nn.Conv2d(a, b, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)  # (N, 4 * features, 4, 4)
        self.score = spectral_norm(nn.Linear(widths[-1], 1))
        self.category = spectral_norm(nn.Embedding(categories, widths[-1]))
        self.colour = spectral_norm(nn.Embedding(colours, widths[-1]))

    def forward(
        self, image: torch.Tensor, category: torch.Tensor, colour: torch.Tensor
    ) -> torch.Tensor:
        h = self.body(image * 2.0 - 1.0).sum(dim=(2, 3))  # (N, 4 * features)
        projection = (self.category(category) + self.colour(colour)) * h
        output: torch.Tensor = self.score(h)[:, 0] + projection.sum(dim=1)
        return output
