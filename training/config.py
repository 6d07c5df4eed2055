"""Training configs: one TOML file per model in ``training/configs``, with presets."""

from __future__ import annotations

import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from vitrine.errors import ConfigError, MissingFile, UnknownName

__all__ = ["CONFIG_DIR", "PRECISIONS", "TrainConfig", "load_config"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (the ``[train]`` table plus a preset)."""

    preset: str
    steps: int
    batch_size: int
    patch_size: int  # high-resolution patch side
    learning_rate: float
    min_learning_rate: float
    seed: int
    blur_probability: float
    jpeg_probability: float
    checkpoint_every: int
    eval_every: int
    recipe: dict[str, Any] = field(default_factory=dict)  # task-specific settings ([recipe])
    data: dict[str, Any] = field(default_factory=dict)  # the corpus ([data]; see corpus.py)
    precision: str = "float32"  # or "bfloat16": autocast, channels-last (see trainer.py)
    weight_decay: float = 0.0  # decoupled (AdamW-style) decay of every weight, per unit rate

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r}: expected one of {PRECISIONS}")

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, as written into the checkpoint sidecar. An empty ``data`` (the default
        corpus) is left out, so sidecars written before ``[data]`` existed still match."""
        values = asdict(self)
        if not values["data"]:
            del values["data"]
        return values

    def end_step(self, stop_after: int | None) -> int:
        """The step a run pausing after ``stop_after`` steps (None: never) stops at."""
        return self.steps if stop_after is None else min(stop_after, self.steps)


def load_config(name: str, preset: str) -> TrainConfig:
    """The config of model ``name`` with preset ``preset`` applied over ``[train]``.

    A ``[recipe]`` table holds task-specific settings and a ``[data]`` table the corpus;
    a preset overrides them in its own ``recipe`` and ``data`` sub-tables.
    """
    path = CONFIG_DIR / f"{name}.toml"
    if not path.is_file():
        raise MissingFile(f"no training config for {name!r} (expected {path})")
    document = tomllib.loads(path.read_text())
    presets = document.get("presets", {})
    if preset not in presets:
        raise UnknownName(f"{path.name}: unknown preset {preset!r}; known: {sorted(presets)}")
    overrides = dict(presets[preset])
    recipe = {**document.get("recipe", {}), **overrides.pop("recipe", {})}
    data = {**document.get("data", {}), **overrides.pop("data", {})}
    values = {**document["train"], **overrides, "preset": preset, "recipe": recipe, "data": data}
    known = {field.name for field in fields(TrainConfig)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"{path.name}: unknown keys {sorted(unknown)}")
    required = {
        field.name
        for field in fields(TrainConfig)
        if field.default is MISSING and field.default_factory is MISSING
    }
    missing = required - set(values)
    if missing:
        raise ConfigError(f"{path.name}: missing keys {sorted(missing)}")
    return TrainConfig(**values)
