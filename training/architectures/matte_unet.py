"""A small U-Net that predicts an alpha matte (Ronneberger et al., MICCAI 2015), run at a
fixed working resolution as salient-object cut-out networks are (U^2-Net serves 320x320).

The photo, whatever its size, is area-resized to ``working_side`` x ``working_side``; the
U-Net predicts the alpha there, once for the shot and once for its mirror image (one batch
of two; the two alphas are averaged, the commonest test-time augmentation of segmentation
networks), and it is resized back bilinearly. The network thus always
sees the whole product at the scale it was trained on (a 1024 px upload and a 128 px
thumbnail look alike), and its cost no longer grows with the upload. The area resize is
two matrix products whose matrices are built from the input's shape, so the exported
graph keeps H and W dynamic and averages every source pixel (no aliasing when shrinking).

Per level down a stride-2 and a plain 3x3 convolution, one per level up (each
batch-normalised, which folds into the convolution at export), channel widths that stop
growing after three levels, additive skips and bilinear upsampling. The bottleneck also
sees the image-wide mean of its features, so the whole product is judged in context.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MatteUNet", "area_resize", "area_weights"]


def area_weights(source: int, target: int, device: torch.device | None = None) -> torch.Tensor:
    """(target, source) weights of an area resize along one axis, on ``device``: row ``i``
    averages the source pixels under target pixel ``i``, each weighted by how much of it is
    covered."""
    pixels = torch.arange(source, dtype=torch.float32, device=device)[None]
    start = torch.arange(target, dtype=torch.float32, device=device)[:, None] * (source / target)
    end = start + source / target
    cover = (torch.minimum(pixels + 1.0, end) - torch.maximum(pixels, start)).clamp(min=0.0)
    return cover / cover.sum(dim=1, keepdim=True)


def area_resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``image`` (..., H, W) area-resized to (..., height, width)."""
    rows = area_weights(image.shape[-2], height, image.device)
    columns = area_weights(image.shape[-1], width, image.device)
    return rows @ image @ columns.transpose(0, 1)


def _conv(in_width: int, out_width: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_width, out_width, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_width),
        nn.PReLU(out_width),
    )


class MatteUNet(nn.Module):
    """(N, 3, H, W) float RGB in [0, 1] -> alpha (N, 1, H, W) in [0, 1]."""

    def __init__(self, features: int = 16, levels: int = 4, working_side: int = 128) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        if working_side % 2**levels:
            raise ValueError(
                f"working_side must be a multiple of 2 ** levels = {2**levels}, got {working_side}"
            )
        self.levels = levels
        self.working_side = working_side
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

    def matte(self, x: torch.Tensor) -> torch.Tensor:
        """The U-Net alone, on ``x`` already at the working side."""
        skips = [self.stem(x - 0.5)]
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
        return torch.sigmoid(self.head(deep))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The served alpha: the U-Net's mean over the shot and its mirror image."""
        height, width = x.shape[-2:]
        shot = area_resize(x, self.working_side, self.working_side)
        alpha, mirrored = self.matte(torch.cat([shot, shot.flip(-1)])).chunk(2)
        alpha = 0.5 * (alpha + mirrored.flip(-1))
        return F.interpolate(alpha, size=(height, width), mode="bilinear", align_corners=False)
