"""The blocking client is generated from the asyncio one (scripts/unasync.py) and current."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "unasync.py"


def _unasync() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unasync", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_blocking_client_is_generated_from_the_async_one() -> None:
    unasync = _unasync()
    assert unasync.TARGET.read_text() == unasync.blocking_source(unasync.SOURCE.read_text())


def test_generated_client_is_blocking() -> None:
    unasync = _unasync()
    generated = unasync.blocking_source(unasync.SOURCE.read_text())
    assert not re.search(r"\b(async|await|aio|Awaitable|__aenter__|__aexit__)\b", generated)
    assert "class VitrineClient(ClientBase):" in generated
    assert "_triton_module = tritonclient.grpc\n" in generated


def test_check_mode_fails_on_a_stale_file(tmp_path: Path) -> None:
    unasync = _unasync()
    stale = tmp_path / "_sync.py"
    stale.write_text(unasync.TARGET.read_text().replace("Blocking client", "Stale client"))
    checked = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--target", str(stale)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 1
    assert "is stale" in checked.stderr
    current = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True)
    assert current.returncode == 0
