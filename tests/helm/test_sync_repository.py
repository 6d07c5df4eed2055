"""The init container's sync-and-verify script, run for real on a PVC-style source folder."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from helm_chart import Render, only

SERVED = ("encode_image", "superres_x2")


@pytest.fixture()
def script(render: Render, tmp_path: Path) -> Path:
    path = tmp_path / "sync-repository.sh"
    path.write_text(only(render(), "ConfigMap")["data"]["sync-repository.sh"])
    return path


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    """A repository with a sha256 manifest; superres_x4 is present but not served."""
    root = tmp_path / "source"
    files = {
        "encode_image/config.pbtxt": "name: 'encode_image'",
        "encode_image/1/model.py": "# encode",
        "superres_x2/config.pbtxt": "name: 'superres_x2'",
        "superres_x2/1/model.onnx": "onnx bytes",
        "superres_x4/config.pbtxt": "name: 'superres_x4'",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    lines = [
        f"{hashlib.sha256(text.encode()).hexdigest()}  {name}\n" for name, text in files.items()
    ]
    (root / "SHA256SUMS").write_text("".join(lines))
    return root


def _sync(
    script: Path, source: Path, manifest_sha256: str = ""
) -> subprocess.CompletedProcess[str]:
    dest = source.parent / "models"
    dest.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "TMPDIR": str(source.parent),
        "SOURCE": "pvc",
        "SOURCE_URI": str(source),
        "DEST": str(dest),
        "MANIFEST": "SHA256SUMS",
        "MANIFEST_SHA256": manifest_sha256,
        "MODELS": " ".join(SERVED),
    }
    return subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=30)


def test_copies_and_verifies_only_the_served_models(script: Path, source: Path) -> None:
    done = _sync(script, source)
    assert done.returncode == 0, done.stderr
    assert "verified 4 files" in done.stdout
    dest = source.parent / "models"
    assert (dest / "superres_x2" / "1" / "model.onnx").read_text() == "onnx bytes"
    assert not (dest / "superres_x4").exists()


def test_a_tampered_file_stops_the_pod(script: Path, source: Path) -> None:
    (source / "superres_x2" / "1" / "model.onnx").write_text("swapped")
    done = _sync(script, source)
    assert done.returncode != 0
    assert "superres_x2/1/model.onnx: FAILED" in done.stdout + done.stderr


def test_a_file_missing_from_the_manifest_stops_the_pod(script: Path, source: Path) -> None:
    (source / "encode_image" / "1" / "extra.py").write_text("import os")
    (source / "superres_x2" / ".hidden").write_text("x")
    done = _sync(script, source)
    assert done.returncode != 0
    assert "encode_image/1/extra.py" in done.stderr
    assert "superres_x2/.hidden" in done.stderr


def test_a_model_without_checksums_stops_the_pod(script: Path, source: Path) -> None:
    manifest = source / "SHA256SUMS"
    lines = manifest.read_text().splitlines(keepends=True)
    manifest.write_text("".join(line for line in lines if " superres_x2/" not in line))
    done = _sync(script, source)
    assert done.returncode != 0
    assert "lists no file of superres_x2" in done.stderr


def test_the_manifest_itself_can_be_pinned(script: Path, source: Path) -> None:
    pinned = hashlib.sha256((source / "SHA256SUMS").read_bytes()).hexdigest()
    assert _sync(script, source, manifest_sha256=pinned).returncode == 0
    assert _sync(script, source, manifest_sha256="0" * 64).returncode != 0
