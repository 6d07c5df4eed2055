"""A short real Locust run (headless, in a subprocess) against the session's Triton server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vitrine.loadtest.bench import SYSTEMS, TARGETS, BenchConfig, bench
from vitrine.loadtest.mix import load_mix
from vitrine.loadtest.runner import loadtest
from vitrine.loadtest.thresholds import Thresholds
from vitrine.pipeline import pipeline_steps
from vitrine.registry import SPECS
from vitrine.serving.embedded import EmbeddedTriton
from vitrine.spec import ModelSpec

pytestmark = pytest.mark.integration

GENERATORS = [spec for spec in SPECS.values() if spec.is_generator]


def test_storefront_calls_run_without_failures(
    vitrine_server: EmbeddedTriton, tmp_path: Path
) -> None:
    # The storefront's calls at equal weights and small sizes, and every generator on both
    # paths (two images a request): every name gets traffic even on a busy 2-core machine.
    mix = tmp_path / "mix.toml"
    mix.write_text(
        "".join(
            f'[[call]]\nmodel = "{call.spec.name}"\npath = "{call.path}"\nsizes = [[48, 64]]\n'
            for call in load_mix().calls
        )
        + "".join(
            f'[[call]]\nmodel = "{spec.name}"\npath = "{path}"\ncount = 2\n'
            for spec in GENERATORS
            for path in ("pipeline", "raw")
        )
    )
    result = loadtest(
        address=vitrine_server.grpc_url,
        metrics_url=vitrine_server.metrics_url,
        users=4,
        duration_s=4,
        mix=mix,
        out=tmp_path / "report",
        thresholds=Thresholds(max_failure_ratio=0.0, p99_ms={"*": 30_000}),
        timeout_s=30.0,
    )
    assert result is not None
    log = (tmp_path / "report" / "locust.log").read_text()
    assert result.passed, f"{[str(v) for v in result.violations]}\n{log[-2000:]}"

    names = {call.name for call in load_mix().calls}
    names |= {name for spec in GENERATORS for name in (spec.pipeline, spec.core_model)}
    for name in names:
        assert result.stats[name].requests > 0, name
        assert result.stats[name].failures == 0, name
    assert result.stats["Aggregated"].failures == 0

    # Triton's own view of the same window: every step of the pipelines saw traffic.
    summary = json.loads(result.summary_path.read_text())
    assert {"superres_x2_decode", "superres_x2", "encode_image"} <= set(summary["triton"])
    assert summary["triton"]["superres_x2"]["compute_infer_ms"] > 0
    assert summary["steps"]["superres_x2_pipeline"][-2] == "superres_x2"  # before encode
    for spec in GENERATORS:  # sample step, core model, encode step
        assert summary["steps"][spec.pipeline] == list(pipeline_steps(spec))
        assert summary["steps"][spec.core_model] == [spec.core_model]
        assert set(pipeline_steps(spec)) <= set(summary["triton"])
        assert summary["triton"][spec.sample_model]["requests"] > 0
    report = tmp_path / "report"
    assert (report / "locust.html").is_file() and (report / "locust_stats.csv").is_file()


@pytest.mark.parametrize("spec", GENERATORS, ids=lambda spec: spec.name)
def test_generator_bench_measures_every_system(
    vitrine_server: EmbeddedTriton, tmp_path: Path, spec: ModelSpec
) -> None:
    config = BenchConfig(
        models=(spec.name,),
        concurrency=(1, 2),
        duration_s=0.5,
        limit_threads=(1,),
        address=vitrine_server.grpc_url,
        repository=vitrine_server.repository,
        out=tmp_path,
    )
    run = bench(config, echo=print)
    cells = run["cells"]
    assert {(cell["system"], cell["concurrency"]) for cell in cells} == {
        (system, level) for system in SYSTEMS for level in (1, 2)
    }
    for cell in cells:  # the peer generates too (its own endpoint), one side only
        assert cell["errors"] == 0 and cell["requests"] > 0, cell
        assert cell["size"] == spec.limits.max_side
    (ratios,) = run["ratios"]
    assert set(TARGETS) <= set(ratios)
