"""`vitrine demo`, the main job: serve every pipeline and call it through the client.

Starts the embedded Triton server on free loopback ports, sends each validation photo
through every editor's pipeline (as that task's upload: downscaled for super-resolution,
badly exposed for enhancement, noisy for denoising, watermarked for inpainting, a product on
a busy scene for background removal) and asks every generator for each (category, colour)
pair (and a style-mixing generator for its coarse x fine styles), makes VAE variations and
interpolations of held-out catalog images, checks the raw uint8 path agrees with the
pipeline, and writes the outputs, side-by-side comparisons with a classical baseline
(editors), a grid per generator and per latent editor, and a JSON report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from rich.console import Console
from rich.table import Table

from vitrine import paths
from vitrine.catalog import SPECS
from vitrine.client import VitrineClient
from vitrine.products import CAMPAIGN_STYLES
from vitrine.serving.embedded import embedded_repository
from vitrine.serving.triton import EmbeddedTriton, free_port
from vitrine.spec import ModelSpec, Task
from vitrine.training import background, denoise, enhance, inpaint, photo_sketch, stylize
from vitrine.training.catalog_data import load_catalog
from vitrine.training.degradations import downscale
from vitrine.training.grids import labelled_row, stack_rows
from vitrine.training.metrics import psnr
from vitrine.training.photos import VALIDATION_PHOTOS, load_split
from vitrine.training.styles import style_image

__all__ = ["run_demo"]


@dataclass(frozen=True)
class DemoCase:
    """What the demo sends for one photo, what it should get back, and a classical rival."""

    upload: np.ndarray
    reference: np.ndarray
    baseline_name: str
    baseline: np.ndarray
    options: dict[str, Any] = field(default_factory=dict)  # the call's option keywords


def _superres_case(spec: ModelSpec, name: str, photo: np.ndarray) -> DemoCase:
    """The photo cropped to fit the limits, downscaled as a low-resolution upload."""
    scale = spec.output_scale
    side = spec.limits.max_side * scale
    height = min(photo.shape[0], side) // scale * scale
    width = min(photo.shape[1], side) // scale * scale
    original = photo[:height, :width]
    upload = downscale(original, scale)
    bicubic = Image.fromarray(upload).resize((width, height), Image.Resampling.BICUBIC)
    return DemoCase(upload, original, "bicubic", np.asarray(bicubic))


def _enhance_case(spec: ModelSpec, name: str, photo: np.ndarray) -> DemoCase:
    """The photo under-exposed, flattened and colour-cast (the "combined" evaluation case)."""
    upload = enhance.EVAL_CASES["combined"].apply(photo)
    return DemoCase(upload, photo, "autocontrast", enhance.BASELINES["autocontrast"](upload))


def _denoise_case(spec: ModelSpec, name: str, photo: np.ndarray) -> DemoCase:
    """The photo with Gaussian noise (sigma 25); the rival is the best classical denoiser at
    the setting ``vitrine eval`` tuned (read from the shipped weights' report)."""
    upload = denoise.EVAL_CASES["sigma25"].apply(photo, np.random.default_rng(0))
    report = json.loads(paths.weights_path(spec.weights_name).with_suffix(".json").read_text())
    rival, setting = denoise.best_baseline(report["metrics"], "sigma25")
    baseline = denoise.BASELINE_GRIDS[rival][0](upload, setting)
    return DemoCase(upload, photo, rival, baseline, {"strength": "auto"})


def _inpaint_case(spec: ModelSpec, name: str, photo: np.ndarray) -> DemoCase:
    """The photo (cropped to the limits) under a white watermark; the mask covers it and the
    rival is ``cv2.inpaint`` (Telea) at the radius tuned for the evaluation."""
    clean = photo[: spec.limits.max_side, : spec.limits.max_side]
    mask = inpaint.eval_mask(name, "watermark", clean.shape[:2])
    upload = clean.copy()
    upload[mask > 0] = 255
    radius = inpaint.BASELINE_RADII["telea"]
    baseline = inpaint.inpaint_baseline("telea", upload, mask, radius)
    return DemoCase(upload, clean, f"telea r={radius}", baseline, {"mask": mask})


def _remove_background_case(spec: ModelSpec, name: str, photo: np.ndarray) -> DemoCase:
    """An evaluation composite (a test-split product on this photo) to put on white; the
    rival is GrabCut from a centred rectangle, on white too."""
    composite = background.eval_composites()[VALIDATION_PHOTOS.index(name)]
    on_white = np.asarray(background.on_white(composite.image, composite.alpha))
    grabcut = background.grabcut_mask(composite.image).astype(np.float64)
    baseline = np.asarray(background.on_white(composite.image, grabcut))
    return DemoCase(composite.image, on_white, "grabcut", baseline, {"background": "white"})


def _stylize_case(spec: ModelSpec, name: str, photo: np.ndarray) -> DemoCase:
    """The photo (cropped to the limits) in one campaign look per photo; the rival is
    histogram matching to that style's image. There is no ground truth: the reference is
    the photo itself."""
    clean = photo[: spec.limits.max_side, : spec.limits.max_side]
    style = CAMPAIGN_STYLES[VALIDATION_PHOTOS.index(name) % len(CAMPAIGN_STYLES)]
    baseline = stylize.histogram_match(clean, style_image(style))
    return DemoCase(clean, clean, f"histogram match ({style})", baseline, {"style": style})


def _translate_case(spec: ModelSpec, name: str, photo: np.ndarray) -> DemoCase:
    """The photo (cropped to the limits) to a pencil sketch; the reference is its procedural
    sketch (which training never paired with it) and the rival its inverted Sobel edges."""
    clean = photo[: spec.limits.max_side, : spec.limits.max_side]
    sketch = photo_sketch.pencil_sketch(clean)
    edges = photo_sketch.sobel_sketch(clean)
    return DemoCase(clean, sketch, "sobel edges", edges, {"direction": "photo_to_sketch"})


DEMO_CASES: dict[Task, Callable[[ModelSpec, str, np.ndarray], DemoCase]] = {
    Task.SUPER_RESOLVE: _superres_case,
    Task.ENHANCE: _enhance_case,
    Task.DENOISE: _denoise_case,
    Task.INPAINT: _inpaint_case,
    Task.REMOVE_BACKGROUND: _remove_background_case,
    Task.STYLIZE: _stylize_case,
    Task.TRANSLATE: _translate_case,
}
"""Editor task → its case; generators take no photo and get a grid (:func:`_generator_rows`)."""


def _call_pipeline(
    client: VitrineClient, spec: ModelSpec, name: str, photo: np.ndarray, out_dir: Path
) -> dict[str, Any]:
    case = DEMO_CASES[spec.task](spec, name, photo)
    pipeline = getattr(client, spec.client_method)
    raw_path = getattr(client, f"{spec.client_method}_array")
    kwargs = spec.selector_kwargs | case.options
    result = pipeline(Image.fromarray(case.upload), **kwargs)
    served = np.asarray(result.image)
    raw = raw_path(case.upload, **kwargs).array
    folder = out_dir / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(case.upload).save(folder / f"{name}_input.png")
    result.image.save(folder / f"{name}_vitrine.png")
    size = result.image.size
    panels = {
        "input": Image.fromarray(case.upload).resize(size, Image.Resampling.NEAREST),
        case.baseline_name: Image.fromarray(case.baseline),
        "vitrine": result.image,
        "original": Image.fromarray(case.reference),
    }
    labelled_row(panels).save(folder / f"{name}_comparison.png")
    border = spec.output_scale if spec.output_scale > 1 else 0
    return {
        "photo": name,
        "input_size": [case.upload.shape[1], case.upload.shape[0]],
        "output_size": list(size),
        "latency_ms": round(result.latency_ms, 2),
        "model_version": result.model_version,
        "baseline": case.baseline_name,
        "psnr_vitrine_db": psnr(case.reference, served, border=border),
        "psnr_baseline_db": psnr(case.reference, case.baseline, border=border),
        "raw_path_matches_pipeline": _same_pixels(raw, served),
    }


def _same_pixels(raw: np.ndarray, served: np.ndarray) -> bool:
    """Whether the raw core output equals the decoded pipeline result. The encode step drops
    an alpha channel that is opaque everywhere, so such a raw RGBA equals its RGB."""
    if raw.shape[-1] == 4 and served.shape[-1] == 3 and bool((raw[..., 3] == 255).all()):
        raw = raw[..., :3]
    return bool(np.array_equal(raw, served))


def _editor_calls(client: VitrineClient, spec: ModelSpec, out_dir: Path) -> list[dict[str, Any]]:
    """Each validation photo through ``spec``'s pipeline."""
    return [
        {"pipeline": spec.pipeline} | _call_pipeline(client, spec, name, photo, out_dir)
        for name, photo in load_split("validation").items()
    ]


DEMO_SEED = 0
"""Seed of every generated image: one latent, so a generator's grid shows what labels change."""
_CELL = 64  # px of one generated image in a grid (nearest-neighbour upscale)
_TITLE = 80  # px left of a grid row, for its category


def _generated_row(
    client: VitrineClient, spec: ModelSpec, category: str, folder: Path
) -> tuple[dict[str, Any], Image.Image]:
    """One image of ``category`` per colour through ``spec``'s pipeline and raw path; each
    served image is written as ``<category>_<colour>.<format>``. Returns the row's report
    and its grid row (one panel per colour)."""
    assert spec.conditioning is not None, f"{spec.name} is no generator"
    pipeline = getattr(client, spec.client_method)
    raw_path = getattr(client, f"{spec.client_method}_array")
    results, matches = {}, []
    for colour in spec.conditioning.colours:
        kwargs = spec.selector_kwargs | {"category": category, "color": colour, "seed": DEMO_SEED}
        result = results[colour] = pipeline(**kwargs)
        (image,), (data,) = result.images, result.data
        (folder / f"{category}_{colour}.{result.format}").write_bytes(data)
        matches.append(_same_pixels(raw_path(**kwargs).array[0], np.asarray(image)))
    first = next(iter(results.values()))
    report = {
        "category": category,
        "seed": DEMO_SEED,
        "images": len(results),
        "output_size": list(first.images[0].size),
        "latency_ms": round(float(np.mean([r.latency_ms for r in results.values()])), 2),
        "model_version": first.model_version,
        "raw_path_matches_pipeline": all(matches),
    }
    panels = {
        colour: result.images[0].resize((_CELL, _CELL), Image.Resampling.NEAREST)
        for colour, result in results.items()
    }
    return report, _titled(category, labelled_row(panels))


def _titled(title: str, row: Image.Image) -> Image.Image:
    """``row`` with ``title`` written left of it."""
    titled = Image.new("RGB", (_TITLE + row.width, row.height), "white")
    titled.paste(row, (_TITLE, 0))
    ImageDraw.Draw(titled).text((4, row.height // 2), title, fill="black")
    return titled


def _generator_rows(client: VitrineClient, spec: ModelSpec, out_dir: Path) -> list[dict[str, Any]]:
    """Every (category, colour) of ``spec`` from :data:`DEMO_SEED`, as ``<spec>/grid.png``:
    a row per category, a column per colour."""
    assert spec.conditioning is not None, f"{spec.name} is no generator"
    folder = out_dir / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    reports, rows = [], []
    for category in spec.conditioning.categories:
        report, row = _generated_row(client, spec, category, folder)
        reports.append({"pipeline": spec.pipeline} | report)
        rows.append(row)
    stack_rows(rows).save(folder / "grid.png")
    return reports


_MIX_SEEDS = (1, 2, 3, 4)  # coarse seeds down, fine seeds across


def _mixing_grid(client: VitrineClient, spec: ModelSpec, out_dir: Path) -> None:
    """``<spec>/mixing.png``: coarse styles of one seed per row, fine of one per column."""
    assert spec.conditioning is not None, f"{spec.name} is no generator"
    labels = {"category": "dress", "color": "blue"}
    rows = []
    for coarse in _MIX_SEEDS:
        panels = {}
        for fine in _MIX_SEEDS:
            result = client.mix_styles(
                **spec.selector_kwargs, **labels, coarse_seed=coarse, fine_seed=fine
            )
            panels[f"fine {fine}"] = result.images[0].resize((_CELL, _CELL))
        rows.append(_titled(f"coarse {coarse}", labelled_row(panels)))
    stack_rows(rows).save(out_dir / spec.name / "mixing.png")


_EDIT_PAIRS = ((3, 3), (8, 4), (0, 5), (9, 1))  # (category, colour) of the edited products


def _latent_edit_rows(
    client: VitrineClient, spec: ModelSpec, out_dir: Path
) -> list[dict[str, Any]]:
    """For two held-out catalog products of each of a few labels: four variations of the
    first and a five-step interpolation to the second, as ``<spec>/grid.png``."""
    catalog = load_catalog("test")
    folder = out_dir / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    options = {option.name: option for option in spec.options}
    reports, rows = [], []
    for category_index, colour_index in _EDIT_PAIRS:
        chosen = (catalog.categories == category_index) & (catalog.colours == colour_index)
        first, second = catalog.images[np.flatnonzero(chosen)[:2]]
        labels = {
            "category": options["category"].choices[category_index],
            "color": options["color"].choices[colour_index],
        }
        varied = client.variations(first, **labels, count=4)
        path = client.interpolate(first, second, **labels, steps=5)
        images = {"input": Image.fromarray(first)}
        images |= {f"variation {i + 1}": image for i, image in enumerate(varied.images)}
        images |= {f"step {i + 1}": image for i, image in enumerate(path.images)}
        images["other"] = Image.fromarray(second)
        panels = {key: image.resize((_CELL, _CELL)) for key, image in images.items()}
        rows.append(_titled(f"{labels['color']} {labels['category']}", labelled_row(panels)))
        reports.append(
            {
                "pipeline": spec.pipeline,
                "labels": labels,
                "variations": len(varied.images),
                "interpolation_steps": len(path.images),
                "latency_ms": round((varied.latency_ms + path.latency_ms) / 2, 2),
            }
        )
    stack_rows(rows).save(folder / "grid.png")
    return reports


def _size(size: list[int]) -> str:
    return "x".join(map(str, size))


def _editor_table(calls: list[dict[str, Any]]) -> Table:
    table = Table(title="Vitrine demo: validation photos through every editor's pipeline")
    for column in (
        "pipeline",
        "photo",
        "in -> out",
        "ms",
        "PSNR vitrine dB",
        "baseline dB",
        "raw = pipeline",
    ):
        table.add_column(column)
    for call in calls:
        table.add_row(
            call["pipeline"],
            call["photo"],
            f"{_size(call['input_size'])} -> {_size(call['output_size'])}",
            f"{call['latency_ms']:.1f}",
            f"{call['psnr_vitrine_db']:.2f}",
            f"{call['psnr_baseline_db']:.2f} ({call['baseline']})",
            "yes" if call["raw_path_matches_pipeline"] else "NO",
        )
    return table


def _generator_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(
        title=f"Vitrine demo: generators, every colour of each category (seed {DEMO_SEED})"
    )
    for column in ("pipeline", "category", "images", "ms per image", "raw = pipeline"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["pipeline"],
            row["category"],
            f"{row['images']} x {_size(row['output_size'])}",
            f"{row['latency_ms']:.1f}",
            "yes" if row["raw_path_matches_pipeline"] else "NO",
        )
    return table


def _latent_edit_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Vitrine demo: VAE variations and interpolations of held-out products")
    for column in ("pipeline", "product", "variations", "interpolation steps", "ms per call"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["pipeline"],
            f"{row['labels']['color']} {row['labels']['category']}",
            str(row["variations"]),
            str(row["interpolation_steps"]),
            f"{row['latency_ms']:.1f}",
        )
    return table


def run_demo(out_dir: Path | None = None) -> Path:
    """Run the demo; returns the folder holding its outputs and ``report.json``."""
    console = Console(width=130)
    out_dir = out_dir or Path("out") / f"demo-{datetime.now():%Y%m%d-%H%M%S}"
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with console.status("building the embedded repository from the shipped weights"):
        repository = embedded_repository()
    ports = {name: free_port() for name in ("grpc_port", "http_port", "metrics_port")}
    calls: list[dict[str, Any]] = []
    generated: list[dict[str, Any]] = []
    edits: list[dict[str, Any]] = []
    with console.status("starting Triton"), EmbeddedTriton(repository, **ports) as server:
        console.print(f"Triton ready: gRPC {server.grpc_url} (log {server.log_path})")
        with VitrineClient(server.grpc_url) as client:
            client.verify()
            for spec in SPECS.values():
                if spec.task is Task.LATENT_EDIT:
                    edits += _latent_edit_rows(client, spec, out_dir)
                elif spec.is_generator:
                    generated += _generator_rows(client, spec, out_dir)
                    if spec.conditioning and spec.conditioning.style_mixing:
                        _mixing_grid(client, spec, out_dir)
                else:
                    calls += _editor_calls(client, spec, out_dir)
    seconds = round(time.perf_counter() - started, 2)
    report = {"seconds": seconds, "calls": calls, "generated": generated, "latent_edits": edits}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    console.print(_editor_table(calls))
    console.print(_generator_table(generated))
    console.print(_latent_edit_table(edits))
    if not all(entry["raw_path_matches_pipeline"] for entry in [*calls, *generated]):
        raise RuntimeError("the raw uint8 path disagreed with the pipeline; see report.json")
    return out_dir
