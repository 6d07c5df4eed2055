"""The Helm chart's model list, derived from the catalog (torch-free).

``helm/vitrine/values*.yaml`` hold ``sharedModels`` and ``models`` exactly as
:func:`models_values` returns them (a test holds the values files to it), so the chart
knows which repository folders to sync and verify, which engines to build, which pipelines
the readiness probe and ``helm test`` call, and which series the autoscaling rule reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vitrine.catalog import SPECS
from vitrine.pipeline import ENCODE_MODEL, pipeline_steps
from vitrine.spec import ModelSpec

__all__ = ["model_entry", "models_values"]


def model_entry(spec: ModelSpec) -> dict[str, Any]:
    """One ``models`` item: the pipeline, its repository folders (the decode or sample step,
    the core model, the ensemble) and the client call reaching it."""
    first, core, _ = pipeline_steps(spec)
    return {
        "name": spec.name,
        "pipeline": spec.pipeline,
        "coreModel": spec.core_model,
        "repositoryModels": [first, core, spec.pipeline],
        "clientCall": {"method": spec.client_method, "selector": spec.selector_kwargs},
    }


def models_values(specs: Iterable[ModelSpec] | None = None) -> dict[str, Any]:
    """The ``sharedModels`` and ``models`` values for ``specs`` (default: the whole catalog)."""
    chosen = list(SPECS.values() if specs is None else specs)
    return {
        "sharedModels": [ENCODE_MODEL],
        "models": [model_entry(spec) for spec in chosen],
    }
