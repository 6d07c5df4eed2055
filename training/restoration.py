"""The recipe shape shared by same-size restorers trained on degraded photo crops.

A batch is (degraded, clean) float crops of the TRAIN photos of the config's corpus
(``[data]``, see ``corpus.py``), deterministic in (seed, step); the loss is L1 to the clean
crop. A task says how a crop is degraded, how that is described in the checkpoint sidecar,
its evaluation cases and its evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from vitrine.spec import ModelSpec
from vitrine.training.config import TrainConfig
from vitrine.training.corpus import data_settings, describe_corpus, train_sampler
from vitrine.training.degradations import random_crop_flip
from vitrine.training.photos import load_split
from vitrine.training.recipe import SingleNetworkRecipe
from vitrine.training.uint8_wrapper import to_float_batch

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["RestorationRecipe"]

S = TypeVar("S", bound="DataclassInstance")


class RestorationRecipe(SingleNetworkRecipe[S]):
    """Batches of (degraded, clean) float crops; L1 loss. Subclasses define the degradation."""

    degradation: str  # how crops are degraded, in words (sidecar)
    eval_cases: Mapping[str, object]  # the evaluation's fixed degradations (dataclasses)

    def __init__(self, spec: ModelSpec, config: TrainConfig) -> None:
        super().__init__(spec, config)
        self.data = data_settings(config.data)
        self.sampler = train_sampler(self.data)
        if self.sampler is None:
            self.photos = list(load_split("train").values())

    def clean_crop(self, rng: np.random.Generator) -> npt.NDArray[Any]:
        """A clean uint8 training crop: from the sampler (``photos`` corpus), else of a photo
        drawn uniformly and cropped by :meth:`crop`."""
        if self.sampler is not None:
            return self.sampler(rng, self.config.patch_size)
        return self.crop(self.photos[int(rng.integers(len(self.photos)))], rng)

    def crop(self, photo: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        """A clean uint8 training crop of ``photo`` (random position, flip and rotation)."""
        return random_crop_flip(photo, self.config.patch_size, rng)

    def degrade(self, crop: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        """The uint8 upload made from a clean uint8 crop."""
        raise NotImplementedError

    def data_description(self) -> dict[str, Any]:
        """What the model was trained and validated on, for the checkpoint sidecar."""
        return describe_corpus(self.data) | {
            "degradation": self.degradation,
            "evaluation_cases": {name: vars(case) for name, case in self.eval_cases.items()},
        }

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of ``step``: deterministic in (seed, step)."""
        rng = np.random.default_rng([self.config.seed, step])
        degraded, clean = [], []
        for _ in range(self.config.batch_size):
            crop = self.clean_crop(rng)
            degraded.append(self.degrade(crop, rng))
            clean.append(crop)
        return to_float_batch(np.stack(degraded)), to_float_batch(np.stack(clean))

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """L1 between the restored and the clean crops."""
        degraded, clean = batch
        loss: torch.Tensor = (model(degraded).float() - clean).abs().mean()
        return loss
