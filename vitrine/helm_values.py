"""The Helm chart's model list, derived from the catalog (torch-free).

``helm/vitrine/values*.yaml`` hold ``sharedModels`` and ``models`` exactly as
:func:`models_values` returns them, between the markers :data:`BEGIN` and :data:`END`
(``vitrine regenerate`` rewrites that block), so the chart knows which repository folders
to sync and verify, which engines to build, which pipelines the readiness probe and ``helm
test`` call, and which series the autoscaling rule reads. A values file whose block lists no
``sharedModels`` serves a chosen subset: its entries are regenerated, the choice is kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from vitrine.pipeline import ENCODE_MODEL, pipeline_steps
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec

__all__ = [
    "BEGIN",
    "END",
    "VALUES_FILES",
    "model_entry",
    "models_block",
    "models_values",
    "values_with_models",
]

VALUES_FILES = tuple(
    Path("helm/vitrine") / name for name in ("values.yaml", "values-dev.yaml", "values-prod.yaml")
)
"""The values files holding a model list, relative to the source root."""
BEGIN = "# >>> models: generated from the specs by `vitrine regenerate`; do not edit\n"
END = "# <<< models\n"


def model_entry(spec: ModelSpec) -> dict[str, Any]:
    """One ``models`` item: the pipeline, its repository folders (its own steps, then the
    ensemble; the shared encode step is in ``sharedModels``) and the client call reaching it."""
    *steps, _ = pipeline_steps(spec)
    return {
        "name": spec.name,
        "pipeline": spec.pipeline,
        "coreModel": spec.core_model,
        "repositoryModels": [*steps, spec.pipeline],
        "clientCall": {"method": spec.client_method, "selector": spec.selector_kwargs},
    }


def models_values(specs: Iterable[ModelSpec] | None = None) -> dict[str, Any]:
    """The ``sharedModels`` and ``models`` values for ``specs`` (default: the whole catalog)."""
    chosen = list(SPECS.values() if specs is None else specs)
    return {
        "sharedModels": [ENCODE_MODEL],
        "models": [model_entry(spec) for spec in chosen],
    }


def _flow(value: Any) -> str:
    """``value`` in YAML flow style (``[a, b]``, ``{k: v}``), as the values files write it."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_flow(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    return str(value)


def models_block(specs: Iterable[ModelSpec] | None = None, *, shared: bool = True) -> str:
    """The values files' block for ``specs`` (default: all), markers included; ``shared``
    adds ``sharedModels`` (a full model set; a subset relies on the default's)."""
    values = models_values(specs)
    lines = [BEGIN.rstrip("\n")]
    if shared:
        lines += ["sharedModels:", *(f"  - {name}" for name in values["sharedModels"])]
    lines.append("models:")
    for entry in values["models"]:
        first, *rest = entry.items()
        lines.append(f"  - {first[0]}: {_flow(first[1])}")
        lines += [f"    {key}: {_flow(value)}" for key, value in rest]
    return "\n".join(lines) + "\n" + END


def values_with_models(text: str) -> str:
    """``text`` of a values file with its model block regenerated from the specs."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"a values file needs one model block between {BEGIN!r} and {END!r}")
    head, rest = text.split(BEGIN)
    block, tail = rest.split(END)
    listed = yaml.safe_load(block) or {}
    if "sharedModels" in listed:
        return head + models_block() + tail
    try:
        chosen = [SPECS[model["name"]] for model in listed.get("models", [])]
    except KeyError as error:
        raise ValueError(f"the values file lists an unknown model {error}") from None
    return head + models_block(chosen, shared=False) + tail
