"""The serving boundary in the graph: uint8 NHWC in, uint8 NHWC out.

Normalisation, clamping, rounding and layout changes are fused into the exported
graph, so TensorRT does that math on the GPU and no FP32 image crosses the wire.
Evaluation runs through the same wrapper, so it measures exactly what is served.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["Uint8ImageModel", "run_uint8", "to_float_batch"]


class Uint8ImageModel(nn.Module):
    """Wrap a float [0, 1] NCHW image model as (N, H, W, 3) uint8 -> (N, H', W', 3) uint8."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.permute(0, 3, 1, 2).float() / 255.0  # (N, 3, H, W)
        y = self.model(x).clamp(0.0, 1.0) * 255.0  # (N, 3, H', W')
        return torch.round(y).to(torch.uint8).permute(0, 2, 3, 1)  # (N, H', W', 3)


@torch.inference_mode()
def run_uint8(model: nn.Module, image: np.ndarray) -> np.ndarray:
    """Run a float image model on one (H, W, 3) uint8 image through :class:`Uint8ImageModel`."""
    wrapped = Uint8ImageModel(model).eval()
    return wrapped(torch.tensor(image)[None])[0].numpy()


def to_float_batch(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [0, 1], the training layout."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
