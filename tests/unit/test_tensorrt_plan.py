"""TensorRT build plan vs spec vs Triton config, for every spec; builder selection and errors."""

from __future__ import annotations

import dataclasses
import json
import stat
import sys
import types
from pathlib import Path

import onnx
import pytest
import torch

from vitrine.export import tensorrt as trt_plan
from vitrine.export.onnx_export import export_onnx
from vitrine.export.tensorrt import (
    BuildPlan,
    GateFailed,
    TensorRTUnavailable,
    Toolchain,
    build_engine,
    build_plan,
    gate_with_fallback,
    plan_problems,
    require_tensorrt,
    run_export_format,
)
from vitrine.export.triton_config import (
    ENGINE_ARCHITECTURES,
    Target,
    core_config,
    decode_config,
    encode_config,
    engine_filename,
    warmup_files,
)
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec, PrecisionPolicy
from vitrine.training.architectures import build_architecture

ALL_SPECS = pytest.mark.parametrize("spec", SPECS.values(), ids=lambda spec: spec.name)


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    files = {}
    for spec in SPECS.values():
        torch.manual_seed(0)
        model = build_architecture(spec.architecture, spec.arch_kwargs).eval()
        folder = tmp_path_factory.mktemp(spec.name)
        files[spec.name] = export_onnx(spec, model, folder / "model.onnx")
    return files


@ALL_SPECS
def test_plan_profiles_match_the_spec_and_the_triton_config(
    spec: ModelSpec, onnx_files: dict[str, Path]
) -> None:
    plan = build_plan(spec, onnx_files[spec.name])
    profile, *other_profiles = plan.profiles
    assert (profile.name, profile.min, profile.opt, profile.max) == (
        spec.input.name,
        spec.profile.min,
        spec.profile.opt,
        spec.profile.max,
    )
    assert [p.name for p in other_profiles] == [tensor.name for tensor in spec.inputs[1:]]
    for other in other_profiles:  # options and labels follow the first input's batch
        assert [other.min[0], other.opt[0], other.max[0]] == [
            profile.min[0],
            profile.opt[0],
            profile.max[0],
        ]
    config = core_config(spec, Target.GPU)
    assert plan_problems(plan, config) == []
    assert profile.min[0] == 1 and profile.max[0] == config.max_batch_size
    assert profile.opt[0] in config.dynamic_batching.preferred_batch_size
    if not spec.is_generator:  # image sides; a generator's first input is its latent
        core = spec.core_limits
        assert profile.min[1] <= core.min_side and profile.max[1] >= core.max_side
    assert plan.fp16 is spec.precision.fp16 and plan.precision_constraints == "obey"


@ALL_SPECS
def test_fp32_layers_are_real_onnx_node_names(spec: ModelSpec, onnx_files: dict[str, Path]) -> None:
    plan = build_plan(spec, onnx_files[spec.name])
    nodes = {node.name: node for node in onnx.load(str(onnx_files[spec.name])).graph.node}
    assert set(plan.fp32_layers) <= set(nodes)
    for part in spec.precision.fp32_layers:  # every policy entry resolves to a layer
        assert any(part in name for name in plan.fp32_layers)
    resizes = {name for name, node in nodes.items() if node.op_type == "Resize"}
    assert resizes <= set(plan.fp32_layers)  # as export/fp16.py keeps them


@ALL_SPECS
def test_trtexec_command_realises_the_plan(spec: ModelSpec, onnx_files: dict[str, Path]) -> None:
    path = onnx_files[spec.name]
    plan = build_plan(spec, path, engine=Path("/e/model.plan"), timing_cache=Path("/c/t.cache"))
    layers = ",".join(f"{name}:fp32" for name in plan.fp32_layers)

    def shapes(image_shape: tuple[int, ...]) -> str:
        return ",".join(
            f"{name}:{'x'.join(map(str, shape))}"
            for name, shape in spec.input_shapes(image_shape).items()
        )

    assert plan.trtexec_command("/usr/bin/trtexec") == [
        "/usr/bin/trtexec",
        f"--onnx={path}",
        "--saveEngine=/e/model.plan",
        f"--minShapes={shapes(spec.profile.min)}",
        f"--optShapes={shapes(spec.profile.opt)}",
        f"--maxShapes={shapes(spec.profile.max)}",
        "--fp16",
        "--precisionConstraints=obey",
        f"--layerPrecisions={layers}",
        f"--layerOutputTypes={layers}",
        "--memPoolSize=workspace:4096",
        "--timingCacheFile=/c/t.cache",
        "--skipInference",
    ]


def test_plan_json_round_trips(onnx_files: dict[str, Path], tmp_path: Path) -> None:
    spec = SPECS["superres_x2"]
    plan = build_plan(spec, onnx_files[spec.name])
    data = json.loads(plan.write(tmp_path / "plan.json").read_text())
    assert data["trtexec"] == plan.trtexec_command()
    assert BuildPlan.from_dict(data) == plan
    more = plan.with_fp32_layers(["/Mul", plan.fp32_layers[0]])
    assert more.fp32_layers == (*plan.fp32_layers, "/Mul")


def test_plan_problems_catch_a_static_batch(onnx_files: dict[str, Path]) -> None:
    spec = SPECS["superres_x2"]
    plan = build_plan(spec, onnx_files[spec.name])
    (profile,) = plan.profiles
    static = dataclasses.replace(profile, max=(1, *profile.max[1:]), opt=(1, *profile.opt[1:]))
    problems = plan_problems(
        dataclasses.replace(plan, profiles=(static,)), core_config(spec, Target.GPU)
    )
    assert any("max batch 1" in problem for problem in problems)
    assert any("opt batch 1" in problem for problem in problems)


def test_a_policy_layer_matching_no_node_is_an_error(onnx_files: dict[str, Path]) -> None:
    spec = SPECS["superres_x2"]
    wrong = dataclasses.replace(spec, precision=PrecisionPolicy(fp32_layers=("no_such_layer",)))
    with pytest.raises(ValueError, match="no_such_layer"):
        build_plan(wrong, onnx_files[spec.name])


def test_gpu_configs_name_engines_per_architecture_and_warm_up() -> None:
    assert (
        engine_filename("9.0") == "model.sm90.plan"
        and engine_filename("12.0") == "model.sm120.plan"
    )
    for spec in SPECS.values():
        config = core_config(spec, Target.GPU)
        assert dict(config.cc_model_filenames) == {
            cc: engine_filename(cc) for cc in ENGINE_ARCHITECTURES
        }
        (warmup,) = config.model_warmup
        assert warmup.batch_size == spec.profile.opt[0]
        assert list(warmup.inputs[spec.input.name].dims) == list(spec.profile.opt[1:])
        assert warmup.inputs[spec.input.name].zero_data
        assert set(warmup.inputs) == {tensor.name for tensor in spec.inputs}
        assert not config.HasField("response_cache")  # cached, if at all, as a whole pipeline
        if spec.is_generator:  # no decode step; see test_triton_config for the sample step
            continue
        decode = decode_config(spec, Target.GPU)
        assert decode.parameters["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value == "yes"
        assert (
            decode.dynamic_batching.default_queue_policy.max_queue_size
            == spec.batching.max_queue_size
        )
        files = {i.input_data_file for w in decode.model_warmup for i in w.inputs.values()}
        assert files == set(warmup_files(decode.name, spec.options))
        assert not decode_config(spec).model_warmup  # cpu/embedded steps unchanged
    encode = encode_config(8, Target.GPU, max_queue_size=64)
    assert len(encode.model_warmup) == 3
    files = {i.input_data_file for w in encode.model_warmup for i in w.inputs.values()} - {""}
    assert files <= set(warmup_files(encode.name))


def test_decode_warmup_file_is_a_length_prefixed_png() -> None:
    import io

    from PIL import Image

    data = warmup_files(SPECS["superres_x2"].decode_model)["image_bytes"]
    length = int.from_bytes(data[:4], "little")
    assert length == len(data) - 4
    image = Image.open(io.BytesIO(data[4:]))
    assert image.format == "PNG" and image.size == (32, 32)


def test_missing_tensorrt_and_gpu_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trt_plan, "detect_toolchain", lambda: None)
    monkeypatch.setattr(trt_plan, "detect_gpu", lambda: None)
    with pytest.raises(TensorRTUnavailable) as error:
        require_tensorrt()
    message = str(error.value)
    assert "`tensorrt` Python package" in message and "trtexec" in message
    assert "NVIDIA GPU" in message


def test_export_trt_stops_before_any_work_without_tensorrt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(trt_plan, "detect_toolchain", lambda: None)
    monkeypatch.setattr(trt_plan, "detect_gpu", lambda: trt_plan.GpuInfo("H100", "9.0"))
    status = run_export_format(SPECS["superres_x2"], "trt", tmp_path / "w.safetensors", tmp_path)
    assert status == 2
    err = capsys.readouterr().err
    assert "TensorRT" in err and "NVIDIA GPU" not in err
    assert not any(tmp_path.iterdir())


def test_toolchain_prefers_the_python_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="10.5.0"))
    assert trt_plan.detect_toolchain().kind == "python"


def _fake_trtexec(tmp_path: Path) -> Path:
    script = tmp_path / "trtexec"
    script.write_text(
        "#!/bin/sh\n"
        'echo "&&&& RUNNING TensorRT.trtexec [TensorRT v100500] # trtexec $*"\n'
        f'echo "$@" > {tmp_path}/args\n'
        'for a in "$@"; do case $a in --saveEngine=*) printf ENGINE > "${a#--saveEngine=}";; esac; done\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_trtexec_fallback_runs_the_plan_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, onnx_files: dict[str, Path]
) -> None:
    script = _fake_trtexec(tmp_path)
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails
    monkeypatch.setenv("PATH", f"{tmp_path}")
    monkeypatch.delenv("TRT_VERSION", raising=False)
    toolchain = trt_plan.detect_toolchain()
    assert toolchain == Toolchain("trtexec", "10.5.0", str(script))
    spec = SPECS["superres_x4"]
    plan = build_plan(spec, onnx_files[spec.name], engine=tmp_path / "out" / "model.plan")
    assert build_engine(plan, toolchain) == b"ENGINE"
    assert (tmp_path / "args").read_text().split() == plan.trtexec_command()[1:]


def _report(passed: bool) -> dict:
    return {"passed": passed, "shapes": [{"psnr_db": 50.0, "max_abs_error": 1}]}


def test_gate_fallback_adds_layers_progressively_and_records_them() -> None:
    spec = SPECS["superres_x2"]
    seen = []

    def check(extra: tuple[str, ...]) -> dict:
        seen.append(extra)
        return _report("d" in extra)

    report = gate_with_fallback(spec, check, ["a", "b", "c", "d", "e"])
    assert seen == [(), ("a",), ("a", "b", "c"), ("a", "b", "c", "d", "e")]
    assert report["extra_fp32_layers"] == ["a", "b", "c", "d", "e"]
    assert [attempt["passed"] for attempt in report["attempts"]] == [False, False, False, True]
    with pytest.raises(GateFailed) as error:
        gate_with_fallback(spec, lambda extra: _report(False), ["a", "b"])
    assert error.value.report["extra_fp32_layers"] == ["a", "b"]
    assert gate_with_fallback(spec, lambda extra: _report(True), ["a"])["extra_fp32_layers"] == []


def test_an_fp16_failure_builds_an_fp32_engine_and_records_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, onnx_files: dict[str, Path]
) -> None:
    from vitrine.export.parity import OnnxRunner

    spec = SPECS["superres_x4"]
    script = _fake_trtexec(tmp_path)
    reference = OnnxRunner.open(onnx_files[spec.name], spec.output.name)

    class Fp32EngineStandIn:  # the TensorRT runner: here the FP32 ONNX model, so the gate passes
        def __init__(self, engine: bytes, output_name: str) -> None:
            self.run = reference.run

        def __enter__(self) -> Fp32EngineStandIn:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(trt_plan, "_EngineRunner", Fp32EngineStandIn)
    why = "EngineBuildError: FP32 layers ['/model/to_subpixels/Conv'] are not in the network"
    manifest = trt_plan.build_gated_engine(
        spec,
        onnx_files[spec.name],
        tmp_path / "engine",
        shapes=(("min", spec.profile.min),),
        toolchain=Toolchain("trtexec", "10.5.0", str(script)),
        gpu=trt_plan.GpuInfo("NVIDIA H200", "9.0"),
        fp16_failure=why,
    )
    arguments = (tmp_path / "args").read_text().split()
    assert "--fp16" not in arguments
    assert not any(argument.startswith("--layerPrecisions") for argument in arguments)
    assert manifest["precision"]["fp16"] is False
    assert manifest["precision"]["fp32_layers"] == []
    assert manifest["precision"]["fp16_failure"] == why
    assert manifest["gate"]["passed"]
    written = json.loads((tmp_path / "engine" / "manifest.json").read_text())
    assert written["precision"]["fp16_failure"] == why
