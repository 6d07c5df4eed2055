"""Square evaluation crops of the photo corpus's packaged validation photographs."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from vitrine.training.corpus import PACKAGED_PHOTOS, load_corpus
from vitrine.training.photos import centre_crop

__all__ = ["validation_squares"]


def validation_squares(side: int) -> dict[str, npt.NDArray[Any]]:
    """The photo corpus's packaged validation photographs, each shrunk (area) until its
    short side is ``side`` and cut to the central square: the whole scene, at a size a
    core model takes whole."""
    photos = load_corpus("photos", "validation")
    squares = {}
    for photo in PACKAGED_PHOTOS:
        if photo.split != "validation":
            continue
        image = photos[photo.name]
        factor = side / min(image.shape[:2])
        size = (
            max(side, round(image.shape[1] * factor)),
            max(side, round(image.shape[0] * factor)),
        )
        shrunk = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        squares[photo.name] = np.ascontiguousarray(centre_crop(shrunk, side))
    return squares
