"""The main job: `vitrine demo` serves every pipeline and writes its outputs and report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vitrine.catalog import SPECS
from vitrine.serving.demo import run_demo
from vitrine.training.photos import VALIDATION_PHOTOS

pytestmark = pytest.mark.integration


def test_demo_calls_every_pipeline_and_writes_its_report(tmp_path: Path) -> None:
    out = run_demo(tmp_path / "demo")
    report = json.loads((out / "report.json").read_text())
    calls = {(call["pipeline"], call["photo"]) for call in report["calls"]}
    assert calls == {
        (spec.pipeline, photo) for spec in SPECS.values() for photo in VALIDATION_PHOTOS
    }
    for call in report["calls"]:
        assert call["raw_path_matches_pipeline"]
        assert call["psnr_vitrine_db"] > call["psnr_baseline_db"], call
    for spec in SPECS.values():
        for photo in VALIDATION_PHOTOS:
            assert (out / spec.name / f"{photo}_comparison.png").is_file()
