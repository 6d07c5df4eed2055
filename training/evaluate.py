"""`vitrine eval`: a checkpoint's validation metrics as JSON, a table and a comparison image."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from torch import nn

from vitrine.spec import ModelSpec, Task
from vitrine.training import (
    background,
    denoise,
    enhance,
    generator_eval,
    inpaint,
    latent_edit_eval,
    photo_sketch,
    stylize,
    superres,
)
from vitrine.training.checkpoint import load_checkpoint

__all__ = ["EVALUATIONS", "as_rows", "evaluate_checkpoint", "evaluate_model"]

Evaluation = tuple[
    Callable[[ModelSpec, nn.Module], dict[str, Any]],
    Callable[[ModelSpec, nn.Module], Image.Image],
]


def _of_model(
    report: Callable[[nn.Module], dict[str, Any]], image: Callable[[nn.Module], Image.Image]
) -> Evaluation:
    """The evaluation of a task whose metrics and image depend on the model alone."""
    return (lambda spec, model: report(model), lambda spec, model: image(model))


EVALUATIONS: dict[Task, Evaluation] = {
    Task.SUPER_RESOLVE: (
        lambda spec, model: superres.evaluate_superres(model, spec.output_scale),
        lambda spec, model: superres.comparison_image(model, spec.output_scale),
    ),
    Task.ENHANCE: _of_model(enhance.evaluate_enhance, enhance.comparison_image),
    Task.INPAINT: _of_model(inpaint.evaluate_inpaint, inpaint.comparison_image),
    Task.DENOISE: _of_model(denoise.evaluate_denoise, denoise.comparison_image),
    Task.REMOVE_BACKGROUND: _of_model(background.evaluate_background, background.comparison_image),
    Task.STYLIZE: _of_model(stylize.evaluate_stylize, stylize.comparison_image),
    Task.TRANSLATE: _of_model(photo_sketch.evaluate_translation, photo_sketch.comparison_image),
    Task.GENERATE: (generator_eval.evaluate_generator, generator_eval.sample_grid),
    Task.LATENT_EDIT: (latent_edit_eval.evaluate_latent_edit, latent_edit_eval.comparison_image),
}
"""Task -> (metrics report with ``mean`` and ``margins``, comparison image)."""


def evaluate_model(spec: ModelSpec, model: nn.Module) -> dict[str, Any]:
    """The validation report of ``model`` for ``spec``'s task."""
    report, _ = EVALUATIONS[spec.task]
    return report(spec, model)


def evaluate_checkpoint(spec: ModelSpec, weights: Path, out_dir: Path) -> dict[str, Any]:
    """Evaluate ``weights`` on the validation photos; writes eval.json and comparison.png."""
    checkpoint = load_checkpoint(weights)
    report_of, comparison_of = EVALUATIONS[spec.task]
    report = report_of(spec, checkpoint.model)
    report |= {"model": spec.name, "weights": weights.name, "steps": checkpoint.meta.get("steps")}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    comparison_of(spec, checkpoint.model).save(out_dir / "comparison.png")
    return report


def as_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Table columns and rows (one per method) of the mean figures."""
    metrics = list(next(iter(report["mean"].values())))
    rows = [
        [method, *(f"{values[metric]:.4f}" for metric in metrics)]
        for method, values in report["mean"].items()
    ]
    return ["method", *metrics], rows
