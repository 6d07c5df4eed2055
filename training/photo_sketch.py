"""Photo <-> sketch CycleGAN: unpaired data, the training loop and the evaluation.

Data (nothing downloaded, nothing paired): the training photos are split in two disjoint
sets by name. Crops of the colour photos are the photo domain; the others, through the
procedural pencil-sketch pipeline (:func:`pencil_sketch`: luminance, colour-dodged with
its blurred negative), is the sketch domain. No photo is ever seen next to its sketch.

One step updates both generators (least-squares GAN loss, cycle L1, identity L1), then
both PatchGAN critics on real images and on fakes drawn from a 50-image history buffer per
domain (Shrivastava et al., 2017). Evaluation uses the validation photos, which training
never saw: photo -> sketch against each photo's procedural sketch (PSNR), next to two naive
line drawings (the grey photo, inverted Sobel edges), and the cycle reconstructions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.ndimage import gaussian_filter
from torch import nn

from vitrine.spec import ModelSpec, Task
from vitrine.training.architectures import build_architecture
from vitrine.training.architectures.cyclegan import CycleTranslator, PatchCritic
from vitrine.training.config import TrainConfig
from vitrine.training.degradations import random_crop_flip
from vitrine.training.grids import labelled_row, stack_rows
from vitrine.training.history import Panel
from vitrine.training.hooks import DemoCase, TaskHooks
from vitrine.training.metrics import luminance, luminance_edges, psnr
from vitrine.training.photos import (
    COLOUR_TRAIN_PHOTOS,
    TRAIN_PHOTOS,
    VALIDATION_PHOTOS,
    centre_crop,
    load_split,
)
from vitrine.training.recipe import Autocast, Optimized, Recipe
from vitrine.training.uint8_wrapper import run_uint8, to_float, to_float_batch

__all__ = [
    "HOOKS",
    "CycleGanRecipe",
    "CycleGanSettings",
    "comparison_image",
    "demo_case",
    "evaluate_translation",
    "forward",
    "pencil_sketch",
    "sobel_sketch",
]

PHOTO, SKETCH = 0, 1  # the ``direction`` index that makes each domain: to sketch, to photo
_PHOTO_NAMES = COLOUR_TRAIN_PHOTOS  # sketch -> photo learns to paint
_SKETCH_NAMES = tuple(name for name in TRAIN_PHOTOS if name not in _PHOTO_NAMES)
_EVAL_SIDE = 256
_PANEL = 160
_BUFFER = 50


def pencil_sketch(photo: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A pencil sketch of a uint8 RGB image: dark lines on white, as uint8 RGB."""
    grey = luminance(photo)
    blurred_negative = gaussian_filter(255.0 - grey, sigma=4.0)
    dodge = np.clip(grey * 255.0 / np.maximum(255.0 - blurred_negative, 1.0), 0, 255)
    return np.repeat(np.round(dodge).astype(np.uint8)[:, :, None], 3, axis=2)


class _History:
    """Up to ``_BUFFER`` past fakes; each new fake is shown or swapped for an old one."""

    def __init__(self) -> None:
        self.images: list[torch.Tensor] = []

    def state(self) -> torch.Tensor:
        """The kept fakes as one (K, C, H, W) tensor (K may be 0)."""
        return torch.stack(self.images) if self.images else torch.zeros(0)

    def load(self, images: torch.Tensor, device: torch.device) -> None:
        """Restore what :meth:`state` returned."""
        self.images = [image.to(device) for image in images] if images.numel() else []

    def __call__(self, fakes: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        shown = []
        for fake in fakes.detach():
            if len(self.images) < _BUFFER:
                self.images.append(fake)
                shown.append(fake)
            elif rng.random() < 0.5:
                index = int(rng.integers(_BUFFER))
                shown.append(self.images[index])
                self.images[index] = fake
            else:
                shown.append(fake)
        return torch.stack(shown)


class _Data:
    """Unpaired batches, deterministic in (seed, step): photo crops and sketch crops."""

    def __init__(self, config: TrainConfig) -> None:
        photos = load_split("train")
        self.config = config
        self.photos = [photos[name] for name in _PHOTO_NAMES]
        self.sketches = [pencil_sketch(photos[name]) for name in _SKETCH_NAMES]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, np.random.Generator]:
        rng = np.random.default_rng([self.config.seed, step])
        size, count = self.config.patch_size, self.config.batch_size
        crops = [
            [random_crop_flip(pool[int(rng.integers(len(pool)))], size, rng) for _ in range(count)]
            for pool in (self.photos, self.sketches)
        ]
        return to_float_batch(np.stack(crops[0])), to_float_batch(np.stack(crops[1])), rng

    @staticmethod
    def data_description() -> dict[str, Any]:
        return {
            "source": "scikit-image 0.26 shipped photos, split by name, never paired",
            "photo_domain": list(_PHOTO_NAMES),
            "sketch_domain": list(_SKETCH_NAMES),
            "sketches": "pencil_sketch: luminance colour-dodged with its blurred negative",
            "validation": list(VALIDATION_PHOTOS),
        }


def _lsgan(scores: torch.Tensor, real: bool) -> torch.Tensor:
    return (scores - (1.0 if real else 0.0)).square().mean()


@dataclass(frozen=True)
class CycleGanSettings:
    """The ``[recipe]`` table of the CycleGAN config: the loss weights."""

    cycle_weight: float
    identity_weight: float


class CycleGanRecipe(Recipe[CycleGanSettings]):
    """The photo <-> sketch CycleGAN: two generators (one translator module) and two critics.

    Both networks' rates hold at ``learning_rate`` for the first half, then fall linearly to
    0 (Adam betas 0.5, 0.999). The fake histories are saved with the run, so a paused run
    resumes exactly.
    """

    settings_type = CycleGanSettings
    losses = ("generators", "critics")
    panels = (Panel(losses, "LSGAN loss"),)
    translator: CycleTranslator
    critics: nn.ModuleDict

    def __init__(self, spec: ModelSpec, config: TrainConfig) -> None:
        super().__init__(spec, config)
        self.data = _Data(config)
        self.histories = (_History(), _History())

    def build(self) -> None:
        translator = build_architecture(self.spec.architecture, self.spec.arch_kwargs)
        assert isinstance(translator, CycleTranslator)
        self.translator = translator
        self.critics = nn.ModuleDict({"photo": PatchCritic(), "sketch": PatchCritic()})

    def networks(self) -> dict[str, nn.Module]:
        return {"translator": self.translator, "critics": self.critics}

    def optimized(self) -> dict[str, Optimized]:
        def rate(step: int) -> float:  # constant, then linear to 0 over the second half
            steps = self.config.steps
            return self.config.learning_rate * min(1.0, 2.0 * (steps - step) / steps)

        betas = (0.5, 0.999)
        return {
            "translator": Optimized(self.translator, rate, betas),
            "critics": Optimized(self.critics, rate, betas),
        }

    @property
    def served(self) -> nn.Module:
        return self.translator

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, np.random.Generator]:
        return self.data.batch(step)

    def data_description(self) -> dict[str, Any]:
        return self.data.data_description()

    def train_step(
        self,
        batch: tuple[torch.Tensor, torch.Tensor, np.random.Generator],
        step: int,
        optimizers: Mapping[str, torch.optim.Optimizer],
        autocast: Autocast,
    ) -> dict[str, float]:
        """One generator update, then one critic update."""
        photos, sketches, rng = batch
        translator, critics = self.translator, self.critics
        with autocast():
            fake_sketches, fake_photos = translator.to_sketch(photos), translator.to_photo(sketches)
            critics.requires_grad_(False)
            adversarial = _lsgan(critics["sketch"](fake_sketches), True)
            adversarial = adversarial + _lsgan(critics["photo"](fake_photos), True)
            cycle = F.l1_loss(translator.to_photo(fake_sketches), photos)
            cycle = cycle + F.l1_loss(translator.to_sketch(fake_photos), sketches)
            identity = F.l1_loss(translator.to_sketch(sketches), sketches)
            identity = identity + F.l1_loss(translator.to_photo(photos), photos)
            g_loss = (
                adversarial
                + self.settings.cycle_weight * cycle
                + self.settings.identity_weight * identity
            )
        optimizers["translator"].zero_grad(set_to_none=True)
        g_loss.backward()
        optimizers["translator"].step()
        critics.requires_grad_(True)
        with autocast():
            d_loss = torch.zeros((), device=photos.device)
            for name, real, fake, history in (
                ("sketch", sketches, fake_sketches, self.histories[0]),
                ("photo", photos, fake_photos, self.histories[1]),
            ):
                shown = history(fake, rng)
                d_loss = d_loss + 0.5 * (
                    _lsgan(critics[name](real), True) + _lsgan(critics[name](shown), False)
                )
        optimizers["critics"].zero_grad(set_to_none=True)
        d_loss.backward()
        optimizers["critics"].step()
        return {"generators": float(g_loss.item()), "critics": float(d_loss.item())}

    def observe(self, model: nn.Module, run_dir: Path, done: int) -> str | None:
        """Nothing during training: the evaluation runs once, at the end."""
        return None

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {f"history.{i}": history.state() for i, history in enumerate(self.histories)}

    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        device = next(self.translator.parameters()).device
        for i, history in enumerate(self.histories):
            history.load(tensors[f"history.{i}"], device)


def forward(model: nn.Module, image: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """``model(x, direction) -> y`` with ``direction`` (N,) int64, served as int32 (N, 1)."""
    output: torch.Tensor = model(to_float(image), direction[:, 0].long())
    return output


def translate(model: nn.Module, image: npt.NDArray[Any], direction: int) -> npt.NDArray[Any]:
    """``image`` translated through the served uint8 wrapper."""
    return run_uint8(model, image, np.array([direction], np.int32), task=Task.TRANSLATE)


def _grey(photo: npt.NDArray[Any]) -> npt.NDArray[Any]:
    grey = np.round(luminance(photo))
    return np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)


def sobel_sketch(photo: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A naive line drawing: the luminance's Sobel edges, inverted (dark lines on white)."""
    edges = luminance_edges(photo)
    line = np.clip(255.0 * (1.0 - edges / max(float(edges.max()), 1e-6)), 0, 255)
    return np.repeat(np.round(line).astype(np.uint8)[:, :, None], 3, axis=2)


@torch.no_grad()
def evaluate_translation(model: nn.Module) -> dict[str, Any]:
    """PSNR of photo -> sketch against the procedural sketch (with two naive line drawings)
    and of both cycles, on the validation photos."""
    rows: dict[str, list[float]] = {}
    for photo in (centre_crop(p, _EVAL_SIDE) for p in load_split("validation").values()):
        sketch = pencil_sketch(photo)
        drawn = translate(model, photo, PHOTO)
        scores = {
            "model_sketch_psnr_db": psnr(sketch, drawn),
            "grey_photo_sketch_psnr_db": psnr(sketch, _grey(photo)),
            "sobel_edges_sketch_psnr_db": psnr(sketch, sobel_sketch(photo)),
            "photo_cycle_psnr_db": psnr(photo, translate(model, drawn, SKETCH)),
            "sketch_cycle_psnr_db": psnr(
                sketch, translate(model, translate(model, sketch, SKETCH), PHOTO)
            ),
        }
        for key, value in scores.items():
            rows.setdefault(key, []).append(value)
    mean = {key: float(np.mean(values)) for key, values in rows.items()}
    table = {
        "vitrine photo_to_sketch": {"sketch_psnr_db": mean["model_sketch_psnr_db"]},
        "grey photo": {"sketch_psnr_db": mean["grey_photo_sketch_psnr_db"]},
        "inverted sobel edges": {"sketch_psnr_db": mean["sobel_edges_sketch_psnr_db"]},
    }
    best_naive = max(mean["grey_photo_sketch_psnr_db"], mean["sobel_edges_sketch_psnr_db"])
    margins = {
        "sketch_psnr_over_best_naive_db": mean["model_sketch_psnr_db"] - best_naive,
        "photo_cycle_psnr_db": mean["photo_cycle_psnr_db"],
        "sketch_cycle_psnr_db": mean["sketch_cycle_psnr_db"],
    }
    return {"mean": table, "cycles": mean, "margins": margins}


def comparison_image(model: nn.Module) -> Image.Image:
    """Per validation photo: the photo, its procedural sketch, the model's sketch, the photo
    rebuilt from it (cycle), and the model's photo of the procedural sketch."""
    rows = []
    for name, photo in load_split("validation").items():
        crop = centre_crop(photo, _EVAL_SIDE)
        drawn = translate(model, crop, PHOTO)
        panels = {
            name: crop,
            "pencil sketch (procedural)": pencil_sketch(crop),
            "photo -> sketch": drawn,
            "-> photo (cycle)": translate(model, drawn, SKETCH),
            "procedural -> photo": translate(model, pencil_sketch(crop), SKETCH),
        }
        resized = {k: Image.fromarray(v).resize((_PANEL, _PANEL)) for k, v in panels.items()}
        rows.append(labelled_row(resized))
    return stack_rows(rows)


def demo_case(spec: ModelSpec, name: str, photo: npt.NDArray[Any]) -> DemoCase:
    """The photo (cropped to the limits) to a pencil sketch; the reference is its procedural
    sketch (which training never paired with it) and the rival its inverted Sobel edges."""
    clean = photo[: spec.core_limits.max_side, : spec.core_limits.max_side]
    sketch = pencil_sketch(clean)
    edges = sobel_sketch(clean)
    return DemoCase(clean, sketch, "sobel edges", edges, {"direction": "photo_to_sketch"})


HOOKS = TaskHooks(
    forward=forward,
    evaluate=lambda spec, model: evaluate_translation(model),
    comparison=lambda spec, model: comparison_image(model),
    recipe=lambda spec: CycleGanRecipe,
    demo=demo_case,
)
