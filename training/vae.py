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

Sample grids (a row per category, a column per colour, fixed latents) go to
``run_dir/samples`` every ``eval_every`` steps.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vitrine.sampling import sample_latents
from vitrine.spec import ModelSpec
from vitrine.training.architectures import build_architecture
from vitrine.training.architectures.cvae import ConditionalVAE
from vitrine.training.architectures.dcgan import ProjectionDiscriminator
from vitrine.training.catalog_data import catalog_description, load_catalog
from vitrine.training.config import TrainConfig
from vitrine.training.generator_eval import sample_grid
from vitrine.training.history import Panel
from vitrine.training.recipe import Autocast, Optimized, Recipe, constant_rate, cosine_rate
from vitrine.training.uint8_wrapper import to_float_batch

__all__ = ["VaeGanRecipe", "VaeSettings", "kl_divergence"]

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
_COLUMNS = ("loss", "reconstruction", "kl", "beta", "discriminator", "adversarial")
_PANELS = (
    Panel(("reconstruction",), "per-pixel loss", log_scale=True),
    Panel(("kl",), "KL (nats)"),
    Panel(("discriminator", "adversarial"), "hinge loss (VAE-GAN)"),
)


@dataclass(frozen=True)
class VaeSettings:
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

    def __post_init__(self) -> None:
        if self.reconstruction not in ("l1", "bce"):
            raise ValueError(f"reconstruction must be 'l1' or 'bce'; got {self.reconstruction!r}")


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


@torch.no_grad()
def _update_ema_and_buffers(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """``ema`` <- d * ``ema`` + (1 - d) * ``model`` for the parameters, d warming up to
    ``decay`` as ``(1 + step) / (10 + step)``; buffers (BatchNorm statistics) are copied."""
    d = min(decay, (1.0 + step) / (10.0 + step))
    for average, current in zip(ema.parameters(), model.parameters(), strict=True):
        average.lerp_(current, 1.0 - d)
    for buffer, source in zip(ema.buffers(), model.buffers(), strict=True):
        buffer.copy_(source)


@torch.no_grad()
def _standing_statistics(model: ConditionalVAE, spec: ModelSpec, seed: int) -> None:
    """Set the decoder's BatchNorm statistics to those of its own activations on prior
    latents (5 per label pair): an average of weights needs its own statistics. The
    encoder's are left as they are."""
    assert spec.conditioning is not None
    pairs = len(spec.conditioning.categories) * len(spec.conditioning.colours)
    count = 5 * pairs
    device = next(model.parameters()).device
    latents = torch.from_numpy(sample_latents(seed, count, spec.conditioning.latent_dim))
    latents, pair = latents.to(device), torch.arange(count, device=device) % pairs
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


class VaeGanRecipe(Recipe[VaeSettings]):
    """The conditional VAE, optionally against a discriminator (VAE-GAN); the served module
    is the VAE's moving average when ``ema_decay`` > 0.

    The VAE follows the cosine schedule from ``learning_rate``; the discriminator keeps
    ``discriminator_learning_rate``.
    """

    settings_type = VaeSettings
    losses = ("loss", "reconstruction", "kl", "beta", "discriminator", "adversarial")
    panels = (
        Panel(("reconstruction",), "per-pixel loss", log_scale=True),
        Panel(("kl",), "KL (nats)"),
        Panel(("discriminator", "adversarial"), "hinge loss (VAE-GAN)"),
    )
    shown = ("reconstruction", "kl", "discriminator")
    model: ConditionalVAE
    discriminator: ProjectionDiscriminator | None
    ema: ConditionalVAE | None

    def __init__(self, spec: ModelSpec, config: TrainConfig) -> None:
        super().__init__(spec, config)
        self.data = CatalogBatches(config, spec.arch_kwargs["latent_dim"])

    def build(self) -> None:
        settings, kwargs = self.settings, self.spec.arch_kwargs
        self.model = cast(ConditionalVAE, build_architecture(self.spec.architecture, kwargs))
        self.discriminator = None
        if settings.adversarial:
            self.discriminator = ProjectionDiscriminator(
                settings.discriminator_features, kwargs["categories"], kwargs["colours"]
            )
        self.ema = None
        if settings.ema_decay:
            self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)

    def networks(self) -> dict[str, nn.Module]:
        optional = {"discriminator": self.discriminator, "ema": self.ema}
        return {"vae": self.model} | {k: v for k, v in optional.items() if v is not None}

    def optimized(self) -> dict[str, Optimized]:
        settings = self.settings
        betas = (settings.beta1, settings.beta2)
        trained = {"vae": Optimized(self.model, cosine_rate(self.config), betas)}
        if self.discriminator is not None:
            rate = constant_rate(settings.discriminator_learning_rate)
            trained["discriminator"] = Optimized(self.discriminator, rate, betas)
        return trained

    @property
    def served(self) -> nn.Module:
        return self.model if self.ema is None else self.ema

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
        """One update of the VAE (after one of the discriminator when it is on)."""
        real, categories, colours, noise, latents = batch
        settings, model, discriminator = self.settings, self.model, self.discriminator
        with autocast():
            mean, log_variance = model.encode(real, categories, colours)
            decoded = model(mean + torch.exp(0.5 * log_variance) * noise, categories, colours)
            reconstruction = _reconstruction_loss(settings.reconstruction, decoded, real)
            kl = kl_divergence(mean, log_variance).mean()
            beta = settings.kl_weight * min(1.0, (step + 1) / max(1, settings.kl_warmup_steps))
            loss = reconstruction + beta * kl / real[0].numel()
            d_loss = adversarial = float("nan")
            if discriminator is not None and step >= settings.adversarial_start:
                d_optimizer = optimizers["discriminator"]
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
                loss = loss + settings.adversarial_weight * g_hinge
                d_loss, adversarial = d_hinge.item(), g_hinge.item()
        optimizer = optimizers["vae"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {
            "loss": loss.item(),
            "reconstruction": reconstruction.item(),
            "kl": kl.item(),
            "beta": beta,
            "discriminator": d_loss,
            "adversarial": adversarial,
        }

    def after_step(self, done: int) -> None:
        if self.ema is not None:
            _update_ema_and_buffers(self.ema, self.model, self.settings.ema_decay, done)

    def prepare_served(self) -> None:
        if self.ema is not None:
            _standing_statistics(self.ema, self.spec, self.config.seed + 1)

    def observe(self, model: nn.Module, run_dir: Path, done: int) -> str | None:
        """A sample grid in ``run_dir/samples``."""
        folder = run_dir / "samples"
        folder.mkdir(exist_ok=True)
        sample_grid(self.spec, model).save(folder / f"step_{done:05d}.png")
        return None
