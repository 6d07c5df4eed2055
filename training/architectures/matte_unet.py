"""A small U-Net that predicts an alpha matte (Ronneberger et al., MICCAI 2015).

Kept cheap for CPU serving up to 1024x1024: a stride-2 and a plain 3x3 convolution per
level down, one per level up (each batch-normalised, which folds into the convolution at
export), channel widths that stop growing after three levels, additive skips (no
concatenation) and bilinear upsampling. The bottleneck also sees the image-wide mean of
its features, so the whole product is judged in context. Any H, W works: the input is
padded by edge replication to a multiple of ``2 ** levels`` (computed from ``x.shape``,
so ONNX keeps H and W dynamic) and the alpha is cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MatteUNet"]


def _conv(in_width: int, out_width: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_width, out_width, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_width),
        nn.PReLU(out_width),
    )


class MatteUNet(nn.Module):
    """(N, 3, H, W) float RGB in [0, 1] -> alpha (N, 1, H, W) in [0, 1]."""

    def __init__(self, features: int = 16, levels: int = 4) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.levels = levels
        widths = [features * 2 ** min(level, 3) for level in range(levels + 1)]
        self.stem = nn.Sequential(_conv(3, features), _conv(features, features))
        self.down = nn.ModuleList(
            nn.Sequential(
                _conv(widths[i], widths[i + 1], stride=2), _conv(widths[i + 1], widths[i + 1])
            )
            for i in range(levels)
        )
        self.context = nn.Sequential(nn.Conv2d(2 * widths[-1], widths[-1], 1), nn.PReLU(widths[-1]))
        self.lateral = nn.ModuleList(nn.Conv2d(widths[i + 1], widths[i], 1) for i in range(levels))
        self.up = nn.ModuleList(_conv(widths[i], widths[i]) for i in range(levels))
        self.head = nn.Conv2d(features, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        multiple = 2**self.levels
        padded = F.pad(
            x - 0.5,
            (
                0,
                (multiple - width % multiple) % multiple,
                0,
                (multiple - height % multiple) % multiple,
            ),
            mode="replicate",
        )
        skips = [self.stem(padded)]
        for down in self.down:
            skips.append(down(skips[-1]))
        deep = skips.pop()
        deep = self.context(
            torch.cat([deep, deep.mean(dim=(2, 3), keepdim=True).expand_as(deep)], 1)
        )
        for level in reversed(range(self.levels)):
            upsampled = F.interpolate(
                self.lateral[level](deep), scale_factor=2.0, mode="bilinear", align_corners=False
            )
            deep = self.up[level](upsampled + skips[level])
        return torch.sigmoid(self.head(deep))[:, :, :height, :width]
