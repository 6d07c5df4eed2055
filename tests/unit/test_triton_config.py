"""Config generation: protobuf messages from the specs, rendered and parsed back."""

from __future__ import annotations

import numpy as np
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb
from tritonclient.utils import deserialize_bytes_tensor

from vitrine.export.triton_config import (
    Target,
    core_config,
    decode_config,
    pipeline_config,
    render,
    sample_config,
    sample_warmup_files,
)
from vitrine.pipeline import ENCODE_MODEL, generator_pipeline_inputs
from vitrine.registry import get_spec

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
        "max_pixels": str(512 * 512),
    }
    assert config.instance_group[0].count == 2


def test_decode_step_carries_the_size_limits() -> None:
    config = decode_config(SPEC)
    assert config.parameters["max_side"].string_value == str(SPEC.limits.max_side)
    assert config.input[0].data_type == pb.TYPE_STRING


def test_pipeline_steps_in_order() -> None:
    steps = [step.model_name for step in pipeline_config(SPEC).ensemble_scheduling.step]
    assert steps == [SPEC.decode_model, SPEC.fullsize_model, ENCODE_MODEL]


# --- generators ----------------------------------------------------------------------------

GENERATOR = get_spec("dcgan")


def test_sample_step_is_unbatched_and_carries_the_conditioning() -> None:
    config = sample_config(GENERATOR)
    assert config.max_batch_size == 0 and config.backend == "python"
    assert [(t.name, list(t.dims)) for t in config.input] == [
        (t.name, [1]) for t in generator_pipeline_inputs(GENERATOR)
    ]
    assert [(t.name, list(t.dims)) for t in config.output] == [
        ("latent_sampled", [-1, 64]),
        ("category_sampled", [-1, 1]),
        ("color_sampled", [-1, 1]),
        ("format_sampled", [-1, 1]),
        ("quality_sampled", [-1, 1]),
    ]
    params = {key: value.string_value for key, value in config.parameters.items()}
    assert params["max_count"] == "16" and params["categories"].startswith("tshirt,trouser")


def test_generator_pipeline_fans_one_request_out_to_count_images() -> None:
    config = pipeline_config(GENERATOR)
    assert config.platform == "ensemble" and config.max_batch_size == 0
    assert [(t.name, list(t.dims)) for t in config.output] == [("result_bytes", [-1, 1])]
    sample, core, encode = config.ensemble_scheduling.step
    assert [sample.model_name, core.model_name, encode.model_name] == [
        "dcgan_sample",
        "dcgan",
        ENCODE_MODEL,
    ]
    assert set(sample.input_map) == {t.name for t in generator_pipeline_inputs(GENERATOR)}
    assert dict(core.input_map) == {
        "latent": sample.output_map["latent_sampled"],
        "category": sample.output_map["category_sampled"],
        "color": sample.output_map["color_sampled"],
    }
    assert dict(encode.input_map) == {
        "pixels": core.output_map["images"],
        "format": sample.output_map["format_sampled"],
        "quality": sample.output_map["quality_sampled"],
    }
    assert GENERATOR.batching.max_batch_size == GENERATOR.profile.max[0] == 16  # count bound
    assert config.response_cache.enable  # deterministic in the seed
    assert not pipeline_config(SPEC).HasField("response_cache")


def test_gpu_sample_step_warms_up_with_one_valid_request() -> None:
    config = sample_config(GENERATOR, Target.GPU)
    (warmup,) = config.model_warmup
    files = sample_warmup_files(GENERATOR)
    assert {i.input_data_file for i in warmup.inputs.values()} == set(files)
    assert deserialize_bytes_tensor(files["category"]).tolist() == [b"tshirt"]
    assert np.frombuffer(files["seed"], "<i8").tolist() == [0]
    assert config.parameters["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value == "yes"
