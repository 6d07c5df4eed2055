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

EVALUATIONS: dict[Task, Evaluation] = {
    Task.SUPER_RESOLVE: (
        lambda spec, model: superres.evaluate_superres(model, spec.output_scale),
        lambda spec, model: superres.comparison_image(model, spec.output_scale),
    ),
    Task.ENHANCE: (
        lambda spec, model: enhance.evaluate_enhance(model),
        lambda spec, model: enhance.comparison_image(model),
    ),
    Task.INPAINT: (
        lambda spec, model: inpaint.evaluate_inpaint(model),
        lambda spec, model: inpaint.comparison_image(model),
    ),
    Task.DENOISE: (
        lambda spec, model: denoise.evaluate_denoise(model),
        lambda spec, model: denoise.comparison_image(model),
    ),
    Task.REMOVE_BACKGROUND: (
        lambda spec, model: background.evaluate_background(model),
        lambda spec, model: background.comparison_image(model),
    ),
    Task.STYLIZE: (
        lambda spec, model: stylize.evaluate_stylize(model),
        lambda spec, model: stylize.comparison_image(model),
    ),
    Task.TRANSLATE: (
        lambda spec, model: photo_sketch.evaluate_translation(model),
        lambda spec, model: photo_sketch.comparison_image(model),
    ),
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
