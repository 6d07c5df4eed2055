"""Every committed file derived from the specs is current (`vitrine regenerate --check`)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from vitrine import paths
from vitrine.cli import main
from vitrine.regenerate import DERIVED, Derived, blocking_client, regenerate


@pytest.mark.parametrize("entry", DERIVED, ids=lambda entry: entry.name)
def test_derived_files_are_current(entry: Derived) -> None:
    stale = regenerate(check=True, entries=[entry])
    assert stale == [], f"stale {[str(p) for p in stale]}: run vitrine regenerate"


def test_the_generated_client_is_blocking() -> None:
    source = (paths.source_root() / "client" / "_async.py").read_text()
    generated = blocking_client(source)
    assert not re.search(r"\b(async|await|aio|Awaitable|__aenter__|__aexit__)\b", generated)
    assert "class VitrineClient(ClientBase):" in generated
    assert "_triton_module = tritonclient.grpc\n" in generated


def test_check_finds_what_is_stale_and_regenerate_mends_it(tmp_path: Path) -> None:
    """On a copy of the derived files: an edited values file, a lost repository config and
    a file the specs no longer make are found, and rewritten or removed."""
    root = paths.source_root()
    for entry in DERIVED:
        for path in entry.render():
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(root / path, tmp_path / path)
    assert regenerate(check=True, root=tmp_path) == []
    values = Path("helm/vitrine/values.yaml")
    (tmp_path / values).write_text((tmp_path / values).read_text().replace("_x4_decode", "_x3"))
    config = Path("model_repository/denoise/config.pbtxt")
    (tmp_path / config).unlink()
    leftover = Path("model_repository/retired_model/config.pbtxt")
    (tmp_path / leftover).parent.mkdir()
    (tmp_path / leftover).write_text("name: 'retired_model'\n")

    expected = {values, config, leftover}
    assert set(regenerate(check=True, root=tmp_path)) == expected
    assert not (tmp_path / config).exists()  # check writes nothing
    assert set(regenerate(root=tmp_path)) == expected
    assert regenerate(check=True, root=tmp_path) == []
    assert not (tmp_path / leftover).exists()


def test_the_command_checks_the_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["regenerate", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
