"""Degradation families for judging enhancement outside its training distribution.

Each family draws its parameters from ranges wider than the training mixture's
(:data:`TRAINING_RANGES`, what :meth:`Degradation.random` draws): a linear contrast and
brightness change ``a·x + b``, a gamma, per-channel colour gains, an exposure change in
linear light (under and over), and all of these at once. An evaluation draws a fixed number
of cases per family and photo from a fixed seed, so its figures are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "FAMILIES",
    "FAMILY_RANGES",
    "MIN_GAMMA_STEP",
    "TRAINING_RANGES",
    "Adjustment",
    "draw_cases",
    "draw_training",
]

RGB = tuple[float, float, float]

TRAINING_RANGES: dict[str, tuple[float, float]] = {
    "gamma": (0.45, 2.2),
    "gain": (0.6, 1.4),
    "contrast": (0.45, 1.0),
    "cast": (0.75, 1.25),
    "scale": (0.35, 1.0),
    "under_ev": (-2.25, 0.0),
    "over_ev": (0.0, 1.75),
}
"""The ranges training draws from: :meth:`vitrine.training.enhance.Degradation.random`
(``gamma``, ``gain``, ``contrast``, ``cast``) or :func:`draw_training` (``gamma``, ``cast``,
``scale``, and the exposure stops)."""

FAMILY_RANGES: dict[str, tuple[float, float]] = {
    "scale": (0.3, 0.95),  # a of a·x + b; b is drawn in [0, 1 - a], so nothing clips
    "gamma": (0.4, 2.5),
    "cast": (0.7, 1.3),
    "under_ev": (-2.5, -0.5),  # stops, in linear light
    "over_ev": (0.5, 2.0),
}
"""The evaluation's ranges, each wider than training's counterpart: ``scale`` than
``contrast``, ``gamma`` and ``cast`` than theirs, the exposure stops than ``gain`` (a gain
``g`` on sRGB values is about ``2.2 · log2(g)`` stops: -1.6 to +1.1 in training)."""
MIN_GAMMA_STEP = 1.15  # the gamma family's draws lie outside (1 / 1.15, 1.15)


def _to_linear(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _to_srgb(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055)


@dataclass(frozen=True)
class Adjustment:
    """In order: exposure (``ev`` stops, in linear light), gamma, ``scale · x + offset``,
    per-channel ``gains``; values in [0, 1], clipped after each step."""

    ev: float = 0.0
    gamma: float = 1.0
    scale: float = 1.0
    offset: float = 0.0
    gains: RGB = (1.0, 1.0, 1.0)

    def apply(self, image: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Adjust a uint8 RGB image; the result is uint8, as an uploaded photo is."""
        x = image.astype(np.float64) / 255.0
        if self.ev:
            x = _to_srgb(np.clip(_to_linear(x) * 2.0**self.ev, 0.0, 1.0))
        x = np.clip(x**self.gamma * self.scale + self.offset, 0.0, 1.0)
        x = np.clip(x * np.array(self.gains), 0.0, 1.0)
        return np.asarray(np.round(x * 255.0), dtype=np.uint8)

    def label(self) -> str:
        """The parameters that differ from the identity, e.g. ``a=0.52 b=0.21``."""
        parts = []
        if self.ev:
            parts.append(f"ev={self.ev:+.2f}")
        if self.gamma != 1.0:
            parts.append(f"γ={self.gamma:.2f}")
        if self.scale != 1.0 or self.offset:
            parts.append(f"a={self.scale:.2f} b={self.offset:.2f}")
        if self.gains != (1.0, 1.0, 1.0):
            parts.append("gains=" + ",".join(f"{g:.2f}" for g in self.gains))
        return " ".join(parts) or "identity"


def _uniform(rng: np.random.Generator, key: str) -> float:
    return float(rng.uniform(*FAMILY_RANGES[key]))


def _linear(rng: np.random.Generator) -> Adjustment:
    scale = _uniform(rng, "scale")
    return Adjustment(scale=scale, offset=float(rng.uniform(0.0, 1.0 - scale)))


def _gamma(rng: np.random.Generator) -> Adjustment:
    """Darker or lighter with equal odds, at least :data:`MIN_GAMMA_STEP` from the identity
    (the range is symmetric in log: 0.4 = 1 / 2.5)."""
    low, high = np.log(MIN_GAMMA_STEP), np.log(FAMILY_RANGES["gamma"][1])
    sign = 1.0 if rng.random() < 0.5 else -1.0
    return Adjustment(gamma=float(np.exp(sign * rng.uniform(low, high))))


def _cast(rng: np.random.Generator) -> Adjustment:
    red, green, blue = (float(g) for g in rng.uniform(*FAMILY_RANGES["cast"], 3))
    return Adjustment(gains=(red, green, blue))


def _under(rng: np.random.Generator) -> Adjustment:
    return Adjustment(ev=_uniform(rng, "under_ev"))


def _over(rng: np.random.Generator) -> Adjustment:
    return Adjustment(ev=_uniform(rng, "over_ev"))


def _combined(rng: np.random.Generator) -> Adjustment:
    exposure = _under(rng) if rng.random() < 0.5 else _over(rng)
    linear, gamma, cast = _linear(rng), _gamma(rng), _cast(rng)
    return Adjustment(exposure.ev, gamma.gamma, linear.scale, linear.offset, cast.gains)


FAMILIES: dict[str, Callable[[np.random.Generator], Adjustment]] = {
    "linear": _linear,
    "gamma": _gamma,
    "colour_cast": _cast,
    "under_exposure": _under,
    "over_exposure": _over,
    "combined": _combined,
}
"""Each family's random draw (see :data:`FAMILY_RANGES`)."""


def draw_cases(
    family: str, photos: list[str], per_photo: int, seed: int
) -> list[tuple[str, Adjustment]]:
    """``per_photo`` adjustments of ``family`` for each photo name, deterministic in ``seed``."""
    draw = FAMILIES[family]
    rng = np.random.default_rng([seed, list(FAMILIES).index(family)])
    return [(name, draw(rng)) for name in photos for _ in range(per_photo)]


TRAINING_SHARES: dict[str, float] = {
    "identity": 0.15,  # the photo left as it is, so a photo needing nothing stays put
    "exposure": 0.6,
    "gamma": 0.6,
    "linear": 0.6,
    "cast": 0.6,
}
"""How often :func:`draw_training` leaves a photo alone, and else includes each part."""


def draw_training(rng: np.random.Generator) -> Adjustment:
    """A training adjustment: the identity with probability ``TRAINING_SHARES["identity"]``,
    else each part of an :class:`Adjustment` with its share, drawn from
    :data:`TRAINING_RANGES` (the exposure under or over with equal odds, the gamma
    log-uniform)."""
    shares, ranges = TRAINING_SHARES, TRAINING_RANGES
    if rng.random() < shares["identity"]:
        return Adjustment()
    ev, gamma, scale, offset, gains = 0.0, 1.0, 1.0, 0.0, (1.0, 1.0, 1.0)
    if rng.random() < shares["exposure"]:
        ev = float(rng.uniform(*ranges["under_ev" if rng.random() < 0.5 else "over_ev"]))
    if rng.random() < shares["gamma"]:
        gamma = float(np.exp(rng.uniform(*np.log(ranges["gamma"]))))
    if rng.random() < shares["linear"]:
        scale = float(rng.uniform(*ranges["scale"]))
        offset = float(rng.uniform(0.0, 1.0 - scale))
    if rng.random() < shares["cast"]:
        red, green, blue = (float(g) for g in rng.uniform(*ranges["cast"], 3))
        gains = (red, green, blue)
    return Adjustment(ev, gamma, scale, offset, gains)
