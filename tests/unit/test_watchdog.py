"""The watchdog's pure parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from vitrine.registry import SPECS
from vitrine.serving.watchdog import _dead_stubs, next_generation, served_specs


def test_dead_stub_names_come_from_triton_errors() -> None:
    errors = [
        "[StatusCode.INTERNAL] in ensemble 'superres_x2_pipeline', Stub process 'superres_x2_0_0' is not healthy.",
        "Stub process 'superres_x4_decode_1_0' is not healthy",
        "[StatusCode.UNAVAILABLE] failed to connect to all addresses",
    ]
    assert _dead_stubs(errors) == ("superres_x2", "superres_x4_decode")


def test_no_named_stub_means_probe_the_steps() -> None:
    assert _dead_stubs(["[StatusCode.DEADLINE_EXCEEDED] Deadline Exceeded"]) == ()


SERVED = {
    "name": "superres_x2",
    "backend": "python",
    "max_batch_size": 8,
    "instance_group": [{"name": "superres_x2_0", "count": 2, "kind": "KIND_CPU"}],
    "parameters": {"onnx_file": {"string_value": "model.onnx"}},
}


def test_each_generation_switches_the_priority_and_nothing_else() -> None:
    first = next_generation(SERVED)
    second = next_generation(first)
    assert first["instance_group"] == [
        {"name": "superres_x2_0", "count": 2, "kind": "KIND_CPU", "rate_limiter": {"priority": 1}}
    ]
    assert second["instance_group"][0]["rate_limiter"] == {"priority": 0}
    assert next_generation(second) == first
    for config in (first, second):
        assert {k: v for k, v in config.items() if k != "instance_group"} == {
            k: v for k, v in SERVED.items() if k != "instance_group"
        }
    assert "rate_limiter" not in SERVED["instance_group"][0]  # the served config is left alone


def test_a_priority_that_matters_is_not_touched() -> None:
    group = {"count": 1, "kind": "KIND_CPU", "rate_limiter": {"priority": 3}}
    with pytest.raises(ValueError, match="priority 3"):
        next_generation({"name": "m", "instance_group": [group]})


def test_a_model_without_instances_cannot_be_replaced() -> None:
    with pytest.raises(ValueError, match="no instance group"):
        next_generation({"name": "superres_x2_pipeline", "platform": "ensemble"})


def test_served_specs_are_the_pipelines_in_the_repository(tmp_path: Path) -> None:
    for name in ("denoise_pipeline", "superres_x2_pipeline", "encode_image"):
        (tmp_path / name / "1").mkdir(parents=True)
    assert served_specs(tmp_path) == (SPECS["superres_x2"], SPECS["denoise"])
