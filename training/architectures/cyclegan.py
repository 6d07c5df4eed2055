"""CycleGAN (Zhu et al., ICCV 2017) for photo <-> sketch: two ResNet generators, PatchGANs.

The served module, :class:`CycleTranslator`, holds both generators and picks one per image
by ``direction`` (0: photo -> sketch, 1: sketch -> photo). Each generator is a 7 x 7
convolution, two stride-2 convolutions, residual blocks at a quarter of the resolution,
two nearest-neighbour upsamplings with convolutions and a 7 x 7 convolution to RGB, with
instance norm throughout; any height and width (padded by replication to a multiple of 4,
cropped back). :class:`PatchCritic` (training only) scores overlapping patches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CycleTranslator", "PatchCritic", "ResnetGenerator"]

_MULTIPLE = 4  # two stride-2 downsamplings


def _conv_norm(a: int, b: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(a, b, kernel, stride=stride, padding=kernel // 2),
        nn.InstanceNorm2d(b, affine=True),
        nn.ReLU(),
    )


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_norm(channels, channels, 3),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = x + self.body(x)
        return output


class ResnetGenerator(nn.Module):
    """(N, 3, H, W) in [0, 1] -> (N, 3, H, W) in [0, 1]; widths ``features`` x 1, 2, 4."""

    def __init__(self, features: int = 16, blocks: int = 4) -> None:
        super().__init__()
        widths = (features, 2 * features, 4 * features)
        self.down = nn.Sequential(
            _conv_norm(3, widths[0], 7),
            _conv_norm(widths[0], widths[1], 3, stride=2),
            _conv_norm(widths[1], widths[2], 3, stride=2),
            *(_Residual(widths[2]) for _ in range(blocks)),
        )
        self.up = nn.ModuleList(
            (_conv_norm(widths[2], widths[1], 3), _conv_norm(widths[1], widths[0], 3))
        )
        self.tail = nn.Conv2d(widths[0], 3, 7, padding=3)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        pad_bottom, pad_right = (-height) % _MULTIPLE, (-width) % _MULTIPLE
        x = self.down(F.pad(image * 2.0 - 1.0, (0, pad_right, 0, pad_bottom), mode="replicate"))
        for layer in self.up:
            x = layer(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return torch.sigmoid(self.tail(x))[:, :, :height, :width]


class CycleTranslator(nn.Module):
    """Both directions: ``(image (N, 3, H, W), direction (N,)) -> (N, 3, H, W)``, where
    direction 0 runs ``to_sketch`` and 1 runs ``to_photo`` (both run; the graph selects)."""

    def __init__(self, features: int = 16, blocks: int = 4) -> None:
        super().__init__()
        self.to_sketch = ResnetGenerator(features, blocks)
        self.to_photo = ResnetGenerator(features, blocks)

    def forward(self, image: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        choose_photo = (direction == 1)[:, None, None, None]
        return torch.where(choose_photo, self.to_photo(image), self.to_sketch(image))


class PatchCritic(nn.Module):
    """PatchGAN: a map of real/fake scores, one per overlapping patch (training only)."""

    def __init__(self, features: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, features, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(features, 2 * features, 4, stride=2, padding=1),
            nn.InstanceNorm2d(2 * features, affine=True),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * features, 4 * features, 4, padding=1),
            nn.InstanceNorm2d(4 * features, affine=True),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4 * features, 1, 4, padding=1),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.net(image * 2.0 - 1.0)
        return output
