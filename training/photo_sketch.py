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

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from scipy.ndimage import gaussian_filter
from torch import nn

from vitrine.spec import ModelSpec, Task
from vitrine.training.architectures import build_architecture
from vitrine.training.architectures.cyclegan import CycleTranslator, PatchCritic
from vitrine.training.checkpoint import (
    load_optimizer,
    resume_checkpoint,
    save_checkpoint,
    save_optimizer,
)
from vitrine.training.config import TrainConfig
from vitrine.training.degradations import random_crop_flip
from vitrine.training.grids import labelled_row, stack_rows
from vitrine.training.history import Panel, plot_history, step_log
from vitrine.training.metrics import luminance, luminance_edges, psnr
from vitrine.training.photos import (
    COLOUR_TRAIN_PHOTOS,
    TRAIN_PHOTOS,
    VALIDATION_PHOTOS,
    centre_crop,
    load_split,
)
from vitrine.training.uint8_wrapper import run_uint8, to_float_batch

__all__ = [
    "comparison_image",
    "evaluate_translation",
    "pencil_sketch",
    "sobel_sketch",
    "train_cyclegan",
]

PHOTO, SKETCH = 0, 1  # the ``direction`` index that makes each domain: to sketch, to photo
_PHOTO_NAMES = COLOUR_TRAIN_PHOTOS  # sketch -> photo learns to paint
_SKETCH_NAMES = tuple(name for name in TRAIN_PHOTOS if name not in _PHOTO_NAMES)
_EVAL_SIDE = 256
_PANEL = 160
_BUFFER = 50
_LOSSES = Panel(("generators", "critics"), "LSGAN loss")


def pencil_sketch(photo: np.ndarray) -> np.ndarray:
    """A pencil sketch of a uint8 RGB image: dark lines on white, as uint8 RGB."""
    grey = luminance(photo)
    blurred_negative = gaussian_filter(255.0 - grey, sigma=4.0)
    dodge = np.clip(grey * 255.0 / np.maximum(255.0 - blurred_negative, 1.0), 0, 255)
    return np.repeat(np.round(dodge).astype(np.uint8)[:, :, None], 3, axis=2)


class _History:
    """Up to ``_BUFFER`` past fakes; each new fake is shown or swapped for an old one."""

    def __init__(self) -> None:
        self.images: list[torch.Tensor] = []

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


def _step(
    translator: CycleTranslator,
    critics: nn.ModuleDict,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    batch: tuple[torch.Tensor, torch.Tensor, np.random.Generator],
    histories: tuple[_History, _History],
    weights: tuple[float, float],
) -> tuple[float, float]:
    """One generator update, then one critic update; returns both losses."""
    photos, sketches, rng = batch
    cycle_weight, identity_weight = weights
    g_optimizer, d_optimizer = optimizers
    fake_sketches, fake_photos = translator.to_sketch(photos), translator.to_photo(sketches)
    critics.requires_grad_(False)
    adversarial = _lsgan(critics["sketch"](fake_sketches), True)
    adversarial = adversarial + _lsgan(critics["photo"](fake_photos), True)
    cycle = F.l1_loss(translator.to_photo(fake_sketches), photos)
    cycle = cycle + F.l1_loss(translator.to_sketch(fake_photos), sketches)
    identity = F.l1_loss(translator.to_sketch(sketches), sketches)
    identity = identity + F.l1_loss(translator.to_photo(photos), photos)
    g_loss = adversarial + cycle_weight * cycle + identity_weight * identity
    g_optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    g_optimizer.step()
    critics.requires_grad_(True)
    d_loss = torch.zeros(())
    for name, real, fake, history in (
        ("sketch", sketches, fake_sketches, histories[0]),
        ("photo", photos, fake_photos, histories[1]),
    ):
        shown = history(fake, rng)
        d_loss = d_loss + 0.5 * (
            _lsgan(critics[name](real), True) + _lsgan(critics[name](shown), False)
        )
    d_optimizer.zero_grad(set_to_none=True)
    d_loss.backward()
    d_optimizer.step()
    return float(g_loss.item()), float(d_loss.item())


def _meta(spec: ModelSpec, config: TrainConfig, step: int) -> dict[str, Any]:
    from vitrine.training.trainer import _meta as trainer_meta  # trainer imports this module

    return trainer_meta(spec, config, _Data, step)  # type: ignore[arg-type]


def train_cyclegan(
    spec: ModelSpec,
    config: TrainConfig,
    *,
    run_dir: Path,
    out_dir: Path,
    resume: bool,
    progress: bool,
    stop_after: int | None,
) -> Any:
    """Train ``spec``'s translator with ``config`` (see ``vitrine.training.trainer.train``).

    ``run_dir`` keeps ``last.safetensors`` (the translator, with its sidecar), the critics
    and both optimizers; a resumed run starts with empty fake histories.
    """
    from vitrine.training.trainer import TrainResult  # trainer imports this module

    started = time.perf_counter()
    recipe = config.recipe
    torch.manual_seed(config.seed)
    translator = build_architecture(spec.architecture, spec.arch_kwargs).train()
    assert isinstance(translator, CycleTranslator)
    critics = nn.ModuleDict({"photo": PatchCritic(), "sketch": PatchCritic()})
    betas = (0.5, 0.999)
    optimizers = (
        torch.optim.Adam(translator.parameters(), config.learning_rate, betas=betas),
        torch.optim.Adam(critics.parameters(), config.learning_rate, betas=betas),
    )
    data = _Data(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    start = _resume(run_dir, translator, critics, optimizers, config) if resume else 0
    histories = (_History(), _History())
    weights = (recipe["cycle_weight"], recipe["identity_weight"])
    end = config.end_step(stop_after)
    with step_log(
        run_dir,
        spec.name,
        columns=_LOSSES.columns,
        start=start,
        total=config.steps,
        progress=progress,
    ) as log:
        for step in range(start, end):
            rate = config.learning_rate * min(1.0, 2.0 * (config.steps - step) / config.steps)
            for optimizer in optimizers:
                for group in optimizer.param_groups:
                    group["lr"] = rate  # constant, then linear to 0 over the second half
            g_loss, d_loss = _step(
                translator, critics, optimizers, data.batch(step), histories, weights
            )
            done = step + 1
            log.record(done, {"generators": g_loss, "critics": d_loss})
            if done % config.checkpoint_every == 0 or done == end:
                log.flush()
                _save(run_dir, translator, critics, optimizers, _meta(spec, config, done))
    plot_history(run_dir, spec.name, [_LOSSES])
    if end < config.steps:
        return None
    translator.eval()
    metrics = evaluate_translation(translator)
    weights_path = out_dir / f"{spec.name}.safetensors"
    save_checkpoint(
        weights_path, translator, _meta(spec, config, config.steps) | {"metrics": metrics}
    )
    return TrainResult(weights=weights_path, metrics=metrics, seconds=time.perf_counter() - started)


def _save(
    run_dir: Path,
    translator: nn.Module,
    critics: nn.Module,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    meta: dict[str, Any],
) -> None:
    state = {key: value.contiguous() for key, value in critics.state_dict().items()}
    save_file(state, str(run_dir / "last.critics.safetensors"))
    save_optimizer(run_dir / "last.translator.optim.safetensors", optimizers[0])
    save_optimizer(run_dir / "last.critics.optim.safetensors", optimizers[1])
    save_checkpoint(run_dir / "last.safetensors", translator, meta)  # last: holds the step


def _resume(
    run_dir: Path,
    translator: nn.Module,
    critics: nn.Module,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    config: TrainConfig,
) -> int:
    checkpoint = resume_checkpoint(run_dir, config)
    if checkpoint is None:
        return 0
    translator.load_state_dict(checkpoint.model.state_dict())
    critics.load_state_dict(load_file(str(run_dir / "last.critics.safetensors")))
    load_optimizer(run_dir / "last.translator.optim.safetensors", optimizers[0])
    load_optimizer(run_dir / "last.critics.optim.safetensors", optimizers[1])
    return int(checkpoint.meta["steps"])


def translate(model: nn.Module, image: np.ndarray, direction: int) -> np.ndarray:
    """``image`` translated through the served uint8 wrapper."""
    return run_uint8(model, image, np.array([direction], np.int32), task=Task.TRANSLATE)


def _grey(photo: np.ndarray) -> np.ndarray:
    grey = np.round(luminance(photo))
    return np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)


def sobel_sketch(photo: np.ndarray) -> np.ndarray:
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
