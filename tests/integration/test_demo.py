"""The main job: `vitrine demo` serves every pipeline and writes its outputs and report."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from vitrine import paths
from vitrine.registry import SPECS
from vitrine.serving.demo import DEMO_SEED, run_demo
from vitrine.spec import ModelSpec, Task
from vitrine.training.photos import VALIDATION_PHOTOS

pytestmark = pytest.mark.integration

EDITORS = [
    spec for spec in SPECS.values() if not spec.is_generator and spec.task is not Task.LATENT_EDIT
]
GENERATORS = [spec for spec in SPECS.values() if spec.is_generator]
LATENT_EDITORS = [spec for spec in SPECS.values() if spec.task is Task.LATENT_EDIT]

TRAILS_ON: dict[tuple[str, str], str] = {
    ("remove_background_pipeline", "chelsea"): (
        "GrabCut cuts this shot (a dark bag on the cat) out at 0.991 IoU, the model at 0.951; "
        "GrabCut wins 4 of the 48 evaluation shots (README)"
    ),
}
"""Demo photos on which a model that holds its targets trails its baseline, and why. Strict:
each must still trail, so the list stays true."""


def _holds_its_targets(spec: ModelSpec) -> bool:
    """Whether the shipped weights' measured margins (the committed evaluation, which holds
    every target's; the sidecar has those measured when it was trained) reach every target."""
    report = json.loads((paths.reports_dir() / spec.name / "eval.json").read_text())
    margins = report["margins"]
    return all(margins[key] >= minimum for key, minimum in spec.quality_targets.items())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The demo, run once: its output folder and report."""
    out = run_demo(tmp_path_factory.mktemp("demo"))
    return out, json.loads((out / "report.json").read_text())


def test_demo_calls_every_editor_pipeline_and_writes_its_report(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    out, report = demo
    calls = {(call["pipeline"], call["photo"]) for call in report["calls"]}
    assert calls == {(spec.pipeline, photo) for spec in EDITORS for photo in VALIDATION_PHOTOS}
    restorers = [spec for spec in EDITORS if spec.task is not Task.STYLIZE]  # a ground truth
    ahead = {spec.pipeline for spec in restorers if _holds_its_targets(spec)}
    for call in report["calls"]:
        assert call["raw_path_matches_pipeline"]
        if call["pipeline"] in ahead:  # a model that misses its targets may trail on a photo
            leads = call["psnr_vitrine_db"] > call["psnr_baseline_db"]
            assert leads != ((call["pipeline"], call["photo"]) in TRAILS_ON), call
    for pipeline in ahead:  # and on average over the photos, with no exception
        calls = [call for call in report["calls"] if call["pipeline"] == pipeline]
        assert sum(call["psnr_vitrine_db"] - call["psnr_baseline_db"] for call in calls) > 0
    for spec in EDITORS:
        for photo in VALIDATION_PHOTOS:
            assert (out / spec.name / f"{photo}_comparison.png").is_file()


def test_demo_draws_every_category_and_colour_of_each_generator(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    out, report = demo
    rows = report["generated"]
    assert {row["pipeline"] for row in rows} == {spec.pipeline for spec in GENERATORS}
    for spec in GENERATORS:
        conditioning = spec.conditioning
        assert conditioning is not None
        side = conditioning.side
        own = [row for row in rows if row["pipeline"] == spec.pipeline]
        assert [row["category"] for row in own] == list(conditioning.categories)
        for row in own:
            assert row["raw_path_matches_pipeline"] and row["seed"] == DEMO_SEED
            assert (row["images"], row["output_size"]) == (len(conditioning.colours), [side, side])
        pairs = itertools.product(conditioning.categories, conditioning.colours)
        for category, colour in pairs:
            with Image.open(out / spec.name / f"{category}_{colour}.png") as image:
                assert (image.format, image.size) == ("PNG", (side, side))
        with Image.open(out / spec.name / "grid.png") as grid:  # a row per category
            assert grid.width > len(conditioning.colours) * side
            assert grid.height > len(conditioning.categories) * side
        if conditioning.style_mixing:  # coarse seeds down, fine seeds across
            with Image.open(out / spec.name / "mixing.png") as grid:
                assert grid.width > 4 * side and grid.height > 4 * side


def test_demo_varies_and_interpolates_held_out_products(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    out, report = demo
    rows = report["latent_edits"]
    assert {row["pipeline"] for row in rows} == {spec.pipeline for spec in LATENT_EDITORS}
    for row in rows:
        assert (row["variations"], row["interpolation_steps"]) == (4, 5)
    for spec in LATENT_EDITORS:
        with Image.open(out / spec.name / "grid.png") as grid:  # input, 4 + 5 images, other
            assert grid.width > 11 * 32
