"""The serving boundary in the graph: uint8 NHWC in, uint8 NHWC out.

Normalisation, clamping, rounding and layout changes are fused into the exported
graph, so TensorRT does that math on the GPU and no FP32 image crosses the wire.
Evaluation runs through the same wrapper, so it measures exactly what is served.

The float models keep one contract per task; the wrapper adds what serving needs:

* super-resolution, enhancement: ``model(x) -> y``.
* denoising: ``model(x) -> y``; the ``strength`` input (N, 1) blends ``x + s * (y - x)``.
* inpainting: ``model(x, hole) -> y`` with ``hole`` (N, 1, H, W) in {0, 1}; pixels outside
  the hole are passed through exactly.
* style transfer: ``model(x, style) -> y`` with ``style`` (N,) int64; served, the ``style``
  input is int32 (N, 1) and ``strength`` (N, 1) blends ``x + s * (y - x)``.
* translation: ``model(x, direction) -> y`` with ``direction`` (N,) int64, served as an
  int32 (N, 1) input.
* background removal: ``model(x) -> alpha`` (N, 1, H, W); the ``background`` input (N, 4)
  = (r, g, b, opaque) composites the product on that colour (opaque 255) or keeps the
  alpha channel (opaque 0). The output has 4 channels (RGBA).
* latent edits (a VAE): ``model.encode(x, category, colour) -> (mean, log_variance)`` and
  ``model(latent, category, colour) -> y``; the inputs ``other`` (a second image),
  ``category``, ``color`` (N, 1), ``blend``, ``noise`` (N, Z) and ``spread`` decode
  ``lerp(mean(x), mean(other), blend) + spread * noise``.
* generators: ``model(latent, category, colour) -> y`` with latent (N, Z) float and the
  labels (N,) int64; served, the labels are int32 (N, 1) inputs and the first input is the
  latent instead of an image. A style-mixing generator (StyleGAN) also takes
  ``mix_latent`` (N, Z) and ``truncation`` (N, 1), passed on as (N,).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vitrine.spec import Task

__all__ = ["Uint8ImageModel", "run_uint8", "to_float_batch"]


def _to_float(image: torch.Tensor) -> torch.Tensor:
    return image.permute(0, 3, 1, 2).float() / 255.0  # (N, C, H, W)


def _to_uint8(image: torch.Tensor) -> torch.Tensor:
    y = image.clamp(0.0, 1.0) * 255.0
    return torch.round(y).to(torch.uint8).permute(0, 2, 3, 1)  # (N, H, W, C)


class Uint8ImageModel(nn.Module):
    """Wrap a float [0, 1] NCHW model of ``task`` as uint8 NHWC (plus option tensors)."""

    def __init__(self, model: nn.Module, task: Task = Task.SUPER_RESOLVE) -> None:
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, image: torch.Tensor, *options: torch.Tensor) -> torch.Tensor:
        if self.task is Task.GENERATE:
            category, colour, *styles = options
            if styles:  # mix_latent (N, Z), truncation (N, 1)
                styles = [styles[0], styles[1][:, 0]]
            labels = (label[:, 0].long() for label in (category, colour))
            return _to_uint8(self.model(image, *labels, *styles))
        x = _to_float(image)
        if self.task is Task.LATENT_EDIT:
            other, category, colour, blend, noise, spread = options
            labels = (category[:, 0].long(), colour[:, 0].long())
            mean, _ = self.model.encode(x, *labels)
            towards, _ = self.model.encode(_to_float(other), *labels)
            latent = mean + blend * (towards - mean) + spread * noise
            return _to_uint8(self.model(latent, *labels))
        if self.task is Task.TRANSLATE:
            (direction,) = options
            return _to_uint8(self.model(x, direction[:, 0].long()))
        if self.task is Task.STYLIZE:
            style, strength = options
            s = strength.float()[:, :, None, None]  # (N, 1, 1, 1)
            return _to_uint8(x + s * (self.model(x, style[:, 0].long()) - x))
        if self.task is Task.DENOISE:
            (strength,) = options
            s = strength.float()[:, :, None, None]  # (N, 1, 1, 1)
            return _to_uint8(x + s * (self.model(x) - x))
        if self.task is Task.INPAINT:
            (mask,) = options
            hole = (_to_float(mask) > 0.5).float()  # (N, 1, H, W)
            return _to_uint8(x * (1.0 - hole) + self.model(x, hole) * hole)
        if self.task is Task.REMOVE_BACKGROUND:
            (background,) = options
            colour = background[:, :3].float()[:, :, None, None] / 255.0  # (N, 3, 1, 1)
            opaque = background[:, 3:].float()[:, :, None, None] / 255.0  # (N, 1, 1, 1)
            alpha = self.model(x)
            composite = x * alpha + colour * (1.0 - alpha)
            rgb = opaque * composite + (1.0 - opaque) * x
            return _to_uint8(torch.cat([rgb, opaque + (1.0 - opaque) * alpha], dim=1))
        return _to_uint8(self.model(x))


@torch.inference_mode()
def run_uint8(
    model: nn.Module,
    image: np.ndarray,
    *options: np.ndarray,
    task: Task = Task.SUPER_RESOLVE,
) -> np.ndarray:
    """Run a float model on one (H, W, 3) uint8 image (options without their batch axis)."""
    wrapped = Uint8ImageModel(model, task).eval()
    tensors = [torch.from_numpy(np.ascontiguousarray(o))[None] for o in options]
    return wrapped(torch.tensor(image)[None], *tensors)[0].numpy()


def to_float_batch(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, C) uint8 -> (N, C, H, W) float in [0, 1], the training layout."""
    return _to_float(torch.from_numpy(np.ascontiguousarray(images)))
