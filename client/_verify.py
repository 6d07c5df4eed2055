"""The served-model contract derived from the specs, checked by ``verify()`` and ``health()``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vitrine.pipeline import (
    GENERATED_OUTPUTS,
    PIPELINE_OUTPUTS,
    generator_pipeline_inputs,
    pipeline_inputs,
)
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec, TensorSpec

from ._results import Health

__all__ = ["ModelContract", "contracts", "metadata_problems", "not_ready", "unreachable"]


@dataclass(frozen=True)
class ModelContract:
    """What one served model must expose: tensor dims after the batch axis of a ``batched``
    model, full shapes of one that is not (a generator's pipeline)."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batched: bool = True


def _pipeline(spec: ModelSpec) -> ModelContract:
    if spec.is_generator:
        inputs = generator_pipeline_inputs(spec)
        return ModelContract(spec.pipeline, inputs, GENERATED_OUTPUTS, batched=False)
    return ModelContract(spec.pipeline, pipeline_inputs(spec), PIPELINE_OUTPUTS)


def contracts() -> tuple[ModelContract, ...]:
    """Every spec's pipeline and core model, in registry order."""
    return tuple(
        contract
        for spec in SPECS.values()
        for contract in (_pipeline(spec), ModelContract(spec.core_model, spec.inputs, spec.outputs))
    )


def _tensor_problems(
    model: str, kind: str, expected: Iterable[TensorSpec], served: Iterable[Any], batched: bool
) -> list[str]:
    found = {str(t.name): (str(t.datatype), tuple(int(d) for d in t.shape)) for t in served}
    problems = []
    for tensor in expected:
        shape = (-1, *tensor.dims) if batched else tensor.dims
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
    inputs = _tensor_problems(
        contract.name, "input", contract.inputs, metadata.inputs, contract.batched
    )
    outputs = _tensor_problems(
        contract.name, "output", contract.outputs, metadata.outputs, contract.batched
    )
    return inputs + outputs


def not_ready(model: str) -> str:
    """The mismatch reported for a model that is missing or not ready."""
    return f"{model}: not ready (not loaded, loading or failed)"


def unreachable() -> Health:
    """Health of a server that cannot be reached."""
    return Health(live=False, ready=False, models={c.name: False for c in contracts()})
