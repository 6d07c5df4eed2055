"""Locust's ``<prefix>_stats.csv`` read back as per-request-name figures."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["AGGREGATED", "RequestStats", "parse_stats_csv", "read_stats_csv"]

AGGREGATED = "Aggregated"
"""Locust's name of the all-requests row."""


@dataclass(frozen=True)
class RequestStats:
    """One row of Locust's stats: counts, rate over the run, latencies in ms."""

    name: str
    requests: int
    failures: int
    rps: float
    avg_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @property
    def failure_ratio(self) -> float:
        """Failures over requests (1.0 when nothing was sent: no evidence of health)."""
        return self.failures / self.requests if self.requests else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failure_ratio": round(self.failure_ratio, 6)}


def parse_stats_csv(text: str) -> dict[str, RequestStats]:
    """Rows by request name; the all-requests row is under :data:`AGGREGATED`."""
    rows: dict[str, RequestStats] = {}
    for row in csv.DictReader(io.StringIO(text)):
        name = row["Name"]
        rows[name] = RequestStats(
            name=name,
            requests=int(row["Request Count"]),
            failures=int(row["Failure Count"]),
            rps=_number(row["Requests/s"]),
            avg_ms=_number(row["Average Response Time"]),
            p50_ms=_number(row["50%"]),
            p95_ms=_number(row["95%"]),
            p99_ms=_number(row["99%"]),
            max_ms=_number(row["Max Response Time"]),
        )
    return rows


def read_stats_csv(path: Path) -> dict[str, RequestStats]:
    """:func:`parse_stats_csv` of a file."""
    return parse_stats_csv(path.read_text())


def _number(text: str) -> float:
    """Locust writes ``N/A`` for percentiles of names without requests."""
    try:
        return float(text)
    except ValueError:
        return 0.0
