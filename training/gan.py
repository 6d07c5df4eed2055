"""GAN training of the catalog generators: hinge loss, projection discriminator, EMA.

One step updates the discriminator on a real and a generated batch, then the generator
through the updated discriminator (Adam, both rates decaying linearly at the end). The
shipped generator is an exponential moving average (EMA) of the trained one, with its own
BatchNorm statistics, which gives cleaner, steadier samples. Sample grids (a row per
category, a column per colour, fixed latents) go to ``run_dir/samples`` every
``eval_every`` steps.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vitrine.sampling import sample_latents
from vitrine.spec import ModelSpec
from vitrine.training.architectures import build_architecture
from vitrine.training.architectures.dcgan import ProjectionDiscriminator
from vitrine.training.architectures.stylegan import StyleGenerator
from vitrine.training.catalog_data import catalog_description, load_catalog
from vitrine.training.config import TrainConfig
from vitrine.training.generator_eval import sample_grid
from vitrine.training.history import Panel
from vitrine.training.recipe import Autocast, Optimized, Recipe
from vitrine.training.uint8_wrapper import to_float_batch

__all__ = ["GanRecipe", "GanSettings", "standing_statistics", "update_ema"]

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


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


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """``ema`` <- d * ``ema`` + (1 - d) * ``model`` (parameters only), d warming up to
    ``decay`` as ``(1 + step) / (10 + step)`` so early weights are soon forgotten."""
    d = min(decay, (1.0 + step) / (10.0 + step))
    for average, current in zip(ema.parameters(), model.parameters(), strict=True):
        average.lerp_(current, 1.0 - d)


@torch.no_grad()
def standing_statistics(generator: nn.Module, spec: ModelSpec, seed: int) -> None:
    """Set ``generator``'s BatchNorm statistics to those of its own outputs: 500 fixed
    latents, every label pair alike. An average of weights needs its own statistics."""
    assert spec.conditioning is not None
    pairs = len(spec.conditioning.categories) * len(spec.conditioning.colours)
    count = 5 * pairs
    device = next(generator.parameters()).device
    latents = torch.from_numpy(sample_latents(seed, count, spec.conditioning.latent_dim))
    latents, pair = latents.to(device), torch.arange(count, device=device) % pairs
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
    device = next(generator.parameters()).device
    latents = torch.from_numpy(sample_latents(seed, count, spec.conditioning.latent_dim))
    latents, pair = latents.to(device), torch.arange(count, device=device) % pairs
    generator.centre_styles(latents, pair // colours, pair % colours)


@dataclass(frozen=True)
class GanSettings:
    """The ``[recipe]`` table of a GAN generator's config."""

    generator_learning_rate: float
    discriminator_learning_rate: float
    beta1: float  # Adam betas of both networks
    beta2: float
    decay_start: float  # share of the steps after which both rates fall linearly to 0
    discriminator_features: int
    ema_decay: float  # the shipped generator is this moving average of the trained one
    diversity_weight: float  # bounded mode seeking (see _hinge_step)
    diversity_target: float


class GanRecipe(Recipe[GanSettings]):
    """A conditional generator (DCGAN or StyleGAN-lite) against a projection discriminator;
    the served module is the generator's moving average."""

    settings_type = GanSettings
    losses = ("discriminator", "generator")
    panels = (Panel(losses, "hinge loss"),)
    generator: nn.Module
    discriminator: ProjectionDiscriminator
    ema: nn.Module

    def __init__(self, spec: ModelSpec, config: TrainConfig) -> None:
        super().__init__(spec, config)
        self.data = CatalogBatches(config, spec.arch_kwargs["latent_dim"])

    def build(self) -> None:
        settings, kwargs = self.settings, self.spec.arch_kwargs
        self.generator = build_architecture(self.spec.architecture, kwargs)
        self.discriminator = ProjectionDiscriminator(
            settings.discriminator_features, kwargs["categories"], kwargs["colours"]
        )
        self.ema = copy.deepcopy(self.generator).eval().requires_grad_(False)

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator, "ema": self.ema}

    def optimized(self) -> dict[str, Optimized]:
        settings = self.settings
        betas = (settings.beta1, settings.beta2)
        return {
            "generator": Optimized(
                self.generator, self._decayed(settings.generator_learning_rate), betas
            ),
            "discriminator": Optimized(
                self.discriminator, self._decayed(settings.discriminator_learning_rate), betas
            ),
        }

    def _decayed(self, rate: float) -> Callable[[int], float]:
        """``rate`` for the first ``decay_start`` share of the steps, then linear to 0."""
        steps = self.config.steps
        begin = self.settings.decay_start * steps
        return lambda step: rate * min(1.0, (steps - step) / max(1.0, steps - begin))

    @property
    def served(self) -> nn.Module:
        return self.ema

    def batch(self, step: int) -> Batch:
        return self.data.batch(step)

    def data_description(self) -> dict[str, Any]:
        return self.data.data_description()

    def train_step(
        self,
        batch: Batch,
        step: int,
        optimizers: Mapping[str, torch.optim.Optimizer],
        autocast: Autocast,
    ) -> dict[str, float]:
        pair = (optimizers["generator"], optimizers["discriminator"])
        diversity = (self.settings.diversity_weight, self.settings.diversity_target)
        with autocast():
            d_loss, g_loss = _hinge_step(self.generator, self.discriminator, pair, batch, diversity)
        return {"discriminator": d_loss, "generator": g_loss}

    def after_step(self, done: int) -> None:
        update_ema(self.ema, self.generator, self.settings.ema_decay, done)

    def prepare_served(self) -> None:
        standing_statistics(self.ema, self.spec, self.config.seed + 1)

    def observe(self, model: nn.Module, run_dir: Path, done: int) -> str | None:
        """A sample grid in ``run_dir/samples``."""
        folder = run_dir / "samples"
        folder.mkdir(exist_ok=True)
        sample_grid(self.spec, model).save(folder / f"step_{done:05d}.png")
        return None
