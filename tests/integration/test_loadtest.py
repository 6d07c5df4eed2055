"""A short real Locust run (headless, in a subprocess) against the session's Triton server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vitrine.loadtest.mix import load_mix
from vitrine.loadtest.runner import loadtest
from vitrine.loadtest.thresholds import Thresholds
from vitrine.serving.triton import EmbeddedTriton

pytestmark = pytest.mark.integration


def test_storefront_calls_run_without_failures(
    vitrine_server: EmbeddedTriton, tmp_path: Path
) -> None:
    # The storefront's calls at equal weights and small sizes: every name gets traffic even
    # on a busy 2-core machine.
    mix = tmp_path / "mix.toml"
    mix.write_text(
        "".join(
            f'[[call]]\nmodel = "{call.spec.name}"\npath = "{call.path}"\nsizes = [[48, 64]]\n'
            for call in load_mix().calls
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
    for name in names:
        assert result.stats[name].requests > 0, name
        assert result.stats[name].failures == 0, name
    assert result.stats["Aggregated"].failures == 0

    # Triton's own view of the same window: every step of the pipelines saw traffic.
    summary = json.loads(result.summary_path.read_text())
    assert {"superres_x2_decode", "superres_x2", "encode_image"} <= set(summary["triton"])
    assert summary["triton"]["superres_x2"]["compute_infer_ms"] > 0
    assert summary["steps"]["superres_x2_pipeline"][1] == "superres_x2"
    report = tmp_path / "report"
    assert (report / "locust.html").is_file() and (report / "locust_stats.csv").is_file()
