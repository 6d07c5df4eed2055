"""Feed-forward multi-style transfer (Johnson et al., 2016) with conditional instance norm.

One network holds every style: each instance normalisation has a gain and a bias per style
(Dumoulin et al., "A Learned Representation for Artistic Style", ICLR 2017), picked by the
``style`` index. A 9 x 9 convolution, two stride-2 convolutions, residual blocks, two
nearest-neighbour x2 upsamplings with convolutions and a 9 x 9 convolution back to RGB.
Any height and width: the input is padded by replication to a multiple of 4 and the output
cropped back. In ONNX: Conv, InstanceNormalization, Gather, Resize and pointwise ops.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["StyleTransferNet"]

_MULTIPLE = 4  # two stride-2 downsamplings


class _StyleNorm(nn.Module):
    """Instance normalisation with a gain and a bias per style (identity at init)."""

    def __init__(self, channels: int, styles: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.gain = nn.Embedding(styles, channels)
        self.bias = nn.Embedding(styles, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        gain, bias = self.gain(style)[:, :, None, None], self.bias(style)[:, :, None, None]
        output: torch.Tensor = self.norm(x) * gain + bias
        return output


class _ConvNorm(nn.Module):
    """Reflection-free convolution (zero padding), style norm, optional ReLU."""

    def __init__(
        self, a: int, b: int, kernel: int, styles: int, stride: int = 1, relu: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(a, b, kernel, stride=stride, padding=kernel // 2)
        self.norm = _StyleNorm(b, styles)
        self.relu = relu

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.conv(x), style)
        return torch.relu(y) if self.relu else y


class StyleTransferNet(nn.Module):
    """(image (N, 3, H, W) in [0, 1], style (N,)) -> stylised image (N, 3, H, W) in [0, 1].

    Widths are ``features`` at full resolution, 2x and 4x after each downsampling;
    ``blocks`` residual blocks work at a quarter of the resolution.
    """

    def __init__(self, styles: int, features: int = 16, blocks: int = 3) -> None:
        super().__init__()
        widths = (features, 2 * features, 4 * features)
        self.head = _ConvNorm(3, widths[0], 9, styles)
        self.down = nn.ModuleList(
            _ConvNorm(a, b, 3, styles, stride=2) for a, b in zip(widths, widths[1:], strict=False)
        )
        self.blocks = nn.ModuleList(
            nn.ModuleList(
                (
                    _ConvNorm(widths[2], widths[2], 3, styles),
                    _ConvNorm(widths[2], widths[2], 3, styles, relu=False),
                )
            )
            for _ in range(blocks)
        )
        self.up = nn.ModuleList(
            _ConvNorm(a, b, 3, styles) for a, b in ((widths[2], widths[1]), (widths[1], widths[0]))
        )
        self.tail = nn.Conv2d(widths[0], 3, 9, padding=4)

    def forward(self, image: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        pad_bottom, pad_right = (-height) % _MULTIPLE, (-width) % _MULTIPLE
        x = F.pad(image * 2.0 - 1.0, (0, pad_right, 0, pad_bottom), mode="replicate")
        x = self.head(x, style)
        for layer in self.down:
            x = layer(x, style)
        for first, second in cast(Iterable[nn.ModuleList], self.blocks):  # (conv, conv) pairs
            x = x + second(first(x, style), style)
        for layer in self.up:
            x = layer(F.interpolate(x, scale_factor=2.0, mode="nearest"), style)
        return torch.sigmoid(self.tail(x))[:, :, :height, :width]
