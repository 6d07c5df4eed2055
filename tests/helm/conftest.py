"""Fixtures of the Helm chart tests: the real helm binary and cached renders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_chart import Render, find_helm, run_helm, template_args


@pytest.fixture(scope="session")
def helm() -> Path:
    """A missing helm fails the chart tests: it is a hard dependency of the test suite."""
    binary = find_helm()
    if binary is None:
        pytest.fail("helm is not installed: run `make setup` (helm/install_helm.py)")
    return binary


@pytest.fixture(scope="session")
def render(helm: Path) -> Render:
    """``render(values_file, sets=(), api_versions=())`` -> the manifests, cached."""
    cache: dict[tuple[Any, ...], list[dict[str, Any]]] = {}

    def _render(
        values_file: str = "values.yaml",
        sets: Sequence[str] = (),
        api_versions: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        key = (values_file, tuple(sets), tuple(api_versions))
        if key not in cache:
            done = run_helm(helm, *template_args(values_file, sets, api_versions))
            assert done.returncode == 0, done.stderr
            cache[key] = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
        return cache[key]

    return _render
