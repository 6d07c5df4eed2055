"""Benchmark logic without servers: measurement loop, ratios, history, plot, CLI wiring."""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vitrine.client import VitrineClient
from vitrine.loadtest import bench
from vitrine.loadtest.bench import (
    ADAPTERS,
    SYSTEMS,
    BenchConfig,
    Cell,
    Environment,
    GeneratorAdapter,
    LatentEditAdapter,
    bench_sizes,
    bench_specs,
    compute_ratios,
    default_sizes,
    format_ratios,
    measure,
    skipped_systems,
    write_run,
)
from vitrine.loadtest.cli import add_loadtest_commands
from vitrine.loadtest.mix import parse_mix
from vitrine.loadtest.payloads import catalog_samples, encode, photo_inputs, prepare
from vitrine.options import seed_value
from vitrine.registry import SPECS
from vitrine.sampling import sample
from vitrine.tasks import Family


def _cell(system: str, level: int, rps: float, p50: float, threads: int | None = None) -> Cell:
    return Cell(
        system=system,
        model="superres_x2",
        size=128,
        concurrency=level,
        requests=100,
        errors=0,
        wall_s=1.0,
        rps=rps,
        p50_ms=p50,
        p95_ms=p50 * 1.5,
        mean_ms=p50,
        threads=threads,
    )


GENERATOR = SPECS["dcgan"]
CATEGORIES, COLOURS = GENERATOR.conditioning.categories, GENERATOR.conditioning.colours
LATENT_EDIT = SPECS["vae_edit"]

CELLS = [
    _cell("limit", 1, 50, 20.0, threads=1),
    _cell("limit", 16, 90, 170.0, threads=1),
    _cell("limit", 1, 60, 16.0, threads=0),  # the best variant at c=1
    _cell("limit", 16, 80, 190.0, threads=0),
    _cell("raw", 1, 55, 17.6),
    _cell("raw", 16, 85, 180.0),
    _cell("pipeline", 16, 60, 260.0),
    _cell("peer", 16, 30, 500.0),
]


def test_ratios_use_the_best_limit_variant() -> None:
    (row,) = compute_ratios(CELLS)
    assert row["raw_latency_c1_vs_limit"] == pytest.approx(17.6 / 16.0, abs=1e-3)
    assert row["raw_throughput_top_vs_limit_best"] == pytest.approx(85 / 90, abs=1e-3)
    assert row["pipeline_throughput_top_vs_peer"] == 2.0 and row["top_concurrency"] == 16


def test_ratios_skip_what_was_not_measured() -> None:
    (row,) = compute_ratios([c for c in CELLS if c.system in ("pipeline", "raw")])
    assert "raw_latency_c1_vs_limit" not in row and "pipeline_throughput_top_vs_peer" not in row


def test_ratio_table_marks_targets() -> None:
    lines = format_ratios(compute_ratios(CELLS))
    assert "1.10 (<= 1.1) ok" in lines[1]  # 1.10 rounds to the target and meets it
    assert "0.94 (>= 0.9) ok" in lines[1] and "2.00 (>= 1.5) ok" in lines[1]
    slow = [c if c.system != "raw" else _cell("raw", c.concurrency, 40, 30.0) for c in CELLS]
    assert "MISS" in format_ratios(compute_ratios(slow))[1]


def test_measure_counts_requests_errors_and_latency() -> None:
    calls = iter(range(10_000))

    def make_worker() -> Any:
        def work() -> None:
            if next(calls) % 5 == 0:
                raise RuntimeError("boom")
            time.sleep(0.002)

        return work

    figures = measure(make_worker, 2, duration_s=0.3, warmup=0)
    assert figures["requests"] > 10 and figures["errors"] > 0
    assert figures["first_error"] == "boom"
    # the worker sleeps 2 ms: a floor, whatever the machine; 1 s is only a hang guard (it
    # also catches a unit slip to microseconds). Speed figures belong to `vitrine bench`.
    assert 2.0 <= figures["p50_ms"] < 1000 and figures["rps"] > 0


def test_measure_stops_after_max_requests() -> None:
    # 20 no-op calls take milliseconds; a run that ignored max_requests would last the
    # whole 30 s, so the bound is a hang guard far above the expected figure
    figures = measure(lambda: lambda: None, 4, duration_s=30.0, max_requests=20, warmup=1)
    assert figures["requests"] == 20 and figures["wall_s"] < 30.0


def test_every_family_has_an_adapter_and_default_sizes_fit() -> None:
    assert set(ADAPTERS) == set(Family)
    assert bench_specs(BenchConfig()) == list(SPECS.values())
    assert bench_specs(BenchConfig(models=("denoise",))) == [SPECS["denoise"]]
    for spec in SPECS.values():
        sizes = default_sizes(spec)
        if spec.limits.min_side == spec.limits.max_side:  # a generator's side, vae_edit's 32
            assert sizes == (spec.limits.min_side,)
        else:
            assert len(sizes) == 2 and max(sizes) <= spec.limits.max_side


def test_chosen_sizes_apply_to_editors_of_several_sides_only() -> None:
    config = BenchConfig(sizes=(48,))
    for spec in SPECS.values():
        one_side = spec.limits.min_side == spec.limits.max_side
        expected = default_sizes(spec) if one_side else (48,)
        assert bench_sizes(spec, config) == expected, spec.name
    assert bench_sizes(LATENT_EDIT, config) == (32,)


def test_adapters_leave_out_exactly_the_systems_they_call_unsupported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bench, "_client", lambda address: _Recorder())
    monkeypatch.setattr(bench, "_session", _Sessions().open)
    env = Environment(tmp_path, "grpc:1", None, BenchConfig())
    for spec in bench_specs(BenchConfig()):
        adapter = ADAPTERS[spec.family]
        workers = adapter.workers(spec, default_sizes(spec)[0], env, threads=1)
        assert set(workers) == set(SYSTEMS) - set(adapter.unsupported), spec.name
        # raw calls ``<client_method>_array``: unsupported exactly where the client lacks it
        has_raw = hasattr(VitrineClient, f"{spec.client_method}_array")
        assert ("raw" in adapter.unsupported) != has_raw, spec.name
    assert set(ADAPTERS[Family.LATENT_EDIT].unsupported) == {"raw", "peer"}


def test_unsupported_systems_are_noted_only_when_chosen() -> None:
    specs = [SPECS["superres_x2"], LATENT_EDIT]
    notes = skipped_systems(specs, BenchConfig())
    assert [note.split(":")[0] for note in notes] == ["vae_edit raw", "vae_edit peer"]
    assert "variations_array" in notes[0] and "variations endpoint" in notes[1]
    assert skipped_systems(specs, BenchConfig(systems=("limit", "pipeline"))) == []
    assert bench._peer_models(specs) == ["superres_x2"]  # the peer never loads vae_edit


def test_latent_edit_adapter_asks_for_variations_of_a_catalog_image(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client, sessions = _Recorder(), _Sessions()
    monkeypatch.setattr(bench, "_client", lambda address: client)
    monkeypatch.setattr(bench, "_session", sessions.open)
    config = BenchConfig(input_format="png", output_format="webp")
    env = Environment(tmp_path, "grpc:1", None, config)
    workers = LatentEditAdapter(sample=2).workers(LATENT_EDIT, 32, env, threads=1)
    assert set(workers) == {"limit", "pipeline"}
    workers["pipeline"]()()
    workers["limit"]()()
    pixels, category, color = catalog_samples()[2]
    count = LATENT_EDIT.profile.opt[0]  # the batch the core model is optimised for
    ((method, args, kwargs),) = client.calls
    assert (method, args) == ("variations", (encode(pixels, "png"),))
    assert kwargs == {"category": category, "color": color, "count": count, "output_format": "webp"}
    assert sessions.paths == [tmp_path / LATENT_EDIT.core_model / "1" / "model.onnx"]
    (feed,) = sessions.feeds
    assert list(feed) == [tensor.name for tensor in LATENT_EDIT.inputs]
    for name in ("image", "other"):  # the image is its own other, as variations sends it
        np.testing.assert_array_equal(feed[name], np.repeat(pixels[None], count, axis=0))
    assert feed["category"].tolist() == [[CATEGORIES.index(category)]] * count
    assert feed["color"].tolist() == [[COLOURS.index(color)]] * count
    assert feed["blend"].tolist() == [[0.0]] * count and feed["spread"].tolist() == [[1.0]] * count
    (seed,) = [option for option in LATENT_EDIT.options if option.name == "seed"]
    np.testing.assert_array_equal(feed["seed"], [seed_value(seed, 0)] * count)
    assert all(value.shape[0] == count for value in feed.values())


def test_catalog_samples_are_one_test_image_per_category() -> None:
    samples = catalog_samples()
    assert [sample.category for sample in samples] == list(CATEGORIES)
    assert {sample.color for sample in samples} <= set(COLOURS)
    assert all(s.pixels.shape == (32, 32, 3) and s.pixels.dtype == np.uint8 for s in samples)


def test_generator_adapter_sends_fresh_seeds_and_limits_on_sampled_feeds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client, sessions = _Recorder(), _Sessions()
    monkeypatch.setattr(bench, "_client", lambda address: client)
    monkeypatch.setattr(bench, "_session", sessions.open)
    env = Environment(tmp_path, "grpc:1", None, BenchConfig(output_format="webp"))
    workers = GeneratorAdapter().workers(GENERATOR, GENERATOR.loadtest_side, env, threads=1)
    assert set(workers) == {"limit", "raw", "pipeline", "peer"}
    raw, pipeline = workers["raw"](), workers["pipeline"]()
    for call in (raw, raw, pipeline, pipeline, workers["limit"]()):
        call()
    count = GENERATOR.profile.opt[0]  # the batch the core model is optimised for
    asked = {"model": GENERATOR.name, "category": CATEGORIES[0], "color": COLOURS[0]}
    methods = ["generate_array", "generate_array", "generate", "generate"]
    assert [method for method, _, _ in client.calls] == methods
    seeds = [kwargs.pop("seed") for _, _, kwargs in client.calls]
    assert len(set(seeds)) == len(seeds)  # the pipeline caches responses: never the same
    assert [kwargs for _, _, kwargs in client.calls] == [asked | {"count": count}] * 2 + [
        asked | {"count": count, "output_format": "webp"}
    ] * 2
    assert sessions.paths == [tmp_path / GENERATOR.core_model / "1" / "model.onnx"]
    drawn = sample(
        GENERATOR.conditioning, seed=0, count=count, category=CATEGORIES[0], colour=COLOURS[0]
    )
    (feed,) = sessions.feeds
    assert list(feed) == [tensor.name for tensor in GENERATOR.inputs]
    for got, expected in zip(feed.values(), drawn, strict=True):
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(RuntimeError, match="peer is not running"):
        workers["peer"]()


class _Sessions:
    """Stands in for onnxruntime: records the model paths opened and the feeds run."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.feeds: list[dict[str, np.ndarray]] = []

    def open(self, path: Path, threads: int) -> Any:
        self.paths.append(path)
        return self

    def run(self, outputs: object, feed: dict[str, np.ndarray]) -> None:
        self.feeds.append(feed)


def test_config_rejects_unknown_systems_and_models() -> None:
    with pytest.raises(ValueError, match="unknown systems"):
        BenchConfig(systems=("tensorrt",))
    with pytest.raises(ValueError, match="unknown models"):
        BenchConfig(models=("superres_x3",))


def test_runs_append_to_the_history_and_plot(tmp_path: Path) -> None:
    run = {
        "label": "before",
        "time": "t",
        "cells": [asdict(cell) for cell in CELLS],
        "ratios": compute_ratios(CELLS),
    }
    write_run(run, tmp_path)
    json_path, png_path = write_run({**run, "label": "after"}, tmp_path)
    history = json.loads(json_path.read_text())["history"]
    assert [entry["label"] for entry in history] == ["before", "after"]
    assert png_path is not None and png_path.read_bytes()[:4] == b"\x89PNG"


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((method, args, kwargs))
            if method.endswith("_array"):
                return type("R", (), {"array": np.zeros((2, 2, 3), np.uint8)})()
            if method in ("generate", "variations"):  # one encoded image per requested one
                return type("R", (), {"data": [b"12345"] * kwargs["count"]})()
            return type("R", (), {"data": b"12345"})()

        return call


def test_payloads_call_the_spec_client_method_with_a_deadline() -> None:
    document = {
        "call": [
            {"model": "superres_x4", "sizes": [[48, 64]], "output_format": "webp"},
            {"model": "superres_x2", "path": "raw", "sizes": [32], "batch": 2},
        ]
    }
    pipeline, raw = (prepare(call) for call in parse_mix(document).calls)
    client = _Recorder()
    assert pipeline.next_invoke()(client, 3.0) == 5
    assert raw.next_invoke()(client, 3.0) == 12
    (method, args, kwargs), (raw_method, raw_args, raw_kwargs) = client.calls
    assert method == "super_resolve" and isinstance(args[0], bytes)
    assert kwargs == {"scale": 4, "output_format": "webp", "quality": 90, "timeout": 3.0}
    assert raw_method == "super_resolve_array" and raw_args[0].shape == (2, 32, 32, 3)
    assert raw_kwargs == {"scale": 2, "timeout": 3.0}


def test_generator_payloads_cycle_through_every_label_pair_with_fresh_seeds() -> None:
    document = {
        "call": [
            {"model": GENERATOR.name, "count": 3, "output_format": "jpeg", "quality": 80},
            {"model": GENERATOR.name, "path": "raw", "count": 2},
        ]
    }
    pipeline, raw = (prepare(call) for call in parse_mix(document).calls)
    pairs = len(CATEGORIES) * len(COLOURS)
    assert len(pipeline.invokes) == len(raw.invokes) == pairs
    client = _Recorder()
    for _ in range(pairs + 1):  # every pair, then the first one again
        assert pipeline.next_invoke()(client, 3.0) == 3 * 5  # three encoded images of 5 bytes
    assert raw.next_invoke()(client, 3.0) == 12
    *calls, raw_call = client.calls
    asked = {"model": GENERATOR.name, "count": 3, "output_format": "jpeg", "quality": 80}
    assert {method for method, _, _ in calls} == {"generate"}
    for _, _, kwargs in calls:
        assert {key: kwargs[key] for key in asked} == asked and kwargs["timeout"] == 3.0
    labels = [(kwargs["category"], kwargs["color"]) for _, _, kwargs in calls]
    assert labels[:pairs] == list(itertools.product(CATEGORIES, COLOURS))
    assert labels[pairs] == labels[0]
    assert calls[pairs][2]["seed"] != calls[0][2]["seed"]  # repeated labels, a fresh seed
    method, args, kwargs = raw_call
    assert (method, args, kwargs.pop("seed") >= 0) == ("generate_array", (), True)
    expected = {"model": GENERATOR.name, "count": 2, "timeout": 3.0}
    assert kwargs == expected | {"category": CATEGORIES[0], "color": COLOURS[0]}


def test_latent_edit_payloads_ask_for_variations_of_every_catalog_sample() -> None:
    document = {"call": [{"model": LATENT_EDIT.name, "count": 3, "input_format": "png"}]}
    (call,) = parse_mix(document).calls
    prepared = prepare(call)
    samples = catalog_samples()
    assert len(prepared.invokes) == len(samples)
    client = _Recorder()
    for _ in samples:
        assert prepared.next_invoke()(client, 3.0) == 3 * 5  # three encoded images of 5 bytes
    for (method, args, kwargs), item in zip(client.calls, samples, strict=True):
        assert (method, args) == ("variations", (encode(item.pixels, "png"),))
        assert kwargs == {
            "category": item.category,
            "color": item.color,
            "count": 3,
            "output_format": "png",
            "quality": 90,
            "timeout": 3.0,
        }


def test_photo_inputs_are_the_validation_photos_at_the_size() -> None:
    inputs = photo_inputs(48, 64)
    assert len(inputs) == 3 and all(p.shape == (48, 64, 3) and p.dtype == np.uint8 for p in inputs)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitrine")
    add_loadtest_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def test_loadtest_command_merges_thresholds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slo = tmp_path / "slo.toml"
    slo.write_text('max_failure_ratio = 0.02\n[p95_ms]\n"*" = 900\n')
    seen: dict[str, Any] = {}
    monkeypatch.setattr("vitrine.loadtest.runner.run_loadtest", lambda **kw: seen.update(kw) or 0)
    args = _parser().parse_args(
        ["loadtest", "--thresholds", str(slo)]
        + [
            "--users",
            "4",
            "--duration",
            "5",
            "--max-p95",
            "superres_x4_pipeline=300",
            "--min-rps",
            "20",
        ]
    )
    assert args.handler(args) == 0
    limits = seen["thresholds"]
    assert limits.max_failure_ratio == 0.02 and limits.min_rps == 20
    assert dict(limits.p95_ms) == {"*": 900, "superres_x4_pipeline": 300}
    assert seen["users"] == 4 and seen["duration_s"] == 5 and seen["address"] is None


def test_bench_command_builds_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[BenchConfig] = []
    monkeypatch.setattr("vitrine.loadtest.bench.run_bench", lambda config: seen.append(config) or 0)
    args = _parser().parse_args(
        [
            "bench",
            "--models",
            "superres_x2",
            "--sizes",
            "64",
            "--concurrency",
            "1",
            "2",
            "--duration",
            "0.5",
            "--label",
            "after",
        ]
    )
    assert args.handler(args) == 0
    (config,) = seen
    assert config.models == ("superres_x2",) and config.sizes == (64,)
    assert config.concurrency == (1, 2) and config.label == "after"
    assert config.systems == ("limit", "raw", "pipeline", "peer")
