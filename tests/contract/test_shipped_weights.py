"""The shipped weights are reproducible, describe themselves, and hold the quality targets."""

from __future__ import annotations

import functools
import json

import pytest

from vitrine import paths
from vitrine.registry import SPECS
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


@functools.cache
def _measured_margins(name: str) -> dict[str, float]:
    """The margins of the shipped weights as ``vitrine eval`` measures them now: one
    evaluation per model and test session, shared by its staleness and target tests."""
    spec = SPECS[name]
    checkpoint = load_checkpoint(paths.weights_path(spec.weights_name))
    return dict(evaluate_model(spec, checkpoint.model)["margins"])


@pytest.mark.expensive
@ALL_SPECS
def test_sidecar_metrics_are_current(spec: ModelSpec) -> None:
    """Every margin the sidecar recorded is measured again alike; an evaluation added after
    the run (enhancement's families, the second background set, stylize on photographs)
    has no recorded figure, only a fresh one."""
    measured, recorded = _measured_margins(spec.name), _recorded_margins(spec)
    assert set(recorded) <= set(measured) and set(spec.quality_targets) <= set(measured)
    for key, value in recorded.items():
        assert measured[key] == pytest.approx(value, abs=0.02), "the sidecar's metrics are stale"


KNOWN_MISSES: dict[tuple[str, str], str] = {
    ("denoise", "psnr_over_best_baseline_db_sigma25"): (
        "issue 3: +1.0 dB over tuned NL-means at sigma 25 is not reached (README)"
    ),
    ("inpaint", "hole_psnr_over_best_baseline_db"): (
        "issue 3: +1.5 dB hole PSNR over cv2.inpaint is not reached (README)"
    ),
    **{
        (name, target): f"issue 4: {what} is not reached (README)"
        for name in ("dcgan", "vae", "stylegan")
        for target, what in (
            ("category_consistency", "category consistency 0.90"),
            ("fid_floor_headroom", "FID <= 3x floor"),
        )
    },
    **{
        ("enhance", f"{family}_{margin}"): (
            f"issue 30: enhance does not beat the best classical baseline on {family} "
            "degradations drawn wider than training's (reports/enhance)"
        )
        for family in ("linear", "under_exposure", "combined")
        for margin in ("psnr_over_best_baseline_db", "delta_e_below_best_baseline")
    },
    ("remove_background", "second_set_iou"): (
        "issue 30: IoU 0.90 is not reached on the second set (other garment scales and "
        "positions, flat garments, the photo corpus's validation backdrops)"
    ),
    ("stylize", "edge_correlation_mosaic"): (
        "issue 30: under the mosaic style the blurred edge maps of photographs it never saw "
        "correlate below 0.3 with the input's"
    ),
    ("enhance", "neutral_psnr_db"): (
        "issue 30: a neutral, well-exposed photo comes back below 35 dB against itself"
    ),
}
"""Quality targets the shipped weights miss, with where it is reported. Each is a strict
xfail: it fails the day the target is met, so this list stays true; every other target of
the same model is a plain test."""


def _target_cases() -> list[object]:
    cases = []
    for spec in SPECS.values():
        for target in spec.quality_targets:
            reason = KNOWN_MISSES.get((spec.name, target))
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            cases.append(pytest.param(spec, target, id=f"{spec.name}-{target}", marks=marks))
    return cases


def test_every_known_miss_names_a_declared_target() -> None:
    declared = {(spec.name, target) for spec in SPECS.values() for target in spec.quality_targets}
    assert set(KNOWN_MISSES) <= declared


@ALL_SPECS
def test_every_model_declares_a_quality_target(spec: ModelSpec) -> None:
    assert spec.quality_targets, f"{spec.name} declares no quality target"


@pytest.mark.expensive
@pytest.mark.parametrize(("spec", "target"), _target_cases())
def test_shipped_weights_hold_their_quality_targets(spec: ModelSpec, target: str) -> None:
    """Judged on the fresh measurement, never on the sidecar's stored numbers."""
    measured, minimum = _measured_margins(spec.name)[target], spec.quality_targets[target]
    assert measured >= minimum, f"{spec.name} misses {target}: {measured:+.4f} < {minimum}"
