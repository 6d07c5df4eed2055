"""The catalog generators' task hooks: a served forward, a recipe per architecture, the
judge's evaluation and a sample grid."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vitrine.spec import ModelSpec
from vitrine.training.gan import GanRecipe
from vitrine.training.generator_eval import evaluate_generator, sample_grid
from vitrine.training.hooks import TaskHooks
from vitrine.training.recipe import Recipe
from vitrine.training.vae import VaeGanRecipe

__all__ = ["HOOKS", "forward", "generator_recipe"]


def forward(model: nn.Module, latent: torch.Tensor, *options: torch.Tensor) -> torch.Tensor:
    """``model(latent, category, colour) -> y`` with latent (N, Z) float and the labels (N,)
    int64; served, the labels are int32 (N, 1) inputs. A style-mixing generator (StyleGAN)
    also takes ``mix_latent`` (N, Z) and ``truncation`` (N, 1), passed on as (N,)."""
    category, colour, *styles = options
    if styles:  # mix_latent (N, Z), truncation (N, 1)
        styles = [styles[0], styles[1][:, 0]]
    labels = (label[:, 0].long() for label in (category, colour))
    output: torch.Tensor = model(latent, *labels, *styles)
    return output


def generator_recipe(spec: ModelSpec) -> type[Recipe[Any]]:
    """The VAE-GAN recipe for the conditional VAE, the GAN recipe for the other generators."""
    return VaeGanRecipe if spec.architecture == "cvae" else GanRecipe


HOOKS = TaskHooks(
    forward=forward,
    evaluate=evaluate_generator,
    comparison=sample_grid,
    recipe=generator_recipe,
)
