"""Request payloads from the validation photos, and how each task's calls are made.

The call for a spec is derived from the spec alone: ``client.<client_method>(image,
<selector>=value, ...)`` for the pipeline and ``client.<client_method>_array(pixels, ...)``
for the raw path. :data:`CALLERS` maps a task to the builder of its calls; an editor with
the same image-in/image-out signature reuses :func:`editor_call`, a generator adds its own
builder (seed/count payloads) in one line.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from PIL import Image

from vitrine.loadtest.mix import MixCall
from vitrine.options import example_options
from vitrine.spec import Task

__all__ = [
    "CALLERS",
    "PreparedCall",
    "editor_call",
    "encode",
    "photo_inputs",
    "prepare",
]

Invoke = Callable[[object, float], int]
"""``invoke(client, timeout_s)`` makes one call and returns the response size in bytes."""


@dataclass
class PreparedCall:
    """A mix call with its payloads ready; :meth:`next_invoke` cycles through them."""

    call: MixCall
    invokes: Sequence[Invoke]

    def __post_init__(self) -> None:
        self._cycle: Iterator[Invoke] = itertools.cycle(self.invokes)

    @property
    def name(self) -> str:
        return self.call.name

    def next_invoke(self) -> Invoke:
        return next(self._cycle)


@cache
def _validation_photos() -> tuple[np.ndarray, ...]:
    from vitrine.training.photos import load_split

    return tuple(load_split("validation").values())


def photo_inputs(height: int, width: int) -> list[np.ndarray]:
    """Every validation photo, centre-cropped to the aspect ratio and resized to ``(h, w)``."""
    inputs = []
    for photo in _validation_photos():
        rows, cols = photo.shape[:2]
        scale = min(rows / height, cols / width)
        crop_h, crop_w = round(height * scale), round(width * scale)
        top, left = (rows - crop_h) // 2, (cols - crop_w) // 2
        crop = Image.fromarray(photo[top : top + crop_h, left : left + crop_w])
        resized = crop.resize((width, height), Image.Resampling.LANCZOS)
        inputs.append(np.ascontiguousarray(np.asarray(resized, dtype=np.uint8)))
    return inputs


def encode(pixels: np.ndarray, fmt: str, quality: int = 90) -> bytes:
    """``pixels`` as PNG/JPEG/WebP bytes (what an upload looks like)."""
    buffer = io.BytesIO()
    options = {} if fmt == "png" else {"quality": quality}
    Image.fromarray(pixels).save(buffer, format=fmt.upper(), **options)
    return buffer.getvalue()


def editor_call(call: MixCall) -> list[Invoke]:
    """Image-in/image-out editors: one invoke per (photo, size) of ``call``."""
    spec = call.spec
    invokes: list[Invoke] = []
    for height, width in call.sizes:
        kwargs = spec.selector_kwargs | example_options(spec, height, width)
        for pixels in photo_inputs(height, width):
            if call.path == "raw":
                batch = np.ascontiguousarray(np.repeat(pixels[None], call.batch, axis=0))
                invokes.append(_raw(f"{spec.client_method}_array", batch, kwargs))
            else:
                data = encode(pixels, call.input_format, 90)
                invokes.append(
                    _pipeline(spec.client_method, data, kwargs, call.output_format, call.quality)
                )
    return invokes


def _raw(method: str, batch: np.ndarray, selector: dict[str, Any]) -> Invoke:
    def invoke(client: object, timeout: float) -> int:
        result = getattr(client, method)(batch, **selector, timeout=timeout)
        return int(result.array.nbytes)

    return invoke


def _pipeline(
    method: str, data: bytes, selector: dict[str, Any], output_format: str, quality: int
) -> Invoke:
    def invoke(client: object, timeout: float) -> int:
        result = getattr(client, method)(
            data, **selector, output_format=output_format, quality=quality, timeout=timeout
        )
        return len(result.data)

    return invoke


CALLERS: dict[Task, Callable[[MixCall], list[Invoke]]] = {
    Task.SUPER_RESOLVE: editor_call,
    Task.ENHANCE: editor_call,
    Task.DENOISE: editor_call,
    Task.INPAINT: editor_call,
    Task.REMOVE_BACKGROUND: editor_call,
}
"""Task → builder of its calls. A task missing here cannot be load-tested (clear error)."""


def prepare(call: MixCall) -> PreparedCall:
    """Payloads of ``call``, ready to send."""
    builder = CALLERS.get(call.spec.task)
    if builder is None:
        raise NotImplementedError(
            f"no load-test payload for task {call.spec.task.value!r} ({call.spec.name}); "
            "add a builder to vitrine.loadtest.payloads.CALLERS"
        )
    return PreparedCall(call=call, invokes=builder(call))
