"""Editors on real photos: run the core model on pieces of an upload and assemble the result.

A core model takes at most its profile's side (512 or 1,024 px); an editor's pipeline takes
photos up to the upload limits (25 MP). Between them sits a python step that turns one
photo into core-model calls and their results back into one image, planned here (numpy and
OpenCV only, so it is tested without Triton). Each :class:`~vitrine.spec.Tiling` has its
plan:

* ``TILES`` (super-resolution, denoising, stylisation, translation): overlapping windows of
  one size, sent in batches. Each window keeps the part of the photo it owns plus ``margin``
  pixels of context on every side where there is photo; only the owned part is written.
  With a margin at least the network's receptive field the result equals the whole-image
  inference; networks with global statistics (instance norm) get a feathered blend across
  the inner half of the margins instead, so their tile boundaries do not show.
* ``CURVES`` (enhancement): the network predicts per-channel curves from a fixed-size
  thumbnail and applies them pixel by pixel. One call on a probe image measures both: its
  thumbnail is the photo's exact thumbnail and its other pixels are every grey level, whose
  outputs are the curves; the photo then goes through them as lookup tables.
* ``HOLES`` (inpainting): windows around the mask's holes with ``margin`` pixels of
  context; only hole pixels change.
* ``MATTE`` (background removal): the alpha is predicted on a copy at the working side and
  upsampled to the photo by a guided filter (He et al., 2013) that follows the photo's own
  edges; the cut-out is composited at full size. ``edge_aware=False`` upsamples it
  bilinearly instead (not served: the comparison the full-size evaluation reports).

An image the core model takes whole goes through it whole, as it always has.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from scipy import ndimage

from vitrine.spec import ModelSpec, OptionKind, Tiling

__all__ = [
    "Call",
    "Plan",
    "PlanSettings",
    "Window",
    "bilinear_upsample",
    "guided_upsample",
    "plan_image",
    "windows",
]

Array = npt.NDArray[Any]
Call = dict[str, Array]
"""One core-model call: every core input, batch first."""


@dataclass(frozen=True)
class PlanSettings:
    """What planning needs to know about the editor (from its spec, through the step's
    config parameters)."""

    tiling: Tiling
    tile: int  # side of the core calls (the matte: the working side)
    margin: int  # context on every side of a tile or hole
    core_min_side: int  # the core model's smallest side
    core_max_side: int  # ... and largest
    max_batch: int  # windows per call
    scale: int = 1  # output side / input side
    image_input: str = "image"
    blend: bool = False  # TILES: feather the margins (a network with global statistics)
    thumbnail: int = 0  # CURVES: the network's thumbnail side
    mask_input: str = ""  # HOLES: the option holding the holes
    background_input: str = ""  # MATTE: the option holding the background
    edge_aware: bool = True  # MATTE: guided-filter upsampling (False: bilinear, not served)

    @classmethod
    def of(cls, spec: ModelSpec) -> PlanSettings:
        """The settings of an editor's spec (its large-image plan and core model)."""
        large = spec.large
        if large is None:
            raise ValueError(f"{spec.name} has no large-image plan")
        kinds = {option.kind: option.core.name for option in spec.options}
        return cls(
            tiling=large.tiling,
            tile=large.tile,
            margin=large.margin,
            core_min_side=spec.core_limits.min_side,
            core_max_side=spec.core_limits.max_side,
            max_batch=min(large.batch, spec.batching.max_batch_size),
            scale=spec.output_scale,
            image_input=spec.input.name,
            blend=large.blend,
            thumbnail=int(spec.arch_kwargs.get("thumbnail", 0)),
            mask_input=kinds.get(OptionKind.MASK, ""),
            background_input=kinds.get(OptionKind.BACKGROUND, ""),
        )

    def parameters(self) -> dict[str, str]:
        """The settings as text parameters of the full-size step's config."""

        def text(value: object) -> str:
            if isinstance(value, Tiling):
                return value.value
            return str(int(value)) if isinstance(value, bool) else str(value)

        return {field.name: text(getattr(self, field.name)) for field in dataclasses.fields(self)}

    @classmethod
    def from_parameters(cls, params: Mapping[str, str]) -> PlanSettings:
        """What :meth:`parameters` wrote."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            text = params[field.name]
            kind = field.type
            if kind == "Tiling":
                values[field.name] = Tiling(text)
            elif kind == "bool":
                values[field.name] = bool(int(text))
            elif kind == "int":
                values[field.name] = int(text)
            else:
                values[field.name] = text
        return cls(**values)


@dataclass(frozen=True)
class Window:
    """A rectangle of the photo read by one core call (``top``/``left``/``height``/``width``)
    and the rectangle inside it whose result is kept (``keep``: top, left, bottom, right in
    photo coordinates)."""

    top: int
    left: int
    height: int
    width: int
    keep: tuple[int, int, int, int]

    @property
    def rows(self) -> slice:
        return slice(self.top, self.top + self.height)

    @property
    def columns(self) -> slice:
        return slice(self.left, self.left + self.width)


def _cuts(length: int, tile: int, margin: int) -> list[tuple[int, int, int]]:
    """Along one axis: (window start, owned start, owned end) of equal windows of side
    ``min(tile, length)`` whose owned parts tile ``[0, length)`` and keep ``margin`` pixels
    of context on each side that has photo."""
    if length <= tile:
        return [(0, 0, length)]
    inner = tile - 2 * margin
    if inner < 1:
        raise ValueError(f"tile {tile} leaves no room inside a margin of {margin}")
    count = math.ceil((length - 2 * margin) / inner)
    bounds = [0] + [margin + round(i * (length - 2 * margin) / count) for i in range(1, count)]
    bounds.append(length)
    cuts = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        window = min(max(start - margin, 0), length - tile)
        cuts.append((window, start, end))
    return cuts


def windows(height: int, width: int, tile: int, margin: int) -> list[Window]:
    """The windows tiling a ``height`` x ``width`` photo, row by row."""
    return [
        Window(top, left, min(tile, height), min(tile, width), (row0, column0, row1, column1))
        for top, row0, row1 in _cuts(height, tile, margin)
        for left, column0, column1 in _cuts(width, tile, margin)
    ]


def _ramp(length: int, owned: tuple[int, int], extent: tuple[int, int], margin: int) -> Array:
    """Feathering weights along one axis of a window: 1 over its owned part away from its
    neighbours, crossing linearly to 0 over ``margin`` pixels centred on each owned edge it
    shares (none at the photo's edges). The outer half of the context, nearest the window's
    edge, gets no weight; neighbours' weights add up to 1."""
    start, stop = extent
    half = max(margin / 2, 0.5)
    position = np.arange(start, stop, dtype=np.float32) + 0.5
    weight = np.ones(length, np.float32)
    if owned[0] > start:
        weight = np.minimum(weight, np.clip((position - owned[0] + half) / (2 * half), 0, 1))
    if owned[1] < stop:
        weight = np.minimum(weight, np.clip((owned[1] + half - position) / (2 * half), 0, 1))
    return weight


@dataclass
class Plan:
    """The core calls for one photo, and how their outputs make its result."""

    calls: list[Call]
    assemble: Any  # Callable[[list[Array]], Array]: one output per call, in order
    whole: bool = False  # the photo goes through the core model in one piece

    def result(self, outputs: Sequence[Array]) -> Array:
        """The edited photo from the calls' outputs (each batch first)."""
        return np.asarray(self.assemble(list(outputs)))


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _repeat(options: Mapping[str, Array], count: int) -> Call:
    """Per-photo option rows (batch 1) repeated for ``count`` windows."""
    return {name: np.repeat(value[:1], count, axis=0) for name, value in options.items()}


def _tiles(image: Array, options: Mapping[str, Array], settings: PlanSettings) -> Plan:
    height, width = image.shape[:2]
    chosen = windows(height, width, settings.tile, settings.margin)
    groups = list(_batches(chosen, settings.max_batch))
    calls = [
        {
            settings.image_input: np.stack([image[w.rows, w.columns] for w in group]),
            **_repeat(options, len(group)),
        }
        for group in groups
    ]
    scale = settings.scale

    def assemble(outputs: list[Array]) -> Array:
        channels = outputs[0].shape[-1]
        shape = (height * scale, width * scale, channels)
        if settings.blend and len(chosen) > 1:
            return _feathered(chosen, groups, outputs, shape, settings)
        result = np.empty(shape, np.uint8)
        for group, output in zip(groups, outputs, strict=True):
            for window, piece in zip(group, output, strict=True):
                row0, column0, row1, column1 = window.keep
                result[row0 * scale : row1 * scale, column0 * scale : column1 * scale] = piece[
                    (row0 - window.top) * scale : (row1 - window.top) * scale,
                    (column0 - window.left) * scale : (column1 - window.left) * scale,
                ]
        return result

    return Plan(calls, assemble, whole=len(chosen) == 1)


def _feathered(
    chosen: list[Window],
    groups: list[Sequence[Window]],
    outputs: list[Array],
    shape: tuple[int, int, int],
    settings: PlanSettings,
) -> Array:
    """Windows blended with linear weights across the margins they share."""
    scale, margin = settings.scale, settings.margin * settings.scale
    total = np.zeros(shape, np.float32)
    weights = np.zeros(shape[:2], np.float32)
    for group, output in zip(groups, outputs, strict=True):
        for window, piece in zip(group, output, strict=True):
            row0, column0, row1, column1 = (value * scale for value in window.keep)
            top, left = window.top * scale, window.left * scale
            rows = (top, top + window.height * scale)
            columns = (left, left + window.width * scale)
            weight = np.outer(
                _ramp(rows[1] - rows[0], (row0, row1), rows, margin),
                _ramp(columns[1] - columns[0], (column0, column1), columns, margin),
            )
            total[rows[0] : rows[1], columns[0] : columns[1]] += piece * weight[:, :, None]
            weights[rows[0] : rows[1], columns[0] : columns[1]] += weight
    return np.round(total / weights[:, :, None]).astype(np.uint8)


def _thumbnail(image: Array, side: int) -> Array:
    """The network's thumbnail of ``image`` (bilinear, half-pixel centres, no antialias, as
    ``torch.nn.functional.interpolate`` makes it), as uint8."""
    height, width = image.shape[:2]

    def taps(length: int) -> tuple[Array, Array, Array]:
        source = np.maximum((np.arange(side) + 0.5) * length / side - 0.5, 0.0)
        low = np.minimum(np.floor(source).astype(np.int64), length - 1)
        return low, np.minimum(low + 1, length - 1), (source - low).astype(np.float64)

    rows0, rows1, row_weight = taps(height)
    columns0, columns1, column_weight = taps(width)
    upper, lower = image[rows0].astype(np.float64), image[rows1].astype(np.float64)
    top = upper * (1 - row_weight)[:, None, None] + lower * row_weight[:, None, None]
    thumb: Array = (
        top[:, columns0] * (1 - column_weight)[None, :, None]
        + top[:, columns1] * column_weight[None, :, None]
    )
    return np.round(thumb).astype(np.uint8)


def _curves(image: Array, options: Mapping[str, Array], settings: PlanSettings) -> Plan:
    """One call on a probe image: every pixel the network's thumbnail samples holds the
    photo's thumbnail, every other pixel a grey level, so the output holds the curves."""
    side, factor = settings.tile, settings.tile // settings.thumbnail
    if factor < 2 or factor % 2 or side != factor * settings.thumbnail:
        raise ValueError(f"the probe side {side} must be an even multiple of the thumbnail's")
    sampled = np.zeros(side, bool)  # the thumbnail reads rows k*i + k/2 - 1 and k*i + k/2
    sampled[factor // 2 - 1 :: factor] = sampled[factor // 2 :: factor] = True
    probe = np.repeat(np.repeat(_thumbnail(image, settings.thumbnail), factor, 0), factor, 1)
    free = ~(sampled[:, None] & sampled[None, :])
    levels = np.arange(free.sum()) % 256
    probe[free] = levels[:, None].astype(np.uint8)
    call = {settings.image_input: probe[None], **_repeat(options, 1)}
    first = np.unique(levels, return_index=True)[1]  # where each grey level first appears
    positions = np.flatnonzero(free.ravel())[first]

    def assemble(outputs: list[Array]) -> Array:
        tables = outputs[0][0].reshape(-1, outputs[0].shape[-1])[positions]  # (256, channels)
        return np.stack([tables[image[:, :, c], c] for c in range(image.shape[2])], axis=2)

    return Plan([call], assemble)


def _hole_boxes(mask: Array, margin: int) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (top, left, bottom, right) of the mask's holes grown by ``margin``,
    merged until none overlap."""
    labels, _ = ndimage.label(mask)
    height, width = mask.shape
    boxes = [
        (
            max(rows.start - margin, 0),
            max(columns.start - margin, 0),
            min(rows.stop + margin, height),
            min(columns.stop + margin, width),
        )
        for rows, columns in ndimage.find_objects(labels)
    ]
    merged: list[tuple[int, int, int, int]] = []
    while boxes:
        box = boxes.pop()
        overlapping = [
            other
            for other in merged
            if box[0] < other[2] and other[0] < box[2] and box[1] < other[3] and other[1] < box[3]
        ]
        if not overlapping:
            merged.append(box)
            continue
        for other in overlapping:
            merged.remove(other)
        group = [box, *overlapping]
        boxes.append(
            (
                min(b[0] for b in group),
                min(b[1] for b in group),
                max(b[2] for b in group),
                max(b[3] for b in group),
            )
        )
    return sorted(merged)


def _fit(start: int, stop: int, low: int, length: int) -> tuple[int, int]:
    """``[start, stop)`` grown to at least ``low`` long, moved inside ``[0, length)``."""
    size = max(stop - start, low)
    start = min(max(start - (size - (stop - start)) // 2, 0), length - size)
    return start, start + size


def _holes(image: Array, options: Mapping[str, Array], settings: PlanSettings) -> Plan:
    """Windows around the holes of the mask option; a hole's box larger than a tile is
    tiled. Calls group windows of the same shape."""
    mask_name = settings.mask_input
    mask = options[mask_name][0, :, :, 0] > 0
    height, width = mask.shape
    chosen: list[tuple[Window, tuple[int, int]]] = []
    for top, left, bottom, right in _hole_boxes(mask, settings.margin):
        rows = _fit(top, bottom, settings.core_min_side, height)
        columns = _fit(left, right, settings.core_min_side, width)
        box_height, box_width = rows[1] - rows[0], columns[1] - columns[0]
        for window in windows(box_height, box_width, settings.tile, settings.margin):
            chosen.append((window, (rows[0], columns[0])))
    shapes: dict[tuple[int, int], list[tuple[Window, tuple[int, int]]]] = {}
    for window, origin in chosen:
        shapes.setdefault((window.height, window.width), []).append((window, origin))
    groups = [group for same in shapes.values() for group in _batches(same, settings.max_batch)]
    others = {name: value for name, value in options.items() if name != mask_name}

    def crop(source: Array, window: Window, origin: tuple[int, int]) -> Array:
        top, left = origin[0] + window.top, origin[1] + window.left
        return source[top : top + window.height, left : left + window.width]

    calls = [
        {
            settings.image_input: np.stack([crop(image, w, o) for w, o in group]),
            mask_name: np.stack([crop(options[mask_name][0], w, o) for w, o in group]),
            **_repeat(others, len(group)),
        }
        for group in groups
    ]

    def assemble(outputs: list[Array]) -> Array:
        result = image.copy()
        for group, output in zip(groups, outputs, strict=True):
            for (window, origin), piece in zip(group, output, strict=True):
                row0, column0, row1, column1 = window.keep
                rows = slice(origin[0] + row0, origin[0] + row1)
                columns = slice(origin[1] + column0, origin[1] + column1)
                owned = piece[
                    row0 - window.top : row1 - window.top,
                    column0 - window.left : column1 - window.left,
                ]
                hole = mask[rows, columns]
                result[rows, columns][hole] = owned[hole]
        return result

    return Plan(calls, assemble)


def guided_upsample(alpha: Array, guide: Array, *, radius: int = 4, eps: float = 1e-4) -> Array:
    """``alpha`` (h, w) float in [0, 1] upsampled to ``guide``'s size (H, W, 3 uint8) by a
    guided filter fitted at ``alpha``'s size (a linear map from the guide's luminance in
    each window of ``radius``) whose coefficients are upsampled bilinearly (He and Sun,
    2015)."""
    height, width = guide.shape[:2]
    low_height, low_width = alpha.shape
    grey = cv2.cvtColor(guide, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (low_width, low_height), interpolation=cv2.INTER_AREA)
    guide_low = small.astype(np.float32) / 255.0
    alpha = alpha.astype(np.float32)

    def box(values: Array) -> Array:
        return cv2.boxFilter(values, -1, (2 * radius + 1, 2 * radius + 1))

    mean_guide, mean_alpha = box(guide_low), box(alpha)
    variance: Array = box(guide_low * guide_low) - mean_guide * mean_guide
    covariance: Array = box(guide_low * alpha) - mean_guide * mean_alpha
    slope = covariance / (variance + eps)
    offset = mean_alpha - slope * mean_guide
    size = (width, height)
    slope = cv2.resize(box(slope), size, interpolation=cv2.INTER_LINEAR)
    offset = cv2.resize(box(offset), size, interpolation=cv2.INTER_LINEAR)
    full = slope * (grey.astype(np.float32) / 255.0)
    full += offset
    return np.clip(full, 0.0, 1.0, out=full)


def bilinear_upsample(alpha: Array, guide: Array) -> Array:
    """``alpha`` (h, w) float in [0, 1] resized bilinearly to ``guide``'s size (H, W, ...),
    the photo's content unused: what :func:`guided_upsample` is compared with."""
    height, width = guide.shape[:2]
    resized = cv2.resize(alpha.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(resized, 0.0, 1.0, out=resized)


def _matte(image: Array, options: Mapping[str, Array], settings: PlanSettings) -> Plan:
    """The alpha at the working side, upsampled by a guided filter (or bilinearly, without
    ``edge_aware``); composited at full size on the background option (r, g, b, opaque;
    opaque 0 keeps the alpha)."""
    height, width = image.shape[:2]
    ratio = settings.tile / max(height, width)
    low = tuple(max(round(side * ratio), settings.core_min_side) for side in (width, height))
    working = cv2.resize(image, low, interpolation=cv2.INTER_AREA)
    background_name = settings.background_input
    transparent = np.zeros((1, 4), np.uint8)  # ask the core model for the alpha
    call = {settings.image_input: working[None], background_name: transparent}
    background = options[background_name][0]
    upsample = guided_upsample if settings.edge_aware else bilinear_upsample

    def assemble(outputs: list[Array]) -> Array:
        alpha = upsample(outputs[0][0, :, :, 3].astype(np.float32) / 255.0, image)
        return _composite(image, alpha, background)

    return Plan([call], assemble)


_BAND = 512  # rows composited at a time: float copies of a band, not of the photo


def _composite(image: Array, alpha: Array, background: Array) -> Array:
    """RGBA of ``image`` over ``background`` (r, g, b, opaque) by ``alpha``, band by band:
    opaque 255 paints the background in (alpha 255), opaque 0 keeps the alpha, as the core
    model's output does."""
    height, width = image.shape[:2]
    result = np.empty((height, width, 4), np.uint8)
    colour = background[:3].astype(np.float32)
    opaque = float(background[3]) / 255.0
    for top in range(0, height, _BAND):
        rows = slice(top, top + _BAND)
        a = alpha[rows, :, None]
        pixels = image[rows].astype(np.float32)
        band = opaque * (pixels * a + colour * (1.0 - a)) + (1.0 - opaque) * pixels
        result[rows, :, :3] = np.round(band).astype(np.uint8)
        result[rows, :, 3] = np.round((opaque + (1.0 - opaque) * alpha[rows]) * 255.0)
    return result


_PLANS = {Tiling.TILES: _tiles, Tiling.CURVES: _curves, Tiling.HOLES: _holes, Tiling.MATTE: _matte}


def plan_image(image: Array, options: Mapping[str, Array], settings: PlanSettings) -> Plan:
    """The core calls for ``image`` (H, W, 3 uint8) with its ``options`` (the core model's
    option tensors for this one image, batch first), and how to assemble their outputs.
    A photo within the core model's sides goes through it whole."""
    height, width = image.shape[:2]
    if max(height, width) <= settings.core_max_side:
        call = {settings.image_input: image[None], **_repeat(options, 1)}
        return Plan([call], lambda outputs: outputs[0][0], whole=True)
    return _PLANS[settings.tiling](image, options, settings)
