"""Where Vitrine keeps shipped weights, reports and caches (overridable by environment)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "reports_dir", "source_root", "weights_dir", "weights_path"]

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def source_root() -> Path:
    """The source tree (the checkout holding ``README.md``, ``weights/`` and ``reports/``)."""
    return _SOURCE_ROOT


def weights_dir() -> Path:
    """Shipped checkpoints: ``$VITRINE_WEIGHTS_DIR`` or ``weights/`` of the source tree."""
    return Path(os.environ.get("VITRINE_WEIGHTS_DIR", _SOURCE_ROOT / "weights"))


def weights_path(name: str) -> Path:
    """The shipped ``*.safetensors`` of model ``name`` (its JSON sidecar lies beside it)."""
    return weights_dir() / f"{name}.safetensors"


def reports_dir() -> Path:
    """Evaluation and parity reports: ``$VITRINE_REPORTS_DIR`` or ``reports/``."""
    return Path(os.environ.get("VITRINE_REPORTS_DIR", _SOURCE_ROOT / "reports"))


def cache_dir() -> Path:
    """Build caches: ``$VITRINE_CACHE_DIR`` or ``~/.cache/vitrine``."""
    return Path(os.environ.get("VITRINE_CACHE_DIR", Path.home() / ".cache" / "vitrine"))
