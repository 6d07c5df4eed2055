"""`vitrine eval`: a checkpoint's validation metrics as JSON, a table and a comparison image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from vitrine.reporting import COMPARISON_FILE, COMPARISON_QUALITY
from vitrine.spec import ModelSpec
from vitrine.training.checkpoint import load_checkpoint
from vitrine.training.hooks import task_hooks

__all__ = ["as_rows", "evaluate_checkpoint", "evaluate_model"]


def evaluate_model(spec: ModelSpec, model: nn.Module) -> dict[str, Any]:
    """The validation report of ``model`` for ``spec``'s task (``mean`` and ``margins``)."""
    return task_hooks(spec.task).evaluate(spec, model)


def evaluate_checkpoint(spec: ModelSpec, weights: Path, out_dir: Path) -> dict[str, Any]:
    """Evaluate ``weights`` on the validation photos (and at full size, where the task has
    such an evaluation: ``full_size``); writes eval.json and the comparison image."""
    checkpoint = load_checkpoint(weights)
    hooks = task_hooks(spec.task)
    report = hooks.evaluate(spec, checkpoint.model)
    if hooks.evaluate_full_size is not None:
        report["full_size"] = hooks.evaluate_full_size(spec, checkpoint.model)
    report |= {"model": spec.name, "weights": weights.name, "steps": checkpoint.meta.get("steps")}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    comparison = hooks.comparison(spec, checkpoint.model).convert("RGB")
    comparison.save(out_dir / COMPARISON_FILE, quality=COMPARISON_QUALITY)
    return report


def as_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Table columns and rows (one per method) of the mean figures."""
    metrics = list(next(iter(report["mean"].values())))
    rows = [
        [method, *(f"{values[metric]:.4f}" for metric in metrics)]
        for method, values in report["mean"].items()
    ]
    return ["method", *metrics], rows
