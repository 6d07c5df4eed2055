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
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict, cast

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw
from rich.console import Console
from rich.table import Table

from vitrine.client import Category, Color, VitrineClient
from vitrine.registry import SPECS
from vitrine.serving.embedded import EmbeddedTriton, free_ports
from vitrine.serving.serve import embedded_repository
from vitrine.spec import ModelSpec
from vitrine.tasks import Family
from vitrine.training.catalog_data import load_catalog
from vitrine.training.grids import labelled_row, stack_rows
from vitrine.training.hooks import task_hooks
from vitrine.training.metrics import psnr
from vitrine.training.photos import load_split

__all__ = ["run_demo"]


def _call_pipeline(
    client: VitrineClient, spec: ModelSpec, name: str, photo: npt.NDArray[np.uint8], out_dir: Path
) -> dict[str, Any]:
    make_case = task_hooks(spec.task).demo
    if make_case is None:
        raise ValueError(f"{spec.name}: task {spec.task.value!r} has no demo case")
    case = make_case(spec, name, photo)
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


def _same_pixels(raw: npt.NDArray[Any], served: npt.NDArray[Any]) -> bool:
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


class _Labels(TypedDict):
    """A catalog product's labels, as the generators' client methods take them."""

    category: Category
    color: Color


_MIX_SEEDS = (1, 2, 3, 4)  # coarse seeds down, fine seeds across


def _mixing_grid(client: VitrineClient, spec: ModelSpec, out_dir: Path) -> None:
    """``<spec>/mixing.png``: coarse styles of one seed per row, fine of one per column."""
    assert spec.conditioning is not None, f"{spec.name} is no generator"
    labels: _Labels = {"category": "dress", "color": "blue"}
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
        labels: _Labels = {  # the client's literals are these choices, as regenerated
            "category": cast(Category, options["category"].choices[category_index]),
            "color": cast(Color, options["color"].choices[colour_index]),
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
    calls: list[dict[str, Any]] = []
    generated: list[dict[str, Any]] = []
    edits: list[dict[str, Any]] = []
    with console.status("starting Triton"), EmbeddedTriton(repository, **free_ports()) as server:
        console.print(f"Triton ready: gRPC {server.grpc_url} (log {server.log_path})")
        with VitrineClient(server.grpc_url) as client:
            client.verify()
            for spec in SPECS.values():
                if spec.family is Family.LATENT_EDIT:
                    edits += _latent_edit_rows(client, spec, out_dir)
                elif spec.family is Family.GENERATOR:
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
