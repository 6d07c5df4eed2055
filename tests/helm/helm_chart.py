"""Helpers of the Helm chart tests: paths, the helm command line, values and manifests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "vitrine"
VALUES_FILES = ("values.yaml", "values-dev.yaml", "values-prod.yaml")
MONITORING_API = "monitoring.coreos.com/v1"

Render = Callable[..., list[dict[str, Any]]]


def find_helm() -> Path | None:
    """The helm that `make setup` installs beside the venv's python, else one on PATH."""
    venv_helm = Path(sys.executable).parent / "helm"
    if venv_helm.is_file():
        return venv_helm
    found = shutil.which("helm")
    return Path(found) if found else None


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=60)


def template_args(
    values_file: str, sets: Sequence[str] = (), api_versions: Sequence[str] = ()
) -> list[str]:
    args = ["template", "vitrine", str(CHART), "--namespace", "shop"]
    if values_file != "values.yaml":
        args += ["-f", str(CHART / values_file)]
    for item in sets:
        args += ["--set", item]
    for api in api_versions:
        args += ["--api-versions", api]
    return args


def load_values(values_file: str) -> dict[str, Any]:
    """The effective values: the chart defaults overlaid with ``values_file`` (top-level keys)."""
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    if values_file != "values.yaml":
        values = _merge(values, yaml.safe_load((CHART / values_file).read_text()))
    return values


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and value:
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def only(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [m for m in manifests if m["kind"] == kind]
    return found


def kinds(manifests: list[dict[str, Any]]) -> set[str]:
    return {m["kind"] for m in manifests}
