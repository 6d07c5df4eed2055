"""Pipeline decode step: encoded image bytes -> uint8 (B, H, W, 3) pixels.

Copied verbatim as ``<model>/1/model.py``; parameters ``min_side`` / ``max_side`` (required).
The work is :func:`vitrine.imaging.decode_image`.
"""

from __future__ import annotations

import json
from typing import Any

import triton_python_backend_utils as pb_utils

from vitrine.batching import bytes_column, limits_from_parameters, parse_parameters, stack_images
from vitrine.imaging import InvalidImage, decode_image
from vitrine.pipeline import DECODED_OUTPUT, ENCODED_INPUT


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        self.limits = limits_from_parameters(parse_parameters(config))

    def execute(self, requests: list[Any]) -> list[Any]:
        return [self._answer(request) for request in requests]

    def _answer(self, request: Any) -> Any:
        try:
            tensor = pb_utils.get_input_tensor_by_name(request, ENCODED_INPUT)
            if tensor is None:
                raise InvalidImage(f"missing input {ENCODED_INPUT!r}")
            payloads = bytes_column(tensor.as_numpy(), ENCODED_INPUT)
            pixels = stack_images([decode_image(data, self.limits) for data in payloads])
        except InvalidImage as exc:
            return _error(str(exc), pb_utils.TritonError.INVALID_ARG)
        except Exception as exc:  # a bug must fail this request only, not the batch
            return _error(f"decode failed: {exc}", pb_utils.TritonError.INTERNAL)
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(DECODED_OUTPUT, pixels)])


def _error(message: str, code: Any) -> Any:
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))
