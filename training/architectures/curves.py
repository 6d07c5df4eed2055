"""Global tone and colour correction by predicted curves (after Zero-DCE, Guo et al. 2020).

A small network looks at a fixed-size thumbnail and predicts, per image: channel gains
(colour cast), a contrast stretch around a pivot, and ``iterations`` light-enhancement
curves ``y + a * y * (1 - y)`` per channel. The curves are applied to the full-resolution
image, so the cost is independent of its size and the output keeps every detail.

Optionally (``bins``) the head also sees each channel's soft histogram of the thumbnail, the
direct evidence of exposure, contrast and cast, and (``hidden``) a hidden layer before it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CurveEnhancer"]


class CurveEnhancer(nn.Module):
    """(N, 3, H, W) float RGB in [0, 1] -> corrected image of the same shape."""

    def __init__(
        self,
        features: int = 32,
        iterations: int = 8,
        thumbnail: int = 64,
        bins: int = 0,
        hidden: int = 0,
    ) -> None:
        super().__init__()
        self.iterations = iterations
        self.thumbnail = thumbnail
        self.bins = bins
        layers: list[nn.Module] = []
        width = 3
        for out_width in (features, features, 2 * features, 2 * features):
            layers += [nn.Conv2d(width, out_width, 3, stride=2, padding=1), nn.PReLU(out_width)]
            width = out_width
        self.analysis = nn.Sequential(*layers)  # (N, 2F, thumbnail/16, thumbnail/16)
        width = 2 * width + 3 * bins  # mean and max pooled features, histograms
        self.context: nn.Module = nn.Identity()
        if hidden:
            self.context = nn.Sequential(nn.Linear(width, hidden), nn.PReLU(hidden))
            width = hidden
        self.head = nn.Linear(width, 3 + 2 + 3 * iterations)
        nn.init.zeros_(self.head.weight)  # start as the identity correction
        nn.init.zeros_(self.head.bias)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        thumb = F.interpolate(
            image, size=(self.thumbnail, self.thumbnail), mode="bilinear", align_corners=False
        )
        features = self.analysis(thumb)
        pooled = [features.mean(dim=(2, 3)), features.amax(dim=(2, 3))]
        if self.bins:
            pooled.append(self._histograms(thumb))
        params = self.head(self.context(torch.cat(pooled, dim=1)))  # (N, 5 + 3 * iterations)
        gains = torch.exp(0.5 * torch.tanh(params[:, 0:3]))[:, :, None, None]  # (N, 3, 1, 1)
        contrast = torch.exp(torch.tanh(params[:, 3:4]))[:, :, None, None]  # (N, 1, 1, 1)
        pivot = torch.sigmoid(params[:, 4:5])[:, :, None, None]
        alphas = torch.tanh(params[:, 5:]).reshape(-1, self.iterations, 3, 1, 1)
        y = (image * gains).clamp(0.0, 1.0)
        y = ((y - pivot) * contrast + pivot).clamp(0.0, 1.0)
        for step in range(self.iterations):
            y = y + alphas[:, step] * y * (1.0 - y)
        return y

    def _histograms(self, thumb: torch.Tensor) -> torch.Tensor:
        """(N, 3 * bins): each channel's share of pixels near each of ``bins`` evenly spaced
        levels (triangular kernels, so the shares sum to one)."""
        centres = torch.arange(self.bins, dtype=thumb.dtype, device=thumb.device)
        position = thumb.clamp(0.0, 1.0)[:, :, None] * (self.bins - 1)  # (N, 3, 1, H, W)
        weights = (1.0 - (position - centres[:, None, None]).abs()).clamp_min(0.0)
        return weights.mean(dim=(3, 4)).flatten(1)
