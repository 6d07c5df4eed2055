"""Arrays built once and cached as ``.npz`` under the Vitrine cache folder."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vitrine.paths import cache_dir

__all__ = ["cached_arrays"]


def cached_arrays(
    name: str, build: Callable[[], dict[str, npt.NDArray[Any]]]
) -> dict[str, npt.NDArray[Any]]:
    """The arrays cached as ``name`` (``.npz``), built by ``build`` and cached if missing.

    The file is written under a unique temporary name and then renamed into place, so
    processes building it at the same time neither read half a file nor collide.
    """
    path = cache_dir() / f"{name}.npz"
    if path.is_file():
        with np.load(path) as archive:
            return {key: archive[key] for key in archive.files}
    arrays = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as partial:
        np.savez(partial, **arrays)
    Path(partial.name).replace(path)
    return arrays
