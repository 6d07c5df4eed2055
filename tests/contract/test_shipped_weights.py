"""The shipped weights are reproducible, describe themselves, and hold the quality targets."""

from __future__ import annotations

import json

import pytest

from vitrine import paths
from vitrine.catalog import SPECS
from vitrine.spec import ModelSpec
from vitrine.training.checkpoint import load_checkpoint
from vitrine.training.config import load_config
from vitrine.training.evaluate import evaluate_model

ALL_SPECS = pytest.mark.parametrize("spec", SPECS.values(), ids=lambda spec: spec.name)


@ALL_SPECS
def test_sidecar_matches_spec_and_full_config(spec: ModelSpec) -> None:
    """A spec serving another's checkpoint (``weights_from``) must agree with its sidecar."""
    checkpoint = load_checkpoint(paths.weights_path(spec.weights_name))
    meta = checkpoint.meta
    assert meta["spec"] == spec.weights_name
    assert meta["architecture"] == spec.architecture
    assert meta["arch_kwargs"] == json.loads(json.dumps(dict(spec.arch_kwargs)))
    assert meta["training"] == load_config(spec.weights_name, "full").as_dict()
    assert meta["steps"] == meta["training"]["steps"]


def _recorded_margins(spec: ModelSpec) -> dict[str, float]:
    """The margins shipped with ``spec``'s weights: its sidecar's, or for a spec serving
    another's checkpoint, its committed evaluation report's (``vitrine eval``)."""
    if spec.weights_from:
        report = json.loads((paths.reports_dir() / spec.name / "eval.json").read_text())
        return dict(report["margins"])
    return dict(load_checkpoint(paths.weights_path(spec.name)).meta["metrics"]["margins"])


KNOWN_MISSES: dict[str, str] = {
    "denoise": "issue 3: +1.0 dB over tuned NL-means at sigma 25 is not reached (README)",
    "inpaint": "issue 3: +1.5 dB hole PSNR over cv2.inpaint is not reached (README)",
    "dcgan": "issue 4: category consistency 0.90 and FID <= 3x floor are not reached (README)",
    "vae": "issue 4: category consistency 0.90 and FID <= 3x floor are not reached (README)",
    "stylegan": "issue 4: category consistency 0.90 and FID <= 3x floor are not reached (README)",
}
"""Specs whose shipped weights miss a quality target, with where it is reported. Their target
test is a strict xfail: it fails the day the target is met, so this list stays true."""


def _target_case(spec: ModelSpec) -> object:
    reason = KNOWN_MISSES.get(spec.name)
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    return pytest.param(spec, id=spec.name, marks=marks)


@ALL_SPECS
def test_sidecar_metrics_are_current(spec: ModelSpec) -> None:
    checkpoint = load_checkpoint(paths.weights_path(spec.weights_name))
    report = evaluate_model(spec, checkpoint.model)
    recorded = _recorded_margins(spec)
    assert set(recorded) == set(report["margins"]) >= set(spec.quality_targets)
    for key, value in report["margins"].items():
        assert value == pytest.approx(recorded[key], abs=0.02), "the sidecar's metrics are stale"


@pytest.mark.parametrize("spec", [_target_case(spec) for spec in SPECS.values()])
def test_shipped_weights_hold_their_quality_targets(spec: ModelSpec) -> None:
    """Against the sidecar's metrics, which the test above re-measures."""
    margins = _recorded_margins(spec)
    assert spec.quality_targets, f"{spec.name} declares no quality target"
    missed = {
        key: f"{margins[key]:+.3f} < {minimum}"
        for key, minimum in spec.quality_targets.items()
        if margins[key] < minimum
    }
    assert not missed, f"{spec.name} misses {missed}"
