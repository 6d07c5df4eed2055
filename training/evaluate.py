"""`vitrine eval`: a checkpoint's validation metrics as JSON, a table and a comparison image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from vitrine.spec import ModelSpec
from vitrine.training.checkpoint import load_checkpoint
from vitrine.training.degradations import downscale
from vitrine.training.photos import load_split
from vitrine.training.superres import evaluate_superres
from vitrine.training.uint8_wrapper import run_uint8

__all__ = ["as_rows", "comparison_image", "evaluate_checkpoint", "labelled_row"]

_CROP = 96  # low-resolution side of each comparison crop (smaller photos: as large as fits)


def evaluate_checkpoint(spec: ModelSpec, weights: Path, out_dir: Path) -> dict[str, Any]:
    """Evaluate ``weights`` on the validation photos; writes eval.json and comparison.png."""
    checkpoint = load_checkpoint(weights)
    scale = int(spec.arch_kwargs["scale"])
    report = evaluate_superres(checkpoint.model, scale)
    report |= {"model": spec.name, "weights": weights.name, "steps": checkpoint.meta.get("steps")}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    comparison_image(checkpoint.model, scale).save(out_dir / "comparison.png")
    return report


def comparison_image(model: Any, scale: int) -> Image.Image:
    """Centre crops of each validation photo: input, bicubic, Lanczos, Vitrine, original."""
    rows = []
    for photo in load_split("validation").values():
        side = min(_CROP * scale, *photo.shape[:2]) // scale * scale
        top, left = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
        original = photo[top : top + side, left : left + side]
        small = downscale(original, scale)
        image = Image.fromarray(small)
        panels = {
            "input (nearest)": image.resize((side, side), Image.Resampling.NEAREST),
            "bicubic": image.resize((side, side), Image.Resampling.BICUBIC),
            "lanczos": image.resize((side, side), Image.Resampling.LANCZOS),
            "vitrine": Image.fromarray(run_uint8(model, small)),
            "original": Image.fromarray(original),
        }
        rows.append(labelled_row(panels))
    grid = Image.new(
        "RGB", (max(row.width for row in rows), sum(row.height for row in rows)), "white"
    )
    top = 0
    for row in rows:
        grid.paste(row, (0, top))
        top += row.height
    return grid


def labelled_row(panels: dict[str, Image.Image]) -> Image.Image:
    """Equal-size panels side by side, each with its label above."""
    width, height = next(iter(panels.values())).size
    row = Image.new("RGB", (width * len(panels), height + 16), "white")
    draw = ImageDraw.Draw(row)
    for index, (label, panel) in enumerate(panels.items()):
        row.paste(panel, (index * width, 16))
        draw.text((index * width + 4, 2), label, fill="black")
    return row


def as_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    """Table rows (method, PSNR-Y, PSNR-RGB, SSIM-Y, SSIM-RGB) of the mean figures."""
    return [
        (method, *(f"{values[key]:.4f}" for key in ("psnr_y", "psnr_rgb", "ssim_y", "ssim_rgb")))
        for method, values in report["mean"].items()
    ]
