"""Training runs for every spec with its smoke preset, resumes exactly, and checkpoints describe themselves."""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vitrine.errors import ConfigError, UnknownName
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec
from vitrine.training.checkpoint import load_checkpoint
from vitrine.training.config import TrainConfig, load_config
from vitrine.training.trainer import native_bfloat16, resolve_device, train

TRAINED_SPECS = pytest.mark.parametrize(
    "spec", [spec for spec in SPECS.values() if not spec.weights_from], ids=lambda spec: spec.name
)
SIDECAR_KEYS = {
    "spec",
    "task",
    "architecture",
    "arch_kwargs",
    "training",
    "data",
    "steps",
    "metrics",
    "git_commit",
    "cpu_capability",
    "device",
    "wall_seconds",
}


@pytest.mark.expensive
@TRAINED_SPECS
def test_smoke_training_writes_a_self_describing_checkpoint(
    spec: ModelSpec, tmp_path: Path
) -> None:
    result = train(
        spec, "smoke", run_dir=tmp_path / "run", out_dir=tmp_path / "out", progress=False
    )
    assert result is not None and result.weights.is_file()
    meta = json.loads(result.weights.with_suffix(".json").read_text())
    assert set(meta) >= SIDECAR_KEYS
    assert meta["spec"] == spec.name and meta["training"]["preset"] == "smoke"
    assert "margins" in meta["metrics"]
    assert (tmp_path / "run" / "loss.png").is_file()
    reloaded = load_checkpoint(result.weights)
    for key, value in load_file(str(result.weights)).items():
        torch.testing.assert_close(reloaded.model.state_dict()[key], value)


@pytest.mark.parametrize(
    "name",
    ["superres_x2", "remove_background"],  # float32; bfloat16 with a channels-last network
)
@pytest.mark.expensive
def test_resumed_training_equals_uninterrupted(name: str, tmp_path: Path) -> None:
    spec = SPECS[name]
    straight = train(spec, "smoke", run_dir=tmp_path / "a", out_dir=tmp_path / "a", progress=False)
    paused = train(
        spec, "smoke", run_dir=tmp_path / "b", out_dir=tmp_path / "b", progress=False, stop_after=2
    )
    assert paused is None
    resumed = train(spec, "smoke", run_dir=tmp_path / "b", out_dir=tmp_path / "b", progress=False)
    assert straight is not None and resumed is not None
    assert straight.metrics["margins"] == resumed.metrics["margins"]
    a, b = load_file(str(straight.weights)), load_file(str(resumed.weights))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


@pytest.mark.expensive
@TRAINED_SPECS
def test_a_paused_run_resumes_exactly(spec: ModelSpec, tmp_path: Path) -> None:
    """Every state file and the loss log after steps 1-3, in one go or paused after 2."""
    runs = {"straight": (3,), "paused": (2, 3)}
    for run, stops in runs.items():
        for stop in stops:
            run_dir = tmp_path / run
            result = train(
                spec, "smoke", run_dir=run_dir, out_dir=run_dir, progress=False, stop_after=stop
            )
            assert result is None
    straight, resumed = (tmp_path / run for run in runs)
    state = sorted(path.name for path in straight.glob("*.safetensors"))
    assert {"last.safetensors", "last.rng.safetensors"} <= set(state)
    assert any(name.endswith(".optim.safetensors") for name in state)
    assert sorted(path.name for path in resumed.glob("*.safetensors")) == state
    for file in state:
        a, b = load_file(str(straight / file)), load_file(str(resumed / file))
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=f"{file}: {key}")
    log = (straight / "history.csv").read_text()
    assert len(log.splitlines()) == 4  # the header and steps 1-3
    assert (resumed / "history.csv").read_text() == log


def test_bfloat16_warns_exactly_where_the_cpu_emulates_it(tmp_path: Path) -> None:
    spec = SPECS["remove_background"]
    assert load_config(spec.name, "smoke").precision == "bfloat16"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(spec, "smoke", run_dir=tmp_path, out_dir=tmp_path, progress=False, stop_after=1)
    emulated = [w for w in caught if "emulates them" in str(w.message)]
    assert len(emulated) == (0 if native_bfloat16() else 1)
    assert all(w.category is RuntimeWarning for w in emulated)
    meta = load_checkpoint(tmp_path / "last.safetensors").meta
    assert meta["cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_an_unknown_precision_is_refused() -> None:
    settings = asdict(load_config("denoise", "smoke")) | {"precision": "float16"}
    with pytest.raises(ValueError, match="precision 'float16': expected one of"):
        TrainConfig(**settings)


def test_resume_refuses_another_config(tmp_path: Path) -> None:
    spec = SPECS["superres_x2"]
    train(spec, "smoke", run_dir=tmp_path, out_dir=tmp_path, progress=False, stop_after=2)
    with pytest.raises(ValueError, match="another config"):
        train(spec, "full", run_dir=tmp_path, out_dir=tmp_path, progress=False)


def test_a_spec_serving_another_checkpoint_is_not_trained_on_its_own(tmp_path: Path) -> None:
    (spec,) = (spec for spec in SPECS.values() if spec.weights_from)
    with pytest.raises(ValueError, match=f"train that \\(vitrine train {spec.weights_from}\\)"):
        train(spec, "smoke", run_dir=tmp_path, out_dir=tmp_path, progress=False)


def _with_weight_decay(monkeypatch: pytest.MonkeyPatch, decay: float) -> None:
    """Runs in this test read their preset with ``weight_decay`` set to ``decay``."""
    from vitrine.training import trainer

    def load(name: str, preset: str) -> TrainConfig:
        return replace(load_config(name, preset), weight_decay=decay)

    monkeypatch.setattr(trainer, "load_config", load)


def test_weight_decay_shrinks_the_weights_and_is_recorded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec = SPECS["superres_x2"]
    plain = train(spec, "smoke", run_dir=tmp_path / "a", out_dir=tmp_path / "a", progress=False)
    _with_weight_decay(monkeypatch, 0.5)
    decayed = train(spec, "smoke", run_dir=tmp_path / "b", out_dir=tmp_path / "b", progress=False)
    assert plain is not None and decayed is not None
    meta = json.loads(decayed.weights.with_suffix(".json").read_text())
    assert meta["training"]["weight_decay"] == 0.5
    a, b = load_file(str(plain.weights)), load_file(str(decayed.weights))
    weights = [key for key in a if key.endswith("weight")]
    assert weights
    assert sum(float(b[key].norm()) for key in weights) < sum(
        float(a[key].norm()) for key in weights
    )


def test_weight_decay_reaches_every_trained_network(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _with_weight_decay(monkeypatch, 0.05)
    train(SPECS["dcgan"], "smoke", run_dir=tmp_path, out_dir=tmp_path, progress=False, stop_after=1)
    for network in ("generator", "discriminator"):
        saved = json.loads((tmp_path / f"last.{network}.optim.json").read_text())
        assert [group["weight_decay"] for group in saved["param_groups"]] == [0.05], network
        assert all(group["decoupled_weight_decay"] for group in saved["param_groups"])


def test_an_unknown_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnknownName, match="device 'tpu': expected one of"):
        train(SPECS["superres_x2"], "smoke", run_dir=tmp_path, out_dir=tmp_path, device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_cuda_is_refused_where_torch_sees_no_gpu() -> None:
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="sees no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.gpu
@TRAINED_SPECS
def test_smoke_training_runs_on_cuda(spec: ModelSpec, tmp_path: Path) -> None:
    result = train(spec, "smoke", run_dir=tmp_path, out_dir=tmp_path, progress=False, device="cuda")
    assert result is not None
    meta = json.loads(result.weights.with_suffix(".json").read_text())
    assert meta["device"] == "cuda" and meta["gpu"] == torch.cuda.get_device_name()
