"""Pipeline step of an editor: the decoded photo, up to the upload limits, through the core
model in pieces (BLS), and the pieces assembled into the result.

Copied verbatim as ``<model>_fullsize/1/model.py``. Its inputs and output are the core
model's, at the upload limits (``min_side`` / ``max_side`` / ``max_pixels``). Parameters
(``vitrine.export.triton_config.fullsize_config``): ``core_model``, ``in_flight`` (core
calls one photo keeps in flight) and the :class:`vitrine.tiling.PlanSettings` fields. The
planning is :func:`vitrine.tiling.plan_image`.
A photo the core model takes whole is sent whole. Core-model errors come back with their
code (INVALID_ARGUMENT, UNAVAILABLE, ...); the other requests of the batch are served.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import triton_python_backend_utils as pb_utils

from vitrine.batching import (
    int_parameter,
    limits_from_parameters,
    parse_parameters,
    request_arrays,
    tensor_configs,
)
from vitrine.tiling import Call, PlanSettings, plan_image


class CoreModelError(Exception):
    """The core model refused a call; ``code`` is its Triton error code."""

    def __init__(self, message: str, code: Any) -> None:
        super().__init__(message)
        self.code = code


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        params = parse_parameters(config)
        self.inputs = tensor_configs(config, "input")
        (self.output,) = tensor_configs(config, "output")
        self.limits = limits_from_parameters(params)
        self.core_model = params["core_model"]
        self.settings = PlanSettings.from_parameters(params)
        self.in_flight = int_parameter(params, "in_flight", 4, minimum=1)

    def execute(self, requests: list[Any]) -> list[Any]:
        return [self._answer(request) for request in requests]

    def _answer(self, request: Any) -> Any:
        try:
            arrays = self._inputs(request)
        except ValueError as exc:
            return _error(str(exc), pb_utils.TritonError.INVALID_ARG)
        image, *rest = arrays
        options = {config.name: array for config, array in zip(self.inputs[1:], rest, strict=True)}
        try:
            results = [
                self._photo(image[i], {k: v[i : i + 1] for k, v in options.items()})
                for i in range(len(image))
            ]
        except CoreModelError as exc:
            return _error(str(exc), exc.code)
        except Exception as exc:  # a bug must fail this request only, not the batch
            return _error(f"full-size step failed: {exc}", pb_utils.TritonError.INTERNAL)
        output = pb_utils.Tensor(self.output.name, np.stack(results))
        return pb_utils.InferenceResponse(output_tensors=[output])

    def _inputs(self, request: Any) -> list[npt.NDArray[Any]]:
        return request_arrays(request, pb_utils.get_input_tensor_by_name, self.inputs, self.limits)

    def _photo(
        self, image: npt.NDArray[Any], options: dict[str, npt.NDArray[Any]]
    ) -> npt.NDArray[Any]:
        plan = plan_image(image, options, self.settings)
        if len(plan.calls) == 1:
            return plan.result([self._call(plan.calls[0])])
        with ThreadPoolExecutor(self.in_flight) as pool:
            return plan.result(list(pool.map(self._call, plan.calls)))

    def _call(self, call: Call) -> npt.NDArray[Any]:
        request = pb_utils.InferenceRequest(
            model_name=self.core_model,
            requested_output_names=[self.output.name],
            inputs=[
                pb_utils.Tensor(name, np.ascontiguousarray(array)) for name, array in call.items()
            ],
            # A core model on the GPU answers in GPU memory, which as_numpy cannot read.
            preferred_memory=pb_utils.PreferredMemory(pb_utils.TRITONSERVER_MEMORY_CPU, 0),
        )
        response = request.exec()
        if response.has_error():
            error = response.error()
            raise CoreModelError(error.message(), error.code())
        output: npt.NDArray[Any] = pb_utils.get_output_tensor_by_name(
            response, self.output.name
        ).as_numpy()
        return output


def _error(message: str, code: Any) -> Any:
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))
