"""The generators' sample step: request checks and latents, deterministic in the seed.

Torch-free: the pipeline's sample step, the client, evaluation and tests call the same
functions, so a seed names the same images everywhere and a bad request gets the same
message from the client and the server. Image ``i`` of a request is row ``i`` of one draw,
so the first images of ``count=4`` equal those of ``count=1`` for the same seed.
"""

from __future__ import annotations

import itertools
import math
import numbers
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from vitrine.spec import Conditioning

__all__ = [
    "MAX_SEED",
    "InvalidGeneration",
    "Labels",
    "check_count",
    "check_labels",
    "check_mix_seed",
    "check_seed",
    "check_truncation",
    "conditioning_from_parameters",
    "conditioning_parameters",
    "example_labels",
    "sample",
    "sample_latents",
    "unseen_seeds",
]

MAX_SEED: Final = 2**32 - 1
"""Seeds are integers in ``[0, MAX_SEED]``."""


class InvalidGeneration(ValueError):
    """A generation request the sample step refuses; the message says what was wrong."""


@dataclass(frozen=True)
class Labels:
    """A request's category and colour as the core model's label indices."""

    category: int
    colour: int


def _choose(kind: str, value: object, names: tuple[str, ...]) -> int:
    if value not in names:
        raise InvalidGeneration(f"{kind} must be one of {', '.join(names)}; got {value!r}")
    return names.index(str(value))


def check_labels(conditioning: Conditioning, category: object, colour: object) -> Labels:
    """Category and colour names -> label indices."""
    return Labels(
        category=_choose("category", category, conditioning.categories),
        colour=_choose("color", colour, conditioning.colours),
    )


def _integer(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def check_seed(seed: object, name: str = "seed") -> int:
    """A seed in ``[0, MAX_SEED]``; ``name`` is what the message calls it."""
    number = _integer(seed)
    if number is None or not 0 <= number <= MAX_SEED:
        raise InvalidGeneration(f"{name} must be an integer in [0, {MAX_SEED}]; got {seed!r}")
    return number


def check_count(conditioning: Conditioning, count: object) -> int:
    """How many images, in ``[1, max_count]``."""
    number = _integer(count)
    if number is None or not 1 <= number <= conditioning.max_count:
        raise InvalidGeneration(
            f"count must be an integer in [1, {conditioning.max_count}]; got {count!r}"
        )
    return number


def check_mix_seed(conditioning: Conditioning, mix_seed: object, seed: int) -> int | None:
    """The fine styles' seed of a style-mixing generator (``seed`` when omitted); None for
    any other generator, which must not be given one."""
    if not conditioning.style_mixing:
        if mix_seed is not None:
            raise InvalidGeneration("this generator does not mix styles: omit mix_seed")
        return None
    return seed if mix_seed is None else check_seed(mix_seed, "mix_seed")


def check_truncation(truncation: object) -> float:
    """A truncation ψ in (0, 1]."""
    number = math.nan
    if isinstance(truncation, (numbers.Real, np.floating)) and not isinstance(truncation, bool):
        number = float(truncation)
    if not 0.0 < number <= 1.0:  # NaN fails too
        raise InvalidGeneration(f"truncation must be a number in (0, 1]; got {truncation!r}")
    return number


def sample_latents(seed: int, count: int, dim: int, truncation: float = 1.0) -> npt.NDArray[Any]:
    """(count, dim) float32 standard-normal latents from ``seed``, scaled by ``truncation``.

    Truncation ψ in (0, 1] pulls every latent towards the prior's mean (0), trading
    variety for typical-looking images; 1 is the untruncated prior.
    """
    latents = np.random.default_rng(seed).standard_normal((count, dim), dtype=np.float32)
    return latents * np.float32(truncation)


def sample(
    conditioning: Conditioning,
    *,
    seed: object,
    count: object,
    category: object,
    colour: object,
    truncation: object = 1.0,
    mix_seed: object = None,
) -> tuple[npt.NDArray[Any], ...]:
    """A checked request as the core's inputs, in order: latents (count, Z), category and
    colour (count, 1); for a style-mixing generator then the fine styles' latents (from
    ``mix_seed``, by default ``seed``) and truncation (count, 1), unapplied."""
    labels = check_labels(conditioning, category, colour)
    rows = check_count(conditioning, count)
    first, psi = check_seed(seed), check_truncation(truncation)
    second = check_mix_seed(conditioning, mix_seed, first)
    column = np.ones((rows, 1), dtype=np.int32)
    label_columns = (column * labels.category, column * labels.colour)
    dim = conditioning.latent_dim
    if second is None:
        return sample_latents(first, rows, dim, psi), *label_columns
    fine = sample_latents(second, rows, dim)
    return (
        sample_latents(first, rows, dim),
        *label_columns,
        fine,
        np.full((rows, 1), psi, np.float32),
    )


def unseen_seeds() -> Iterator[int]:
    """Seeds counting up from a random start: a request made with each differs from every
    earlier one, so a generator pipeline's response cache cannot answer it (probes and load
    tests must reach the model)."""
    return itertools.count(random.randrange(MAX_SEED // 2))


def example_labels(conditioning: Conditioning) -> dict[str, str]:
    """Valid ``category`` and ``color`` keywords of a ``generate`` call (the first of each):
    what probes, the Helm test and the benchmark ask for."""
    return {"category": conditioning.categories[0], "color": conditioning.colours[0]}


def conditioning_parameters(conditioning: Conditioning) -> dict[str, object]:
    """The sample step's config parameters (read back by :func:`conditioning_from_parameters`)."""
    return {
        "categories": ",".join(conditioning.categories),
        "colours": ",".join(conditioning.colours),
        "latent_dim": conditioning.latent_dim,
        "side": conditioning.side,
        "max_count": conditioning.max_count,
        "style_mixing": int(conditioning.style_mixing),
    }


def conditioning_from_parameters(params: Mapping[str, str]) -> Conditioning:
    """The :class:`Conditioning` a sample step's config parameters describe."""
    missing = {"categories", "colours", "latent_dim", "side", "max_count", "style_mixing"}
    missing -= set(params)
    if missing:
        raise ValueError(f"sample step config lacks parameters {sorted(missing)}")
    return Conditioning(
        categories=tuple(params["categories"].split(",")),
        colours=tuple(params["colours"].split(",")),
        latent_dim=int(params["latent_dim"]),
        side=int(params["side"]),
        max_count=int(params["max_count"]),
        style_mixing=bool(int(params["style_mixing"])),
    )
