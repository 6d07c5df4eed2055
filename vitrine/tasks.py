"""Tasks: what a model does, and the one handler per task that implements it.

A spec names its task. Everything task-specific that is not data hangs off that task's
handler, registered once in :data:`TASKS`:

* its **family**, which decides the shape of a request and so the load-test payload and
  the benchmark adapter (``vitrine.loadtest``);
* how its evaluation report is read (:class:`Scoring`), for the model cards and the
  README's results table (``vitrine.reporting``);
* its **module**, which implements the task for training and serving: the recipe, the
  evaluation and comparison image, the uint8 forward the export wraps, and the demo case
  (its ``HOOKS``, a :class:`vitrine.training.hooks.TaskHooks`). It needs torch, so it is
  imported only when asked for (:func:`vitrine.training.hooks.task_hooks`).

This module is torch-free: the client and the load test import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

__all__ = ["TASKS", "Family", "Scoring", "Task", "TaskHandler", "handler"]


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
class Scoring:
    """How a task's evaluation report (``eval.json``) names its rows, and its headline.

    ``model`` is the served model's row of ``mean``; ``baselines`` are the rows its quality
    targets compare with (any other row, such as the untouched input, is a reference). The
    README's results table shows ``headline`` (a metric of those rows, called ``label``)
    and decides it by the quality target ``target``.
    """

    model: str
    baselines: tuple[str, ...]
    headline: str
    label: str
    target: str


@dataclass(frozen=True)
class TaskHandler:
    """One task's registration: its family, the module implementing it, what ``vitrine
    eval`` measures it on and how its report is read."""

    task: Task
    family: Family
    module: str  # defines HOOKS (vitrine.training.hooks.TaskHooks)
    evaluated_on: str
    scoring: Scoring


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
        TaskHandler(
            Task.SUPER_RESOLVE,
            Family.EDITOR,
            "vitrine.training.superres",
            _PHOTOS,
            Scoring("model", ("bicubic",), "psnr_y", "PSNR-Y, dB", "psnr_y_over_bicubic_db"),
        ),
        TaskHandler(
            Task.ENHANCE,
            Family.EDITOR,
            "vitrine.training.enhance",
            _PHOTOS,
            Scoring(
                "model",
                ("clahe", "autocontrast", "grey_world"),
                "psnr",
                "PSNR, dB",
                "psnr_over_best_baseline_db",
            ),
        ),
        TaskHandler(
            Task.DENOISE,
            Family.EDITOR,
            "vitrine.training.denoise",
            _PHOTOS,
            Scoring(
                "model",
                ("cv2_nl_means", "skimage_nl_means", "skimage_bilateral"),
                "psnr_sigma25",
                "PSNR at σ 25, dB",
                "psnr_over_best_baseline_db_sigma25",
            ),
        ),
        TaskHandler(
            Task.INPAINT,
            Family.EDITOR,
            "vitrine.training.inpaint",
            _PHOTOS,
            Scoring(
                "model",
                ("telea", "navier_stokes"),
                "hole_psnr",
                "PSNR in the holes, dB",
                "hole_psnr_over_best_baseline_db",
            ),
        ),
        TaskHandler(
            Task.REMOVE_BACKGROUND,
            Family.EDITOR,
            "vitrine.training.background",
            _PHOTOS,
            Scoring("model", ("grabcut",), "iou", "IoU", "iou_over_grabcut"),
        ),
        TaskHandler(
            Task.STYLIZE,
            Family.EDITOR,
            "vitrine.training.stylize",
            _PHOTOS,
            Scoring(
                "model",
                ("histogram_match",),
                "style_distance",
                "style distance",
                "style_distance_below_histogram_match",
            ),
        ),
        TaskHandler(
            Task.TRANSLATE,
            Family.EDITOR,
            "vitrine.training.photo_sketch",
            _PHOTOS,
            Scoring(
                "vitrine photo_to_sketch",
                ("inverted sobel edges", "grey photo"),
                "sketch_psnr_db",
                "sketch PSNR, dB",
                "sketch_psnr_over_best_naive_db",
            ),
        ),
        TaskHandler(
            Task.GENERATE,
            Family.GENERATOR,
            "vitrine.training.generators",
            "judged samples vs the real catalog",
            Scoring(
                "generator",
                ("naive baseline",),
                "category_consistency",
                "category consistency",
                "category_consistency",
            ),
        ),
        TaskHandler(
            Task.LATENT_EDIT,
            Family.LATENT_EDIT,
            "vitrine.training.latent_edit_eval",
            "held-out catalog images",
            Scoring(
                "reconstruction",
                ("label mean (baseline)",),
                "psnr_db",
                "reconstruction PSNR, dB",
                "reconstruction_psnr_over_label_mean_db",
            ),
        ),
    )
)
"""Every task's handler; a contract test fails when a :class:`Task` has none."""


def handler(task: Task) -> TaskHandler:
    """The handler of ``task``."""
    return TASKS[task]
