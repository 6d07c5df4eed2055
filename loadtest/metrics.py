"""Triton's Prometheus metrics: per-model queue vs compute time over a load-test window.

Triton's counters are cumulative since start, so a run scrapes before and after and reports
the difference (:func:`window`). Durations are summed per request, so dividing by the
successful requests gives the mean per request in each phase; ``inference_count /
exec_count`` is the mean batch size the dynamic batcher formed.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "COUNTERS",
    "ModelCounters",
    "model_counters",
    "parse_prometheus",
    "scrape",
    "window",
]

COUNTERS = {
    "success": "nv_inference_request_success",
    "failure": "nv_inference_request_failure",
    "inference_count": "nv_inference_count",
    "exec_count": "nv_inference_exec_count",
    "request_us": "nv_inference_request_duration_us",
    "queue_us": "nv_inference_queue_duration_us",
    "compute_input_us": "nv_inference_compute_input_duration_us",
    "compute_infer_us": "nv_inference_compute_infer_duration_us",
    "compute_output_us": "nv_inference_compute_output_duration_us",
}
"""Field of :class:`ModelCounters` → Triton metric (summed over versions and reasons)."""

_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Labels = tuple[tuple[str, str], ...]


def parse_prometheus(text: str) -> dict[str, dict[Labels, float]]:
    """Samples of a Prometheus text page: metric → sorted label pairs → value.

    Comments and lines that are not samples are skipped; unparsable values are dropped.
    """
    samples: dict[str, dict[Labels, float]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        labels = tuple(sorted(_LABEL.findall(match["labels"] or "")))
        samples.setdefault(match["name"], {})[labels] = value
    return samples


@dataclass(frozen=True)
class ModelCounters:
    """Triton's cumulative counters of one model (all versions)."""

    success: float = 0.0
    failure: float = 0.0
    inference_count: float = 0.0
    exec_count: float = 0.0
    request_us: float = 0.0
    queue_us: float = 0.0
    compute_input_us: float = 0.0
    compute_infer_us: float = 0.0
    compute_output_us: float = 0.0

    def __sub__(self, other: ModelCounters) -> ModelCounters:
        return ModelCounters(
            **{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)}
        )

    def summary(self) -> dict[str, Any]:
        """Requests, failures, mean batch and mean ms per request in each phase."""
        per = self.success or 1.0
        return {
            "requests": int(self.success),
            "failures": int(self.failure),
            "executions": int(self.exec_count),
            "mean_batch": round(self.inference_count / self.exec_count, 2)
            if self.exec_count
            else 0.0,
            "request_ms": round(self.request_us / per / 1000, 3),
            "queue_ms": round(self.queue_us / per / 1000, 3),
            "compute_input_ms": round(self.compute_input_us / per / 1000, 3),
            "compute_infer_ms": round(self.compute_infer_us / per / 1000, 3),
            "compute_output_ms": round(self.compute_output_us / per / 1000, 3),
        }


def model_counters(text: str) -> dict[str, ModelCounters]:
    """Counters per model name from a metrics page (models without samples are absent)."""
    samples = parse_prometheus(text)
    totals: dict[str, dict[str, float]] = {}
    for field_name, metric in COUNTERS.items():
        for labels, value in samples.get(metric, {}).items():
            model = dict(labels).get("model")
            if model is None:
                continue
            entry = totals.setdefault(model, {})
            entry[field_name] = entry.get(field_name, 0.0) + value
    return {model: ModelCounters(**values) for model, values in sorted(totals.items())}


def window(
    before: Mapping[str, ModelCounters], after: Mapping[str, ModelCounters]
) -> dict[str, dict[str, Any]]:
    """Per-model summary of what happened between two scrapes (models with traffic only)."""
    result = {}
    for model, counters in after.items():
        delta = counters - before.get(model, ModelCounters())
        if delta.success or delta.failure:
            result[model] = delta.summary()
    return result


def scrape(url: str, timeout: float = 5.0) -> dict[str, ModelCounters]:
    """GET ``url`` (``http://host:8002/metrics``) and parse it; OSError when unreachable."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return model_counters(response.read().decode("utf-8", errors="replace"))
