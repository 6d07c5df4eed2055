"""Triton's Prometheus page parsed into per-model queue vs compute time (recorded sample)."""

from __future__ import annotations

import pytest

from vitrine.loadtest.metrics import ModelCounters, model_counters, parse_prometheus, window

# Recorded from the embedded server (Triton 2.51) after 3 pipeline calls of superres_x2,
# trimmed to two models; failure reasons with zero counts partly left out.
SAMPLE = """\
# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="superres_x2_pipeline",version="1"} 3
nv_inference_request_success{model="superres_x2",version="1"} 3
nv_inference_request_failure{model="superres_x2_pipeline",reason="OTHER",version="1"} 0
nv_inference_request_failure{model="superres_x2",reason="OTHER",version="1"} 0
nv_inference_request_failure{model="superres_x2_pipeline",reason="BACKEND",version="1"} 0
nv_inference_request_failure{model="superres_x2",reason="BACKEND",version="1"} 1
nv_inference_count{model="superres_x2_pipeline",version="1"} 3
nv_inference_count{model="superres_x2",version="1"} 3
nv_inference_exec_count{model="superres_x2_pipeline",version="1"} 3
nv_inference_exec_count{model="superres_x2",version="1"} 2
nv_inference_request_duration_us{model="superres_x2_pipeline",version="1"} 219525
nv_inference_request_duration_us{model="superres_x2",version="1"} 65427
# HELP nv_inference_queue_duration_us Cumulative inference queuing duration in microseconds (includes cached requests)
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{model="superres_x2_pipeline",version="1"} 9
nv_inference_queue_duration_us{model="superres_x2",version="1"} 6429
nv_inference_compute_input_duration_us{model="superres_x2_pipeline",version="1"} 568
nv_inference_compute_input_duration_us{model="superres_x2",version="1"} 112
nv_inference_compute_infer_duration_us{model="superres_x2_pipeline",version="1"} 209478
nv_inference_compute_infer_duration_us{model="superres_x2",version="1"} 58300
nv_inference_compute_output_duration_us{model="superres_x2_pipeline",version="1"} 2404
nv_inference_compute_output_duration_us{model="superres_x2",version="1"} 568
# HELP nv_inference_pending_request_count Instantaneous number of pending requests awaiting execution per-model.
# TYPE nv_inference_pending_request_count gauge
nv_inference_pending_request_count{model="superres_x2",version="1"} 0
# HELP nv_cpu_utilization CPU utilization rate [0.0 - 1.0]
# TYPE nv_cpu_utilization gauge
nv_cpu_utilization 0.25
"""


def test_samples_keep_labels_and_skip_comments() -> None:
    samples = parse_prometheus(SAMPLE)
    assert samples["nv_cpu_utilization"] == {(): 0.25}
    key = (("model", "superres_x2"), ("reason", "BACKEND"), ("version", "1"))
    assert samples["nv_inference_request_failure"][key] == 1.0
    assert not any(name.startswith("#") for name in samples)


def test_counters_sum_failure_reasons_per_model() -> None:
    counters = model_counters(SAMPLE)
    assert set(counters) == {"superres_x2", "superres_x2_pipeline"}
    core = counters["superres_x2"]
    assert (core.success, core.failure, core.exec_count) == (3, 1, 2)
    assert core.queue_us == 6429 and core.compute_infer_us == 58300


def test_summary_is_mean_ms_per_request_and_mean_batch() -> None:
    summary = model_counters(SAMPLE)["superres_x2"].summary()
    assert summary["requests"] == 3 and summary["failures"] == 1
    assert summary["mean_batch"] == 1.5
    assert summary["queue_ms"] == pytest.approx(6429 / 3 / 1000, abs=1e-3)
    assert summary["compute_infer_ms"] == pytest.approx(58300 / 3 / 1000, abs=1e-3)


def test_window_is_the_difference_and_drops_idle_models() -> None:
    before = {
        "superres_x2": ModelCounters(success=1, queue_us=429, exec_count=1, inference_count=1),
        "superres_x2_pipeline": ModelCounters(success=3, request_us=219525),
    }
    result = window(before, model_counters(SAMPLE))
    assert set(result) == {"superres_x2"}  # the pipeline had no traffic in between
    assert result["superres_x2"]["requests"] == 2
    assert result["superres_x2"]["queue_ms"] == pytest.approx(6000 / 2 / 1000)
    assert result["superres_x2"]["mean_batch"] == 2.0


def test_garbage_lines_are_ignored() -> None:
    assert parse_prometheus('not a metric line\nx{a="1"} NaNx\n\n') == {}
