"""Pass/fail limits of a load test, from the command line or a TOML file; pure logic.

File form (every key optional)::

    max_failure_ratio = 0.0      # per request name and overall
    min_rps = 50.0               # overall requests per second
    [p95_ms]
    "*" = 1000                   # every request name
    superres_x2_pipeline = 400   # this one (overrides "*")
    [p99_ms]
    "*" = 2000

On the command line: ``--max-p95 1000 --max-p95 superres_x2_pipeline=400``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vitrine.errors import ConfigError
from vitrine.loadtest.stats import AGGREGATED, RequestStats

__all__ = [
    "EVERY",
    "Thresholds",
    "ThresholdError",
    "Violation",
    "check_thresholds",
    "load_thresholds",
    "parse_latency_limits",
    "parse_thresholds",
]

EVERY = "*"
"""Latency-limit key that applies to every request name without its own limit."""


class ThresholdError(ConfigError):
    """A threshold that cannot be understood."""


@dataclass(frozen=True)
class Thresholds:
    """Limits a run must hold. ``None`` / empty means not checked.

    The default fails a run with any failed request.
    """

    max_failure_ratio: float | None = 0.0
    min_rps: float | None = None
    p95_ms: Mapping[str, float] = field(default_factory=dict)
    p99_ms: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "p95_ms", MappingProxyType(dict(self.p95_ms)))
        object.__setattr__(self, "p99_ms", MappingProxyType(dict(self.p99_ms)))

    def merged(self, override: Thresholds, *, explicit: Iterable[str] = ()) -> Thresholds:
        """These limits with ``override``'s latency limits on top and its scalar limits
        where named in ``explicit`` (those given on the command line)."""
        scalars = {key: getattr(override, key) for key in explicit}
        return replace(
            self,
            p95_ms={**self.p95_ms, **override.p95_ms},
            p99_ms={**self.p99_ms, **override.p99_ms},
            **scalars,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_failure_ratio": self.max_failure_ratio,
            "min_rps": self.min_rps,
            "p95_ms": dict(self.p95_ms),
            "p99_ms": dict(self.p99_ms),
        }


@dataclass(frozen=True)
class Violation:
    """One broken limit."""

    check: str  # "failure_ratio", "min_rps", "p95_ms", "p99_ms", "missing"
    name: str  # request name, or AGGREGATED
    actual: float
    limit: float

    def __str__(self) -> str:
        if self.check == "missing":
            return f"{self.name}: no requests were made (a limit names it)"
        if self.check == "min_rps":
            return f"{self.name}: {self.actual:.1f} req/s is below the minimum {self.limit:g}"
        if self.check == "failure_ratio":
            return f"{self.name}: failure ratio {self.actual:.4f} exceeds {self.limit:g}"
        return f"{self.name}: {self.check[:3]} {self.actual:.0f} ms exceeds {self.limit:g} ms"


def check_thresholds(stats: Mapping[str, RequestStats], limits: Thresholds) -> list[Violation]:
    """Every limit ``stats`` (Locust rows by name, with :data:`AGGREGATED`) break."""
    violations: list[Violation] = []
    total = stats.get(AGGREGATED)
    names = sorted(name for name in stats if name != AGGREGATED)
    if total is None or total.requests == 0:
        violations.append(Violation("missing", AGGREGATED, 0.0, 1.0))
    if limits.max_failure_ratio is not None:
        for name in [*names, AGGREGATED]:
            row = stats.get(name)
            if row is not None and row.requests and row.failure_ratio > limits.max_failure_ratio:
                violations.append(
                    Violation("failure_ratio", name, row.failure_ratio, limits.max_failure_ratio)
                )
    if limits.min_rps is not None and total is not None and total.rps < limits.min_rps:
        violations.append(Violation("min_rps", AGGREGATED, total.rps, limits.min_rps))
    for check, table in (("p95_ms", limits.p95_ms), ("p99_ms", limits.p99_ms)):
        for name in sorted(set(table) - {EVERY}):
            if name not in stats or stats[name].requests == 0:
                violations.append(Violation("missing", name, 0.0, table[name]))
        for name in names:
            limit = table.get(name, table.get(EVERY))
            actual = getattr(stats[name], check)
            if limit is not None and stats[name].requests and actual > limit:
                violations.append(Violation(check, name, actual, limit))
    return violations


def parse_latency_limits(values: Iterable[str]) -> dict[str, float]:
    """``["1000", "x_pipeline=400"]`` → ``{"*": 1000.0, "x_pipeline": 400.0}`` (ms)."""
    limits: dict[str, float] = {}
    for value in values:
        name, _, number = value.rpartition("=")
        limits[name.strip() or EVERY] = _limit(number, f"latency limit {value!r}")
    return limits


def parse_thresholds(document: Mapping[str, Any], *, source: str = "thresholds") -> Thresholds:
    """Validate a thresholds table already read from TOML."""
    unknown = set(document) - {"max_failure_ratio", "min_rps", "p95_ms", "p99_ms"}
    if unknown:
        raise ThresholdError(f"{source}: unknown keys {sorted(unknown)}")
    tables: dict[str, dict[str, float]] = {}
    for key in ("p95_ms", "p99_ms"):
        table = document.get(key, {})
        if not isinstance(table, Mapping):
            raise ThresholdError(f"{source}: {key} must be a table of name = milliseconds")
        tables[key] = {
            str(name): _limit(value, f"{source}: {key}.{name}") for name, value in table.items()
        }
    failure = document.get("max_failure_ratio", 0.0)
    ratio = _limit(failure, f"{source}: max_failure_ratio")
    if ratio > 1:
        raise ThresholdError(f"{source}: max_failure_ratio must be within 0..1; got {failure!r}")
    min_rps = document.get("min_rps")
    return Thresholds(
        max_failure_ratio=ratio,
        min_rps=None if min_rps is None else _limit(min_rps, f"{source}: min_rps"),
        p95_ms=tables["p95_ms"],
        p99_ms=tables["p99_ms"],
    )


def load_thresholds(path: Path | str) -> Thresholds:
    """:func:`parse_thresholds` of a TOML file."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ThresholdError(f"{path}: not valid TOML: {error}") from error
    return parse_thresholds(document, source=str(path))


def _limit(value: object, what: str) -> float:
    if isinstance(value, bool):
        raise ThresholdError(f"{what}: not a number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ThresholdError(f"{what}: not a number") from None
    if not math.isfinite(number) or number < 0:
        raise ThresholdError(f"{what}: must be a finite number >= 0")
    return number
