"""`vitrine bench --large` without servers: photos, outcomes, restarts, summary, memory, CLI."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vitrine.errors import ConfigError
from vitrine.loadtest import bench_large
from vitrine.loadtest.bench import write_run
from vitrine.loadtest.bench_large import (
    LARGE_PHOTOS,
    LargeBenchConfig,
    LargeCell,
    dominated,
    format_summary,
    large_shapes,
    large_specs,
    outcome,
    summarise,
    time_per_photo,
)
from vitrine.loadtest.cli import add_loadtest_commands
from vitrine.loadtest.memory import MemoryCeiling, process_memory
from vitrine.loadtest.payloads import large_photo, photo_inputs
from vitrine.loadtest.plot import plot_large_run
from vitrine.registry import SPECS

EDITORS = [spec for spec in SPECS.values() if spec.large is not None]


@pytest.mark.parametrize("spec", EDITORS, ids=lambda spec: spec.name)
def test_every_editor_gets_two_photos_its_limits_take(spec: Any) -> None:
    shapes = large_shapes(spec)
    assert len(set(shapes)) == 2
    for height, width in shapes:
        assert spec.limits.problem(width, height) is None
    if spec.output_scale == 1:
        assert shapes == LARGE_PHOTOS  # 12 and 24 MP
    else:  # the photo whose result is 12 MP, and the largest the limits take
        (height, width), (side, _) = shapes
        assert height * width * spec.output_scale**2 == 12_000_000
        assert spec.limits.problem(side + 1, side) is not None


def test_every_editor_with_a_large_plan_is_measured_and_nothing_else() -> None:
    assert [spec.name for spec in large_specs(LargeBenchConfig())] == [s.name for s in EDITORS]
    assert [spec.name for spec in large_specs(LargeBenchConfig(models=("enhance",)))] == ["enhance"]


def test_config_refuses_what_large_photos_cannot_go_through() -> None:
    with pytest.raises(ConfigError, match="pipeline"):
        LargeBenchConfig(systems=("raw",))
    with pytest.raises(ConfigError, match="no large-image plan"):
        LargeBenchConfig(models=("vae_edit",))
    with pytest.raises(ConfigError, match="unknown models"):
        LargeBenchConfig(models=("superres_x3",))
    with pytest.raises(ValueError, match="positive"):
        LargeBenchConfig(concurrency=(0,))


def test_outcome_names_memory_deadlines_and_other_failures() -> None:
    assert outcome(0, None, out_of_memory=False) == "ok"
    assert outcome(4, "peer answered 500", out_of_memory=True) == "out of memory"
    assert outcome(1, "timed out after 10 s (timed out)", out_of_memory=False) == "timed out"
    assert outcome(1, "RESOURCE_EXHAUSTED: message too large", out_of_memory=False) == "failed"


def _cell(
    system: str, shape: tuple[int, int], level: int, result: str, **figures: Any
) -> LargeCell:
    return LargeCell(system, "denoise", *shape, level, result, **figures)


def test_a_failed_cell_dominates_those_asking_at_least_as_much() -> None:
    failed = [_cell("peer", (3000, 4000), 4, "out of memory")]
    assert dominated(failed, (3000, 4000), 4) is failed[0]
    assert dominated(failed, (4000, 6000), 4) is failed[0]
    assert dominated(failed, (4000, 6000), 1) is None  # fewer calls at once: still worth a try
    assert dominated(failed, (3000, 4000), 1) is None
    assert dominated([], (4000, 6000), 4) is None


def test_the_largest_photo_runs_at_its_own_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[tuple[int, int], int]] = []

    @contextlib.contextmanager
    def system(spec: Any, config: Any) -> Iterator[Any]:
        yield bench_large._System("127.0.0.1:1")

    def measured(spec: Any, name: str, running: Any, shape: Any, level: int, *rest: Any) -> Any:
        asked.append((shape, level))
        return _cell(name, shape, level, "ok", requests=level)

    monkeypatch.setitem(bench_large._SYSTEMS, "pipeline", system)
    monkeypatch.setattr(bench_large, "_measure_cell", measured)
    monkeypatch.setattr(bench_large, "_upload", lambda *args: None)
    bench_large._system_cells(SPECS["enhance"], "pipeline", LargeBenchConfig(), lambda line: None)
    assert asked == [((3000, 4000), 1), ((3000, 4000), 4), ((4000, 6000), 1)]


def test_a_failure_restarts_the_system_and_skips_the_cells_it_dominates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    starts: list[str] = []
    results = {((3000, 4000), 1): "ok", ((3000, 4000), 4): "out of memory", ((4000, 6000), 1): "ok"}

    @contextlib.contextmanager
    def system(spec: Any, config: Any) -> Iterator[Any]:
        starts.append(spec.name)
        yield bench_large._System("127.0.0.1:1")

    def measured(spec: Any, name: str, running: Any, shape: Any, level: int, *rest: Any) -> Any:
        return _cell(name, shape, level, results[shape, level], requests=level)

    monkeypatch.setitem(bench_large._SYSTEMS, "peer", system)
    monkeypatch.setattr(bench_large, "_measure_cell", measured)
    monkeypatch.setattr(bench_large, "_upload", lambda *args: None)
    lines: list[str] = []
    config = LargeBenchConfig(largest_concurrency=(1, 4))
    cells = bench_large._system_cells(SPECS["denoise"], "peer", config, lines.append)
    assert [c.outcome for c in cells] == [
        "ok",
        "out of memory",
        "ok",
        "not run: out of memory at 4000x3000, c=4",
    ]
    assert starts == ["denoise", "denoise"]  # started afresh after the failure
    assert len(lines) == 4 and "not run" in lines[-1]


CELLS = [
    _cell("pipeline", (3000, 4000), 1, "ok", requests=1, p50_s=80.0, peak_memory_gib=9.5),
    _cell("pipeline", (3000, 4000), 4, "ok", requests=4, photos_per_min=0.9, peak_memory_gib=9.9),
    _cell("peer", (3000, 4000), 1, "out of memory", errors=1, peak_memory_gib=12.1),
    _cell("peer", (3000, 4000), 4, "not run: out of memory at 4000x3000, c=1"),
]


def test_the_summary_keeps_each_systems_latency_throughput_memory_and_outcomes() -> None:
    (row,) = summarise(CELLS)
    assert row["model"] == "denoise" and row["photo"] == "4000x3000" and row["megapixels"] == 12
    assert row["pipeline"] == {
        "latency_s": 80.0,
        "latency_concurrency": 1,
        "photos_per_min": 0.9,
        "throughput_concurrency": 4,
        "peak_memory_gib": 9.9,
        "outcomes": {"c1": "ok", "c4": "ok"},
    }
    assert row["peer"]["latency_s"] is None and row["peer"]["photos_per_min"] is None
    assert row["peer"]["peak_memory_gib"] == 12.1
    header, pipeline, peer = format_summary([row])
    assert "80.0 s (c=1)" in pipeline and "0.9 photos/min (c=4)" in pipeline
    assert "9.90 GiB" in pipeline
    assert peer.count("out of memory") == 2  # in place of both figures
    assert time_per_photo([row], 12.0) == {"denoise": 80.0}


def test_the_time_per_12_mp_photo_of_super_resolution_is_for_a_12_mp_result() -> None:
    rows = [
        {"model": "superres_x2", "megapixels": 3.0, "pipeline": {"latency_s": 8.0}},
        {"model": "superres_x2", "megapixels": 16.8, "pipeline": {"latency_s": 50.0}},
        {"model": "enhance", "megapixels": 24.0, "pipeline": {"latency_s": 9.0}},
    ]
    assert time_per_photo(rows, 12.0) == {"superres_x2": 8.0}


def test_large_runs_append_to_their_history_and_plot(tmp_path: Path) -> None:
    run = {
        "label": "a",
        "time": "t",
        "cells": [asdict(c) for c in CELLS],
        "summary": summarise(CELLS),
    }
    write_run(run, tmp_path, plot=plot_large_run)
    json_path, png_path = write_run({**run, "label": "b"}, tmp_path, plot=plot_large_run)
    history = json.loads(json_path.read_text())["history"]
    assert [entry["label"] for entry in history] == [
        "a",
        "b",
    ]
    assert png_path is not None and png_path.read_bytes()[:4] == b"\x89PNG"


def test_the_memory_ceiling_keeps_the_peak_and_ends_the_system_once() -> None:
    readings = iter([100, 300, 200, 500, 400, 0])
    ended: list[int] = []
    ceiling = MemoryCeiling(lambda: next(readings), ceiling=250, on_exceed=lambda: ended.append(1))
    for _ in range(5):
        ceiling.sample()
    assert ceiling.peak == 500 and ceiling.exceeded and ended == [1]


def test_the_memory_ceiling_samples_in_the_background_while_in_use() -> None:
    # 256 MiB against a baseline taken after a collection, so that memory other tests free
    # meanwhile cannot hide it; only a sample taken while it is held can see it.
    size = 256 * 1024 * 1024
    gc.collect()
    before = process_memory(os.getpid())
    with MemoryCeiling(lambda: process_memory(os.getpid()), interval=0.01) as memory:
        held = np.ones(size // 8)  # every page touched
        for _ in range(3000):  # a hang guard: the sampler runs every 10 ms
            if memory.peak - before >= 0.75 * size:
                break
            time.sleep(0.01)
        seen = memory.peak
        del held
    assert seen - before >= 0.75 * size


def test_process_memory_counts_what_a_process_holds() -> None:
    before = process_memory(os.getpid())
    held = np.ones(128 * 1024 * 1024 // 8)
    assert process_memory(os.getpid()) - before >= held.nbytes * 0.9
    assert process_memory(2**22 + 12345) == 0  # no such process


def test_large_photos_are_the_validation_photo_with_grain() -> None:
    photo = large_photo(300, 400)
    assert photo.shape == (300, 400, 3) and photo.dtype == np.uint8
    assert np.array_equal(photo, large_photo(300, 400))
    grain = photo.astype(float) - photo_inputs(300, 400)[0]
    assert 1.5 < grain.std() < 2.5 and abs(grain.mean()) < 0.1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitrine")
    add_loadtest_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def test_bench_large_command_builds_the_large_config(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[LargeBenchConfig] = []
    monkeypatch.setattr(
        "vitrine.loadtest.bench_large.run_large_bench", lambda config: seen.append(config) or 0
    )
    args = _parser().parse_args(["bench", "--large", "--models", "enhance", "--label", "x"])
    assert args.handler(args) == 0
    args = _parser().parse_args(["bench", "--large", "--memory-ceiling", "0", "--timeout", "60"])
    assert args.handler(args) == 0
    default, unbounded = seen
    assert default.models == ("enhance",) and default.label == "x"
    assert default.concurrency == (1, 4) and default.largest_concurrency == (1,)
    assert default.systems == ("pipeline", "peer")
    assert default.out == Path("reports") / "bench-large" and default.memory_ceiling_gib == 12
    assert unbounded.memory_ceiling_gib is None and unbounded.timeout_s == 60
    with pytest.raises(ConfigError, match="--sizes"):
        args = _parser().parse_args(["bench", "--large", "--sizes", "64"])
        args.handler(args)
