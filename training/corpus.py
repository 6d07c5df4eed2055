"""The training corpora, declared once, and a patch sampler that crops them from memory.

Two corpora (a config's ``[data] corpus``):

* ``skimage`` (the default, what every shipped checkpoint saw): the scikit-image photos of
  :mod:`vitrine.training.photos`, cropped by each recipe as before;
* ``photos``: those photos plus high-resolution colour photographs from two Debian packages
  that ``make setup`` installs (``mate-backgrounds``, ``plasma-workspace-wallpapers``),
  named one by one in :data:`PACKAGED_PHOTOS`, split by whole image. Each is decoded once
  and held in memory; :class:`PatchSampler` cuts random crops at random scales from there.

A GPU node has no such packages: ``make gpu-corpus`` packs the very files (their bytes
unchanged) to be carried there, and ``VITRINE_CORPUS_DIR`` names the folder they were
unpacked to (``<dir>/<name><suffix>``), which is then read instead of the packages.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from vitrine.errors import ConfigError, MissingFile
from vitrine.training.degradations import random_crop_flip
from vitrine.training.photos import TRAIN_PHOTOS, VALIDATION_PHOTOS, load_photo
from vitrine.training.recipe import parse_settings

__all__ = [
    "CORPORA",
    "CORPUS_DIR_VARIABLE",
    "PACKAGED_PHOTOS",
    "DataSettings",
    "PackagedPhoto",
    "PatchSampler",
    "corpus_names",
    "data_settings",
    "describe_corpus",
    "load_corpus",
    "photo_file",
    "train_sampler",
]

CORPORA = ("skimage", "photos")
CORPUS_DIR_VARIABLE = "VITRINE_CORPUS_DIR"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class PackagedPhoto:
    """A photograph shipped by a Debian package: a file, or the largest image (by pixel
    count) in a folder of sizes of the same picture."""

    name: str
    package: str
    path: str
    split: str  # "train" or "validation"

    def installed_file(self) -> Path:
        """The file on this machine; MissingFile naming the package when it is absent."""
        path = Path(self.path)
        if path.is_dir():
            images = [p for p in path.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES]
            if images:
                return max(sorted(p.resolve() for p in images), key=_pixel_count)
        elif path.is_file():
            return path
        raise MissingFile(
            f"training photo {self.name!r} ({self.path}) is missing: it ships in the Debian "
            f"package {self.package!r}, which `make setup` installs "
            f"(apt-get install {self.package})"
        )


def _pixel_count(path: Path) -> int:
    with Image.open(path) as image:
        return image.width * image.height


def _mate(name: str, split: str) -> PackagedPhoto:
    path = f"/usr/share/backgrounds/mate/nature/{name}.jpg"
    return PackagedPhoto(name, "mate-backgrounds", path, split)


def _plasma(name: str, split: str) -> PackagedPhoto:
    path = f"/usr/share/wallpapers/{name}/contents/images"
    return PackagedPhoto(name, "plasma-workspace-wallpapers", path, split)


PACKAGED_PHOTOS: tuple[PackagedPhoto, ...] = (
    _mate("Aqua", "train"),  # a drop splashing into water
    _mate("Blinds", "train"),  # leaf veins
    _mate("Dune", "validation"),  # dune grass, sea and sky
    _mate("Garden", "validation"),  # a red flower, blurred background
    _mate("GreenMeadow", "train"),
    _mate("RainDrops", "train"),
    _mate("Storm", "validation"),  # storm clouds over a road
    _mate("TwoWings", "train"),
    _mate("Wood", "train"),
    _mate("YellowFlower", "train"),
    _plasma("BytheWater", "train"),
    _plasma("ColdRipple", "train"),
    _plasma("DarkestHour", "train"),
    _plasma("FallenLeaf", "validation"),  # autumn leaves
    _plasma("Grey", "train"),  # greyscale: woven architecture
    _plasma("Kite", "train"),
    _plasma("OneStandsOut", "train"),
    _plasma("Path", "validation"),  # a forest path
    _plasma("summer_1am", "train"),
)
"""The packaged photographs of the ``photos`` corpus and their fixed split by whole image."""
_BY_NAME = {photo.name: photo for photo in PACKAGED_PHOTOS}


def photo_file(name: str) -> Path:
    """The file of packaged photo ``name``: the carried copy under ``VITRINE_CORPUS_DIR``
    when that is set, else the installed package's."""
    photo = _BY_NAME.get(name)
    if photo is None:
        raise MissingFile(f"no packaged photo {name!r}; known: {sorted(_BY_NAME)}")
    carried = os.environ.get(CORPUS_DIR_VARIABLE)
    if carried:
        found = [p for p in sorted(Path(carried).glob(f"{name}.*")) if p.suffix in _IMAGE_SUFFIXES]
        if not found:
            raise MissingFile(
                f"{CORPUS_DIR_VARIABLE}={carried} has no {name}.* (unpack the corpus bundle "
                "made by `make gpu-corpus` there)"
            )
        return found[0]
    return photo.installed_file()


@cache
def _packaged(name: str) -> npt.NDArray[Any]:
    """Packaged photo ``name`` decoded once, as (H, W, 3) uint8 RGB."""
    with Image.open(photo_file(name)) as image:
        return np.ascontiguousarray(np.asarray(image.convert("RGB")))


@cache
def _sha256(name: str) -> str:
    """The SHA-256 of the file packaged photo ``name`` is read from (installed or carried)."""
    return hashlib.sha256(photo_file(name).read_bytes()).hexdigest()


def corpus_names(corpus: str, split: str) -> tuple[str, ...]:
    """The photos of ``corpus`` in ``split`` ("train" or "validation"), by name."""
    if corpus not in CORPORA:
        raise ConfigError(f"unknown corpus {corpus!r}; known: {CORPORA}")
    skimage = {"train": TRAIN_PHOTOS, "validation": VALIDATION_PHOTOS}.get(split)
    if skimage is None:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'validation'")
    if corpus == "skimage":
        return skimage
    return skimage + tuple(photo.name for photo in PACKAGED_PHOTOS if photo.split == split)


def load_corpus(corpus: str, split: str) -> dict[str, npt.NDArray[Any]]:
    """Every photo of ``corpus`` in ``split``, decoded (once per process), by name."""
    return {
        name: _packaged(name) if name in _BY_NAME else load_photo(name)
        for name in corpus_names(corpus, split)
    }


@dataclass(frozen=True)
class DataSettings:
    """A config's ``[data]`` table: which corpus, and (``photos``) the crops' scale range: a
    crop covers ``patch_size / scale`` photo pixels a side, shrunk to ``patch_size``."""

    corpus: str = "skimage"
    scale: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        if self.corpus not in CORPORA:
            raise ConfigError(f"[data] corpus {self.corpus!r}: expected one of {CORPORA}")
        low, high = self.scale
        if not 0.0 < low <= high <= 1.0:
            raise ConfigError(f"[data] scale {list(self.scale)}: need 0 < low <= high <= 1")


def data_settings(table: Mapping[str, Any]) -> DataSettings:
    """A config's ``[data]`` table as :class:`DataSettings` (unknown keys refused)."""
    return parse_settings(DataSettings, table, "[data]")


class PatchSampler:
    """Random square crops of photos held in memory, at random scales.

    Each crop picks a photo with probability proportional to its pixels, a shrink factor
    uniform in ``scale`` (at least what fits the photo), a window of ``side / factor``
    pixels, shrinks it to ``side`` (area interpolation) and flips and rotates it at random.
    Only the window is resized, so a crop costs the same from a 4-megapixel photo as from
    a small one. Deterministic in the generator it is given.
    """

    def __init__(self, photos: Sequence[npt.NDArray[Any]], scale: tuple[float, float]) -> None:
        if not photos:
            raise ValueError("PatchSampler needs at least one photo")
        self.photos = list(photos)
        self.scale = scale
        pixels = np.array([photo.shape[0] * photo.shape[1] for photo in self.photos], float)
        self.probabilities = pixels / pixels.sum()

    def __call__(self, rng: np.random.Generator, side: int) -> npt.NDArray[Any]:
        """A (side, side, 3) uint8 crop."""
        photo = self.photos[int(rng.choice(len(self.photos), p=self.probabilities))]
        low, high = self.scale
        factor = max(float(rng.uniform(low, high)), side / min(photo.shape[:2]))
        window = min(round(side / factor), *photo.shape[:2])
        crop = random_crop_flip(photo, window, rng)
        if window != side:
            crop = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
        return crop


def train_sampler(settings: DataSettings) -> PatchSampler | None:
    """The sampler of the TRAIN photos of a ``photos`` corpus; None for ``skimage``, whose
    recipes crop as they always have (the shipped weights' batches)."""
    if settings.corpus == "skimage":
        return None
    return PatchSampler(list(load_corpus(settings.corpus, "train").values()), settings.scale)


def describe_corpus(settings: DataSettings) -> dict[str, Any]:
    """The sidecar's account of the corpus: for ``photos`` names, packages and files."""
    if settings.corpus == "skimage":
        return {
            "source": "scikit-image 0.26 shipped photos",
            "train": list(TRAIN_PHOTOS),
            "validation": list(VALIDATION_PHOTOS),
        }
    files = {
        photo.name: {"package": photo.package, "path": photo.path, "sha256": _sha256(photo.name)}
        for photo in PACKAGED_PHOTOS
    }
    return {
        "corpus": settings.corpus,
        "source": "scikit-image 0.26 shipped photos and the Debian packages "
        "mate-backgrounds and plasma-workspace-wallpapers",
        "train": list(corpus_names(settings.corpus, "train")),
        "validation": list(corpus_names(settings.corpus, "validation")),
        "crop_scale": list(settings.scale),
        "packaged_files": files,
        "evaluation": f"the scikit-image validation photos {list(VALIDATION_PHOTOS)}",
    }
