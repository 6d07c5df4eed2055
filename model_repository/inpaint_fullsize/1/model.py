"""Pipeline step of an editor: the decoded photo, up to the upload limits, through the core
model in pieces (BLS), and the pieces assembled into the result.

Copied verbatim as ``<model>_fullsize/1/model.py``. Its inputs and output are the core
model's, at the upload limits (``min_side`` / ``max_side`` / ``max_pixels``). Parameters
(``vitrine.export.triton_config.fullsize_config``): ``core_model``, ``output``, ``tiling``,
``tile``, ``margin``, ``blend``, ``thumbnail``, ``scale``, ``core_min_side`` /
``core_max_side``, ``max_batch``, ``mask_input``, ``background_input`` and ``in_flight``
(core calls one photo keeps queued). The planning is :func:`vitrine.tiling.plan_image`.
A photo the core model takes whole is sent whole. Core-model errors come back with their
code (INVALID_ARGUMENT, UNAVAILABLE, ...); the other requests of the batch are served.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from vitrine.batching import (
    check_tensor,
    int_parameter,
    limits_from_parameters,
    parse_parameters,
    tensor_configs,
)
from vitrine.spec import Tiling
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
        self.settings = PlanSettings(
            tiling=Tiling(params["tiling"]),
            tile=int_parameter(params, "tile", minimum=1),
            margin=int_parameter(params, "margin", 0, minimum=0),
            min_side=int_parameter(params, "core_min_side", minimum=1),
            max_side=int_parameter(params, "core_max_side", minimum=1),
            max_batch=int_parameter(params, "max_batch", minimum=1),
            scale=int_parameter(params, "scale", 1, minimum=1),
            image_input=self.inputs[0].name,
            blend=bool(int_parameter(params, "blend", 0, minimum=0)),
            thumbnail=int_parameter(params, "thumbnail", 0, minimum=0),
            mask_input=params.get("mask_input", ""),
            background_input=params.get("background_input", ""),
        )
        self.in_flight = int_parameter(params, "in_flight", 4, minimum=1)

    async def execute(self, requests: list[Any]) -> list[Any]:
        return list(await asyncio.gather(*(self._answer(request) for request in requests)))

    async def _answer(self, request: Any) -> Any:
        try:
            arrays = self._inputs(request)
        except ValueError as exc:
            return _error(str(exc), pb_utils.TritonError.INVALID_ARG)
        image, *rest = arrays
        options = {config.name: array for config, array in zip(self.inputs[1:], rest, strict=True)}
        slots = asyncio.Semaphore(self.in_flight)
        try:
            results = [
                await self._photo(image[i], {k: v[i : i + 1] for k, v in options.items()}, slots)
                for i in range(len(image))
            ]
        except CoreModelError as exc:
            return _error(str(exc), exc.code)
        except Exception as exc:  # a bug must fail this request only, not the batch
            return _error(f"full-size step failed: {exc}", pb_utils.TritonError.INTERNAL)
        output = pb_utils.Tensor(self.output.name, np.stack(results))
        return pb_utils.InferenceResponse(output_tensors=[output])

    def _inputs(self, request: Any) -> list[np.ndarray]:
        arrays = []
        for config in self.inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, config.name)
            if tensor is None:
                raise ValueError(f"missing input {config.name!r}")
            array = tensor.as_numpy()
            problem = check_tensor(array, config, self.limits)
            if problem is not None:
                raise ValueError(problem)
            arrays.append(array)
        if len({len(array) for array in arrays}) > 1:
            raise ValueError("inputs disagree in batch size")
        return arrays

    async def _photo(
        self, image: np.ndarray, options: dict[str, np.ndarray], slots: asyncio.Semaphore
    ) -> np.ndarray:
        plan = plan_image(image, options, self.settings)
        outputs = await asyncio.gather(*(self._call(call, slots) for call in plan.calls))
        return plan.result(outputs)

    async def _call(self, call: Call, slots: asyncio.Semaphore) -> np.ndarray:
        async with slots:
            request = pb_utils.InferenceRequest(
                model_name=self.core_model,
                requested_output_names=[self.output.name],
                inputs=[
                    pb_utils.Tensor(name, np.ascontiguousarray(array))
                    for name, array in call.items()
                ],
            )
            response = await request.async_exec()
        if response.has_error():
            error = response.error()
            raise CoreModelError(error.message(), error.code())
        return pb_utils.get_output_tensor_by_name(response, self.output.name).as_numpy()


def _error(message: str, code: Any) -> Any:
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))
