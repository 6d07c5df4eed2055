"""The precision gate: a reduced-precision candidate against its FP32 reference.

One gate for every runtime that serves in FP16: the FP16 ONNX twin in onnxruntime (on CPU),
the TensorRT engine and the TorchScript artifact of the ``gpu-torch`` target (on the GPU).
Both sides run on the same inputs (validation-photo crops at the spec's profile shapes, or a
generator's seeded latents and labels) and the candidate passes at a shape when it is finite
(where that is observable), its PSNR reaches the spec's ``fp16_min_psnr_db`` and no uint8
value is further off than ``fp16_max_abs_error_uint8``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from vitrine.spec import ModelSpec

__all__ = ["Candidate", "gate_shapes", "precision_gate"]

Candidate = Callable[[dict[str, npt.NDArray[Any]]], tuple[npt.NDArray[np.uint8], "bool | None"]]


def gate_shapes(spec: ModelSpec, *, max_batch: int | None = None) -> tuple[tuple[str, Any], ...]:
    """The profile's min/opt/max shapes; ``max_batch`` caps the batch (quick CPU checks)."""
    shapes = []
    for label, shape in spec.profile.items():
        if max_batch is not None and shape[0] > max_batch:
            shape = (max_batch, *shape[1:])
        shapes.append((label, tuple(shape)))
    return tuple(shapes)


def precision_gate(
    spec: ModelSpec,
    reference: Any,
    candidate: Candidate,
    shapes: Sequence[tuple[str, tuple[int, ...]]] | None = None,
) -> dict[str, Any]:
    """``candidate`` against the FP32 ``reference`` (its ``run(feeds)``) on validation inputs.

    Passes at a shape when the candidate is finite (where observable), its PSNR reaches
    ``fp16_min_psnr_db`` and no uint8 value is off by more than ``fp16_max_abs_error_uint8``.
    """
    from vitrine.export.parity import compare_uint8, sample_inputs

    policy = spec.precision
    entries = []
    for label, shape in shapes or gate_shapes(spec):
        feeds = sample_inputs(spec, tuple(shape))
        expected, reference_finite = reference.run(feeds)
        if reference_finite is False:  # None: not observable
            raise ValueError(f"{spec.name}: the FP32 reference is not finite at {label}")
        actual, finite = candidate(feeds)
        metrics = compare_uint8(expected, actual) | {"finite": finite}
        psnr = metrics["psnr_db"]
        passed = (
            finite is not False
            and (psnr is None or psnr >= policy.fp16_min_psnr_db)
            and metrics["max_abs_error"] <= policy.fp16_max_abs_error_uint8
        )
        entries.append({"profile": label, "shape": list(shape), **metrics, "passed": passed})
    return {
        "model": spec.name,
        "gates": {
            "fp16_min_psnr_db": policy.fp16_min_psnr_db,
            "fp16_max_abs_error_uint8": policy.fp16_max_abs_error_uint8,
        },
        "shapes": entries,
        "passed": all(entry["passed"] for entry in entries),
    }
