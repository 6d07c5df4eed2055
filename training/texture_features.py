"""A randomly initialised multi-scale convolutional network as the style-transfer loss.

No pretrained VGG can be downloaded here. Random convolutional filters with ReLU, at
several scales, already capture texture statistics well enough for Gram-matrix style
losses (Ustyuzhaninov, Brendel, Gatys & Bethge, "What does it take to generate natural
textures?", ICLR 2017). The network is fixed (seeded, never trained): four 3 x 3
convolution + ReLU layers with average pooling between them, widths 48 to 192. Style is
the Gram matrices of every layer; content is the third layer's features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CONTENT_LAYER", "TextureFeatures", "gram"]

CONTENT_LAYER = 2
_WIDTHS = (3, 48, 96, 192, 192)
_SEED = 20261209


def gram(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C) Gram matrices, normalised by C * H * W."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


class TextureFeatures(nn.Module):
    """Fixed random features of (N, 3, H, W) images in [0, 1], one tensor per layer."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(_SEED)
        self.convs = nn.ModuleList()
        for a, b in zip(_WIDTHS, _WIDTHS[1:], strict=False):
            conv = nn.Conv2d(a, b, 3, padding=1)
            with torch.no_grad():
                conv.weight.normal_(0.0, (2.0 / (9 * a)) ** 0.5, generator=generator)
                assert conv.bias is not None
                conv.bias.zero_()
            self.convs.append(conv)
        self.requires_grad_(False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (image - 0.45) / 0.25
        layers = []
        for index, conv in enumerate(self.convs):
            if index:
                x = F.avg_pool2d(x, 2)
            x = torch.relu(conv(x))
            layers.append(x)
        return layers
