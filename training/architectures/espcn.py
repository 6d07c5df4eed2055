"""ESPCN-family super-resolution: sub-pixel convolution, residual over bicubic.

PReLU activations (as FSRCNN) cannot die, which plain ReLU layers did here in training.

Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient
Sub-Pixel Convolutional Neural Network", CVPR 2016. The network predicts only the
detail that bicubic upscaling misses, so an untrained model starts close to bicubic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ESPCN"]


class ESPCN(nn.Module):
    """x``scale`` upscaler on float RGB in [0, 1]: (N, 3, h, w) -> (N, 3, h*scale, w*scale)."""

    def __init__(self, scale: int, features: tuple[int, ...] = (64, 32), channels: int = 3) -> None:
        super().__init__()
        if scale < 2:
            raise ValueError(f"scale must be >= 2, got {scale}")
        if not features:
            raise ValueError("features must name at least one hidden layer width")
        self.scale = scale
        layers: list[nn.Module] = []
        width = channels
        for index, out_width in enumerate(features):
            kernel = 5 if index == 0 else 3
            layers += [
                nn.Conv2d(width, out_width, kernel, padding=kernel // 2),
                nn.PReLU(out_width),
            ]
            width = out_width
        self.body = nn.Sequential(*layers)  # (N, features[-1], h, w)
        self.to_subpixels = nn.Conv2d(width, channels * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)  # (N, channels, h*scale, w*scale)
        for conv in (*self.body, self.to_subpixels):
            if isinstance(conv, nn.Conv2d) and conv.bias is not None:  # He init
                nn.init.kaiming_normal_(conv.weight, a=0.25, nonlinearity="leaky_relu")
                nn.init.zeros_(conv.bias)
        self.to_subpixels.weight.data.mul_(0.1)  # a near-zero residual to start

    def forward(self, low_res: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(low_res, scale_factor=self.scale, mode="bicubic", align_corners=False)
        output: torch.Tensor = base + self.shuffle(self.to_subpixels(self.body(low_res)))
        return output
