"""`vitrine bench --target gpu`: a clear refusal without the GPU stack; what it would measure."""

from __future__ import annotations

import pytest

from vitrine.cli import main
from vitrine.loadtest.gpu_bench import GpuBenchConfig, missing_gpu_stack, workloads
from vitrine.registry import SPECS


def test_gpu_bench_names_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    missing = missing_gpu_stack()
    if not missing:
        pytest.skip("this machine has the whole GPU stack; tests/gpu covers the run")
    assert main(["bench", "--target", "gpu"]) == 2
    out = capsys.readouterr().out
    assert "GPU benchmark needs" in out and missing[0] in out


@pytest.mark.parametrize("model", ["superres_x4", "dcgan"])
def test_workloads_feed_every_core_input_at_each_size_and_batch(model: str) -> None:
    spec = SPECS[model]
    cells = list(workloads(spec, GpuBenchConfig(sizes=(64,))))
    sizes = (spec.limits.max_side,) if spec.is_generator else (64,)  # a generator's one side
    batches = sorted({1, *spec.batching.preferred_batch_sizes})
    assert [(size, batch) for size, batch, _ in cells] == [(s, b) for s in sizes for b in batches]
    for size, batch, feeds in cells:
        shapes = (
            {tensor.name: (batch, *tensor.dims) for tensor in spec.inputs}
            if spec.is_generator
            else spec.input_shapes((batch, size, size, 3))
        )
        assert {name: feed.shape for name, feed in feeds.items()} == shapes
        assert [feed.dtype for feed in feeds.values()] == [t.numpy_dtype for t in spec.inputs]
