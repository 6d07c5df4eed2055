"""The gpu-torch benchmark figure: throughput per system, and where a pipeline's time goes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["plot_gpu_torch_run"]

_BARS: tuple[tuple[str, str, Mapping[str, Any]], ...] = (  # (label, system, match)
    ("limit b8 (device)", "limit", {"batch": 8}),
    ("limit b8 (host copies)", "limit_host", {"batch": 8}),
    ("raw c=1", "raw", {"concurrency": 1}),
    ("raw top", "raw", {}),
    ("pipeline jpeg", "pipeline", {"output_format": "jpeg"}),
    ("pipeline png", "pipeline", {"output_format": "png"}),
    ("pipeline webp", "pipeline", {"output_format": "webp"}),
)


def _images_per_s(cells: list[Mapping[str, Any]], system: str, match: Mapping[str, Any]) -> float:
    chosen = [
        cell
        for cell in cells
        if cell["system"] == system and all(cell.get(k) == v for k, v in match.items())
    ]
    return max((float(cell["images_per_s"]) for cell in chosen), default=0.0)


def plot_gpu_torch_run(run: Mapping[str, Any], path: Path) -> Path:
    """A row per (model, size): images per second of each system, and the step shares of
    each pipeline format."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({(cell["model"], cell["size"]) for cell in run["cells"]})
    figure, axes = plt.subplots(len(keys), 2, figsize=(13, 3.6 * len(keys)), squeeze=False)
    device = ", ".join(run["environment"]["device"])
    for row, (model, size) in enumerate(keys):
        cells = [cell for cell in run["cells"] if (cell["model"], cell["size"]) == (model, size)]
        values = [_images_per_s(cells, system, match) for _, system, match in _BARS]
        left = axes[row][0]
        left.barh([label for label, _, _ in _BARS], values, color="tab:blue")
        left.invert_yaxis()
        left.set_xlabel("images / s")
        left.set_title(f"{model} {size}px on {device}")
        right = axes[row][1]
        pipelines = [cell for cell in cells if cell["system"] == "pipeline"]
        steps = list(pipelines[0]["steps"]) if pipelines else []
        offsets = [0.0] * len(pipelines)
        for step in steps:
            shares = [cell["steps"][step]["share"] for cell in pipelines]
            right.barh(
                [cell["output_format"] for cell in pipelines], shares, left=offsets, label=step
            )
            offsets = [a + b for a, b in zip(offsets, shares, strict=True)]
        right.set_xlim(0, 1)
        right.set_xlabel("share of Triton time per request (queue + compute)")
        right.set_title("pipeline steps")
        if steps:
            right.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
