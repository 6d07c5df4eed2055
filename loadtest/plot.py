"""The benchmark figure: throughput and p50/p95 latency against concurrency, per system."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_large_run", "plot_run", "series"]

_STYLE = {
    "limit": ("black", "onnxruntime in-process (limit)"),
    "raw": ("tab:blue", "Vitrine raw uint8"),
    "pipeline": ("tab:green", "Vitrine pipeline (bytes)"),
    "peer": ("tab:red", "naive FastAPI + PyTorch"),
}


def series(
    cells: Sequence[Mapping[str, Any]],
) -> dict[tuple[str, int], dict[str, list[Mapping[str, Any]]]]:
    """Cells grouped by (model, size) then system, sorted by concurrency; the limit keeps
    its best thread setting per level."""
    grouped: dict[tuple[str, int], dict[str, dict[int, Mapping[str, Any]]]] = {}
    for cell in cells:
        by_level = grouped.setdefault((cell["model"], cell["size"]), {}).setdefault(
            cell["system"], {}
        )
        level = cell["concurrency"]
        if level not in by_level or cell["rps"] > by_level[level]["rps"]:
            by_level[level] = cell
    return {
        key: {system: [levels[c] for c in sorted(levels)] for system, levels in systems.items()}
        for key, systems in sorted(grouped.items())
    }


def plot_run(run: Mapping[str, Any], path: Path) -> Path:
    """Write the figure of one bench run: a row per (model, size), columns throughput,
    p50 and p95 latency, a line per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = series(run["cells"])
    rows = max(1, len(groups))
    figure, axes = plt.subplots(rows, 3, figsize=(15, 3.6 * rows), squeeze=False)
    for row, ((model, size), systems) in enumerate(groups.items()):
        for column, (key, title) in enumerate(
            (("rps", "throughput (req/s)"), ("p50_ms", "p50 latency (ms)"), ("p95_ms", "p95 (ms)"))
        ):
            axis = axes[row][column]
            for system, cells in systems.items():
                color, label = _STYLE.get(system, ("grey", system))
                levels = [cell["concurrency"] for cell in cells]
                axis.plot(levels, [cell[key] for cell in cells], "o-", color=color, label=label)
            axis.set_xscale("log", base=2)
            levels = sorted({c["concurrency"] for cells in systems.values() for c in cells})
            axis.set_xticks(levels, [str(level) for level in levels])
            axis.set_xlabel("concurrency")
            axis.set_title(f"{model} {size}×{size}: {title}")
            axis.grid(alpha=0.3)
            if key != "rps":
                axis.set_yscale("log")
        axes[row][0].legend(fontsize=8)
    label = run.get("label") or ""
    figure.suptitle(f"vitrine bench {run.get('time', '')} {label}".strip())
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def plot_large_run(run: Mapping[str, Any], path: Path) -> Path:
    """Write the figure of one ``--large`` run: per (model, photo), bars of each system's
    latency, throughput and peak memory, each labelled with its concurrency; a system that
    did not succeed gets its outcome written where its bar would be."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(run["summary"])
    labels = [f"{row['model']}\n{row['photo']} ({row['megapixels']:g} MP)" for row in rows]
    panels = (  # figure, title, its concurrency, the outcome that replaces it
        ("latency_s", "latency (s)", "latency_concurrency", 0),
        ("photos_per_min", "throughput (photos/min)", "throughput_concurrency", -1),
        ("peak_memory_gib", "peak memory (GiB)", None, None),
    )
    systems = [s for s in ("pipeline", "peer") if any(s in row for row in rows)]
    height = 0.8 / max(len(systems), 1)
    figure, axes = plt.subplots(1, 3, figsize=(18, 0.6 * len(rows) + 2.0), sharey=True)
    for axis, (key, title, level_key, outcome_index) in zip(axes, panels, strict=True):
        for offset, system in enumerate(systems):
            color, label = _STYLE[system]
            for index, row in enumerate(rows):
                figures = row.get(system)
                if figures is None:
                    continue
                y = index + (offset - (len(systems) - 1) / 2) * height
                value = figures[key]
                level = f" (c={figures[level_key]})" if level_key else ""
                if value is not None:
                    axis.barh(y, value, height, color=color, label=label if index == 0 else None)
                    axis.text(value, y, f" {value:.3g}{level}", va="center", fontsize=7)
                elif outcome_index is not None:
                    outcome = list(figures["outcomes"].values())[outcome_index]
                    axis.text(0, y, f" {outcome}{level}", va="center", fontsize=7, color=color)
        axis.set_title(title)
        axis.grid(axis="x", alpha=0.3)
        axis.margins(x=0.25)
    axes[0].set_yticks(range(len(rows)), labels, fontsize=7)
    axes[0].invert_yaxis()
    handles, names = axes[2].get_legend_handles_labels()
    figure.legend(handles, names, loc="upper right", ncol=len(systems), fontsize=8)
    label = run.get("label") or ""
    figure.suptitle(f"vitrine bench --large {run.get('time', '')} {label}".strip(), x=0.3)
    figure.tight_layout(rect=(0, 0, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
