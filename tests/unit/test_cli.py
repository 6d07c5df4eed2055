"""The `vitrine` command: help a newcomer can follow, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vitrine.cli import main

SUBCOMMANDS = ("list", "train", "judge", "eval", "export", "build", "serve", "demo")


def test_help_lists_every_subcommand() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vitrine.cli", "--help"], capture_output=True, text=True, check=True
    )
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([name, "--help"])
    assert exited.value.code == 0
    assert "usage: vitrine" in capsys.readouterr().out


def test_list_names_pipelines_and_client_calls(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert (
        "superres_x4_pipeline" in out
        and "client.super_resolve(image, scale=4)" in out
        and "client.enhance(image)" in out
        and "client.generate(category=..., color=..., model='dcgan')" in out
    )


def test_unknown_model_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["eval", "superres_x3"])
    assert exited.value.code == 2
    assert "invalid choice: 'superres_x3'" in capsys.readouterr().err


def test_missing_weights_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "superres_x2", "--weights", str(tmp_path / "none.safetensors")]) == 2
    assert "checkpoint needs both" in capsys.readouterr().err


def test_a_users_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "superres_x2", "--preset", "huge", "--run-dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: superres_x2.toml: unknown preset 'huge'; known: [")
    assert "Traceback" not in err


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the project's own error types are shortened: a KeyError from a bug propagates."""
    from vitrine import cli

    def broken(args: object) -> int:
        raise KeyError("a bug, not the user's mistake")

    monkeypatch.setattr(cli, "_cmd_list", broken)
    with pytest.raises(KeyError, match="a bug"):
        main(["list"])
