"""gpu-torch core model: runs the TorchScript artifact beside this file on the instance's device.

Copied verbatim as ``<model>/1/model.py``; the artifact (``model.pt`` + ``manifest.json``,
:mod:`vitrine.export.torchscript`) lies beside it. A ``KIND_GPU`` instance runs on
``cuda:<device id>``, a ``KIND_CPU`` one on the CPU (``intra_op_threads`` torch threads,
default 0: torch's choice). Parameters: optional ``min_side`` / ``max_side`` (bound every
dynamic axis of every input) and ``labels`` (JSON: each label input's number of labels; an
index outside them would stop a CUDA device, so it is refused first). Names and dtypes come
from the model config, as the artifact takes them. Requests with equal input shapes run as
one batch; the outputs go back to Triton as DLPack tensors, so a CUDA result is handed over
on the GPU without a copy to the host.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import triton_python_backend_utils as pb_utils

from vitrine.batching import (
    checked_requests,
    group_by_shape,
    int_parameter,
    limits_from_parameters,
    parse_parameters,
    request_arrays,
    tensor_configs,
)
from vitrine.export.torchscript import TorchScriptArtifact


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        params = parse_parameters(config)
        self.inputs = tensor_configs(config, "input")
        self.outputs = tensor_configs(config, "output")
        self.limits = limits_from_parameters(params, required=False)
        self.labels: dict[str, int] = json.loads(params.get("labels") or "{}")
        # Inputs arrive read-only and are only read: torch's warning about it is noise.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        if args["model_instance_kind"] == "GPU":
            self.device = torch.device("cuda", int(args["model_instance_device_id"]))
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
            threads = int_parameter(params, "intra_op_threads", 0, minimum=0)
            if threads:
                torch.set_num_threads(threads)
        folder = Path(args["model_repository"]) / args["model_version"]
        self.artifact = TorchScriptArtifact(folder, self.device)

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        problems, valid, arrays = checked_requests(requests, self._inputs)
        for index, problem in problems.items():
            responses[index] = _error(problem, pb_utils.TritonError.INVALID_ARG)

        for group in group_by_shape(arrays):
            indices = [valid[position] for position in group]
            members = [arrays[position] for position in group]
            try:
                batch = [
                    torch.from_numpy(_concatenate([member[k] for member in members])).to(
                        self.device, non_blocking=True
                    )
                    for k in range(len(self.inputs))
                ]
                output = self.artifact(*batch).contiguous()  # NHWC views: DLPack wants C order
                if self.device.type == "cuda":
                    torch.cuda.current_stream(self.device).synchronize()  # before Triton reads it
            except Exception as exc:  # a failed batch answers its requests, the model serves on
                for index in indices:
                    responses[index] = _error(f"torch failed: {exc}", pb_utils.TritonError.INTERNAL)
                continue
            (config,) = self.outputs
            start = 0
            for index, member in zip(indices, members, strict=True):
                rows = output[start : start + len(member[0])]
                start += len(member[0])
                tensor = pb_utils.Tensor.from_dlpack(
                    # torch.utils.dlpack's __all__ leaves out to_dlpack, which it exports.
                    config.name,
                    torch.utils.dlpack.to_dlpack(rows),  # type: ignore[attr-defined]
                )
                responses[index] = pb_utils.InferenceResponse(output_tensors=[tensor])
        return responses

    def _inputs(self, request: Any) -> list[npt.NDArray[Any]]:
        return request_arrays(
            request, pb_utils.get_input_tensor_by_name, self.inputs, self.limits, self.labels
        )


def _concatenate(arrays: list[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    return np.ascontiguousarray(arrays[0] if len(arrays) == 1 else np.concatenate(arrays))


def _error(message: str, code: Any) -> Any:
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))
