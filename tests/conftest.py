"""Shared test settings: caches in a per-session temp folder, GPU tests skipped with the reason."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache() -> Iterator[None]:
    """Build caches (backend links, embedded repositories) never touch the user's cache."""
    if "VITRINE_CACHE_DIR" in os.environ:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="vitrine-test-cache-") as folder:
        os.environ["VITRINE_CACHE_DIR"] = folder
        yield
        del os.environ["VITRINE_CACHE_DIR"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``slow`` tests unless VITRINE_RUN_SLOW=1, and ``gpu`` tests where torch cannot
    use a GPU, with the actual reason (no GPU, or a GPU and a CPU build of torch)."""
    if os.environ.get("VITRINE_RUN_SLOW") != "1":
        slow = pytest.mark.skip(reason="slow (soak); run with VITRINE_RUN_SLOW=1")
        for item in items:
            if item.get_closest_marker("slow"):
                item.add_marker(slow)
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    from vitrine.devices import detect

    problem = detect().torch_problem()
    if problem is None:
        return
    skip = pytest.mark.skip(reason=f"needs a GPU torch can use: {problem}")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)
