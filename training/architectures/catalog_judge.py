"""The catalog judge: a small CNN that names a 32 px catalog image's category and colour.

Trained once on the real catalog (``vitrine.training.judge``) and shipped; generator
evaluation classifies generated images with it and compares its features of generated and
real images (a catalog-specific FID).
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

__all__ = ["CatalogJudge"]


def _conv(in_width: int, out_width: int, kernel: int = 3, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_width, out_width, kernel, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_width),
        nn.ReLU(inplace=True),
    ]


class CatalogJudge(nn.Module):
    """(N, 3, side, side) float RGB in [0, 1] -> (category logits, colour logits).

    A shared trunk: a 4x4 stride-2 stem conv (cheap on one CPU thread, and able to keep
    every pixel of each 2x2 cell), a 3x3 conv + 2x2 max pooling per further width, then a
    fully connected layer over the remaining grid (where a part is matters: a shirt's
    sleeves): its ``features`` (N, features) feed both linear heads and the feature
    statistics of generator evaluation.
    """

    def __init__(
        self,
        categories: int = 10,
        colours: int = 10,
        widths: tuple[int, ...] = (32, 64, 128),
        features: int = 128,
        side: int = 32,
    ) -> None:
        super().__init__()
        layers = _conv(3, widths[0], kernel=4, stride=2)
        for in_width, out_width in pairwise(widths):
            layers += [*_conv(in_width, out_width), nn.MaxPool2d(2)]
        grid = side // 2 ** len(widths)
        self.trunk = nn.Sequential(
            *layers,
            nn.Flatten(),
            nn.Linear(widths[-1] * grid * grid, features, bias=False),
            nn.BatchNorm1d(features),
            nn.ReLU(inplace=True),
        )
        self.category_head = nn.Linear(features, categories)
        self.colour_head = nn.Linear(features, colours)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, features) trunk features of images ``x``."""
        output: torch.Tensor = self.trunk(x * 2.0 - 1.0)
        return output

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shared = self.features(x)
        return self.category_head(shared), self.colour_head(shared)
