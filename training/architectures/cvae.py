"""Conditional VAE for the 32 px catalog: an encoder and a decoder in one module.

``forward`` is the decoder, the served generator: (latent (N, Z), category (N,), colour
(N,)) -> RGB (N, 3, 32, 32) in [0, 1]. Latents of the N(0, I) prior (the served sampler's)
decode to catalog images. ``encode`` is the inference half: (image, category, colour) ->
the posterior's ``(mean, log_variance)``, each (N, Z), for the image pipelines that start
from a photo (variations, interpolation).

Both halves embed both labels. The decoder takes them in twice: concatenated to the latent
and as the gain and bias of every BatchNorm (conditional BatchNorm), as the DCGAN does. The
encoder appends them to its flattened features, so the latent need not carry category or
colour and is left with the garment's shape and shading. In eval mode both halves are only
Gather, Gemm, (transposed) convolutions, BatchNormalization and pointwise ops: no
data-dependent control flow, plain ONNX.
"""

from __future__ import annotations

import torch
from torch import nn

from vitrine.training.architectures.dcgan import ConditionalBatchNorm

__all__ = ["ConditionalVAE"]

_BASE = 4  # side of the smallest feature map: three x2 steps between it and 32


class ConditionalVAE(nn.Module):
    """Encoder and decoder of a conditional VAE on (3, 32, 32) images in [0, 1].

    The decoder's widths are ``4 * features`` at 4 x 4, halving at each upsampling to
    ``features`` at 16 x 16; the encoder's are ``encoder_features`` (default ``features``),
    2x and 4x from 16 x 16 down to 4 x 4. ``embedding`` is the size of each label's
    embedding (each half has its own two tables).
    """

    def __init__(
        self,
        latent_dim: int,
        features: int,
        categories: int,
        colours: int,
        embedding: int = 32,
        encoder_features: int | None = None,
    ) -> None:
        super().__init__()
        widths = (4 * features, 2 * features, features)  # decoder order: 4 x 4 -> 16 x 16
        labels = 2 * embedding
        self.latent_dim = latent_dim
        self.base_width = widths[0]
        # decoder (the served generator)
        self.category = nn.Embedding(categories, embedding)
        self.colour = nn.Embedding(colours, embedding)
        self.project = nn.Linear(latent_dim + labels, widths[0] * _BASE * _BASE)
        self.norms = nn.ModuleList(ConditionalBatchNorm(width, labels) for width in widths)
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(a, b, 4, stride=2, padding=1, bias=False)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.to_rgb = nn.ConvTranspose2d(widths[-1], 3, 4, stride=2, padding=1)
        # encoder
        self.encoder_category = nn.Embedding(categories, embedding)
        self.encoder_colour = nn.Embedding(colours, embedding)
        encoder_features = encoder_features or features
        down = (3, encoder_features, 2 * encoder_features, 4 * encoder_features)  # 32 -> 4 px
        layers: list[nn.Module] = []
        for index, (a, b) in enumerate(zip(down[:-1], down[1:], strict=True)):
            layers.append(nn.Conv2d(a, b, 4, stride=2, padding=1, bias=index == 0))
            if index:
                layers.append(nn.BatchNorm2d(b))
            layers.append(nn.LeakyReLU(0.2))
        self.encoder = nn.Sequential(*layers)
        flat = down[-1] * _BASE * _BASE + labels
        self.to_mean = nn.Linear(flat, latent_dim)
        self.to_log_variance = nn.Linear(flat, latent_dim)

    def decoder_modules(self) -> list[nn.Module]:
        """The decoder's submodules (the served half)."""
        decoder = (self.category, self.colour, self.project, self.norms, self.ups, self.to_rgb)
        return [module for part in decoder for module in part.modules()]

    def forward(
        self, latent: torch.Tensor, category: torch.Tensor, colour: torch.Tensor
    ) -> torch.Tensor:
        """Decode: latents (N, Z) and labels (N,) -> images (N, 3, 32, 32) in [0, 1]."""
        labels = torch.cat([self.category(category), self.colour(colour)], dim=1)
        x = self.project(torch.cat([latent, labels], dim=1))
        x = x.unflatten(1, (self.base_width, _BASE, _BASE))
        x = torch.relu(self.norms[0](x, labels))
        for up, norm in zip(self.ups, self.norms[1:], strict=True):
            x = torch.relu(norm(up(x), labels))
        return torch.sigmoid(self.to_rgb(x))

    def encode(
        self, image: torch.Tensor, category: torch.Tensor, colour: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior of images (N, 3, 32, 32) in [0, 1]: ``(mean, log_variance)``, (N, Z)."""
        h = self.encoder(image * 2.0 - 1.0).flatten(1)
        labels = torch.cat([self.encoder_category(category), self.encoder_colour(colour)], dim=1)
        h = torch.cat([h, labels], dim=1)
        return self.to_mean(h), self.to_log_variance(h)
