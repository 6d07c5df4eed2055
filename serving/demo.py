"""`vitrine demo`, the main job: serve every pipeline and call it through the client.

Starts the embedded Triton server on free loopback ports, sends each validation photo
(downscaled, as a low-resolution upload) through every pipeline, checks the raw uint8
path agrees with the pipeline, and writes the outputs, side-by-side comparisons and a
JSON report.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from vitrine.catalog import SPECS
from vitrine.client import VitrineClient
from vitrine.serving.embedded import embedded_repository
from vitrine.serving.triton import EmbeddedTriton, free_port
from vitrine.spec import ModelSpec
from vitrine.training.degradations import downscale
from vitrine.training.evaluate import labelled_row
from vitrine.training.metrics import psnr
from vitrine.training.photos import load_split

__all__ = ["run_demo"]


def _fit(photo: np.ndarray, spec: ModelSpec, scale: int) -> np.ndarray:
    """Crop ``photo`` so its low-resolution version is within the spec's limits."""
    side = spec.limits.max_side * scale
    height = min(photo.shape[0], side) // scale * scale
    width = min(photo.shape[1], side) // scale * scale
    return photo[:height, :width]


def _call_pipeline(
    client: VitrineClient, spec: ModelSpec, name: str, photo: np.ndarray, out_dir: Path
) -> dict[str, Any]:
    key, scale = spec.selector
    original = _fit(photo, spec, scale)
    upload = downscale(original, scale)
    result = client.super_resolve(Image.fromarray(upload), **{key: scale})
    size = (original.shape[1], original.shape[0])
    bicubic = np.asarray(Image.fromarray(upload).resize(size, Image.Resampling.BICUBIC))
    served = np.asarray(result.image)
    raw = client.super_resolve_array(upload, **{key: scale}).array
    folder = out_dir / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(upload).save(folder / f"{name}_input.png")
    result.image.save(folder / f"{name}_vitrine.png")
    panels = {
        "input (nearest)": Image.fromarray(upload).resize(size, Image.Resampling.NEAREST),
        "bicubic": Image.fromarray(bicubic),
        "vitrine": result.image,
        "original": Image.fromarray(original),
    }
    labelled_row(panels).save(folder / f"{name}_comparison.png")
    return {
        "photo": name,
        "input_size": [upload.shape[1], upload.shape[0]],
        "output_size": list(result.image.size),
        "latency_ms": round(result.latency_ms, 2),
        "model_version": result.model_version,
        "psnr_y_vitrine_db": psnr(original, served, border=scale, y_only=True),
        "psnr_y_bicubic_db": psnr(original, bicubic, border=scale, y_only=True),
        "raw_path_matches_pipeline": bool(np.array_equal(raw, served)),
    }


def _size(size: list[int]) -> str:
    return "x".join(map(str, size))


def run_demo(out_dir: Path | None = None) -> Path:
    """Run the demo; returns the folder holding its outputs and ``report.json``."""
    console = Console(width=110)
    out_dir = out_dir or Path("out") / f"demo-{datetime.now():%Y%m%d-%H%M%S}"
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with console.status("building the embedded repository from the shipped weights"):
        repository = embedded_repository()
    ports = {name: free_port() for name in ("grpc_port", "http_port", "metrics_port")}
    calls: list[dict[str, Any]] = []
    with console.status("starting Triton"), EmbeddedTriton(repository, **ports) as server:
        console.print(f"Triton ready: gRPC {server.grpc_url} (log {server.log_path})")
        with VitrineClient(server.grpc_url) as client:
            client.verify()
            for spec in SPECS.values():
                for name, photo in load_split("validation").items():
                    calls.append(
                        {"pipeline": spec.pipeline}
                        | _call_pipeline(client, spec, name, photo, out_dir)
                    )
    report = {"seconds": round(time.perf_counter() - started, 2), "calls": calls}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    table = Table(title="Vitrine demo: validation photos through every pipeline")
    for column in (
        "pipeline",
        "photo",
        "in -> out",
        "ms",
        "PSNR-Y vitrine",
        "bicubic",
        "raw = pipeline",
    ):
        table.add_column(column)
    for call in calls:
        table.add_row(
            call["pipeline"],
            call["photo"],
            f"{_size(call['input_size'])} -> {_size(call['output_size'])}",
            f"{call['latency_ms']:.1f}",
            f"{call['psnr_y_vitrine_db']:.2f}",
            f"{call['psnr_y_bicubic_db']:.2f}",
            "yes" if call["raw_path_matches_pipeline"] else "NO",
        )
    console.print(table)
    if not all(call["raw_path_matches_pipeline"] for call in calls):
        raise RuntimeError("the raw uint8 path disagreed with the pipeline; see report.json")
    return out_dir
