"""The serving image's entrypoint decisions (which engines to build, cache keys), on CPU."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from vitrine.export import tensorrt as trt_plan
from vitrine.export.repository import build_repository
from vitrine.export.triton_config import Target
from vitrine.pipeline import generator_pipeline_inputs
from vitrine.registry import SPECS
from vitrine.serving import gpu_entrypoint as entry
from vitrine.serving.gpu_entrypoint import (
    EngineKey,
    install_engines,
    plan_jobs,
    runtime_mismatch,
    tritonserver_command,
)
from vitrine.spec import ModelSpec

KEY = EngineKey("10.5.0", "9.0")
GPU = trt_plan.GpuInfo("NVIDIA H200", "9.0")


@pytest.fixture
def onnx_dir(tmp_path: Path) -> Path:
    for spec in SPECS.values():
        (tmp_path / "onnx" / spec.name).mkdir(parents=True)
        (tmp_path / "onnx" / spec.name / "model.onnx").write_bytes(spec.name.encode())
    return tmp_path / "onnx"


def _cache_engine(job: entry.EngineJob, key: EngineKey = KEY, passed: bool = True) -> None:
    job.folder.mkdir(parents=True, exist_ok=True)
    job.engine.write_bytes(b"engine")
    manifest = {
        "tensorrt": key.tensorrt,
        "gpu": {"name": "H100", "compute_capability": key.compute_capability},
        "onnx_sha256": job.onnx_sha256,
        "engine_sha256": hashlib.sha256(b"engine").hexdigest(),
        "gate": {"passed": passed},
    }
    (job.folder / "manifest.json").write_text(json.dumps(manifest))


def test_cache_key_names_tensorrt_and_architecture() -> None:
    assert KEY.folder == "trt-10.5.0_sm90"
    assert EngineKey("10.5.0.18", "12.0").folder == "trt-10.5.0.18_sm120"


def test_empty_cache_builds_every_engine(onnx_dir: Path, tmp_path: Path) -> None:
    jobs = plan_jobs(SPECS.values(), onnx_dir, tmp_path / "cache", KEY)
    assert [(job.model, job.build) for job in jobs] == [(name, True) for name in SPECS]
    digest = hashlib.sha256(b"superres_x2").hexdigest()
    assert jobs[0].folder == tmp_path / "cache" / "trt-10.5.0_sm90" / "superres_x2" / digest[:16]


def test_cached_engines_are_reused_only_when_everything_matches(
    onnx_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first, second, *others = plan_jobs(SPECS.values(), onnx_dir, cache, KEY)
    _cache_engine(first)
    _cache_engine(second, passed=False)
    jobs = plan_jobs(SPECS.values(), onnx_dir, cache, KEY)
    assert [(job.build, job.reason) for job in jobs[:2]] == [
        (False, "cached"),
        (True, "cached engine did not pass its precision gate"),
    ]
    assert all(job.build for job in jobs[2:]) and len(jobs) == 2 + len(others)
    # another TensorRT or GPU architecture: another key, fresh builds
    assert all(
        job.build for job in plan_jobs(SPECS.values(), onnx_dir, cache, EngineKey("10.6.0", "9.0"))
    )
    assert all(
        job.build for job in plan_jobs(SPECS.values(), onnx_dir, cache, EngineKey("10.5.0", "8.9"))
    )
    # a new ONNX file: new folder, fresh build
    (onnx_dir / "superres_x2" / "model.onnx").write_bytes(b"retrained")
    assert plan_jobs(SPECS.values(), onnx_dir, cache, KEY)[0].build
    # a torn engine file is rebuilt
    first.engine.write_bytes(b"eng")
    (onnx_dir / "superres_x2" / "model.onnx").write_bytes(b"superres_x2")
    assert "differs" in plan_jobs(SPECS.values(), onnx_dir, cache, KEY)[0].reason


def test_missing_onnx_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="superres_x2"):
        plan_jobs(SPECS.values(), tmp_path, tmp_path / "cache", KEY)


@pytest.mark.parametrize(
    ("capability", "names"),
    [("9.0", ["model.sm90.plan"]), ("12.0", ["model.sm120.plan", "model.plan"])],
)
def test_engines_are_linked_under_their_cc_model_filename(
    onnx_dir: Path, tmp_path: Path, capability: str, names: list[str]
) -> None:
    key = EngineKey("10.5.0", capability)
    source = build_repository(Target.GPU, tmp_path / "baked")
    jobs = plan_jobs(SPECS.values(), onnx_dir, tmp_path / "cache", key)
    for job in jobs:
        _cache_engine(job, key)
    runtime = tmp_path / "runtime"
    links = install_engines(source, runtime, jobs, key)
    assert set(links) == {spec.core_model for spec in SPECS.values()}  # generators' too
    for job in jobs:
        assert [path.name for path in links[job.model]] == names
        for path in links[job.model]:
            assert path.resolve() == job.engine.resolve()
        assert not (runtime / job.model / "1" / ".gitkeep").exists()
    assert (runtime / "superres_x2_decode" / "warmup" / "image_bytes").is_file()
    for spec in SPECS.values():
        if spec.is_generator:  # the python sample step is copied with its warm-up request
            sample = runtime / spec.sample_model
            assert [path.name for path in (sample / "1").iterdir()] == ["model.py"]
            warmup = {path.name for path in (sample / "warmup").iterdir()}
            assert warmup == {tensor.name for tensor in generator_pipeline_inputs(spec)}
    # a restart replaces the runtime copy: nothing of the last run survives, links are redone
    stale = runtime / "superres_x2" / "1" / "leftover.plan"
    stale.write_bytes(b"last run")
    (runtime / "retired_model").mkdir()
    again = install_engines(source, runtime, jobs, key)
    assert again == links
    assert not stale.exists() and not (runtime / "retired_model").exists()
    assert all(path.resolve() == job.engine.resolve() for job in jobs for path in again[job.model])


def test_builder_and_server_tensorrt_must_match() -> None:
    assert runtime_mismatch("10.5.0", "10.5.0.18") is None
    assert runtime_mismatch("10.5.0", None) is None
    assert "10.6.0" in (runtime_mismatch("10.6.0", "10.5.0.18") or "")


def test_server_command_keeps_model_control_closed(tmp_path: Path) -> None:
    command = tritonserver_command(tmp_path, ["--log-verbose=1"])
    assert command == [
        "tritonserver",
        f"--model-repository={tmp_path}",
        "--cache-config=local,size=67108864",  # generators' responses are cached
        "--log-verbose=1",
    ]
    assert not any("model-control" in part for part in command)


def test_main_stops_with_the_reason_without_tensorrt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(trt_plan, "detect_toolchain", lambda: None)
    monkeypatch.setattr(trt_plan, "detect_gpu", lambda: None)
    assert entry.main(["--build-only"]) == 2
    assert "TensorRT" in capsys.readouterr().err


def test_served_specs_follow_vitrine_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITRINE_MODELS", "superres_x4")
    assert [spec.name for spec in entry.served_specs()] == ["superres_x4"]
    monkeypatch.setenv("VITRINE_MODELS", "superres_x3")
    with pytest.raises(ValueError, match="superres_x3"):
        entry.served_specs()
    monkeypatch.delenv("VITRINE_MODELS")
    assert [spec.name for spec in entry.served_specs()] == list(SPECS)


def test_a_model_whose_fp16_engine_fails_is_built_in_fp32_and_the_rest_still_build(
    onnx_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[tuple[str, str | None]] = []
    mismatch = "superres_x4: FP32 layers ['/model/to_subpixels/Conv'] are not in the network"

    def build(spec: ModelSpec, onnx: Path, folder: Path, **kwargs: object) -> dict:
        failure = kwargs.get("fp16_failure")
        calls.append((spec.name, failure if failure is None else str(failure)))
        if spec.name == "superres_x4" and failure is None:
            raise trt_plan.EngineBuildError(mismatch)
        if spec.name == "enhance":  # fails in FP32 too
            raise trt_plan.GateFailed("enhance: precision gate fails", {"passed": False})
        return {}

    monkeypatch.setattr(entry, "build_gated_engine", build)
    jobs = plan_jobs(SPECS.values(), onnx_dir, tmp_path / "cache", KEY)
    toolchain = trt_plan.Toolchain("python", "10.5.0")
    with caplog.at_level("WARNING", logger="vitrine.serving.gpu_entrypoint"):
        failed = entry.build_engines(jobs, tmp_path / "cache", toolchain, GPU)
    assert failed == ["enhance"]
    assert [name for name, _ in calls] == [
        name for name in SPECS for _ in range(2 if name in ("superres_x4", "enhance") else 1)
    ]
    assert ("superres_x4", f"EngineBuildError: {mismatch}") in calls
    assert f"superres_x4: no FP16 engine (EngineBuildError: {mismatch}); building it in FP32" in (
        caplog.text
    )
    assert "enhance: no FP32 engine either" in caplog.text


def test_main_exits_1_naming_models_left_without_an_engine(
    onnx_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(
        entry, "require_tensorrt", lambda: (trt_plan.Toolchain("python", "10.5.0"), GPU)
    )
    monkeypatch.setattr(entry, "build_engines", lambda *args: ["enhance"])
    monkeypatch.setenv("VITRINE_ONNX_DIR", str(onnx_dir))
    monkeypatch.setenv("VITRINE_ENGINE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TRT_VERSION", raising=False)
    assert entry.main(["--build-only"]) == 1
    assert "no engine for enhance" in capsys.readouterr().err
