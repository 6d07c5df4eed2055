"""The gpu-torch target's configs: the gpu target's repository with TorchScript core models
and codec steps scaled to the machine."""

from __future__ import annotations

import json

import pytest
from tritonclient.grpc import model_config_pb2 as pb

from vitrine.cli import main
from vitrine.export.gpu_torch import (
    GPU_CORE_INSTANCES,
    Placement,
    decode_instances,
    encode_instances,
    label_counts,
    torch_core_config,
)
from vitrine.export.repository import repository_models
from vitrine.export.triton_config import (
    CPU_CORE_INSTANCES,
    PYTHON_STEP_INSTANCES,
    Target,
    core_config,
)
from vitrine.pipeline import ENCODE_MODEL
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec

ALL_SPECS = pytest.mark.parametrize("spec", SPECS.values(), ids=lambda spec: spec.name)
H200_NODE = Placement(device="cuda", cpus=16)


def _parameters(config: pb.ModelConfig) -> dict[str, str]:
    return {key: value.string_value for key, value in config.parameters.items()}


@ALL_SPECS
def test_core_model_is_the_gpu_core_run_by_the_torch_runner(spec: ModelSpec) -> None:
    engine = core_config(spec, Target.GPU)
    config = torch_core_config(spec, H200_NODE)
    assert config.backend == "python" and not config.platform
    assert not config.default_model_filename and not config.cc_model_filenames
    for same in ("name", "max_batch_size", "input", "output", "dynamic_batching", "model_warmup"):
        assert getattr(config, same) == getattr(engine, same), same
    (group,) = config.instance_group
    assert (group.kind, group.count) == (pb.ModelInstanceGroup.KIND_GPU, GPU_CORE_INSTANCES)
    assert list(group.gpus) == [0]  # where the artifacts are traced
    parameters = _parameters(config)
    limits = spec.core_limits  # the raw path's (the full-size step takes whole photos)
    assert (parameters["min_side"], parameters["max_side"], parameters["max_pixels"]) == (
        str(limits.min_side),
        str(limits.max_side),
        str(limits.max_pixels),
    )
    embedded = _parameters(core_config(spec, Target.EMBEDDED))
    assert {k: embedded[k] for k in ("min_side", "max_side", "max_pixels")} == {
        k: parameters[k] for k in ("min_side", "max_side", "max_pixels")
    }
    assert json.loads(parameters["labels"]) == label_counts(spec)
    assert core_config(spec, Target.GPU_TORCH) == torch_core_config(spec)


def test_label_inputs_are_bounded_by_their_number_of_labels() -> None:
    assert label_counts(SPECS["dcgan"]) == {"category": 10, "color": 10}
    assert label_counts(SPECS["translate"]) == {"direction": 2}
    assert label_counts(SPECS["vae_edit"]) == {"category": 10, "color": 10}
    assert label_counts(SPECS["superres_x2"]) == {}


def test_a_cpu_build_runs_its_cores_on_cpu_instances_with_threads() -> None:
    config = torch_core_config(SPECS["denoise"], Placement(device="cpu", cpus=2))
    (group,) = config.instance_group
    assert (group.kind, group.count) == (pb.ModelInstanceGroup.KIND_CPU, CPU_CORE_INSTANCES)
    assert _parameters(config)["intra_op_threads"] == "2"
    one = torch_core_config(SPECS["denoise"], Placement(device="cpu", cpus=2, core_instances=1))
    assert one.instance_group[0].count == 1


def test_codec_instances_follow_the_pixels_each_step_handles() -> None:
    # decode handles the input, encode the output: output_scale squared times as many pixels
    assert decode_instances(SPECS["denoise"], 16) == 8
    assert decode_instances(SPECS["superres_x2"], 16) == round(16 / 5)
    assert decode_instances(SPECS["superres_x4"], 16) == PYTHON_STEP_INSTANCES
    assert encode_instances(16) == 16
    for cpus in (1, 2):  # never fewer than the other targets
        assert decode_instances(SPECS["denoise"], cpus) == PYTHON_STEP_INSTANCES
        assert encode_instances(cpus) == PYTHON_STEP_INSTANCES


def test_repository_is_the_gpu_one_with_torch_cores_and_scaled_codecs() -> None:
    gpu = {model.config.name: model for model in repository_models(Target.GPU, SPECS.values())}
    torch_models = repository_models(Target.GPU_TORCH, SPECS.values(), H200_NODE)
    assert [model.config.name for model in torch_models] == list(gpu)
    cores = {spec.core_model: spec for spec in SPECS.values()}
    for model in torch_models:
        name = model.config.name
        if name in cores:
            assert (model.python_source, model.artifacts_of) == ("torch_runner.py", name)
            continue
        assert (model.python_source, model.warmup) == (gpu[name].python_source, gpu[name].warmup)
        counts = [group.count for group in model.config.instance_group]
        if name == ENCODE_MODEL:
            assert counts == [16]
        elif name.endswith("_decode"):
            assert counts == [decode_instances(SPECS[name.removesuffix("_decode")], 16)]
        else:  # sample steps and ensembles as the gpu target has them
            assert model.config == gpu[name].config
        if model.config.backend == "python":  # the codecs take host tensors from the GPU core
            assert model.config.parameters["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value == "yes"


def test_placement_is_checked() -> None:
    with pytest.raises(ValueError, match="cuda or cpu"):
        Placement(device="rocm")
    with pytest.raises(ValueError, match="positive"):
        Placement(cpus=0)


def test_build_refuses_device_for_other_targets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--target", "gpu", "--device", "cpu", "--out", "unused"]) == 2
    assert "--device is for --target gpu-torch only" in capsys.readouterr().err


def test_serve_refuses_without_a_gpu_torch_can_use(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vitrine.devices import Gpu, GpuReport
    from vitrine.serving import gpu_torch

    node = GpuReport(gpus=(Gpu("NVIDIA H200", "9.0"),), torch="2.13.0+cpu")
    monkeypatch.setattr(gpu_torch, "detect", lambda: node)
    assert main(["serve", "--target", "gpu-torch"]) == 2
    error = capsys.readouterr().err
    assert "NVIDIA H200 is present but torch 2.13.0+cpu has no CUDA (a CPU build)" in error
    assert "--device cpu" in error  # and how to serve the target on a CPU instead


def test_gpu_torch_server_gets_a_cuda_memory_pool_per_gpu() -> None:
    from vitrine.devices import Gpu, GpuReport
    from vitrine.serving.gpu_torch import CUDA_POOL_BYTES, server_arguments

    two = GpuReport(gpus=(Gpu("NVIDIA H200", "9.0"),) * 2, torch="2.11.0", torch_devices=2)
    assert server_arguments(two) == [
        f"--cuda-memory-pool-byte-size=0:{CUDA_POOL_BYTES}",
        f"--cuda-memory-pool-byte-size=1:{CUDA_POOL_BYTES}",
    ]
