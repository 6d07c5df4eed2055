"""The served-model contract derived from the specs, checked by ``verify()`` and ``health()``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vitrine.catalog import SPECS
from vitrine.pipeline import PIPELINE_OUTPUTS, pipeline_inputs
from vitrine.spec import TensorSpec

from ._results import Health

__all__ = ["ModelContract", "contracts", "metadata_problems", "not_ready", "unreachable"]


@dataclass(frozen=True)
class ModelContract:
    """What one served model must expose (tensor dims without the batch axis)."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def contracts() -> tuple[ModelContract, ...]:
    """Every spec's pipeline and core model, in catalog order."""
    return tuple(
        contract
        for spec in SPECS.values()
        for contract in (
            ModelContract(spec.pipeline, pipeline_inputs(spec), PIPELINE_OUTPUTS),
            ModelContract(spec.core_model, spec.inputs, spec.outputs),
        )
    )


def _tensor_problems(
    model: str, kind: str, expected: Iterable[TensorSpec], served: Iterable[Any]
) -> list[str]:
    found = {str(t.name): (str(t.datatype), tuple(int(d) for d in t.shape)) for t in served}
    problems = []
    for tensor in expected:
        shape = (-1, *tensor.dims)
        if tensor.name not in found:
            problems.append(f"{model}: missing {kind} {tensor.name!r}")
            continue
        datatype, served_shape = found.pop(tensor.name)
        if datatype != tensor.dtype:
            problems.append(
                f"{model}: {kind} {tensor.name!r} has datatype {datatype}, expected {tensor.dtype}"
            )
        if served_shape != shape:
            problems.append(
                f"{model}: {kind} {tensor.name!r} has shape {list(served_shape)}, "
                f"expected {list(shape)}"
            )
    problems.extend(f"{model}: unexpected {kind} {name!r}" for name in found)
    return problems


def metadata_problems(contract: ModelContract, metadata: Any) -> list[str]:
    """Differences between a ``ModelMetadataResponse`` and the contract.

    Shapes are compared batch axis first: Triton reports it as -1 for batching models.
    """
    return _tensor_problems(
        contract.name, "input", contract.inputs, metadata.inputs
    ) + _tensor_problems(contract.name, "output", contract.outputs, metadata.outputs)


def not_ready(model: str) -> str:
    """The mismatch reported for a model that is missing or not ready."""
    return f"{model}: not ready (not loaded, loading or failed)"


def unreachable() -> Health:
    """Health of a server that cannot be reached."""
    return Health(live=False, ready=False, models={c.name: False for c in contracts()})
