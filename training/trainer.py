"""The training loop shared by every model: seeded, resumable, with a progress bar.

The task's recipe (``vitrine.training.recipe``) says what its networks are and what one
step does; this loop owns everything else, the same way for every model:

* **device**: ``cpu``, ``cuda`` or ``auto`` (CUDA where available). The networks and each
  batch move there; evaluation runs on a float32 copy on the CPU, as export and the CPU
  server see the weights.
* **precision**: with ``precision = "bfloat16"`` each step's forward passes run under
  bfloat16 autocast with the trained networks in channels-last layout; weights, optimiser
  state and losses stay float32. On a CPU this needs bfloat16 instructions (AMX or AVX-512
  BF16): without them autocast emulates bfloat16, far slower than float32 (a denoise step of
  4 x 128 x 128 pixels took 41 s against 1.1 s), so the loop warns. The checkpoint records
  the CPU's capability, since results depend on the kernels that ran.
* **optimisers**: Adam per trained network, with the recipe's betas and learning-rate
  schedule and the config's decoupled weight decay.
* **prefetch**: batches depend on the step alone, so a worker thread makes the next one
  while the current step runs; with ``workers`` > 0, that many worker processes (a torch
  DataLoader) make batches ahead instead, so a GPU is not starved. The batches, and so the
  weights, are the same either way.
* **time budget**: with ``budget_seconds`` the run ends early once its training time
  passes the budget, and the final checkpoint records the steps it did (``steps``) beside
  the planned ones (``planned_steps``).
* **progress, history and checkpoints**: ``history.csv`` and the bar, ``loss.png``, and
  every ``checkpoint_every`` steps the state of every network, optimiser, torch's random
  generators and the recipe's own extra state, so a paused run resumes exactly.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader, Dataset

from vitrine.errors import ConfigError, UnknownName
from vitrine.provenance import git_commit
from vitrine.spec import ModelSpec
from vitrine.training.checkpoint import (
    load_optimizer,
    load_rng_state,
    resume_checkpoint,
    save_checkpoint,
    save_optimizer,
    save_rng_state,
    save_tensors,
)
from vitrine.training.config import TrainConfig, load_config
from vitrine.training.history import plot_history, step_log
from vitrine.training.hooks import task_hooks
from vitrine.training.recipe import Recipe

__all__ = ["DEVICES", "TrainResult", "native_bfloat16", "resolve_device", "train"]

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainResult:
    """Where the final checkpoint went and what it measured."""

    weights: Path
    metrics: dict[str, Any]
    seconds: float


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda``, or for ``auto`` CUDA where torch sees a GPU, else the CPU."""
    if name not in DEVICES:
        raise UnknownName(f"device {name!r}: expected one of {DEVICES}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device 'cuda' asked for, but torch {torch.__version__} sees no CUDA GPU"
        )
    return torch.device(name)


def native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 instructions (AMX or AVX-512 BF16) for oneDNN to use."""
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def _warn_if_emulated(spec: ModelSpec, config: TrainConfig, device: torch.device) -> None:
    """Warn when a bfloat16 config meets a CPU that can only emulate bfloat16."""
    if device.type == "cpu" and config.precision == "bfloat16" and not native_bfloat16():
        warnings.warn(
            f"{spec.name}: precision 'bfloat16' on a CPU without bfloat16 instructions "
            f"({torch.backends.cpu.get_cpu_capability()}, no AMX or AVX-512 BF16): autocast "
            "emulates them, tens of times slower than float32. Expect the run to take far "
            'longer than the config says; precision = "float32" is faster here but does '
            "not reproduce the shipped weights.",
            RuntimeWarning,
            stacklevel=3,
        )


def _meta(
    spec: ModelSpec, config: TrainConfig, recipe: Recipe[Any], step: int, device: torch.device
) -> dict[str, Any]:
    meta = {
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
        "device": device.type,
    }
    if device.type == "cuda":
        meta["gpu"] = torch.cuda.get_device_name(device)
    return meta


class _StepBatches(Dataset[Any]):
    """The recipe's batches of steps ``start`` to ``end`` as a dataset, for worker processes."""

    def __init__(self, recipe: Recipe[Any], start: int, end: int) -> None:
        self.recipe, self.start, self.end = recipe, start, end

    def __len__(self) -> int:
        return self.end - self.start

    def __getitem__(self, index: int) -> Any:
        return self.recipe.batch(self.start + index)


def _as_made(batch: Any) -> Any:
    """The batch as the recipe made it (the DataLoader's conversion, which would turn arrays
    into tensors, left out)."""
    return batch


def _batches(
    recipe: Recipe[Any], start: int, end: int, workers: int, device: torch.device
) -> Iterable[Any]:
    """The batches of steps ``start`` to ``end`` in order: made one ahead on a thread, or
    with ``workers`` processes several ahead (pinned for a GPU)."""
    if workers > 0:
        return DataLoader(
            _StepBatches(recipe, start, end),
            batch_size=None,
            num_workers=workers,
            collate_fn=_as_made,
            pin_memory=device.type == "cuda",
            prefetch_factor=4,
            multiprocessing_context="fork",
        )
    return _prefetched(recipe, start, end)


def _prefetched(recipe: Recipe[Any], start: int, end: int) -> Iterator[Any]:
    """Each batch made on a worker thread while the step before it runs."""
    with ThreadPoolExecutor(max_workers=1) as prefetch:
        upcoming = prefetch.submit(recipe.batch, start) if start < end else None
        for step in range(start, end):
            assert upcoming is not None
            batch = upcoming.result()
            if step + 1 < end:
                upcoming = prefetch.submit(recipe.batch, step + 1)
            yield batch


def _autocast(config: TrainConfig, device: torch.device) -> AbstractContextManager[Any]:
    """The context each step's forward passes run in: bfloat16 autocast where configured."""
    enabled = config.precision == "bfloat16"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def _train_mode(networks: Mapping[str, nn.Module], config: TrainConfig) -> None:
    """The trained networks in training mode and the layout their steps run fastest in
    (channels-last for bfloat16)."""
    for network in networks.values():
        if config.precision == "bfloat16":
            # Module.to's overloads leave out memory_format, which it takes.
            network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        network.train()


def _for_evaluation(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in eval mode and the default layout, as saved and exported; a CPU copy when
    it trains elsewhere (evaluation and its baselines run on the CPU)."""
    if device.type != "cpu":
        model = copy.deepcopy(model).cpu()
    model = model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    return model.eval()


def _to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor in it (nested in tuples, lists or dicts) on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple | list):
        return type(batch)(_to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: _to_device(value, device) for key, value in batch.items()}
    return batch


class _RunState:
    """The files of ``run_dir`` that a resume needs. ``last.safetensors`` (+ .json, holding
    the step) is the served module and is written last; beside it each other network, each
    optimiser, torch's random state and the recipe's extra state."""

    def __init__(self, run_dir: Path, recipe: Recipe[Any]) -> None:
        self.run_dir = run_dir
        self.recipe = recipe

    def _path(self, name: str) -> Path:
        return self.run_dir / f"last.{name}.safetensors"

    def _other_networks(self) -> Iterator[tuple[str, nn.Module]]:
        served = self.recipe.served
        return ((n, m) for n, m in self.recipe.networks().items() if m is not served)

    def save(self, optimizers: Mapping[str, torch.optim.Optimizer], meta: dict[str, Any]) -> None:
        for name, network in self._other_networks():
            save_tensors(self._path(name), network.state_dict())
        for name, optimizer in optimizers.items():
            save_optimizer(self._path(f"{name}.optim"), optimizer)
        save_rng_state(self._path("rng"))
        extra = self.recipe.extra_state()
        if extra:
            save_tensors(self._path("extra"), extra)
        save_checkpoint(self.run_dir / "last.safetensors", self.recipe.served, meta)

    def resume(
        self, optimizers: Mapping[str, torch.optim.Optimizer], config: TrainConfig
    ) -> tuple[int, float]:
        """Load the state of ``run_dir`` if there is one: (the step to start at, the seconds
        the run has trained so far)."""
        checkpoint = resume_checkpoint(self.run_dir, config)
        if checkpoint is None:
            return 0, 0.0
        self.recipe.served.load_state_dict(checkpoint.model.state_dict())
        for name, network in self._other_networks():
            network.load_state_dict(load_file(str(self._path(name))))
        for name, optimizer in optimizers.items():
            load_optimizer(self._path(f"{name}.optim"), optimizer)
        load_rng_state(self._path("rng"))
        if self._path("extra").is_file():
            self.recipe.load_extra_state(load_file(str(self._path("extra"))))
        return int(checkpoint.meta["steps"]), float(checkpoint.meta.get("wall_seconds", 0.0))


def _recipe(spec: ModelSpec, config: TrainConfig) -> Recipe[Any]:
    chooser = task_hooks(spec.task).recipe
    if chooser is None:
        raise ConfigError(f"{spec.name}: task {spec.task.value!r} has no training recipe")
    return chooser(spec)(spec, config)


def train(
    spec: ModelSpec,
    preset: str,
    *,
    run_dir: Path,
    out_dir: Path,
    resume: bool = True,
    progress: bool = True,
    stop_after: int | None = None,
    device: str = "cpu",
    workers: int = 0,
    budget_seconds: float | None = None,
) -> TrainResult | None:
    """Train ``spec`` with its config ``preset`` on ``device``; the final checkpoint goes to
    ``out_dir``.

    ``stop_after`` pauses once that many steps are done (state saved in ``run_dir``, result
    None); a later call with ``resume`` carries on exactly where it stopped. ``workers``
    processes make the batches (0: one thread). ``budget_seconds`` ends the run early, with
    its final checkpoint, once it has trained that long (the time before the first step
    and the final evaluation not counted).
    """
    if spec.weights_from:
        raise ConfigError(
            f"{spec.name} serves the checkpoint of {spec.weights_from}: "
            f"train that (vitrine train {spec.weights_from})"
        )
    started = time.perf_counter()
    config = load_config(spec.name, preset)
    target = resolve_device(device)
    _warn_if_emulated(spec, config, target)
    torch.manual_seed(config.seed)
    recipe = _recipe(spec, config)
    recipe.build()
    for network in recipe.networks().values():
        network.to(target)
    trained = recipe.optimized()
    networks = {name: entry.network for name, entry in trained.items()}
    _train_mode(networks, config)
    optimizers = {
        name: torch.optim.Adam(
            entry.network.parameters(),
            lr=entry.learning_rate(0),
            betas=entry.betas,
            weight_decay=config.weight_decay,
            decoupled_weight_decay=True,
        )
        for name, entry in trained.items()
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    state = _RunState(run_dir, recipe)
    start, trained_before = state.resume(optimizers, config) if resume else (0, 0.0)

    def meta(step: int) -> dict[str, Any]:
        seconds = trained_before + time.perf_counter() - started
        return _meta(spec, config, recipe, step, target) | {"wall_seconds": round(seconds, 1)}

    end = config.end_step(stop_after)
    done, spent = start, False
    first_step = time.perf_counter()
    with step_log(
        run_dir,
        spec.name,
        columns=recipe.losses,
        start=start,
        total=config.steps,
        progress=progress,
        shown=recipe.shown,
    ) as log:
        for step, made in zip(
            range(start, end), _batches(recipe, start, end, workers, target), strict=True
        ):
            for name, entry in trained.items():
                for group in optimizers[name].param_groups:
                    group["lr"] = entry.learning_rate(step)
            batch = _to_device(made, target)
            losses = recipe.train_step(batch, step, optimizers, lambda: _autocast(config, target))
            done = step + 1
            recipe.after_step(done)
            log.record(done, losses)
            spent = budget_seconds is not None and (
                time.perf_counter() - first_step >= budget_seconds
            )
            observe = done % config.eval_every == 0 and done < config.steps and not spent
            save = done % config.checkpoint_every == 0 or done == end or spent
            if observe or save:
                recipe.prepare_served()
            if observe:
                note = recipe.observe(_for_evaluation(recipe.served, target), run_dir, done)
                _train_mode(networks, config)
                if note:
                    log.note(note)
            if save:
                log.flush()
                state.save(optimizers, meta(done))
            if spent:
                break
    plot_history(run_dir, spec.name, recipe.panels)
    if done < config.steps and not spent:
        return None
    served = _for_evaluation(recipe.served, target)
    metrics = recipe.evaluate(served)
    weights = out_dir / f"{spec.name}.safetensors"
    final = meta(done) | {"metrics": metrics, "data_workers": workers}
    if done < config.steps:
        final |= {"planned_steps": config.steps, "budget_seconds": budget_seconds}
    save_checkpoint(weights, served, final)
    return TrainResult(weights=weights, metrics=metrics, seconds=time.perf_counter() - started)
