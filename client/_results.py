"""Frozen result types returned by both clients."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = ["ArrayResult", "GeneratedImages", "Health", "ImageResult"]


@dataclass(frozen=True, eq=False)
class ImageResult:
    """An encoded image returned by a pipeline, with the decoded image (RGB, or RGBA for a
    transparent background).

    ``latency_ms`` is the client-measured time of the RPC, retries included.
    """

    image: Image.Image
    data: bytes
    format: str
    model: str
    model_version: str
    latency_ms: float


@dataclass(frozen=True, eq=False)
class GeneratedImages:
    """Encoded images made by a generator pipeline, in seed order, with the decoded images.

    ``latency_ms`` is the client-measured time of the RPC, retries included.
    """

    images: list[Image.Image]
    data: list[bytes]
    format: str
    model: str
    model_version: str
    latency_ms: float


@dataclass(frozen=True, eq=False)
class ArrayResult:
    """Raw uint8 pixels from a core model, with the rank of the request (read-only)."""

    array: npt.NDArray[np.uint8]
    model: str
    model_version: str
    latency_ms: float


@dataclass(frozen=True)
class Health:
    """Server liveness and readiness, and the readiness of every spec's models."""

    live: bool
    ready: bool
    models: dict[str, bool]
