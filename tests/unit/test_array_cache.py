"""The ``.npz`` cache of built arrays: built once, written whole, shared by processes."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

from vitrine.training.array_cache import cached_arrays


def _build() -> dict[str, np.ndarray]:
    return {"images": np.arange(12, dtype=np.uint8).reshape(3, 4), "labels": np.array([7])}


def _cache_in(folder: str) -> None:
    os.environ["VITRINE_CACHE_DIR"] = folder
    cached_arrays("shared", _build)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VITRINE_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_builds_once_then_reads_the_file(cache: Path) -> None:
    calls: list[int] = []

    def build() -> dict[str, np.ndarray]:
        calls.append(1)
        return _build()

    first = cached_arrays("sample", build)
    second = cached_arrays("sample", build)
    assert calls == [1]
    assert sorted(path.name for path in cache.iterdir()) == ["sample.npz"]
    for key, expected in _build().items():
        np.testing.assert_array_equal(first[key], expected)
        np.testing.assert_array_equal(second[key], expected)


def test_concurrent_builders_leave_one_whole_file(cache: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_cache_in, args=(str(cache),)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert sorted(path.name for path in cache.iterdir()) == ["shared.npz"]
    np.testing.assert_array_equal(cached_arrays("shared", _build)["images"], _build()["images"])
