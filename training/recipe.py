"""What a training recipe is: the one interface the shared loop drives.

A recipe owns what is specific to its task: its data (set up in its constructor), its
networks (made by :meth:`Recipe.build`, which the loop calls next, so the order in which
they draw from the generator the loop seeded first is fixed), the Adam betas and learning-rate
schedule of each network it trains, deterministic batches, one training step that returns
named losses, the module it serves, and any state besides the networks that an exact resume
needs. The loop (:func:`vitrine.training.trainer.train`) owns the rest: the device and
precision, the optimisers (with the config's weight decay), batch prefetch, the progress bar
and loss history, checkpoints and exact resume, and the final evaluation.

Recipe settings (the config's ``[recipe]`` table) are a frozen dataclass per recipe
(:attr:`Recipe.settings_type`), so a misspelt key is refused rather than ignored.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import torch
from torch import nn

from vitrine.errors import ConfigError
from vitrine.spec import ModelSpec
from vitrine.training.architectures import build_architecture
from vitrine.training.config import TrainConfig
from vitrine.training.history import Panel

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "Autocast",
    "NoSettings",
    "Optimized",
    "Recipe",
    "SingleNetworkRecipe",
    "constant_rate",
    "cosine_rate",
    "parse_settings",
]

Autocast = Callable[[], AbstractContextManager[Any]]
"""The context a step runs its forward passes in (bfloat16 autocast where configured)."""

S = TypeVar("S", bound="DataclassInstance")


@dataclass(frozen=True)
class NoSettings:
    """The settings of a recipe whose config has no ``[recipe]`` table."""


def parse_settings(settings_type: type[S], table: Mapping[str, Any], where: str) -> S:
    """``table`` as ``settings_type``; unknown or missing keys raise ValueError naming them."""
    names = {field.name for field in dataclasses.fields(settings_type)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown [recipe] keys {unknown}; known: {sorted(names)}")
    required = {
        field.name
        for field in dataclasses.fields(settings_type)
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    }
    missing = sorted(required - set(table))
    if missing:
        raise ConfigError(f"{where}: missing [recipe] keys {missing}")
    return settings_type(**{key: _frozen(value) for key, value in table.items()})


def _frozen(value: Any) -> Any:
    """TOML arrays become tuples, so settings stay hashable and immutable."""
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class Optimized:
    """A network the loop trains with Adam: its learning rate at each step, and the betas."""

    network: nn.Module
    learning_rate: Callable[[int], float]
    betas: tuple[float, float] = (0.9, 0.999)


def cosine_rate(config: TrainConfig) -> Callable[[int], float]:
    """Cosine decay from ``learning_rate`` to ``min_learning_rate`` over the run."""

    def rate(step: int) -> float:
        progress = step / max(1, config.steps - 1)
        span = config.learning_rate - config.min_learning_rate
        return config.min_learning_rate + 0.5 * span * (1.0 + math.cos(math.pi * progress))

    return rate


def constant_rate(value: float) -> Callable[[int], float]:
    """The same learning rate at every step."""
    return lambda step: value


class Recipe(ABC, Generic[S]):
    """One task's training, driven by the shared loop.

    ``losses`` names what :meth:`train_step` returns (the history's columns, in order),
    ``panels`` how the loss plot groups them and ``shown`` which ones the progress bar shows
    (empty: all).
    """

    settings_type: ClassVar[type[Any]] = NoSettings
    losses: ClassVar[tuple[str, ...]] = ("loss",)
    panels: ClassVar[tuple[Panel, ...]] = (Panel(("loss",), "training loss", log_scale=True),)
    shown: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: ModelSpec, config: TrainConfig) -> None:
        self.spec = spec
        self.config = config
        self.settings: S = parse_settings(
            self.settings_type, config.recipe, f"training config of {spec.name}"
        )

    @abstractmethod
    def build(self) -> None:
        """Make the networks; the loop calls it once, after the constructor."""

    @abstractmethod
    def networks(self) -> dict[str, nn.Module]:
        """Every network whose state a resume needs, by name (the served one included)."""

    @abstractmethod
    def optimized(self) -> dict[str, Optimized]:
        """The networks the loop trains, by optimiser name."""

    @property
    @abstractmethod
    def served(self) -> nn.Module:
        """The module the checkpoint holds: what is evaluated, exported and served."""

    @abstractmethod
    def batch(self, step: int) -> Any:
        """The batch of ``step``, deterministic in (seed, step); made on a worker thread, so it
        must not draw from torch's global generator."""

    @abstractmethod
    def train_step(
        self,
        batch: Any,
        step: int,
        optimizers: Mapping[str, torch.optim.Optimizer],
        autocast: Autocast,
    ) -> dict[str, float]:
        """One update of every trained network; returns the named losses."""

    def evaluate(self, model: nn.Module) -> dict[str, Any]:
        """Validation metrics of the served module (``mean``, ``margins``, ...): the task's
        evaluation, as ``vitrine eval`` runs it."""
        from vitrine.training.hooks import task_hooks  # the task modules import this one

        return task_hooks(self.spec.task).evaluate(self.spec, model)

    @abstractmethod
    def data_description(self) -> dict[str, Any]:
        """What the model was trained and validated on, for the checkpoint sidecar."""

    def after_step(self, done: int) -> None:
        """Called after each step (``done`` steps so far): e.g. a moving average of weights."""

    def prepare_served(self) -> None:
        """Called before the served module is observed or saved: e.g. its BatchNorm statistics."""

    def observe(self, model: nn.Module, run_dir: Path, done: int) -> str | None:
        """Every ``eval_every`` steps before the last, with ``model`` the served module ready
        for evaluation (eval mode, on the CPU): a note for the log."""
        margins = self.evaluate(model).get("margins", {})
        return f"step {done}: " + ", ".join(f"{key} {value:+.3f}" for key, value in margins.items())

    def extra_state(self) -> dict[str, torch.Tensor]:
        """Tensors besides the networks' that an exact resume needs (e.g. a history of fakes)."""
        return {}

    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`extra_state` returned."""


class SingleNetworkRecipe(Recipe[S]):
    """A recipe training the spec's architecture alone with one loss and the cosine schedule.

    Subclasses give :meth:`loss`; the step is the usual one: the loss under autocast, then
    backward and an Adam step.
    """

    model: nn.Module

    def build(self) -> None:
        self.model = build_architecture(self.spec.architecture, self.spec.arch_kwargs)

    def networks(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimized(self) -> dict[str, Optimized]:
        return {"model": Optimized(self.model, cosine_rate(self.config))}

    @property
    def served(self) -> nn.Module:
        return self.model

    @abstractmethod
    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The scalar loss of ``model`` on ``batch``."""

    def train_step(
        self,
        batch: Any,
        step: int,
        optimizers: Mapping[str, torch.optim.Optimizer],
        autocast: Autocast,
    ) -> dict[str, float]:
        with autocast():
            loss = self.loss(self.model, batch)
        optimizer = optimizers["model"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}
