"""GAN training of the catalog generators: hinge loss, projection discriminator, EMA.

One step updates the discriminator on a real and a generated batch, then the generator
through the updated discriminator (Adam, both rates decaying linearly at the end). The
shipped generator is an exponential moving average (EMA) of the trained one, with its own
BatchNorm statistics, which gives cleaner, steadier samples.

``run_dir`` holds the resumable state: ``last.safetensors`` (+ .json) is the EMA generator
(the final generator once all steps are done), ``last.generator.safetensors``,
``last.discriminator.safetensors`` and both optimizers' state. A rerun after the last step
only redoes the evaluation and the final save.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from vitrine.sampling import sample_latents
from vitrine.spec import ModelSpec
from vitrine.training.architectures import build_architecture
from vitrine.training.architectures.dcgan import ProjectionDiscriminator
from vitrine.training.architectures.stylegan import StyleGenerator
from vitrine.training.catalog_data import catalog_description, load_catalog
from vitrine.training.checkpoint import (
    load_optimizer,
    load_rng_state,
    resume_checkpoint,
    save_checkpoint,
    save_optimizer,
    save_rng_state,
)
from vitrine.training.config import TrainConfig
from vitrine.training.evaluate import evaluate_model
from vitrine.training.generator_eval import sample_grid
from vitrine.training.history import Panel, plot_history, step_log
from vitrine.training.trainer import TrainResult, _meta
from vitrine.training.uint8_wrapper import to_float_batch

__all__ = ["train_gan"]

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
_LOSSES = Panel(("discriminator", "generator"), "hinge loss")


class CatalogBatches:
    """Real catalog images with their labels, plus latents, deterministic in (seed, step)."""

    def __init__(self, config: TrainConfig, latent_dim: int) -> None:
        self.catalog = load_catalog("train")
        self.config = config
        self.latent_dim = latent_dim

    def batch(self, step: int) -> Batch:
        """(images (N, 3, 32, 32) in [0, 1], categories (N,), colours (N,), latents (N, Z))."""
        rng = np.random.default_rng([self.config.seed, step])
        index = rng.integers(len(self.catalog), size=self.config.batch_size)
        latents = rng.standard_normal((self.config.batch_size, self.latent_dim), np.float32)
        return (
            to_float_batch(self.catalog.images[index]),
            torch.from_numpy(self.catalog.categories[index]),
            torch.from_numpy(self.catalog.colours[index]),
            torch.from_numpy(latents),
        )

    @staticmethod
    def data_description() -> dict[str, Any]:
        return catalog_description("train")


def _hinge_step(
    generator: nn.Module,
    discriminator: nn.Module,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    batch: Batch,
    diversity: tuple[float, float],
) -> tuple[float, float]:
    """One discriminator then one generator update; returns both hinge losses.

    The fakes come in two halves with the same labels and different latents. The generator
    also gains ``weight * min(spread, target)`` for keeping their images apart, ``spread``
    being their mean pixel distance over that of their latents (a bounded mode-seeking
    term, Mao et al., CVPR 2019; Yang et al., ICLR 2019), so that the latent still matters
    once both labels are fixed; ``diversity`` is (weight, target).
    """
    real, categories, colours, latents = batch
    g_optimizer, d_optimizer = optimizers
    half = len(latents) // 2
    fake_categories, fake_colours = categories[:half].repeat(2), colours[:half].repeat(2)
    fake = generator(latents, fake_categories, fake_colours)
    scores = discriminator(
        torch.cat([real, fake.detach()]),
        torch.cat([categories, fake_categories]),
        torch.cat([colours, fake_colours]),
    )
    real_scores, fake_scores = scores.chunk(2)
    d_loss = F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()
    d_optimizer.zero_grad(set_to_none=True)
    d_loss.backward()
    d_optimizer.step()
    discriminator.requires_grad_(False)  # the generator step needs no critic weight grads
    g_loss = -discriminator(fake, fake_categories, fake_colours).mean()
    first, second = fake.chunk(2)
    spread = (first - second).abs().mean() / (latents[:half] - latents[half:]).abs().mean()
    g_optimizer.zero_grad(set_to_none=True)
    weight, target = diversity
    (g_loss - weight * spread.clamp(max=target)).backward()
    g_optimizer.step()
    discriminator.requires_grad_(True)
    return d_loss.item(), g_loss.item()


def _decay(config: TrainConfig, step: int) -> float:
    """Learning-rate factor: 1 for the first ``decay_start`` share of the steps, then
    linear down to 0 at the last step."""
    begin = config.recipe["decay_start"] * config.steps
    return min(1.0, (config.steps - step) / max(1.0, config.steps - begin))


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """``ema`` <- d * ``ema`` + (1 - d) * ``model`` (parameters only), d warming up to
    ``decay`` as ``(1 + step) / (10 + step)`` so early weights are soon forgotten."""
    d = min(decay, (1.0 + step) / (10.0 + step))
    for average, current in zip(ema.parameters(), model.parameters(), strict=True):
        average.lerp_(current, 1.0 - d)


@torch.no_grad()
def _standing_statistics(generator: nn.Module, spec: ModelSpec, seed: int) -> None:
    """Set ``generator``'s BatchNorm statistics to those of its own outputs: 500 fixed
    latents, every label pair alike. An average of weights needs its own statistics."""
    assert spec.conditioning is not None
    pairs = len(spec.conditioning.categories) * len(spec.conditioning.colours)
    count = 5 * pairs
    latents = torch.from_numpy(sample_latents(seed, count, spec.conditioning.latent_dim))
    pair = torch.arange(count) % pairs
    colours = len(spec.conditioning.colours)
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: here, the statistics of one batch
    generator.train()(latents, pair // colours, pair % colours)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    generator.eval()
    if isinstance(generator, StyleGenerator):
        _centre_styles(generator, spec, seed)


def _centre_styles(generator: StyleGenerator, spec: ModelSpec, seed: int) -> None:
    """Measure each label pair's mean style (StyleGAN's truncation centre) on 256 latents."""
    assert spec.conditioning is not None
    colours = len(spec.conditioning.colours)
    pairs = len(spec.conditioning.categories) * colours
    count = 256 * pairs
    latents = torch.from_numpy(sample_latents(seed, count, spec.conditioning.latent_dim))
    pair = torch.arange(count) % pairs
    generator.centre_styles(latents, pair // colours, pair % colours)


def _state_paths(run_dir: Path) -> dict[str, Path]:
    names = ("generator", "discriminator", "generator.optim", "discriminator.optim", "rng")
    return {name: run_dir / f"last.{name}.safetensors" for name in names}


def _save_state(
    run_dir: Path,
    modules: tuple[nn.Module, nn.Module, nn.Module],
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    meta: dict[str, Any],
) -> None:
    """Everything a resume needs; the EMA generator's sidecar (written last) has the step."""
    generator, discriminator, ema = modules
    paths = _state_paths(run_dir)
    for name, module in (("generator", generator), ("discriminator", discriminator)):
        state = {key: value.contiguous() for key, value in module.state_dict().items()}
        save_file(state, str(paths[name]))
    save_optimizer(paths["generator.optim"], optimizers[0])
    save_optimizer(paths["discriminator.optim"], optimizers[1])
    save_rng_state(paths["rng"])  # StyleGAN's noise and style mixing draw from it
    save_checkpoint(run_dir / "last.safetensors", ema, meta)


def _resume(
    run_dir: Path,
    modules: tuple[nn.Module, nn.Module, nn.Module],
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    config: TrainConfig,
) -> int:
    """Load the state of ``run_dir`` if there is one; returns the step to start at."""
    checkpoint = resume_checkpoint(run_dir, config)
    if checkpoint is None:
        return 0
    generator, discriminator, ema = modules
    paths = _state_paths(run_dir)
    ema.load_state_dict(checkpoint.model.state_dict())
    generator.load_state_dict(load_file(str(paths["generator"])))
    discriminator.load_state_dict(load_file(str(paths["discriminator"])))
    load_optimizer(paths["generator.optim"], optimizers[0])
    load_optimizer(paths["discriminator.optim"], optimizers[1])
    load_rng_state(paths["rng"])
    return int(checkpoint.meta["steps"])


def train_gan(
    spec: ModelSpec,
    config: TrainConfig,
    *,
    run_dir: Path,
    out_dir: Path,
    resume: bool,
    progress: bool,
    stop_after: int | None,
) -> TrainResult | None:
    """Train generator ``spec`` with ``config`` (see ``vitrine.training.trainer.train``)."""
    started = time.perf_counter()
    recipe = config.recipe
    torch.manual_seed(config.seed)
    generator = build_architecture(spec.architecture, spec.arch_kwargs).train()
    discriminator = ProjectionDiscriminator(
        recipe["discriminator_features"],
        spec.arch_kwargs["categories"],
        spec.arch_kwargs["colours"],
    )
    ema = copy.deepcopy(generator).eval().requires_grad_(False)
    betas = (recipe["beta1"], recipe["beta2"])
    optimizers = (
        torch.optim.Adam(generator.parameters(), recipe["generator_learning_rate"], betas=betas),
        torch.optim.Adam(
            discriminator.parameters(), recipe["discriminator_learning_rate"], betas=betas
        ),
    )
    modules = (generator, discriminator, ema)
    diversity = (recipe["diversity_weight"], recipe["diversity_target"])
    rates = (recipe["generator_learning_rate"], recipe["discriminator_learning_rate"])
    data = CatalogBatches(config, spec.arch_kwargs["latent_dim"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "samples").mkdir(exist_ok=True)
    start = _resume(run_dir, modules, optimizers, config) if resume else 0
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
            for optimizer, rate in zip(optimizers, rates, strict=True):
                for group in optimizer.param_groups:
                    group["lr"] = rate * _decay(config, step)
            d_loss, g_loss = _hinge_step(
                generator, discriminator, optimizers, data.batch(step), diversity
            )
            done = step + 1
            _update_ema(ema, generator, recipe["ema_decay"], done)
            log.record(done, {"discriminator": d_loss, "generator": g_loss})
            sample = done % config.eval_every == 0
            save = done % config.checkpoint_every == 0 or done == end
            if sample or save:
                _standing_statistics(ema, spec, config.seed + 1)
            if sample:
                sample_grid(spec, ema).save(run_dir / "samples" / f"step_{done:05d}.png")
            if save:
                log.flush()
                _save_state(run_dir, modules, optimizers, _meta(spec, config, data, done))
    plot_history(run_dir, spec.name, [_LOSSES])
    if end < config.steps:
        return None
    metrics = evaluate_model(spec, ema)
    meta = _meta(spec, config, data, config.steps) | {"metrics": metrics}
    weights = out_dir / f"{spec.name}.safetensors"
    save_checkpoint(weights, ema, meta)
    return TrainResult(weights=weights, metrics=metrics, seconds=time.perf_counter() - started)
