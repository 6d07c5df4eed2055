"""Faults and healing on a real server: a killed step, a killed server, graceful shutdown.

Every request made during a fault must end as a correct image or a typed error within its
deadline; the watchdog must bring every pipeline back.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from vitrine.catalog import SPECS
from vitrine.client import Unavailable, VitrineClient, VitrineError
from vitrine.sampling import example_labels
from vitrine.serving.embedded import embedded_repository
from vitrine.serving.probe import probe_pipelines
from vitrine.serving.triton import EmbeddedTriton, free_port
from vitrine.serving.watchdog import Watchdog
from vitrine.training.photos import load_photo

pytestmark = pytest.mark.integration

DEADLINE = 10.0
IMAGE = np.ascontiguousarray(load_photo("coffee")[:48, :64])


@pytest.fixture(scope="module")
def guarded() -> Iterator[tuple[EmbeddedTriton, Watchdog]]:
    """A server of its own (these tests kill things) with the watchdog running."""
    ports = {name: free_port() for name in ("grpc_port", "http_port", "metrics_port")}
    server = EmbeddedTriton(embedded_repository(), admin_key=secrets.token_urlsafe(16), **ports)
    watchdog = Watchdog(server, interval=0.5, timeout=3.0)
    with server:
        watchdog.start()
        yield server, watchdog
        watchdog.stop()


def _parent(pid: int) -> int:
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1])


def _stub_pids(server: EmbeddedTriton, model: str) -> list[int]:
    marker = f"{server.repository}/{model}/1/model.py".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@dataclass
class LoadRecord:
    """What a client saw during a fault."""

    ok: int = 0
    typed_errors: int = 0
    wrong_images: int = 0
    slowest: float = 0.0


def _load(url: str, expected: np.ndarray, stop: threading.Event, record: LoadRecord) -> None:
    with VitrineClient(url, timeout=DEADLINE, retries=0) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                result = client.super_resolve_array(IMAGE, scale=2)
                if np.array_equal(result.array, expected):
                    record.ok += 1
                else:
                    record.wrong_images += 1
            except VitrineError:
                record.typed_errors += 1
                time.sleep(0.05)
            record.slowest = max(record.slowest, time.monotonic() - started)


def _under_load(
    server: EmbeddedTriton, fault: object, until_healed: Watchdog, events_before: int
) -> LoadRecord:
    with VitrineClient(server.grpc_url, timeout=DEADLINE) as client:
        expected = client.super_resolve_array(IMAGE, scale=2).array
    record, stop = LoadRecord(), threading.Event()
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(_load, server.grpc_url, expected, stop, record) for _ in range(2)]
        time.sleep(1.0)
        fault()  # type: ignore[operator]
        deadline = time.monotonic() + 60
        while len(until_healed.events) == events_before and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # load continues on the healed server
        stop.set()
        for future in futures:
            future.result()
    return record


def _assert_clean(record: LoadRecord) -> None:
    assert record.wrong_images == 0
    assert record.ok > 0
    assert record.slowest < DEADLINE + 2.0, "a request outlived its deadline"


def test_killed_step_is_reloaded(guarded: tuple[EmbeddedTriton, Watchdog]) -> None:
    server, watchdog = guarded
    before = len(watchdog.events)

    def kill_core_stub() -> None:
        for pid in _stub_pids(server, "superres_x2"):
            os.kill(pid, signal.SIGKILL)

    record = _under_load(server, kill_core_stub, watchdog, before)
    _assert_clean(record)
    event = watchdog.events[before]
    assert event.healed and event.action == "reload" and "superres_x2" in event.models
    print(f"\nstub kill: healed by reload in {event.seconds:.2f} s; {record}")
    assert event.seconds < 10.0
    assert all(result.ok for result in _probe(server))


def test_killed_generator_sample_step_is_reloaded(
    guarded: tuple[EmbeddedTriton, Watchdog],
) -> None:
    server, watchdog = guarded
    spec = next(spec for spec in SPECS.values() if spec.is_generator)
    assert spec.conditioning is not None
    before = len(watchdog.events)
    for pid in _stub_pids(server, spec.sample_model):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while len(watchdog.events) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    event = watchdog.events[before]
    assert event.healed and event.action == "reload" and spec.sample_model in event.models
    with VitrineClient(server.grpc_url, timeout=DEADLINE) as client:
        generated = client.generate(**example_labels(spec.conditioning), model=spec.name, count=2)
    assert len(generated.images) == 2
    assert all(result.ok for result in _probe(server))


def test_killed_server_is_restarted(guarded: tuple[EmbeddedTriton, Watchdog]) -> None:
    server, watchdog = guarded
    before = len(watchdog.events)

    def kill_server() -> None:
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)

    record = _under_load(server, kill_server, watchdog, before)
    _assert_clean(record)
    event = watchdog.events[before]
    assert event.healed and event.action == "restart"
    print(f"\nserver kill: healed by restart in {event.seconds:.2f} s; {record}")
    orphans = [pid for pid in _stub_pids(server, "superres_x2") if _parent(pid) != server.pid]
    assert not orphans, "the killed server's python-backend stubs were left running"
    assert all(result.ok for result in _probe(server))


def test_dead_server_is_unavailable_to_the_client() -> None:
    url = f"127.0.0.1:{free_port()}"
    with VitrineClient(url, timeout=2.0, retries=1) as client, pytest.raises(Unavailable):
        client.super_resolve_array(IMAGE, scale=2)


def _probe(server: EmbeddedTriton) -> list:  # type: ignore[type-arg]
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        return probe_pipelines(client)
    finally:
        client.close()


def _wait_until_ready(client: VitrineClient, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not client.health(timeout=2.0).ready:
        assert process.poll() is None, "vitrine serve exited early"
        assert time.monotonic() < deadline, "vitrine serve never became ready"
        time.sleep(0.3)


def test_sigterm_finishes_in_flight_requests_and_exits_zero(tmp_path: Path) -> None:
    repository = embedded_repository()
    grpc_port = free_port()
    command = [
        sys.executable, "-m", "vitrine.cli", "serve", "--repository", str(repository),
        "--grpc-port", str(grpc_port), "--http-port", str(free_port()),
        "--metrics-port", str(free_port()), "--no-watchdog",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"127.0.0.1:{grpc_port}"
        with VitrineClient(url, timeout=30.0) as client:
            _wait_until_ready(client, process)
            big = np.ascontiguousarray(load_photo("retina")[:512, :512])
            with ThreadPoolExecutor(4) as pool:
                in_flight = [
                    pool.submit(client.super_resolve_array, big, scale=2) for _ in range(4)
                ]
                time.sleep(0.3)
                process.send_signal(signal.SIGTERM)
                results = [future.result(timeout=30) for future in in_flight]
        assert all(result.array.shape == (1024, 1024, 3) for result in results)
        assert process.wait(timeout=60) == 0  # within `vitrine serve --exit-timeout` (30 s)
        with VitrineClient(url, timeout=2.0, retries=0) as client, pytest.raises(Unavailable):
            client.super_resolve_array(IMAGE, scale=2)
    finally:
        if process.poll() is None:
            process.kill()
        output = process.stdout.read().decode() if process.stdout else ""
        print(output[-2000:])
