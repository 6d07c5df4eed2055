"""Tasks: what a model does, and the one handler per task that implements it.

A spec names its task. Everything task-specific that is not data hangs off that task's
handler, registered once in :data:`TASKS`:

* its **family**, which decides the shape of a request and so the load-test payload and
  the benchmark adapter (``vitrine.loadtest``);
* its **module**, which implements the task for training and serving: the recipe, the
  evaluation and comparison image, the uint8 forward the export wraps, and the demo case
  (its ``HOOKS``, a :class:`vitrine.training.hooks.TaskHooks`). It needs torch, so it is
  imported only when asked for.

This module is torch-free: the client and the load test import it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vitrine.training.hooks import TaskHooks

__all__ = ["TASKS", "Family", "Task", "TaskHandler", "handler"]


class Task(str, Enum):
    """What a model does; picks the client method family and the data pipeline."""

    SUPER_RESOLVE = "super_resolve"
    ENHANCE = "enhance"
    DENOISE = "denoise"
    INPAINT = "inpaint"
    REMOVE_BACKGROUND = "remove_background"
    GENERATE = "generate"
    LATENT_EDIT = "latent_edit"  # encode catalog images, move in latent space, decode
    STYLIZE = "stylize"
    TRANSLATE = "translate"  # photo <-> sketch


class Family(str, Enum):
    """The shape of a task's requests."""

    EDITOR = "editor"  # an image (and options) in, an edited image out
    GENERATOR = "generator"  # labels and a seed in, new catalog images out
    LATENT_EDIT = "latent_edit"  # catalog images in, images decoded from their latents out


@dataclass(frozen=True)
class TaskHandler:
    """One task's registration: its family, the module implementing it, and what
    ``vitrine eval`` measures it on."""

    task: Task
    family: Family
    module: str  # defines HOOKS (vitrine.training.hooks.TaskHooks)
    evaluated_on: str

    def hooks(self) -> TaskHooks:
        """The task's training and serving hooks (imports torch)."""
        hooks: TaskHooks = importlib.import_module(self.module).HOOKS
        return hooks


_PHOTOS = "the validation photos"


def _registry(handlers: Iterable[TaskHandler]) -> dict[Task, TaskHandler]:
    registry: dict[Task, TaskHandler] = {}
    for entry in handlers:
        if entry.task in registry:
            raise ValueError(f"duplicate handler for task {entry.task.value!r}")
        registry[entry.task] = entry
    return registry


TASKS: dict[Task, TaskHandler] = _registry(
    (
        TaskHandler(Task.SUPER_RESOLVE, Family.EDITOR, "vitrine.training.superres", _PHOTOS),
        TaskHandler(Task.ENHANCE, Family.EDITOR, "vitrine.training.enhance", _PHOTOS),
        TaskHandler(Task.DENOISE, Family.EDITOR, "vitrine.training.denoise", _PHOTOS),
        TaskHandler(Task.INPAINT, Family.EDITOR, "vitrine.training.inpaint", _PHOTOS),
        TaskHandler(Task.REMOVE_BACKGROUND, Family.EDITOR, "vitrine.training.background", _PHOTOS),
        TaskHandler(Task.STYLIZE, Family.EDITOR, "vitrine.training.stylize", _PHOTOS),
        TaskHandler(Task.TRANSLATE, Family.EDITOR, "vitrine.training.photo_sketch", _PHOTOS),
        TaskHandler(
            Task.GENERATE,
            Family.GENERATOR,
            "vitrine.training.generate",
            "judged samples vs the real catalog",
        ),
        TaskHandler(
            Task.LATENT_EDIT,
            Family.LATENT_EDIT,
            "vitrine.training.latent_edit_eval",
            "held-out catalog images",
        ),
    )
)
"""Every task's handler; a contract test fails when a :class:`Task` has none."""


def handler(task: Task) -> TaskHandler:
    """The handler of ``task``."""
    return TASKS[task]
