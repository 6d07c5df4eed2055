"""The generated model repositories are wired right (tests/contract/test_regenerated.py holds
the committed one to the specs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vitrine.export.repository import repository_models
from vitrine.export.triton_config import Target
from vitrine.registry import SPECS

COMMITTED = Path(__file__).resolve().parents[2] / "model_repository"


def _files(root: Path) -> set[Path]:
    return {path.relative_to(root) for path in root.rglob("*") if path.is_file()}


@pytest.mark.parametrize("target", list(Target), ids=lambda target: target.value)
def test_ensembles_are_wired_to_existing_tensors(target: Target) -> None:
    configs = {
        model.config.name: model.config for model in repository_models(target, SPECS.values())
    }
    ensembles = [config for config in configs.values() if config.platform == "ensemble"]
    assert {config.name for config in ensembles} == {spec.pipeline for spec in SPECS.values()}
    for ensemble in ensembles:
        available = {tensor.name for tensor in ensemble.input}
        for step in ensemble.ensemble_scheduling.step:
            model = configs[step.model_name]
            assert set(step.input_map) == {tensor.name for tensor in model.input}
            assert set(step.input_map.values()) <= available, (
                f"{step.model_name} reads unknown tensors"
            )
            assert set(step.output_map) <= {tensor.name for tensor in model.output}
            assert model.max_batch_size >= ensemble.max_batch_size
            available |= set(step.output_map.values())
        assert {tensor.name for tensor in ensemble.output} <= available


def test_targets_differ_only_in_the_core_runtime() -> None:
    def runtimes(target: Target) -> dict[str, str]:
        models = repository_models(target, SPECS.values())
        return {m.config.name: m.config.platform or m.config.backend for m in models}

    found = {target: runtimes(target) for target in Target}
    assert all(models.keys() == found[Target.GPU].keys() for models in found.values())
    expected = {
        Target.GPU: "tensorrt_plan",
        Target.CPU: "onnxruntime_onnx",
        Target.EMBEDDED: "python",
        Target.GPU_TORCH: "python",
    }
    for spec in SPECS.values():
        assert {target: models[spec.core_model] for target, models in found.items()} == expected
