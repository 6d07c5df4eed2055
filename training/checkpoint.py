"""Checkpoints that describe themselves: ``*.safetensors`` weights + a JSON sidecar.

The sidecar holds the spec name, architecture and its kwargs, the training config,
the data, steps, metrics and the git commit, so export rebuilds the module from it
alone. Optimizer state for resuming goes to a second safetensors file. No pickles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vitrine.errors import ConfigError, MissingFile
from vitrine.training.architectures import build_architecture
from vitrine.training.config import TrainConfig

__all__ = [
    "Checkpoint",
    "load_checkpoint",
    "resume_checkpoint",
    "save_checkpoint",
    "save_optimizer",
    "load_optimizer",
    "save_rng_state",
    "load_rng_state",
    "save_tensors",
]


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the rebuilt module (eval mode) and its sidecar."""

    model: nn.Module
    meta: dict[str, Any]
    path: Path


def _sidecar(weights: Path) -> Path:
    return weights.with_suffix(".json")


def save_checkpoint(weights: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Write ``weights`` (.safetensors) and its JSON sidecar atomically."""
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    partial = weights.with_suffix(".partial")
    save_file(state, str(partial), metadata={"spec": str(meta.get("spec", ""))})
    partial.replace(weights)
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    _sidecar(weights).with_suffix(".json.partial").write_text(text)
    _sidecar(weights).with_suffix(".json.partial").replace(_sidecar(weights))


def load_checkpoint(weights: Path) -> Checkpoint:
    """Rebuild the module described by the sidecar and load ``weights`` into it."""
    sidecar = _sidecar(weights)
    if not weights.is_file() or not sidecar.is_file():
        raise MissingFile(f"checkpoint needs both {weights} and {sidecar}")
    meta = json.loads(sidecar.read_text())
    model = build_architecture(meta["architecture"], meta["arch_kwargs"])
    model.load_state_dict(load_file(str(weights)))
    model.eval()
    return Checkpoint(model=model, meta=meta, path=weights)


def resume_checkpoint(run_dir: Path, config: TrainConfig) -> Checkpoint | None:
    """``run_dir``'s last checkpoint to resume from (None: start afresh); a run directory
    written with another training config is refused rather than silently mixed."""
    last = run_dir / "last.safetensors"
    if not last.is_file():
        return None
    checkpoint = load_checkpoint(last)
    if checkpoint.meta["training"] != config.as_dict():
        raise ConfigError(f"{last} was written with another config; use a new --run-dir")
    return checkpoint


def save_optimizer(path: Path, optimizer: torch.optim.Optimizer) -> None:
    """Optimizer state as safetensors (tensors) + JSON (param groups and scalars)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for index, slots in state["state"].items():
        for key, value in slots.items():
            tensors[f"{index}.{key}"] = torch.as_tensor(value).cpu().contiguous()
    save_file(tensors, str(path))
    path.with_suffix(".json").write_text(json.dumps({"param_groups": state["param_groups"]}))


def load_optimizer(path: Path, optimizer: torch.optim.Optimizer) -> None:
    """Restore what :func:`save_optimizer` wrote into ``optimizer``."""
    tensors = load_file(str(path))
    groups = json.loads(path.with_suffix(".json").read_text())["param_groups"]
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, slot = key.split(".", 1)
        state.setdefault(int(index), {})[slot] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Named tensors (a module's state, a recipe's extra state) as safetensors, from any
    device."""
    save_file({key: value.detach().cpu().contiguous() for key, value in tensors.items()}, str(path))


def save_rng_state(path: Path) -> None:
    """torch's random state, CPU and (once used) CUDA: a loop drawing from it resumes
    exactly with it."""
    generators = {"torch": torch.get_rng_state()}
    if torch.cuda.is_initialized():
        generators["cuda"] = torch.cuda.get_rng_state()
    save_file(generators, str(path))


def load_rng_state(path: Path) -> None:
    """Restore what :func:`save_rng_state` wrote."""
    generators = load_file(str(path))
    torch.set_rng_state(generators["torch"])
    if "cuda" in generators and torch.cuda.is_available():
        torch.cuda.set_rng_state(generators["cuda"])
