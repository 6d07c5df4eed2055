"""The GPU training run's plumbing on CPU: the corpus bundle packed, carried in parts and
unpacked, and ``scripts/gpu_train.sh`` end to end with the smoke preset on the CPU."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from vitrine.training.corpus import PACKAGED_PHOTOS

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _script(name: str) -> ModuleType:
    sys.path.insert(0, str(SCRIPTS))  # the scripts import their siblings
    try:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPTS))
    return module


corpus_script = _script("gpu_corpus")
bundle = _script("gpu_bundle")
check = _script("gpu_check")
gpu_train = _script("gpu_train")


@pytest.fixture(scope="module")
def corpus_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The photos (no wheels: this venv has them) packed in 4 MiB parts."""
    root = tmp_path_factory.mktemp("corpus")
    about = {"photos": corpus_script.stage_photos(root / "stage" / "corpus")}
    (root / "stage" / "BUNDLE.json").write_text(json.dumps(about))
    bundle.pack(root / "stage", root / "bundle", part_bytes=4 << 20)
    return root / "bundle"


def test_the_photos_travel_in_parts_byte_for_byte(corpus_bundle: Path, tmp_path: Path) -> None:
    parts, problems = check.bundle_parts(corpus_bundle)
    assert problems == [] and len(parts) >= 3
    assert all(part.stat().st_size <= 4 << 20 for part in parts)
    about = check.unpack(parts, tmp_path / "unpacked")
    assert set(about["photos"]) == {photo.name for photo in PACKAGED_PHOTOS}
    for photo in PACKAGED_PHOTOS:
        installed = photo.installed_file()
        (carried,) = (tmp_path / "unpacked" / "corpus").glob(f"{photo.name}.*")
        digest = hashlib.sha256(carried.read_bytes()).hexdigest()
        assert carried.read_bytes() == installed.read_bytes()
        assert about["photos"][photo.name]["sha256"] == digest


def test_a_run_without_the_whole_bundle_stops_and_says_so(tmp_path: Path) -> None:
    status = gpu_train.main(
        [str(tmp_path / "out"), "superres_x2", "--corpus", str(tmp_path / "none")]
        + ["--work", str(tmp_path / "work"), "--device", "cpu"]
    )
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert status == 1 and summary["problem"] == "incomplete corpus bundle"
    assert "no part of the bundle" in (tmp_path / "out" / "train.log").read_text()


def test_a_checkpoint_over_16_mib_fails_the_run(tmp_path: Path) -> None:
    (tmp_path / "m.safetensors").write_bytes(b"\0" * (16 << 20))
    meta = {"steps": 3, "training": {"precision": "bfloat16"}, "metrics": {"margins": {"a": 1}}}
    (tmp_path / "m.json").write_text(json.dumps(meta))
    entry = gpu_train.describe(tmp_path, "m", 0, 1.0)
    assert entry["ok"] is False and "over 16 MiB" in entry["problem"]
    assert entry["margins"] == {"a": 1} and entry["planned_steps"] == 3
    assert gpu_train.describe(tmp_path, "absent", 1, 1.0)["ok"] is False


@pytest.mark.expensive
def test_the_gpu_command_runs_end_to_end_on_the_cpu(corpus_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [str(SCRIPTS / "gpu_train.sh"), str(out), "superres_x2", "inpaint"]
    command += ["--preset", "gpu_smoke", "--device", "cpu", "--workers", "1", "--threads", "1"]
    command += ["--corpus", str(corpus_bundle), "--work", str(tmp_path / "work")]
    env = os.environ | {"VITRINE_NODE_PYTHON": sys.executable}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr  # 600 s: a hang guard
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] and set(summary["models"]) == {"superres_x2", "inpaint"}
    for model, entry in summary["models"].items():
        assert entry["steps"] == 4 and entry["device"] == "cpu" and entry["margins"]
        meta = json.loads((out / f"{model}.json").read_text())
        assert meta["data"]["corpus"] == "photos" and meta["data_workers"] == 1
        assert (out / f"{model}.log").is_file()
