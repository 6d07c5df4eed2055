"""The training and serving side of a task handler (``vitrine.tasks``): its ``HOOKS``.

Each task's module defines one :class:`TaskHooks` named ``HOOKS``; the task's handler in
:data:`vitrine.tasks.TASKS` names that module, so the hooks are registered exactly once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy.typing as npt
import torch
from PIL import Image
from torch import nn

from vitrine.spec import ModelSpec
from vitrine.tasks import Task, handler

if TYPE_CHECKING:
    from vitrine.training.recipe import Recipe

__all__ = ["DemoCase", "TaskHooks", "Uint8Forward", "task_hooks"]


Uint8Forward = Callable[..., torch.Tensor]
"""The served forward of a task: ``(model, image, *options)``, the float model on a uint8
NHWC batch (plus the core model's option tensors, batch first) -> float NCHW in [0, 1],
before the rounding to uint8 that :class:`vitrine.training.uint8_wrapper.Uint8ImageModel`
adds. Each task's forward takes its own options, so its arguments are not typed here."""


@dataclass(frozen=True)
class DemoCase:
    """What the demo sends for one photo, what it should get back, and a classical rival."""

    upload: npt.NDArray[Any]
    reference: npt.NDArray[Any]
    baseline_name: str
    baseline: npt.NDArray[Any]
    options: dict[str, Any] = field(default_factory=dict)  # the call's option keywords


@dataclass(frozen=True)
class TaskHooks:
    """Everything task-specific on the training and serving side.

    ``recipe`` picks the recipe class that trains a spec of the task (None: its specs serve
    another spec's checkpoint); ``evaluate`` and ``comparison`` make ``vitrine eval``'s
    report and image; ``evaluate_full_size`` adds an evaluation at real-photo sizes that
    only ``vitrine eval`` runs (too slow for training's; None: the task has none);
    ``demo`` makes an editor's demo case from a validation photo (None: the demo shows the
    family's grid instead).
    """

    forward: Uint8Forward
    evaluate: Callable[[ModelSpec, nn.Module], dict[str, Any]]
    comparison: Callable[[ModelSpec, nn.Module], Image.Image]
    recipe: Callable[[ModelSpec], type[Recipe[Any]]] | None = None
    evaluate_full_size: Callable[[ModelSpec, nn.Module], dict[str, Any]] | None = None
    demo: Callable[[ModelSpec, str, npt.NDArray[Any]], DemoCase] | None = None


def task_hooks(task: Task) -> TaskHooks:
    """The hooks of ``task``: the ``HOOKS`` of the module its handler names."""
    module = handler(task).module
    hooks = getattr(importlib.import_module(module), "HOOKS", None)
    if not isinstance(hooks, TaskHooks):
        raise TypeError(f"{module} defines no HOOKS (a TaskHooks) for task {task.value!r}")
    return hooks
