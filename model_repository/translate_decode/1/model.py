"""Pipeline decode step: image bytes (+ options) -> uint8 (B, H, W, 3) pixels (+ options).

Copied verbatim as ``<model>/1/model.py``; parameters ``min_side`` / ``max_side`` (required)
and ``options`` (the spec's request options, :func:`vitrine.options.options_parameter`).
The work is :func:`vitrine.imaging.decode_image` and :func:`vitrine.options.parse_option`.
"""

from __future__ import annotations

import json
from typing import Any

import triton_python_backend_utils as pb_utils

from vitrine.batching import bytes_column, limits_from_parameters, parse_parameters, stack_images
from vitrine.imaging import InvalidImage, decode_image
from vitrine.options import options_from_parameter, parse_option_column
from vitrine.pipeline import DECODED_OUTPUT, ENCODED_INPUT


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        params = parse_parameters(config)
        self.limits = limits_from_parameters(params)
        self.options = options_from_parameter(params.get("options", ""))

    def execute(self, requests: list[Any]) -> list[Any]:
        return [self._answer(request) for request in requests]

    def _answer(self, request: Any) -> Any:
        try:
            payloads = bytes_column(_input(request, ENCODED_INPUT), ENCODED_INPUT)
            pixels = stack_images([decode_image(data, self.limits) for data in payloads])
            outputs = [pb_utils.Tensor(DECODED_OUTPUT, pixels)]
            for option in self.options:
                value = parse_option_column(option, _input(request, option.name), pixels)
                outputs.append(pb_utils.Tensor(option.decoded.name, value))
        except InvalidImage as exc:
            return _error(str(exc), pb_utils.TritonError.INVALID_ARG)
        except Exception as exc:  # a bug must fail this request only, not the batch
            return _error(f"decode failed: {exc}", pb_utils.TritonError.INTERNAL)
        return pb_utils.InferenceResponse(output_tensors=outputs)


def _input(request: Any, name: str) -> Any:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        raise InvalidImage(f"missing input {name!r}")
    return tensor.as_numpy()


def _error(message: str, code: Any) -> Any:
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))
