"""The embedded server compiles model.py files before launch, so its stubs write nothing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from vitrine.serving.embedded import compile_models


def _repository(root: Path) -> Path:
    for model in ("decode", "core"):
        (root / model / "1").mkdir(parents=True)
        (root / model / "1" / "model.py").write_text("VALUE = 1\n")
    return root


def _snapshot(root: Path) -> dict[str, int]:
    return {str(path): path.stat().st_mtime_ns for path in root.rglob("*")}


def test_compiled_models_import_without_writing(tmp_path: Path) -> None:
    repository = _repository(tmp_path)
    compile_models(repository)
    cached = importlib.util.cache_from_source(str(repository / "core" / "1" / "model.py"))
    assert Path(cached).is_file()
    before = _snapshot(repository)
    for model in ("decode", "core"):  # what a stub does: import model.py from its folder
        code = f"import sys; sys.path.insert(0, {str(repository / model / '1')!r}); import model"
        subprocess.run([sys.executable, "-c", code], check=True)
    assert _snapshot(repository) == before


def test_current_bytecode_is_not_written_again(tmp_path: Path) -> None:
    repository = _repository(tmp_path)
    compile_models(repository)
    before = _snapshot(repository)
    compile_models(repository)  # a second server on the same repository
    assert _snapshot(repository) == before
