"""The load-test runner's pass/fail logic: thresholds from the CLI or a file, checked on stats."""

from __future__ import annotations

from pathlib import Path

import pytest

from vitrine.loadtest.stats import AGGREGATED, RequestStats, parse_stats_csv
from vitrine.loadtest.thresholds import (
    EVERY,
    ThresholdError,
    Thresholds,
    check_thresholds,
    load_thresholds,
    parse_latency_limits,
    parse_thresholds,
)

# Locust 2.47 ``--csv`` output of a short storefront run.
STATS_CSV = """\
Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
grpc,superres_x2,12,0,240,225.5,113.8,376.0,196608.0,3.0,0.0,240,240,270,270,340,380,380,380,380,380,380
grpc,superres_x2_pipeline,39,1,230,272.7,155.6,582.6,10303.1,9.76,0.25,230,260,310,370,530,580,580,580,580,580,580
grpc,superres_x4_pipeline,20,0,62,71.9,26.8,271.6,12997.4,5.0,0.0,62,68,79,92,120,270,270,270,270,270,270
,Aggregated,71,1,200,208.2,26.8,582.6,42550.2,17.77,0.25,200,240,260,270,380,530,580,580,580,580,580
"""


def _stats() -> dict[str, RequestStats]:
    return parse_stats_csv(STATS_CSV)


def _row(name: str, requests: int = 10, failures: int = 0, **ms: float) -> RequestStats:
    values = {"rps": 5.0, "avg_ms": 10.0, "p50_ms": 10.0, "p95_ms": 20.0, "p99_ms": 30.0}
    values.update(ms)
    return RequestStats(name=name, requests=requests, failures=failures, max_ms=50.0, **values)


def test_stats_csv_is_read_per_name() -> None:
    stats = _stats()
    assert set(stats) == {"superres_x2", "superres_x2_pipeline", "superres_x4_pipeline", AGGREGATED}
    row = stats["superres_x2_pipeline"]
    assert (row.requests, row.failures, row.p50_ms, row.p95_ms) == (39, 1, 230, 580)
    assert row.failure_ratio == pytest.approx(1 / 39)


def test_na_percentiles_read_as_zero() -> None:
    text = STATS_CSV.splitlines()[0] + "\ngrpc,idle,0,0,0,0,0,0,0,0,0" + ",N/A" * 11 + "\n"
    row = parse_stats_csv(text)["idle"]
    assert row.p95_ms == 0.0 and row.failure_ratio == 1.0


def test_default_fails_on_any_failure() -> None:
    violations = check_thresholds(_stats(), Thresholds())
    assert [(v.check, v.name) for v in violations] == [
        ("failure_ratio", "superres_x2_pipeline"),
        ("failure_ratio", AGGREGATED),
    ]
    assert "failure ratio 0.0256 exceeds 0" in str(violations[0])


def test_clean_run_passes_the_default() -> None:
    stats = {name: _row(name) for name in ("a_pipeline", AGGREGATED)}
    assert check_thresholds(stats, Thresholds()) == []


def test_failure_ratio_tolerance() -> None:
    assert check_thresholds(_stats(), Thresholds(max_failure_ratio=0.05)) == []


def test_latency_limit_for_every_name_and_override() -> None:
    limits = Thresholds(max_failure_ratio=None, p95_ms={EVERY: 500, "superres_x4_pipeline": 250})
    broken = {(v.check, v.name) for v in check_thresholds(_stats(), limits)}
    assert broken == {("p95_ms", "superres_x2_pipeline"), ("p95_ms", "superres_x4_pipeline")}
    named_only = Thresholds(max_failure_ratio=None, p99_ms={"superres_x2": 379})
    (violation,) = check_thresholds(_stats(), named_only)
    assert str(violation) == "superres_x2: p99 380 ms exceeds 379 ms"


def test_min_rps_is_checked_on_the_aggregate() -> None:
    (violation,) = check_thresholds(_stats(), Thresholds(max_failure_ratio=None, min_rps=20))
    assert (violation.check, violation.name, violation.actual) == ("min_rps", AGGREGATED, 17.77)
    assert check_thresholds(_stats(), Thresholds(max_failure_ratio=None, min_rps=17)) == []


def test_a_limit_on_a_name_without_requests_is_broken() -> None:
    limits = Thresholds(max_failure_ratio=None, p95_ms={"superres_x9_pipeline": 100})
    (violation,) = check_thresholds(_stats(), limits)
    assert violation.check == "missing" and "no requests" in str(violation)


def test_an_empty_run_fails() -> None:
    empty = {AGGREGATED: _row(AGGREGATED, requests=0)}
    assert [v.check for v in check_thresholds(empty, Thresholds())] == ["missing"]
    assert [v.check for v in check_thresholds({}, Thresholds())] == ["missing"]


def test_cli_latency_limits() -> None:
    assert parse_latency_limits(["800", "superres_x4_pipeline=300.5"]) == {
        EVERY: 800.0,
        "superres_x4_pipeline": 300.5,
    }
    for bad in (["fast"], ["x=-1"], ["x=inf"]):
        with pytest.raises(ThresholdError):
            parse_latency_limits(bad)


def test_file_thresholds_and_cli_override(tmp_path: Path) -> None:
    path = tmp_path / "slo.toml"
    path.write_text(
        'max_failure_ratio = 0.01\nmin_rps = 50\n[p95_ms]\n"*" = 1000\nsuperres_x2_pipeline = 400\n'
    )
    from_file = load_thresholds(path)
    assert from_file.max_failure_ratio == 0.01 and from_file.min_rps == 50
    assert dict(from_file.p95_ms) == {EVERY: 1000, "superres_x2_pipeline": 400}
    cli = Thresholds(min_rps=10, p95_ms={"superres_x2_pipeline": 300})
    merged = from_file.merged(cli, explicit=["min_rps"])
    assert merged.min_rps == 10 and merged.max_failure_ratio == 0.01  # not given on the CLI
    assert dict(merged.p95_ms) == {EVERY: 1000, "superres_x2_pipeline": 300}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"p90_ms": {}}, "unknown keys"),
        ({"max_failure_ratio": 2}, "within 0..1"),
        ({"min_rps": "fast"}, "not a number"),
        ({"p95_ms": 100}, "must be a table"),
        ({"p99_ms": {"x": True}}, "not a number"),
    ],
)
def test_bad_thresholds_are_concise_errors(document: dict[str, object], message: str) -> None:
    with pytest.raises(ThresholdError, match=message):
        parse_thresholds(document)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("min_rps = = 3")
    with pytest.raises(ThresholdError, match="broken.toml: not valid TOML"):
        load_thresholds(path)
