"""The training loop shared by every model: seeded, resumable, with a progress bar.

A config with ``precision = "bfloat16"`` runs each loss under CPU autocast to bfloat16 with
the network in channels-last layout: oneDNN then runs the convolutions on the CPU's
bfloat16 instructions (AMX or AVX-512 BF16), 2-4x faster than float32 there. Weights,
optimizer state and losses stay float32, and every evaluation runs the float32 network in
its default layout, as it is saved and exported. A CPU without those instructions (AVX2
only) emulates them, far slower than float32 (a denoise step of 4 x 128 x 128 pixels took
41 s against 1.1 s), so the loop warns; the checkpoint records the CPU's capability, since
results depend on the kernels that ran.

Batches depend on the step alone, so a worker thread makes the next one while the current
step runs: on a machine with a core to spare, data no longer adds to the step time.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from vitrine.provenance import git_commit
from vitrine.spec import ModelSpec, Task
from vitrine.training.architectures import build_architecture
from vitrine.training.background import BackgroundRemovalRecipe
from vitrine.training.checkpoint import (
    load_optimizer,
    resume_checkpoint,
    save_checkpoint,
    save_optimizer,
)
from vitrine.training.config import TrainConfig, load_config
from vitrine.training.denoise import DenoisingRecipe
from vitrine.training.enhance import EnhancementRecipe
from vitrine.training.history import Panel, plot_history, step_log
from vitrine.training.inpaint import InpaintingRecipe
from vitrine.training.stylize import StylizeRecipe
from vitrine.training.superres import SuperResolutionRecipe

__all__ = ["RECIPES", "TrainResult", "native_bfloat16", "train"]

_LOSS_PANEL = Panel(("loss",), "training loss", log_scale=True)


class Recipe(Protocol):
    """What the loop needs from a task: batches, a loss, an evaluation, a data description."""

    def batch(self, step: int) -> Any: ...

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor: ...

    def evaluate(self, model: nn.Module) -> dict[str, Any]: ...

    def data_description(self) -> dict[str, Any]: ...


RECIPES: dict[Task, Callable[[ModelSpec, TrainConfig], Recipe]] = {
    Task.SUPER_RESOLVE: SuperResolutionRecipe,
    Task.ENHANCE: EnhancementRecipe,
    Task.INPAINT: InpaintingRecipe,
    Task.REMOVE_BACKGROUND: BackgroundRemovalRecipe,
    Task.DENOISE: DenoisingRecipe,
    Task.STYLIZE: StylizeRecipe,
}


@dataclass(frozen=True)
class TrainResult:
    """Where the final checkpoint went and what it measured."""

    weights: Path
    metrics: dict[str, Any]
    seconds: float


def _learning_rate(config: TrainConfig, step: int) -> float:
    """Cosine decay from ``learning_rate`` to ``min_learning_rate``."""
    progress = step / max(1, config.steps - 1)
    span = config.learning_rate - config.min_learning_rate
    return config.min_learning_rate + 0.5 * span * (1.0 + math.cos(math.pi * progress))


def _meta(spec: ModelSpec, config: TrainConfig, recipe: Recipe, step: int) -> dict[str, Any]:
    return {
        "spec": spec.name,
        "task": spec.task.value,
        "architecture": spec.architecture,
        "arch_kwargs": {
            k: list(v) if isinstance(v, tuple) else v for k, v in spec.arch_kwargs.items()
        },
        "training": config.as_dict(),
        "data": recipe.data_description(),
        "steps": step,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),  # results are bitwise-reproducible per count
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # and per kernel set
    }


def _resume(
    run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig
) -> int:
    """Load the last checkpoint of ``run_dir`` if there is one; returns the step to start at."""
    checkpoint = resume_checkpoint(run_dir, config)
    if checkpoint is None:
        return 0
    model.load_state_dict(checkpoint.model.state_dict())
    load_optimizer(run_dir / "last.optim.safetensors", optimizer)
    return int(checkpoint.meta["steps"])


def _mixed_precision(config: TrainConfig) -> torch.autocast:
    """The context each loss runs in: bfloat16 autocast when the config asks for it."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.precision == "bfloat16")


def native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 instructions (AMX or AVX-512 BF16) for oneDNN to use."""
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def _warn_if_emulated(spec: ModelSpec, config: TrainConfig) -> None:
    """Warn when a bfloat16 config meets a CPU that can only emulate bfloat16."""
    if config.precision == "bfloat16" and not native_bfloat16():
        warnings.warn(
            f"{spec.name}: precision 'bfloat16' on a CPU without bfloat16 instructions "
            f"({torch.backends.cpu.get_cpu_capability()}, no AMX or AVX-512 BF16): autocast "
            "emulates them, tens of times slower than float32. Expect the run to take far "
            'longer than the config says; precision = "float32" is faster here but does '
            "not reproduce the shipped weights.",
            RuntimeWarning,
            stacklevel=3,
        )


def _training_layout(model: nn.Module, config: TrainConfig) -> nn.Module:
    """``model`` in the layout its training steps run fastest in (channels-last for bfloat16)."""
    if config.precision == "bfloat16":
        return model.to(memory_format=torch.channels_last)
    return model


def _evaluated(recipe: Recipe, model: nn.Module) -> dict[str, Any]:
    """``recipe``'s evaluation of ``model`` in eval mode and the default layout (as saved)."""
    return recipe.evaluate(model.to(memory_format=torch.contiguous_format).eval())


def _own_loop(spec: ModelSpec) -> Callable[..., TrainResult | None] | None:
    """The training loop of a model that needs more than one network and optimizer (the
    VAE, the GANs, the CycleGAN); None for the recipes this module's loop runs."""
    # imported here: each of those modules imports this one
    if spec.architecture == "cvae":
        from vitrine.training.vae import train_vae

        return train_vae
    if spec.task is Task.TRANSLATE:
        from vitrine.training.photo_sketch import train_cyclegan

        return train_cyclegan
    if spec.is_generator:
        from vitrine.training.gan import train_gan

        return train_gan
    return None


def train(
    spec: ModelSpec,
    preset: str,
    *,
    run_dir: Path,
    out_dir: Path,
    resume: bool = True,
    progress: bool = True,
    stop_after: int | None = None,
) -> TrainResult | None:
    """Train ``spec`` with its config ``preset``; the final checkpoint goes to ``out_dir``.

    ``stop_after`` pauses once that many steps are done (state saved in ``run_dir``, result
    None); a later call with ``resume`` carries on exactly where it stopped.
    """
    if spec.weights_from:
        raise ValueError(
            f"{spec.name} serves the checkpoint of {spec.weights_from}: "
            f"train that (vitrine train {spec.weights_from})"
        )
    started = time.perf_counter()
    config = load_config(spec.name, preset)
    loop = _own_loop(spec)
    if loop is not None:
        if config.precision != "float32":
            raise ValueError(f"{spec.name}: precision {config.precision!r} needs the shared loop")
        if config.weight_decay:
            raise ValueError(f"{spec.name}: weight_decay needs the shared loop")
        return loop(
            spec,
            config,
            run_dir=run_dir,
            out_dir=out_dir,
            resume=resume,
            progress=progress,
            stop_after=stop_after,
        )
    _warn_if_emulated(spec, config)
    torch.manual_seed(config.seed)
    recipe: Recipe = RECIPES[spec.task](spec, config)
    model = _training_layout(build_architecture(spec.architecture, spec.arch_kwargs), config)
    model.train()
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
        decoupled_weight_decay=True,
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    start = _resume(run_dir, model, optimizer, config) if resume else 0
    end = config.end_step(stop_after)
    with (
        step_log(
            run_dir,
            spec.name,
            columns=("loss",),
            start=start,
            total=config.steps,
            progress=progress,
        ) as log,
        ThreadPoolExecutor(max_workers=1) as prefetch,
    ):
        upcoming = prefetch.submit(recipe.batch, start)
        for step in range(start, end):
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(config, step)
            batch = upcoming.result()
            if step + 1 < end:  # the next batch is made while this step runs
                upcoming = prefetch.submit(recipe.batch, step + 1)
            with _mixed_precision(config):
                loss = recipe.loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done = step + 1
            log.record(done, {"loss": loss.item()})
            if done % config.eval_every == 0 and done < config.steps:
                metrics = _evaluated(recipe, model)
                _training_layout(model, config).train()
                log.note(f"step {done}: {_summary(metrics)}")
            if done % config.checkpoint_every == 0 or done == end:
                log.flush()
                save_checkpoint(
                    run_dir / "last.safetensors", model, _meta(spec, config, recipe, done)
                )
                save_optimizer(run_dir / "last.optim.safetensors", optimizer)
    plot_history(run_dir, spec.name, [_LOSS_PANEL])
    if end < config.steps:
        return None
    metrics = _evaluated(recipe, model)
    meta = _meta(spec, config, recipe, config.steps) | {"metrics": metrics}
    weights = out_dir / f"{spec.name}.safetensors"
    save_checkpoint(weights, model, meta)
    return TrainResult(weights=weights, metrics=metrics, seconds=time.perf_counter() - started)


def _summary(metrics: dict[str, Any]) -> str:
    margins = metrics.get("margins", {})
    return ", ".join(f"{key} {value:+.3f}" for key, value in margins.items())
