"""Embedded-target core model: runs the same ``model.onnx`` with onnxruntime on CPU.

Copied verbatim as ``<model>/1/model.py``. Parameters: ``onnx_file`` (default ``model.onnx``,
beside this file), ``intra_op_threads`` / ``inter_op_threads`` (default 0: onnxruntime's
choice), optional ``min_side`` / ``max_side`` (bound every dynamic axis of every input).
Input/output names and dtypes come from the model config; the ONNX graph uses the same names.
Requests with equal input shapes run as one batch and are split back per request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

from vitrine.batching import (
    checked_requests,
    group_by_shape,
    int_parameter,
    is_invalid_argument_error,
    limits_from_parameters,
    parse_parameters,
    request_arrays,
    split_rows,
    tensor_configs,
)


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        params = parse_parameters(config)
        self.inputs = tensor_configs(config, "input")
        self.outputs = tensor_configs(config, "output")
        self.limits = limits_from_parameters(params, required=False)

        path = Path(args["model_repository"]) / args["model_version"]
        path = path / (params.get("onnx_file", "").strip() or "model.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int_parameter(params, "intra_op_threads", 0, minimum=0)
        options.inter_op_num_threads = int_parameter(params, "inter_op_threads", 0, minimum=0)
        # Spinning worker threads steal the cores other instances and steps need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Without the arena, a large batch's buffers go back to the system once it is done:
        # a 25 MP photo's tiles must not leave the core's memory at their peak.
        options.enable_cpu_mem_arena = False
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        graph_inputs = {tensor.name for tensor in self.session.get_inputs()}
        graph_outputs = {tensor.name for tensor in self.session.get_outputs()}
        missing = [t.name for t in self.inputs if t.name not in graph_inputs] + [
            t.name for t in self.outputs if t.name not in graph_outputs
        ]
        if missing:
            raise ValueError(f"{path} has no tensors named {missing}")
        self.output_names = [tensor.name for tensor in self.outputs]

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        problems, valid, arrays = checked_requests(requests, self._inputs)
        for index, problem in problems.items():
            responses[index] = _error(problem, pb_utils.TritonError.INVALID_ARG)

        for group in group_by_shape(arrays):
            indices = [valid[position] for position in group]
            members = [arrays[position] for position in group]
            feed = {
                config.name: _concatenate([member[k] for member in members])
                for k, config in enumerate(self.inputs)
            }
            try:
                results = self.session.run(self.output_names, feed)
                outputs = [
                    np.asarray(result).astype(config.dtype, copy=False)
                    for result, config in zip(results, self.outputs, strict=True)
                ]
                pieces = split_rows(outputs, [len(member[0]) for member in members])
            except Exception as exc:
                code = (
                    pb_utils.TritonError.INVALID_ARG
                    if is_invalid_argument_error(exc)
                    else pb_utils.TritonError.INTERNAL
                )
                for index in indices:
                    responses[index] = _error(f"onnxruntime failed: {exc}", code)
                continue
            for index, piece in zip(indices, pieces, strict=True):
                tensors = [
                    pb_utils.Tensor(config.name, np.ascontiguousarray(array))
                    for config, array in zip(self.outputs, piece, strict=True)
                ]
                responses[index] = pb_utils.InferenceResponse(output_tensors=tensors)
        return responses

    def _inputs(self, request: Any) -> list[npt.NDArray[Any]]:
        return request_arrays(request, pb_utils.get_input_tensor_by_name, self.inputs, self.limits)


def _concatenate(arrays: list[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _error(message: str, code: Any) -> Any:
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))
