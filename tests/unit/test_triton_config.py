"""Config generation: protobuf messages from the specs, rendered and parsed back."""

from __future__ import annotations

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from vitrine.catalog import get_spec
from vitrine.export.triton_config import Target, core_config, decode_config, pipeline_config, render
from vitrine.pipeline import ENCODE_MODEL

SPEC = get_spec("superres_x2")


def test_rendered_config_parses_back_identically() -> None:
    for target in Target:
        config = core_config(SPEC, target)
        assert text_format.Parse(render(config), pb.ModelConfig()) == config


def test_core_config_follows_spec_batching_and_tensors() -> None:
    config = core_config(SPEC, Target.GPU)
    assert config.max_batch_size == SPEC.batching.max_batch_size
    assert list(config.dynamic_batching.preferred_batch_size) == list(
        SPEC.batching.preferred_batch_sizes
    )
    assert (
        config.dynamic_batching.default_queue_policy.max_queue_size == SPEC.batching.max_queue_size
    )
    assert [(t.name, list(t.dims)) for t in config.input] == [("image", [-1, -1, 3])]
    assert config.input[0].data_type == pb.TYPE_UINT8
    assert config.instance_group[0].kind == pb.ModelInstanceGroup.KIND_GPU


def test_embedded_core_carries_onnx_file_threads_and_limits() -> None:
    config = core_config(SPEC, Target.EMBEDDED)
    assert {key: value.string_value for key, value in config.parameters.items()} == {
        "onnx_file": "model.onnx",
        "intra_op_threads": "2",
        "min_side": "8",
        "max_side": "512",
    }
    assert config.instance_group[0].count == 2


def test_decode_step_carries_the_size_limits() -> None:
    config = decode_config(SPEC)
    assert config.parameters["max_side"].string_value == str(SPEC.limits.max_side)
    assert config.input[0].data_type == pb.TYPE_STRING


def test_pipeline_steps_in_order() -> None:
    steps = [step.model_name for step in pipeline_config(SPEC).ensemble_scheduling.step]
    assert steps == [SPEC.decode_model, SPEC.core_model, ENCODE_MODEL]
