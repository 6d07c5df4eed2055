"""Hole filling by a U-Net of gated convolutions (Yu et al. 2019, "Free-Form Image Inpainting
with Gated Convolution"), refining a classical harmonic fill.

Input: ``x`` (N, 3, H, W) in [0, 1] and ``hole`` (N, 1, H, W) in {0, 1} (1 = fill). The
network sees concat(x * (1 - hole), hole) (4 channels). Every convolution is gated: it
produces features and a gate, and outputs ``leaky_relu(features) * sigmoid(gate)``, so the
network learns per pixel and channel how much to trust what it sees (valid pixels vs the
hole). The encoder halves the resolution ``levels`` times with strided gated convolutions
(widths F, 2F, 4F, at most 4F), the bottleneck has dilated convolutions (dilation 1, 2, 4,
8) for a receptive field wider than the largest holes, and the decoder projects (1x1, at
the coarse resolution), upsamples (nearest) and adds the skip before one gated
convolution per level: additive skips keep the full-resolution cost low (about 100 k
multiply-adds per pixel with F = 32, levels = 3), as it is served on CPU up to 512x512.

The output is a classical fill of the hole plus the network's correction, clamped to
[0, 1]. The fill starts as a push-pull fill (Gortler et al. 1996: averages of the valid
pixels pulled down a 5-level pyramid, then pushed back up, each level's average used
where at least a quarter of its cell was valid), which is then relaxed towards the
harmonic (membrane) interpolant of the hole's boundary: ``_RELAX_SCHEDULE`` Jacobi
sweeps of the 4-neighbour average inside the hole, with neighbours 16, 8, 4, 2 and then
1 px away so that colour travels across wide holes in few sweeps. On the validation
masks the push-pull fill alone scores 17.37 dB in the holes, the relaxed fill 18.24 dB,
against 17.80 dB for ``cv2.inpaint`` Telea. Valid pixels are never changed. Gated
convolutions start with He-initialised features, scaled up to make up for the gate's
attenuation (without it the signal fades through the 11 layers and training stalls).

The input is padded (replicate) to a multiple of 2 ** max(levels, 5) computed from its
own shape and cropped back, so any H, W works, in PyTorch and in an ONNX export with
dynamic H and W (opset 17, checked against onnxruntime at 37x53 and 256x256).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GatedUNet", "harmonic_fill", "push_pull_fill"]

_PULL_LEVELS = 5
_RELAX_SCHEDULE = ((16, 40), (8, 40), (4, 40), (2, 40), (1, 40))  # (neighbour distance, sweeps)
_NEIGHBOUR_SUM = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]).expand(
    3, 1, 3, 3
)  # one depthwise kernel per RGB channel, of a constant shape as ONNX export needs
_GATE_GAIN = 1.8


class GatedConv(nn.Module):
    """Conv2d giving features and gates; ``leaky_relu(features) * sigmoid(gate)``."""

    def __init__(
        self, in_width: int, out_width: int, kernel: int = 3, stride: int = 1, dilation: int = 1
    ) -> None:
        super().__init__()
        padding = dilation * (kernel - 1) // 2
        self.conv = nn.Conv2d(in_width, 2 * out_width, kernel, stride, padding, dilation)
        nn.init.kaiming_normal_(self.conv.weight, a=0.2, nonlinearity="leaky_relu")
        assert self.conv.bias is not None
        nn.init.zeros_(self.conv.bias)
        with torch.no_grad():  # sigmoid(gate) keeps ~0.29 of the second moment: compensate
            self.conv.weight[:out_width] *= _GATE_GAIN

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gate = self.conv(x).chunk(2, dim=1)
        return F.leaky_relu(features, 0.2) * torch.sigmoid(gate)


def _composite(colour: torch.Tensor, alpha: torch.Tensor, below: torch.Tensor) -> torch.Tensor:
    """Average valid colour over ``below``, opaque where one pixel of four was valid."""
    weight = (4.0 * alpha).clamp(max=1.0)
    return weight * colour / alpha.clamp(min=1e-6) + (1.0 - weight) * below


def push_pull_fill(x: torch.Tensor, valid: torch.Tensor, levels: int) -> torch.Tensor:
    """Fill where ``valid`` is 0 from averages of valid pixels over ``levels`` halvings.

    H and W must be multiples of 2 ** levels. Where a coarsest cell has no valid pixel at
    all, the image's mean valid colour is used. Valid pixels are returned unchanged.
    """
    colours, alphas = [x * valid], [valid]  # premultiplied colour and coverage per level
    for _ in range(levels):
        colours.append(F.avg_pool2d(colours[-1], 2))
        alphas.append(F.avg_pool2d(alphas[-1], 2))
    total = valid.sum(dim=(2, 3), keepdim=True).clamp(min=1.0)
    mean = (x * valid).sum(dim=(2, 3), keepdim=True) / total  # (N, 3, 1, 1) mean valid colour
    fill = _composite(colours[-1], alphas[-1], mean)
    for colour, alpha in zip(reversed(colours[:-1]), reversed(alphas[:-1]), strict=True):
        fill = F.interpolate(fill, scale_factor=2.0, mode="bilinear", align_corners=False)
        fill = _composite(colour, alpha, fill)
    return fill


def harmonic_fill(x: torch.Tensor, valid: torch.Tensor, levels: int) -> torch.Tensor:
    """The push-pull fill of RGB ``x`` relaxed towards the harmonic interpolant in the hole.

    Each sweep replaces every hole pixel by the mean of its four neighbours at the
    schedule's distance (replicate padding at the borders); valid pixels stay ``x``.
    """
    fill = push_pull_fill(x, valid, levels)
    quarter_hole = 0.25 * (1.0 - valid)
    known = x * valid
    for distance, sweeps in _RELAX_SCHEDULE:
        for _ in range(sweeps):
            fill = torch.addcmul(known, quarter_hole, _neighbour_sum(fill, distance))
    return fill


def _neighbour_sum(image: torch.Tensor, distance: int) -> torch.Tensor:
    """Sum of each pixel's four neighbours ``distance`` px away (replicate padding).

    Eager PyTorch adds four shifted slices in place (3x faster than a depthwise convolution
    on CPU); an ONNX export records the convolution, which onnxruntime runs 2x faster than
    the slices. Both add the same four values (the export's parity check compares them).
    """
    padded = F.pad(image, (distance,) * 4, mode="replicate")
    if torch.onnx.is_in_onnx_export():
        return F.conv2d(padded, _NEIGHBOUR_SUM.to(image.dtype), dilation=distance, groups=3)
    d = distance
    total = padded[..., : -2 * d, d:-d] + padded[..., 2 * d :, d:-d]
    total += padded[..., d:-d, : -2 * d]
    total += padded[..., d:-d, 2 * d :]
    return total


class GatedUNet(nn.Module):
    """``model(x, hole) -> y``: (N, 3, H, W) images and (N, 1, H, W) holes -> (N, 3, H, W)."""

    def __init__(self, features: int = 32, levels: int = 3) -> None:
        super().__init__()
        self.levels = levels
        widths = [features * min(2**level, 4) for level in range(levels + 1)]
        self.stem = GatedConv(4, widths[0], kernel=5)
        self.down = nn.ModuleList(
            GatedConv(widths[i], widths[i + 1], stride=2) for i in range(levels)
        )
        bottom = widths[-1]
        self.bottleneck = nn.Sequential(
            *(GatedConv(bottom, bottom, dilation=d) for d in (1, 2, 4, 8))
        )
        self.project = nn.ModuleList(
            nn.Conv2d(widths[i + 1], widths[i], 1) for i in reversed(range(levels))
        )
        self.up = nn.ModuleList(GatedConv(widths[i], widths[i]) for i in reversed(range(levels)))
        self.head = nn.Conv2d(widths[0], 3, 3, padding=1)
        nn.init.zeros_(self.head.weight)  # start as the push-pull fill
        assert self.head.bias is not None
        nn.init.zeros_(self.head.bias)

    def _pad(self, image: torch.Tensor) -> torch.Tensor:
        multiple = 2 ** max(self.levels, _PULL_LEVELS)
        height, width = image.shape[-2], image.shape[-1]
        pad_h, pad_w = (
            (multiple - height % multiple) % multiple,
            (multiple - width % multiple) % multiple,
        )
        return F.pad(image, (0, pad_w, 0, pad_h), mode="replicate")

    def forward(self, x: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        x, hole = self._pad(x), self._pad(hole)
        valid = 1.0 - hole
        coarse = harmonic_fill(x, valid, _PULL_LEVELS)
        h = self.stem(torch.cat([x * valid, hole], dim=1))
        skips = []
        for down in self.down:
            skips.append(h)
            h = down(h)
        h = self.bottleneck(h)
        for project, up, skip in zip(self.project, self.up, reversed(skips), strict=True):
            h = F.interpolate(project(h), scale_factor=2.0, mode="nearest")
            h = up(h + skip)
        y = (coarse + self.head(h)).clamp(0.0, 1.0)
        output: torch.Tensor = y[:, :, :height, :width]
        return output
