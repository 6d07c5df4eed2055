"""The serving image installs the project in both its stages, so each stage's Python must
satisfy ``requires-python`` (a Python 3.10 stage could not import ``tomllib``)."""

from __future__ import annotations

import re
import tomllib

from packaging.specifiers import SpecifierSet

from vitrine import paths

DOCKERFILE = paths.source_root() / "docker" / "Dockerfile"


def _requires_python() -> SpecifierSet:
    project = tomllib.loads((paths.source_root() / "pyproject.toml").read_text())["project"]
    assert "requires-python" in project, "pyproject.toml must set requires-python"
    return SpecifierSet(project["requires-python"])


def stage_pythons(dockerfile: str) -> dict[str, str]:
    """Each stage's Python: a ``python:X.Y`` base image's, or the ``TRITON_PYTHON`` that a
    stage built on the Triton image declares (and asserts when it builds)."""
    pythons = {}
    stages = re.split(r"^FROM\s+", dockerfile, flags=re.MULTILINE)[1:]
    for stage in stages:
        image = stage.split()[0]
        official = re.match(r"python:(\d+\.\d+)", image)
        declared = re.search(r"^ARG TRITON_PYTHON=(\d+\.\d+)\s*$", stage, flags=re.MULTILINE)
        assert official or declared, f"stage FROM {image} names no Python"
        if declared:
            assert "sys.version.startswith('${TRITON_PYTHON}.')" in stage, "not asserted"
        pythons[image] = (official or declared).group(1)  # type: ignore[union-attr]
    return pythons


def test_every_stage_runs_a_python_the_project_supports() -> None:
    supported = _requires_python()
    pythons = stage_pythons(DOCKERFILE.read_text())
    assert len(pythons) == 2
    for image, version in pythons.items():
        assert f"{version}.0" in supported, f"{image}: Python {version} is not {supported}"


def test_the_check_would_have_caught_python_3_10() -> None:
    old = DOCKERFILE.read_text().replace("FROM python:3.12-slim", "FROM python:3.10-slim")
    pythons = stage_pythons(old)
    assert "3.10.0" not in _requires_python()
    assert "3.10" in pythons.values()
