"""StyleGAN-lite for the 32 px catalog: mapping network, modulated convolutions, noise.

The mapping network turns a latent and both label embeddings into a style vector ``w``
(Karras et al., "A Style-Based Generator Architecture", CVPR 2019). The synthesis network
starts from a learned 4 x 4 constant and runs modulated, demodulated 3 x 3 convolutions
up to 32 x 32 (StyleGAN2, CVPR 2020), each followed by per-pixel noise scaled per channel;
an RGB skip branch sums a modulated 1 x 1 projection at every resolution.

Served, the generator takes two latents and a truncation ψ:

* **style mixing**: the first ``coarse_layers`` convolutions (4 and 8 px: silhouette,
  pose) take their style from ``latent``, the rest (16 and 32 px: shading, texture) from
  ``mix_latent``; the same latent twice is no mixing. Training mixes at a random
  crossover with ``mixing_probability``, so both halves learn to agree.
* **truncation**: ``w = w̄ + ψ (w - w̄)``, where ``w̄`` is the mean style of the requested
  category and colour (:meth:`StyleGenerator.centre_styles` measures it after training).

Noise is drawn afresh in training and fixed buffers in eval mode, so serving is
deterministic in the latents. Modulation scales the input channels and demodulation
rescales the output channels per sample (the non-fused form), so the exported graph is
plain MatMul, Conv, Resize and pointwise ops with a dynamic batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["StyleGenerator"]

_BASE = 4  # side of the learned constant
_NOISE_SEED = 20261130  # the fixed noise served in eval mode


def _pixel_norm(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class _ModulatedConv(nn.Module):
    """Convolution whose input channels are scaled by a style; demodulated unless RGB."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, style_dim: int, demodulate: bool
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.weight.data *= (in_channels * kernel * kernel) ** -0.5
        self.affine = nn.Linear(style_dim, in_channels)
        nn.init.ones_(self.affine.bias)  # styles start at 1: plain convolution
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.demodulate = demodulate
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.affine(w)  # (N, in)
        y = F.conv2d(x * style[:, :, None, None], self.weight, padding=self.padding)
        if self.demodulate:  # unit output variance per sample: 1 / |weight * style|
            energy = style.square() @ self.weight.square().sum(dim=(2, 3)).t()  # (N, out)
            y = y * torch.rsqrt(energy + 1e-8)[:, :, None, None]
        return y + self.bias[None, :, None, None]


class _StyleLayer(nn.Module):
    """Modulated 3 x 3 convolution, per-pixel noise (fixed when served), leaky ReLU."""

    fixed_noise: torch.Tensor  # a buffer

    def __init__(
        self, in_channels: int, out_channels: int, style_dim: int, side: int, seed: int
    ) -> None:
        super().__init__()
        self.conv = _ModulatedConv(in_channels, out_channels, 3, style_dim, demodulate=True)
        self.noise_strength = nn.Parameter(torch.zeros(out_channels))
        fixed = torch.randn(1, 1, side, side, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("fixed_noise", fixed)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        y = self.conv(x, w)
        if self.training:
            noise = torch.randn(len(y), 1, *y.shape[2:], device=y.device)
        else:
            noise = self.fixed_noise
        return F.leaky_relu(y + self.noise_strength[None, :, None, None] * noise, 0.2)


class StyleGenerator(nn.Module):
    """(latent (N, Z), category (N,), colour (N,)[, mix_latent, truncation]) -> RGB in [0, 1].

    ``channels`` are the widths at 4, 8, 16 and 32 px; 4 px has one style layer, every
    larger side two (upsample + convolution, convolution): seven styles in all.
    """

    mean_style: torch.Tensor  # a buffer

    def __init__(
        self,
        latent_dim: int,
        categories: int,
        colours: int,
        channels: tuple[int, ...] = (128, 128, 64, 32),
        style_dim: int = 128,
        mapping_layers: int = 4,
        embedding: int = 32,
        coarse_layers: int = 3,
        mixing_probability: float = 0.9,
    ) -> None:
        super().__init__()
        self.category = nn.Embedding(categories, embedding)
        self.colour = nn.Embedding(colours, embedding)
        mapping: list[nn.Module] = []
        width = latent_dim + 2 * embedding
        for _ in range(mapping_layers):
            mapping += [nn.Linear(width, style_dim), nn.LeakyReLU(0.2)]
            width = style_dim
        self.mapping = nn.Sequential(*mapping)
        self.constant = nn.Parameter(torch.randn(1, channels[0], _BASE, _BASE))
        layers = [_StyleLayer(channels[0], channels[0], style_dim, _BASE, _NOISE_SEED)]
        to_rgb = [_ModulatedConv(channels[0], 3, 1, style_dim, demodulate=False)]
        for index, (a, b) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
            side = _BASE * 2 ** (index + 1)
            seed = _NOISE_SEED + 2 * index + 1
            layers += [
                _StyleLayer(a, b, style_dim, side, seed),
                _StyleLayer(b, b, style_dim, side, seed + 1),
            ]
            to_rgb.append(_ModulatedConv(b, 3, 1, style_dim, demodulate=False))
        self.layers = nn.ModuleList(layers)
        self.to_rgb = nn.ModuleList(to_rgb)
        self.coarse_layers = coarse_layers
        self.mixing_probability = mixing_probability
        self.labels = colours  # pair index = category * colours + colour
        self.register_buffer("mean_style", torch.zeros(categories * colours, style_dim))

    def styles(
        self, latent: torch.Tensor, category: torch.Tensor, colour: torch.Tensor
    ) -> torch.Tensor:
        """Mapping network: latents (N, Z) and labels (N,) -> styles ``w`` (N, W)."""
        labels = torch.cat([self.category(category), self.colour(colour)], dim=1)
        output: torch.Tensor = self.mapping(torch.cat([_pixel_norm(latent), labels], dim=1))
        return output

    @torch.no_grad()
    def centre_styles(
        self, latent: torch.Tensor, category: torch.Tensor, colour: torch.Tensor
    ) -> None:
        """Set each label pair's mean style ``w̄`` (the truncation centre) from samples."""
        pair = category * self.labels + colour
        total = torch.zeros_like(self.mean_style).index_add_(
            0, pair, self.styles(latent, category, colour)
        )
        counts = torch.bincount(pair, minlength=len(total)).clamp(min=1)
        self.mean_style.copy_(total / counts[:, None])

    def _crossover(self, latent: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Training's style mixing: a second latent (the batch rolled by one) and where
        it takes over, or no mixing."""
        if torch.rand(()) >= self.mixing_probability:
            return latent, len(self.layers)
        return latent.roll(1, dims=0), int(torch.randint(1, len(self.layers), ()))

    def forward(
        self,
        latent: torch.Tensor,
        category: torch.Tensor,
        colour: torch.Tensor,
        mix_latent: torch.Tensor | None = None,
        truncation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Images (N, 3, 32, 32) in [0, 1]; ``truncation`` (N,) is ψ, 1 when omitted."""
        if mix_latent is None and self.training:
            mix_latent, crossover = self._crossover(latent)
        else:
            crossover = self.coarse_layers
        coarse = self.styles(latent, category, colour)
        fine = coarse if mix_latent is None else self.styles(mix_latent, category, colour)
        if truncation is not None:
            centre = self.mean_style[category * self.labels + colour]
            psi = truncation[:, None]
            coarse, fine = (centre + psi * (w - centre) for w in (coarse, fine))
        x = self.constant.expand(latent.shape[0], -1, -1, -1)
        x = self.layers[0](x, coarse)
        rgb = self.to_rgb[0](x, coarse)
        for index, to_rgb in enumerate(self.to_rgb[1:]):
            first = 2 * index + 1
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            for position in (first, first + 1):
                x = self.layers[position](x, coarse if position < crossover else fine)
            w = coarse if first + 1 < crossover else fine
            rgb = F.interpolate(rgb, scale_factor=2.0, mode="bilinear", align_corners=False)
            rgb = rgb + to_rgb(x, w)
        return torch.sigmoid(rgb)
