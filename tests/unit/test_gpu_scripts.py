"""The GPU check's own plumbing, on CPU: the bundle's parts, their checks, the linked package.

The whole check runs here with ``scripts/gpu_check.sh OUT --smoke`` on a bundle made for
this Python (``python scripts/gpu_bundle.py --python 3.11``); these are its pure parts.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bundle = _script("gpu_bundle")
check = _script("gpu_check")


def _stage(root: Path) -> Path:
    stage = root / "stage"
    (stage / "site").mkdir(parents=True)
    (stage / "site" / "payload.bin").write_bytes(os.urandom(300_000))  # incompressible
    (stage / "BUNDLE.json").write_text('{"python": "3.12"}\n')
    return stage


def test_parts_are_checked_joined_and_unpacked(tmp_path: Path) -> None:
    parts = bundle.pack(_stage(tmp_path), tmp_path / "bundle", part_bytes=100_000)
    assert len(parts) == 4 and all(part.stat().st_size <= 100_000 for part in parts)
    assert [part.parent.name for part in parts] == ["1", "2", "3", "4"]
    found, problems = check.bundle_parts(tmp_path / "bundle")
    assert (found, problems) == (parts, [])
    about = check.unpack(found, tmp_path / "unpacked")
    assert about == {"python": "3.12"}
    assert (tmp_path / "unpacked" / "site" / "payload.bin").read_bytes() == (
        tmp_path / "stage" / "site" / "payload.bin"
    ).read_bytes()


def test_a_missing_or_altered_part_is_named(tmp_path: Path) -> None:
    first, second, *_ = bundle.pack(_stage(tmp_path), tmp_path / "bundle", part_bytes=100_000)
    second.unlink()  # a machine that went back between calls lost it
    first.write_bytes(first.read_bytes()[:-1] + b"x")
    found, problems = check.bundle_parts(tmp_path / "bundle")
    assert len(found) == 2
    assert any("bundle.tar.xz.2 is missing" in problem for problem in problems)
    assert any("bundle.tar.xz.1" in p and "differs" in p for p in problems)
    assert check.bundle_parts(tmp_path / "nothing")[1][0].startswith("no part of the bundle")


def test_the_linked_package_imports_from_any_folder_but_the_checkout(tmp_path: Path) -> None:
    package = check.link_vitrine(tmp_path / "site")
    assert (package / "export").resolve() == SCRIPTS.parent / "export"
    code = (
        "import vitrine.export.torchscript, vitrine.training.architectures, vitrine.paths as p;"
        "print(vitrine.export.torchscript.__file__, p.source_root())"
    )
    result = subprocess.run(  # -S: without site, so without this venv's editable install
        [sys.executable, "-S", "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{':'.join(sys.path[1:])}"},
        capture_output=True,
        text=True,
        check=True,
    )
    module, root = result.stdout.split()
    assert module == str(package / "export" / "torchscript.py")
    assert Path(root) == SCRIPTS.parent  # weights/ and reports/ are the checkout's


def test_stage_reports_the_parts_present(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parts = bundle.pack(_stage(tmp_path), tmp_path / "bundle", part_bytes=200_000)
    parts[-1].unlink()
    assert check.main(["--stage", "--bundle", str(tmp_path / "bundle")]) == 0
    out = capsys.readouterr().out
    assert f"present: {parts[0]}" in out and f"{parts[-1].name} is missing" in out


def test_pack_makes_one_xz_stream(tmp_path: Path) -> None:
    parts = bundle.pack(_stage(tmp_path), tmp_path / "bundle", part_bytes=1 << 30)
    (part,) = parts
    with tarfile.open(part, "r:xz") as archive:
        assert sorted(archive.getnames()) == ["BUNDLE.json", "site", "site/payload.bin"]
