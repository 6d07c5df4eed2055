"""`vitrine bench --target gpu` on a machine without the GPU stack: a clear refusal."""

from __future__ import annotations

import pytest

from vitrine.cli import main
from vitrine.loadtest.gpu_bench import missing_gpu_stack


def test_gpu_bench_names_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    missing = missing_gpu_stack()
    if not missing:
        pytest.skip("this machine has the whole GPU stack; tests/gpu covers the run")
    assert main(["bench", "--target", "gpu"]) == 2
    out = capsys.readouterr().out
    assert "GPU benchmark needs" in out and missing[0] in out
