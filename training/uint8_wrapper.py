"""The serving boundary in the graph: uint8 NHWC in, uint8 NHWC out.

Normalisation, clamping, rounding and layout changes are fused into the exported
graph, so TensorRT does that math on the GPU and no FP32 image crosses the wire.
Evaluation runs through the same wrapper, so it measures exactly what is served.

The float models keep one contract per task; each task's forward (``HOOKS.forward`` in its
module, see ``vitrine.training.hooks``) adds what serving needs: the option tensors
(strength, mask, labels, ...) and any blending. The wrapper converts the image to float and
the result back to uint8.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from vitrine.tasks import Task
from vitrine.training.hooks import task_hooks

__all__ = [
    "Uint8ImageModel",
    "blend",
    "image_forward",
    "run_uint8",
    "to_float",
    "to_float_batch",
    "to_uint8",
]


def to_float(image: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float (N, C, H, W) in [0, 1]."""
    return image.permute(0, 3, 1, 2).float() / 255.0


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """float (N, C, H, W) -> uint8 (N, H, W, C), clamped to [0, 1] and rounded."""
    y = image.clamp(0.0, 1.0) * 255.0
    return torch.round(y).to(torch.uint8).permute(0, 2, 3, 1)


def image_forward(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The forward of a task without options: ``model(x) -> y``."""
    output: torch.Tensor = model(to_float(image))
    return output


def blend(x: torch.Tensor, y: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """``x + s * (y - x)`` per image, ``strength`` (N, 1): 0 gives ``x``, 1 gives ``y``."""
    s = strength.float()[:, :, None, None]  # (N, 1, 1, 1)
    return x + s * (y - x)


class Uint8ImageModel(nn.Module):
    """Wrap a float [0, 1] NCHW model of ``task`` as uint8 NHWC (plus option tensors)."""

    def __init__(self, model: nn.Module, task: Task = Task.SUPER_RESOLVE) -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.float_forward = task_hooks(task).forward

    def forward(self, image: torch.Tensor, *options: torch.Tensor) -> torch.Tensor:
        return to_uint8(self.float_forward(self.model, image, *options))


@torch.inference_mode()
def run_uint8(
    model: nn.Module,
    image: npt.NDArray[Any],
    *options: npt.NDArray[Any],
    task: Task = Task.SUPER_RESOLVE,
) -> npt.NDArray[Any]:
    """Run a float model on one (H, W, 3) uint8 image (options without their batch axis)."""
    wrapped = Uint8ImageModel(model, task).eval()
    tensors = [torch.from_numpy(np.ascontiguousarray(o))[None] for o in options]
    result: npt.NDArray[Any] = wrapped(torch.tensor(image)[None], *tensors)[0].numpy()
    return result


def to_float_batch(images: npt.NDArray[Any]) -> torch.Tensor:
    """(N, H, W, C) uint8 -> (N, C, H, W) float in [0, 1], the training layout."""
    return to_float(torch.from_numpy(np.ascontiguousarray(images)))
