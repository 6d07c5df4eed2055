"""Soak: 10 minutes of moderate storefront load; no failures, bounded memory growth.

Slow, so not in the default run: ``VITRINE_RUN_SLOW=1 pytest -m slow -s tests/integration/test_soak.py``.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from vitrine.loadtest.runner import loadtest
from vitrine.loadtest.thresholds import Thresholds
from vitrine.serving.embedded import EmbeddedTriton, free_port
from vitrine.serving.serve import embedded_repository

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DURATION_S = 600
WARMUP_S = 60
USERS = 6


def _rss_kib(root_pid: int) -> int:
    """Resident memory of the server and every process below it (the python-backend stubs)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        pid = int(status.parent.name)
        parents[pid] = int(fields["PPid"])
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier += children
    return sum(rss.get(pid, 0) for pid in tree)


@pytest.mark.timeout(DURATION_S + 300)
def test_soak_ten_minutes(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("grpc_port", "http_port", "metrics_port")}
    with EmbeddedTriton(embedded_repository(), **ports) as server:
        assert server.pid is not None
        samples: list[tuple[float, int]] = []
        stop = threading.Event()

        def sample() -> None:
            started = time.monotonic()
            while not stop.wait(5.0):
                samples.append((time.monotonic() - started, _rss_kib(server.pid or 0)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = loadtest(
            address=server.grpc_url,
            metrics_url=server.metrics_url,
            users=USERS,
            duration_s=DURATION_S,
            out=tmp_path / "report",
            thresholds=Thresholds(max_failure_ratio=0.0),
            timeout_s=30.0,
        )
        stop.set()
        sampler.join()
    assert result is not None and result.passed, [str(v) for v in result.violations]
    after_warmup = [rss for seconds, rss in samples if seconds >= WARMUP_S]
    growth = (after_warmup[-1] - after_warmup[0]) / after_warmup[0]
    report = {
        "duration_s": DURATION_S,
        "users": USERS,
        "requests": result.stats["Aggregated"].requests,
        "failures": result.stats["Aggregated"].failures,
        "rss_kib_after_warmup": after_warmup[0],
        "rss_kib_at_end": after_warmup[-1],
        "rss_growth": growth,
    }
    print("\nsoak:", json.dumps(report))
    assert result.stats["Aggregated"].failures == 0
    assert growth < 0.10, f"server memory grew {growth:.1%} after warm-up"
