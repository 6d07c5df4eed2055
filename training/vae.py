"""Training of the conditional VAE (``cvae``), optionally as a VAE-GAN.

The loss of a step, per pixel so that its weights read alike at any image size:

* reconstruction: L1 (or BCE) between the catalog images and the decoded posterior samples
  ``mean + exp(log_variance / 2) * noise``;
* ``beta * KL / pixels``: the KL divergence of the posterior from the N(0, I) prior (summed
  over the latent), ``beta`` warming up linearly from 0 over ``kl_warmup_steps``. With L1
  the whole is a Laplace likelihood of scale ``kl_weight`` plus the KL, over ``pixels``;
* with ``adversarial = true`` (VAE-GAN): ``adversarial_weight`` times the hinge generator
  loss of a spectral-norm projection discriminator on the decoder's outputs, the
  reconstructions and as many prior samples (the served use: N(0, I) latents, the batch's
  labels). The discriminator is updated first on real against both, and only from step
  ``adversarial_start`` on, as is the term.

The prior is the standard normal, so the served sampler's latents
(``vitrine.sampling.sample_latents``) are what the decoder was taught to decode. With
``ema_decay`` > 0 the shipped module is an exponential moving average of the trained one,
its decoder's BatchNorm statistics measured on prior samples (as the GAN loop does).

``run_dir`` holds the resumable state: ``last.safetensors`` (+ .json, written last, with the
step) is the shipped module (the average, if any), ``last.vae.safetensors`` the trained one
when they differ, then the VAE's optimizer and, for a VAE-GAN, the discriminator and its
optimizer. Once all steps are done ``last.safetensors`` is the final module, so a rerun
only redoes the evaluation and the final save. Sample grids (a row per category, a column
per colour, fixed latents) go to ``run_dir/samples`` every ``eval_every`` steps.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
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
from vitrine.training.catalog_data import catalog_description, load_catalog
from vitrine.training.checkpoint import (
    load_optimizer,
    resume_checkpoint,
    save_checkpoint,
    save_optimizer,
)
from vitrine.training.config import TrainConfig
from vitrine.training.evaluate import evaluate_model
from vitrine.training.generator_eval import sample_grid
from vitrine.training.history import Panel, plot_history, step_log
from vitrine.training.trainer import TrainResult, _learning_rate, _meta
from vitrine.training.uint8_wrapper import to_float_batch

__all__ = ["VAERecipe", "train_vae"]

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
_COLUMNS = ("loss", "reconstruction", "kl", "beta", "discriminator", "adversarial")
_PANELS = (
    Panel(("reconstruction",), "per-pixel loss", log_scale=True),
    Panel(("kl",), "KL (nats)"),
    Panel(("discriminator", "adversarial"), "hinge loss (VAE-GAN)"),
)


@dataclass(frozen=True)
class VAERecipe:
    """The ``[recipe]`` table of ``training/configs/vae.toml``."""

    reconstruction: str  # "l1" or "bce", per pixel
    kl_weight: float  # beta, per pixel (with L1: the Laplace likelihood's scale)
    kl_warmup_steps: int
    adversarial: bool  # VAE-GAN
    adversarial_weight: float
    adversarial_start: int  # step at which the discriminator and its term switch on
    discriminator_learning_rate: float
    discriminator_features: int
    beta1: float  # Adam betas of both networks
    beta2: float
    ema_decay: float  # the shipped module is this moving average of the trained one; 0: off

    @classmethod
    def from_config(cls, config: TrainConfig) -> VAERecipe:
        recipe = cls(**config.recipe)
        if recipe.reconstruction not in ("l1", "bce"):
            raise ValueError(f"reconstruction must be 'l1' or 'bce'; got {recipe.reconstruction!r}")
        return recipe


class CatalogBatches:
    """Catalog images with labels, posterior noise and prior latents, fixed by (seed, step)."""

    def __init__(self, config: TrainConfig, latent_dim: int) -> None:
        self.catalog = load_catalog("train")
        self.config = config
        self.latent_dim = latent_dim

    def batch(self, step: int) -> Batch:
        """(images (N, 3, 32, 32) in [0, 1], categories (N,), colours (N,), noise (N, Z),
        latents (N, Z))."""
        rng = np.random.default_rng([self.config.seed, step])
        size = self.config.batch_size
        index = rng.integers(len(self.catalog), size=size)
        noise = rng.standard_normal((2, size, self.latent_dim), np.float32)
        return (
            to_float_batch(self.catalog.images[index]),
            torch.from_numpy(self.catalog.categories[index]),
            torch.from_numpy(self.catalog.colours[index]),
            torch.from_numpy(noise[0]),
            torch.from_numpy(noise[1]),
        )

    @staticmethod
    def data_description() -> dict[str, Any]:
        return catalog_description("train")


def kl_divergence(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_variance)) || N(0, I)) per row, summed over the latent: (N,)."""
    return 0.5 * (mean.square() + log_variance.exp() - 1.0 - log_variance).sum(dim=1)


def _reconstruction_loss(kind: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if kind == "bce":
        return F.binary_cross_entropy(output, target)
    return (output - target).abs().mean()


@dataclass
class _Networks:
    """The trained VAE, its moving average (or None), the discriminator (or None) and their
    optimizers."""

    model: nn.Module
    ema: nn.Module | None
    discriminator: nn.Module | None
    optimizer: torch.optim.Optimizer
    d_optimizer: torch.optim.Optimizer | None

    @property
    def shipped(self) -> nn.Module:
        """What samples, evaluation and the checkpoints show: the average when there is one."""
        return self.model if self.ema is None else self.ema


def _step(networks: _Networks, batch: Batch, recipe: VAERecipe, step: int) -> dict[str, float]:
    """One update of the VAE (after one of the discriminator when it is on)."""
    real, categories, colours, noise, latents = batch
    model, discriminator = networks.model, networks.discriminator
    vae_optimizer, d_optimizer = networks.optimizer, networks.d_optimizer
    mean, log_variance = model.encode(real, categories, colours)
    decoded = model(mean + torch.exp(0.5 * log_variance) * noise, categories, colours)
    reconstruction = _reconstruction_loss(recipe.reconstruction, decoded, real)
    kl = kl_divergence(mean, log_variance).mean()
    beta = recipe.kl_weight * min(1.0, (step + 1) / max(1, recipe.kl_warmup_steps))
    loss = reconstruction + beta * kl / real[0].numel()
    d_loss = adversarial = float("nan")
    if discriminator is not None and d_optimizer is not None and step >= recipe.adversarial_start:
        fakes = torch.cat([decoded, model(latents, categories, colours)])
        fake_categories, fake_colours = categories.repeat(2), colours.repeat(2)
        scores = discriminator(
            torch.cat([real, fakes.detach()]), categories.repeat(3), colours.repeat(3)
        )
        real_scores, fake_scores = scores[: len(real)], scores[len(real) :]
        d_hinge = F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()
        d_optimizer.zero_grad(set_to_none=True)
        d_hinge.backward()
        d_optimizer.step()
        discriminator.requires_grad_(False)  # the VAE step needs no critic weight grads
        g_hinge = -discriminator(fakes, fake_categories, fake_colours).mean()
        discriminator.requires_grad_(True)
        loss = loss + recipe.adversarial_weight * g_hinge
        d_loss, adversarial = d_hinge.item(), g_hinge.item()
    vae_optimizer.zero_grad(set_to_none=True)
    loss.backward()
    vae_optimizer.step()
    return {
        "loss": loss.item(),
        "reconstruction": reconstruction.item(),
        "kl": kl.item(),
        "beta": beta,
        "discriminator": d_loss,
        "adversarial": adversarial,
    }


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """``ema`` <- d * ``ema`` + (1 - d) * ``model`` for the parameters, d warming up to
    ``decay`` as ``(1 + step) / (10 + step)``; buffers (BatchNorm statistics) are copied."""
    d = min(decay, (1.0 + step) / (10.0 + step))
    for average, current in zip(ema.parameters(), model.parameters(), strict=True):
        average.lerp_(current, 1.0 - d)
    for average, current in zip(ema.buffers(), model.buffers(), strict=True):
        average.copy_(current)


@torch.no_grad()
def _standing_statistics(model: nn.Module, spec: ModelSpec, seed: int) -> None:
    """Set the decoder's BatchNorm statistics to those of its own activations on prior
    latents (5 per label pair): an average of weights needs its own statistics. The
    encoder's are left as they are."""
    assert spec.conditioning is not None
    pairs = len(spec.conditioning.categories) * len(spec.conditioning.colours)
    count = 5 * pairs
    latents = torch.from_numpy(sample_latents(seed, count, spec.conditioning.latent_dim))
    pair = torch.arange(count) % pairs
    colours = len(spec.conditioning.colours)
    norms = [m for m in model.decoder_modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: here, the statistics of one batch
        norm.train()
    model(latents, pair // colours, pair % colours)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    model.eval()


def _state_paths(run_dir: Path) -> dict[str, Path]:
    names = ("vae", "optim", "discriminator", "discriminator.optim")
    return {name: run_dir / f"last.{name}.safetensors" for name in names}


def _save_file(module: nn.Module, path: Path) -> None:
    save_file({key: value.contiguous() for key, value in module.state_dict().items()}, str(path))


def _save_state(run_dir: Path, networks: _Networks, meta: dict[str, Any]) -> None:
    """Everything a resume needs; the shipped module's sidecar (written last) has the step."""
    paths = _state_paths(run_dir)
    save_optimizer(paths["optim"], networks.optimizer)
    if networks.ema is not None:
        _save_file(networks.model, paths["vae"])
    if networks.discriminator is not None and networks.d_optimizer is not None:
        _save_file(networks.discriminator, paths["discriminator"])
        save_optimizer(paths["discriminator.optim"], networks.d_optimizer)
    save_checkpoint(run_dir / "last.safetensors", networks.shipped, meta)


def _resume(run_dir: Path, networks: _Networks, config: TrainConfig) -> int:
    """Load the state of ``run_dir`` if there is one; returns the step to start at."""
    checkpoint = resume_checkpoint(run_dir, config)
    if checkpoint is None:
        return 0
    paths = _state_paths(run_dir)
    networks.shipped.load_state_dict(checkpoint.model.state_dict())
    if networks.ema is not None:
        networks.model.load_state_dict(load_file(str(paths["vae"])))
    load_optimizer(paths["optim"], networks.optimizer)
    if networks.discriminator is not None and networks.d_optimizer is not None:
        networks.discriminator.load_state_dict(load_file(str(paths["discriminator"])))
        load_optimizer(paths["discriminator.optim"], networks.d_optimizer)
    return int(checkpoint.meta["steps"])


def train_vae(
    spec: ModelSpec,
    config: TrainConfig,
    *,
    run_dir: Path,
    out_dir: Path,
    resume: bool,
    progress: bool,
    stop_after: int | None,
) -> TrainResult | None:
    """Train the VAE ``spec`` with ``config`` (see ``vitrine.training.trainer.train``)."""
    started = time.perf_counter()
    recipe = VAERecipe.from_config(config)
    torch.manual_seed(config.seed)
    model = build_architecture(spec.architecture, spec.arch_kwargs).train()
    betas = (recipe.beta1, recipe.beta2)
    discriminator = d_optimizer = None
    if recipe.adversarial:
        discriminator = ProjectionDiscriminator(
            recipe.discriminator_features,
            spec.arch_kwargs["categories"],
            spec.arch_kwargs["colours"],
        )
        d_optimizer = torch.optim.Adam(
            discriminator.parameters(), recipe.discriminator_learning_rate, betas=betas
        )
    networks = _Networks(
        model=model,
        ema=copy.deepcopy(model).eval().requires_grad_(False) if recipe.ema_decay else None,
        discriminator=discriminator,
        optimizer=torch.optim.Adam(model.parameters(), config.learning_rate, betas=betas),
        d_optimizer=d_optimizer,
    )
    data = CatalogBatches(config, spec.arch_kwargs["latent_dim"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "samples").mkdir(exist_ok=True)
    start = _resume(run_dir, networks, config) if resume else 0
    end = config.end_step(stop_after)
    with step_log(
        run_dir,
        spec.name,
        columns=_COLUMNS,
        start=start,
        total=config.steps,
        progress=progress,
        shown=("reconstruction", "kl", "discriminator"),
    ) as log:
        for step in range(start, end):
            for group in networks.optimizer.param_groups:
                group["lr"] = _learning_rate(config, step)
            losses = _step(networks, data.batch(step), recipe, step)
            done = step + 1
            if networks.ema is not None:
                _update_ema(networks.ema, model, recipe.ema_decay, done)
            log.record(done, losses)
            sample = done % config.eval_every == 0
            save = done % config.checkpoint_every == 0 or done == end
            if networks.ema is not None and (sample or save):
                _standing_statistics(networks.ema, spec, config.seed + 1)
            if sample:
                grid = sample_grid(spec, networks.shipped)
                grid.save(run_dir / "samples" / f"step_{done:05d}.png")
            if save:
                log.flush()
                _save_state(run_dir, networks, _meta(spec, config, data, done))
    plot_history(run_dir, spec.name, _PANELS)
    if end < config.steps:
        return None
    shipped = networks.shipped.eval()
    metrics = evaluate_model(spec, shipped)
    meta = _meta(spec, config, data, config.steps) | {"metrics": metrics}
    weights = out_dir / f"{spec.name}.safetensors"
    save_checkpoint(weights, shipped, meta)
    return TrainResult(weights=weights, metrics=metrics, seconds=time.perf_counter() - started)
