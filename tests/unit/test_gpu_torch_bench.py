"""`vitrine bench --target gpu-torch`: step shares from Triton statistics, the summary against
the issue's targets, how the top concurrency is spread over client processes."""

from __future__ import annotations

import pytest

from vitrine.errors import ConfigError
from vitrine.loadtest.gpu_torch_bench import (
    GpuTorchBenchConfig,
    _split,
    step_shares,
    summarise,
)


def _stats(count: int, queue: int, infer: int, executions: int) -> dict[str, int]:
    return {
        "count": count,
        "queue": queue,
        "compute_input": 0,
        "compute_infer": infer,
        "compute_output": 0,
        "executions": executions,
    }


def test_step_shares_are_the_time_each_step_took_for_the_measured_requests() -> None:
    before = {"decode": _stats(10, 0, 0, 10), "core": _stats(10, 0, 0, 5)}
    after = {
        "decode": _stats(110, 100_000_000, 200_000_000, 60),  # 100 requests, 3 ms each
        "core": _stats(110, 0, 100_000_000, 30),  # 100 requests, 1 ms each, batches of 4
    }
    shares = step_shares(before, after)
    assert shares["decode"] == {
        "requests": 100,
        "mean_ms": 3.0,
        "queue_ms": 1.0,
        "mean_batch": 2.0,
        "share": 0.75,
    }
    assert shares["core"]["share"] == 0.25 and shares["core"]["mean_batch"] == 4.0


def test_a_step_calling_another_keeps_only_its_own_time() -> None:
    before = {"fullsize": _stats(0, 0, 0, 0), "core": _stats(0, 0, 0, 0)}
    after = {"fullsize": _stats(10, 0, 50_000_000, 10), "core": _stats(10, 0, 40_000_000, 5)}
    shares = step_shares(before, after, {"fullsize": "core"})
    assert shares["fullsize"]["mean_ms"] == 1.0  # 5 ms a request, 4 of them in the core
    assert (shares["fullsize"]["share"], shares["core"]["share"]) == (0.2, 0.8)


def _cell(system: str, images: float, p50: float, **extra: object) -> dict:
    base = {"model": "denoise", "size": 512, "concurrency": 1, "system": system}
    return base | {"images_per_s": images, "p50_ms": p50, "mb_per_s_out": images * 0.8} | extra


CELLS = [
    _cell("limit", 400.0, 2.0, batch=1),
    _cell("limit", 1000.0, 8.0, batch=8),
    _cell("limit_host", 900.0, 9.0, batch=8),
    _cell("raw", 150.0, 4.0),
    _cell("raw", 750.0, 20.0, concurrency=16),
    _cell("pipeline", 300.0, 50.0, concurrency=16, output_format="jpeg"),
    _cell("pipeline", 200.0, 70.0, concurrency=16, output_format="png"),
]


def test_summary_puts_each_figure_against_its_target() -> None:
    (row,) = summarise(CELLS)
    assert row["limit_b1_p50_ms"] == 2.0
    assert row["limit_best_images_per_s"] == 1000.0  # the device-resident limit
    assert row["raw_top_vs_limit_best"] == 0.75
    assert row["raw_c1_p50_minus_limit_ms"] == 2.0
    assert row["pipeline_jpeg_vs_raw_top"] == 0.4
    assert row["pipeline_png_images_per_s"] == 200.0 and "pipeline_webp_images_per_s" not in row
    assert row["targets"] == {
        "raw_top_vs_limit_best": "met (0.75 >= 0.7)",
        "raw_c1_p50_minus_limit_ms": "met (2.0 <= 3.0)",
        "pipeline_jpeg_vs_raw_top": "MISSED (0.4 >= 0.5)",
    }


def test_targets_are_not_judged_off_the_gpu() -> None:
    (row,) = summarise(CELLS, "cpu")
    assert row["targets"] == {"not judged": "measured on cpu"}
    assert row["raw_top_vs_limit_best"] == 0.75  # the figures are still there


@pytest.mark.parametrize(
    ("concurrency", "processes", "split"), [(1, 8, (1, 1)), (16, 8, (8, 2)), (16, 3, (3, 5))]
)
def test_concurrency_is_spread_over_client_processes(
    concurrency: int, processes: int, split: tuple[int, int]
) -> None:
    assert _split(concurrency, processes) == split


def test_config_takes_editors_only() -> None:
    with pytest.raises(ConfigError, match="image editors"):
        GpuTorchBenchConfig(models=("dcgan",))
    with pytest.raises(ConfigError, match="unknown models"):
        GpuTorchBenchConfig(models=("superres_x3",))
