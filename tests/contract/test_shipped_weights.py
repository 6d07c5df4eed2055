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
    checkpoint = load_checkpoint(paths.weights_path(spec.name))
    meta = checkpoint.meta
    assert meta["spec"] == spec.name
    assert meta["architecture"] == spec.architecture
    assert meta["arch_kwargs"] == json.loads(json.dumps(dict(spec.arch_kwargs)))
    assert meta["training"] == load_config(spec.name, "full").as_dict()
    assert meta["steps"] == meta["training"]["steps"]


@ALL_SPECS
def test_shipped_weights_hold_their_quality_targets(spec: ModelSpec) -> None:
    checkpoint = load_checkpoint(paths.weights_path(spec.name))
    report = evaluate_model(spec, checkpoint.model)
    assert spec.quality_targets, f"{spec.name} declares no quality target"
    for key, minimum in spec.quality_targets.items():
        assert report["margins"][key] >= minimum, (
            f"{spec.name}: {key} {report['margins'][key]:+.3f} < {minimum}"
        )
    recorded = checkpoint.meta["metrics"]["margins"]
    for key, value in report["margins"].items():
        assert value == pytest.approx(recorded[key], abs=0.02), "the sidecar's metrics are stale"
