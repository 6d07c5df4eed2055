"""`vitrine loadtest`: Locust headless in a subprocess, Triton metrics around it, thresholds.

Locust (gevent) always runs in its own process, so its monkey-patching never reaches the
caller (a pytest session, the CLI). The run writes into ``out``:

* ``locust_stats.csv``, ``locust_stats_history.csv``, ``locust_failures.csv``,
  ``locust_exceptions.csv``, ``locust.html`` (Locust's own reports), ``locust.log``;
* ``summary.json``: p50/p95/p99, rate and failures per request name, Triton's per-model
  queue vs compute breakdown over the run, the thresholds and what broke them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitrine.loadtest import metrics
from vitrine.loadtest.mix import DEFAULT_MIX, load_mix
from vitrine.loadtest.stats import AGGREGATED, RequestStats, read_stats_csv
from vitrine.loadtest.thresholds import Thresholds, Violation, check_thresholds

__all__ = [
    "LOCUSTFILE",
    "LoadtestResult",
    "locust_command",
    "print_summary",
    "run_loadtest",
]

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
CSV_PREFIX = "locust"

logger = logging.getLogger("vitrine.loadtest")


@dataclass(frozen=True)
class LoadtestResult:
    """What a run measured and whether it held its thresholds."""

    stats: dict[str, RequestStats]
    triton: dict[str, dict[str, Any]]
    violations: list[Violation]
    summary_path: Path
    locust_exit_code: int

    @property
    def passed(self) -> bool:
        return not self.violations and self.locust_exit_code == 0


def locust_command(
    *,
    address: str,
    users: int,
    spawn_rate: float,
    duration_s: float,
    mix: Path,
    out: Path,
    timeout_s: float,
    retries: int = 0,
    headless: bool = True,
) -> list[str]:
    """The Locust command line of a run (headless: reports into ``out``)."""
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--host",
        address,
        "--users",
        str(users),
        "--spawn-rate",
        f"{spawn_rate:g}",
        "--vitrine-mix",
        str(mix),
        "--vitrine-timeout",
        f"{timeout_s:g}",
        "--vitrine-retries",
        str(retries),
    ]
    if not headless:
        return [*command, "--web-host", "127.0.0.1"]
    return [
        *command,
        "--headless",
        "--run-time",
        f"{max(1, round(duration_s))}s",
        "--stop-timeout",
        f"{timeout_s:g}",
        "--csv",
        str(out / CSV_PREFIX),
        "--csv-full-history",
        "--html",
        str(out / "locust.html"),
        "--only-summary",
        "--exit-code-on-error",
        "0",  # thresholds decide, not any single failure
    ]


@contextlib.contextmanager
def _server(address: str | None, metrics_url: str | None) -> Iterator[tuple[str, str | None]]:
    """The given address, or the embedded server started on free loopback ports."""
    if address is not None:
        if metrics_url is None:
            host = address.rsplit(":", 1)[0]
            metrics_url = f"http://{host}:8002/metrics"
        yield address, metrics_url
        return
    from vitrine.serving.embedded import EmbeddedTriton, free_ports
    from vitrine.serving.serve import embedded_repository

    ports = free_ports()
    logger.info("starting the embedded server")
    with EmbeddedTriton(embedded_repository(), **ports) as server:
        yield server.grpc_url, server.metrics_url


def _scrape(url: str | None) -> dict[str, metrics.ModelCounters] | None:
    if url is None:
        return None
    try:
        return metrics.scrape(url)
    except OSError as error:
        logger.warning("cannot read Triton metrics at %s: %s", url, error)
        return None


def _require_locust() -> None:
    if importlib.util.find_spec("locust") is None:
        raise ModuleNotFoundError("locust is not installed", name="locust")


def run_loadtest(*, echo: bool = True, **options: Any) -> int:
    """Run a load test (options of :func:`loadtest`); returns a process exit code.

    0: every threshold held; 1: a threshold broke. With ``web=True`` Locust's web UI
    (127.0.0.1:8089) runs instead, until Ctrl-C, and the code is 0.
    """
    result = loadtest(**options)
    if result is None:
        return 0
    if echo:
        print_summary(json.loads(result.summary_path.read_text()))
    return 0 if result.passed else 1


def loadtest(
    *,
    address: str | None = None,
    metrics_url: str | None = None,
    users: int = 16,
    spawn_rate: float | None = None,
    duration_s: float = 60.0,
    mix: Path | None = None,
    out: Path | None = None,
    thresholds: Thresholds | None = None,
    timeout_s: float = 10.0,
    retries: int = 0,
    web: bool = False,
) -> LoadtestResult | None:
    """Run Locust against ``address`` (gRPC ``host:port``) and check ``thresholds``.

    Without ``address`` the embedded server is started for the run; ``metrics_url`` defaults
    to port 8002 of the address's host. Returns ``None`` for the web UI (``web=True``).
    """
    _require_locust()
    mix_path = Path(mix) if mix is not None else DEFAULT_MIX
    traffic = load_mix(mix_path)  # fail on a bad mix before anything starts
    limits = thresholds if thresholds is not None else Thresholds()
    out = (
        Path(out)
        if out is not None
        else Path("reports") / "loadtest" / time.strftime("%Y%m%d-%H%M%S")
    )
    out.mkdir(parents=True, exist_ok=True)
    spawn = spawn_rate if spawn_rate is not None else float(users)
    with _server(address, metrics_url) as (grpc_address, metrics_at):
        command = locust_command(
            address=grpc_address,
            users=users,
            spawn_rate=spawn,
            duration_s=duration_s,
            mix=mix_path,
            out=out,
            timeout_s=timeout_s,
            retries=retries,
            headless=not web,
        )
        if web:
            print(f"Locust web UI on http://127.0.0.1:8089 against {grpc_address}; Ctrl-C stops")
            with contextlib.suppress(KeyboardInterrupt):
                subprocess.run(command, check=False)
            return None
        before = _scrape(metrics_at)
        started = time.monotonic()
        with open(out / "locust.log", "wb") as log:
            completed = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=duration_s + timeout_s + 120,
                check=False,
            )
        elapsed = time.monotonic() - started
        after = _scrape(metrics_at)
    stats_path = out / f"{CSV_PREFIX}_stats.csv"
    if not stats_path.is_file():
        tail = (out / "locust.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"locust wrote no stats (exit {completed.returncode}):\n{tail}")
    stats = read_stats_csv(stats_path)
    triton = metrics.window(before, after) if before is not None and after is not None else {}
    violations = check_thresholds(stats, limits)
    summary = {
        "address": grpc_address,
        "users": users,
        "spawn_rate": spawn,
        "duration_s": duration_s,
        "wall_s": round(elapsed, 2),
        "mix": {
            "file": str(mix_path),
            "description": traffic.description,
            "shares": traffic.shares(),
        },
        "requests": {name: row.as_dict() for name, row in stats.items()},
        "triton": triton,
        "steps": _steps(traffic),
        "thresholds": limits.as_dict(),
        "violations": [str(v) for v in violations],
        "locust_exit_code": completed.returncode,
        "passed": not violations and completed.returncode == 0,
        "reports": {"html": str(out / "locust.html"), "csv": str(stats_path)},
    }
    summary_path = out / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return LoadtestResult(
        stats=stats,
        triton=triton,
        violations=violations,
        summary_path=summary_path,
        locust_exit_code=completed.returncode,
    )


def _steps(traffic: Any) -> dict[str, list[str]]:
    """Triton models each request name passes through (ensemble steps in order)."""
    from vitrine.pipeline import pipeline_steps

    steps: dict[str, list[str]] = {}
    for call in traffic.calls:
        spec = call.spec
        if call.path == "pipeline":
            steps[call.name] = list(pipeline_steps(spec))
        else:
            steps[call.name] = [spec.core_model]
    return steps


def print_summary(summary: dict[str, Any]) -> None:
    """The run's table: latency per request name, then Triton's queue vs compute per model."""
    print(
        f"{summary['users']} users for {summary['duration_s']:g} s against "
        f"{summary['address']} ({summary['mix']['description'] or summary['mix']['file']})"
    )
    header = (
        f"{'request':28} {'reqs':>6} {'fails':>5} {'req/s':>7} {'p50':>6} {'p95':>6} {'p99':>6}"
    )
    print(header + "  (ms)")
    rows = summary["requests"]
    for name in [*sorted(n for n in rows if n != AGGREGATED), AGGREGATED]:
        row = rows.get(name)
        if row is None:
            continue
        print(
            f"{name:28} {row['requests']:>6} {row['failures']:>5} {row['rps']:>7.1f} "
            f"{row['p50_ms']:>6.0f} {row['p95_ms']:>6.0f} {row['p99_ms']:>6.0f}"
        )
    if summary["triton"]:
        print(
            f"\n{'triton model':28} {'reqs':>6} {'batch':>5} {'total':>8} {'queue':>8} "
            f"{'compute':>8} {'in':>6} {'infer':>8} {'out':>6}  (mean ms per request)"
        )
        for model, entry in summary["triton"].items():
            compute = (
                entry["compute_input_ms"] + entry["compute_infer_ms"] + entry["compute_output_ms"]
            )
            print(
                f"{model:28} {entry['requests']:>6} {entry['mean_batch']:>5.2f} "
                f"{entry['request_ms']:>8.2f} {entry['queue_ms']:>8.2f} {compute:>8.2f} "
                f"{entry['compute_input_ms']:>6.2f} {entry['compute_infer_ms']:>8.2f} "
                f"{entry['compute_output_ms']:>6.2f}"
            )
        print("(ensembles: total is end to end; each step has its own row)")
    verdict = "PASSED" if summary["passed"] else "FAILED"
    print(f"\n{verdict}: thresholds {json.dumps(summary['thresholds'])}")
    for violation in summary["violations"]:
        print(f"  - {violation}")
    if summary["locust_exit_code"]:
        print(f"  - locust exited with status {summary['locust_exit_code']}")
    print(f"reports: {summary['reports']['html']}, {summary['reports']['csv']}")
