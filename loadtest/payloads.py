"""Request payloads from the validation photos, and how each task's calls are made.

The call for a spec is derived from the spec alone: ``client.<client_method>(image,
<selector>=value, ...)`` for the pipeline and ``client.<client_method>_array(pixels, ...)``
for the raw path. :data:`CALLERS` maps a task family to the builder of its calls: every
editor (image in, image out) uses :func:`editor_call`, a generator
:func:`generator_call` (labels and seeds instead of photos) and a latent edit
:func:`latent_edit_call` (``variations`` of catalog test images, pipeline path only). A
generator's pipeline caches its responses, so its calls draw a fresh seed each time
(:func:`fresh_seeds`): the load test measures generation, not cache hits.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from PIL import Image

from vitrine.loadtest.mix import MixCall
from vitrine.options import example_options
from vitrine.sampling import unseen_seeds
from vitrine.tasks import Family

__all__ = [
    "CALLERS",
    "CatalogSample",
    "Keywords",
    "PreparedCall",
    "catalog_samples",
    "editor_call",
    "encode",
    "fixed",
    "fresh_seeds",
    "generator_call",
    "large_photo",
    "latent_edit_call",
    "photo_inputs",
    "prepare",
]

Invoke = Callable[[object, float], int]
"""``invoke(client, timeout_s)`` makes one call and returns the response size in bytes."""
Keywords = Callable[[], dict[str, Any]]
"""The keyword arguments of the next call."""


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
def _validation_photos() -> tuple[npt.NDArray[np.uint8], ...]:
    from vitrine.training.photos import load_split

    return tuple(load_split("validation").values())


def _fitted(photo: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """``photo`` centre-cropped to the aspect ratio and resized to ``(h, w)`` (Lanczos)."""
    rows, cols = photo.shape[:2]
    scale = min(rows / height, cols / width)
    crop_h, crop_w = round(height * scale), round(width * scale)
    top, left = (rows - crop_h) // 2, (cols - crop_w) // 2
    crop = Image.fromarray(photo[top : top + crop_h, left : left + crop_w])
    resized = crop.resize((width, height), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(resized, dtype=np.uint8))


def photo_inputs(height: int, width: int) -> list[npt.NDArray[np.uint8]]:
    """Every validation photo, centre-cropped to the aspect ratio and resized to ``(h, w)``."""
    return [_fitted(photo, height, width) for photo in _validation_photos()]


def large_photo(height: int, width: int, grain: float = 2.0) -> npt.NDArray[np.uint8]:
    """A camera-sized photo: the first validation photo (chelsea, 451 x 300) fitted to
    ``(h, w)`` with Gaussian grain of ``grain`` levels (seed 0). Grain, as a camera's
    sensor leaves, makes it encode as a photo does: upscaled alone, a 12 MP chelsea is a
    6 MB PNG (a 0.9 MB JPEG); with 2 levels of grain 17 MB (1.3 MB)."""
    photo = _fitted(_validation_photos()[0], height, width)
    noise = np.random.default_rng(0).standard_normal(photo.shape, dtype=np.float32) * grain
    return np.clip(np.round(photo + noise), 0, 255).astype(np.uint8)


class CatalogSample(NamedTuple):
    """A 32 x 32 catalog test image and the names of its labels."""

    pixels: npt.NDArray[np.uint8]
    category: str
    color: str


@cache
def catalog_samples() -> tuple[CatalogSample, ...]:
    """The first catalog test image of each category, in category order."""
    from vitrine.products import CATALOG_COLOURS, CATEGORIES
    from vitrine.training.catalog_data import load_catalog

    test = load_catalog("test")
    firsts = [int(np.argmax(test.categories == label)) for label in range(len(CATEGORIES))]
    return tuple(
        CatalogSample(
            np.ascontiguousarray(test.images[index]),
            CATEGORIES[test.categories[index]],
            CATALOG_COLOURS[test.colours[index]],
        )
        for index in firsts
    )


def encode(pixels: npt.NDArray[np.uint8], fmt: str, quality: int = 90) -> bytes:
    """``pixels`` as PNG/JPEG/WebP bytes (what an upload looks like)."""
    buffer = io.BytesIO()
    options = {} if fmt == "png" else {"quality": quality}
    Image.fromarray(pixels).save(buffer, format=fmt.upper(), **options)
    return buffer.getvalue()


def fixed(kwargs: dict[str, Any]) -> Keywords:
    """The same keyword arguments every call."""
    return lambda: kwargs


def fresh_seeds(kwargs: dict[str, Any]) -> Keywords:
    """``kwargs`` with a seed no earlier call used (a generator's pipeline caches responses)."""
    seeds = unseen_seeds()
    return lambda: kwargs | {"seed": next(seeds)}


def editor_call(call: MixCall) -> list[Invoke]:
    """Image-in/image-out editors: one invoke per (photo, size) of ``call``."""
    spec = call.spec
    invokes: list[Invoke] = []
    for height, width in call.sizes:
        kwargs = fixed(spec.selector_kwargs | example_options(spec, height, width))
        for pixels in photo_inputs(height, width):
            if call.path == "raw":
                batch = np.ascontiguousarray(np.repeat(pixels[None], call.batch, axis=0))
                invokes.append(_raw(f"{spec.client_method}_array", (batch,), kwargs))
            else:
                data = encode(pixels, call.input_format, 90)
                invokes.append(_pipeline(spec.client_method, (data,), kwargs, call))
    return invokes


def generator_call(call: MixCall) -> list[Invoke]:
    """Generators: one invoke per (category, colour) pair, each call with a fresh seed,
    asking for ``call.count`` images."""
    spec = call.spec
    assert spec.conditioning is not None, f"{spec.name} is no generator"
    pairs = itertools.product(spec.conditioning.categories, spec.conditioning.colours)
    invokes: list[Invoke] = []
    for category, colour in pairs:
        asked = {"category": category, "color": colour, "count": call.count}
        kwargs = fresh_seeds(spec.selector_kwargs | asked)
        if call.path == "raw":
            invokes.append(_raw(f"{spec.client_method}_array", (), kwargs))
        else:
            invokes.append(_pipeline(spec.client_method, (), kwargs, call))
    return invokes


def latent_edit_call(call: MixCall) -> list[Invoke]:
    """Latent edits: ``call.count`` variations of each catalog sample, uploaded in
    ``call.input_format`` and asked for with its own labels. The pipeline path only: there
    is no raw client method (the mix refuses the raw path)."""
    assert call.path == "pipeline", f"{call.spec.name} has no raw client method"
    spec = call.spec
    invokes: list[Invoke] = []
    for sample in catalog_samples():
        asked = {"category": sample.category, "color": sample.color, "count": call.count}
        data = encode(sample.pixels, call.input_format, 90)
        kwargs = fixed(spec.selector_kwargs | asked)
        invokes.append(_pipeline(spec.client_method, (data,), kwargs, call))
    return invokes


def _raw(method: str, args: tuple[object, ...], kwargs: Keywords) -> Invoke:
    def invoke(client: object, timeout: float) -> int:
        result = getattr(client, method)(*args, **kwargs(), timeout=timeout)
        return int(result.array.nbytes)

    return invoke


def _pipeline(method: str, args: tuple[object, ...], kwargs: Keywords, call: MixCall) -> Invoke:
    def invoke(client: object, timeout: float) -> int:
        result = getattr(client, method)(
            *args,
            **kwargs(),
            output_format=call.output_format,
            quality=call.quality,
            timeout=timeout,
        )
        return _encoded_size(result.data)

    return invoke


def _encoded_size(data: bytes | Sequence[bytes]) -> int:
    """Bytes of an encoded result: one image (editors) or a list of them (generators,
    latent edits)."""
    return len(data) if isinstance(data, bytes) else sum(len(item) for item in data)


CALLERS: dict[Family, Callable[[MixCall], list[Invoke]]] = {
    Family.EDITOR: editor_call,
    Family.GENERATOR: generator_call,
    Family.LATENT_EDIT: latent_edit_call,
}
"""Family → builder of its calls; a contract test checks every family has one."""


def prepare(call: MixCall) -> PreparedCall:
    """Payloads of ``call``, ready to send."""
    return PreparedCall(call=call, invokes=CALLERS[call.spec.family](call))
