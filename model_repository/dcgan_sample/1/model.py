"""Generator pipeline's sample step: request -> one row per image for the core and encode.

Copied verbatim as ``<model>/1/model.py``. Parameters: the spec's conditioning
(:func:`vitrine.sampling.conditioning_parameters`). Not batched: one request asks for
``count`` images, and the outputs carry them as ``count`` rows (the latents and labels for
the generator, the output format and quality repeated for the encode step). The work is
:func:`vitrine.sampling.sample`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt
import triton_python_backend_utils as pb_utils

from vitrine.batching import parse_parameters, text_column
from vitrine.imaging import InvalidImage
from vitrine.sampling import InvalidGeneration, conditioning_from_parameters, sample


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        self.conditioning = conditioning_from_parameters(parse_parameters(config))
        self.outputs = [output["name"] for output in config["output"]]

    def execute(self, requests: list[Any]) -> list[Any]:
        return [self._answer(request) for request in requests]

    def _answer(self, request: Any) -> Any:
        try:
            category, colour, fmt = (
                text_column(_input(request, name).reshape(1, 1), name)[0]
                for name in ("category", "color", "format")
            )
            mixing = self.conditioning.style_mixing
            core_inputs = sample(
                self.conditioning,
                seed=_scalar(request, "seed"),
                count=_scalar(request, "count"),
                category=category,
                colour=colour,
                truncation=_scalar(request, "truncation"),
                mix_seed=_scalar(request, "mix_seed") if mixing else None,
            )
            rows = len(core_inputs[0])
            formats = np.full((rows, 1), fmt.encode(), dtype=np.object_)
            qualities = np.full((rows, 1), _scalar(request, "quality"), dtype=np.int32)
            values = (*core_inputs, formats, qualities)
            outputs = [
                pb_utils.Tensor(name, value)
                for name, value in zip(self.outputs, values, strict=True)
            ]
        except (InvalidGeneration, InvalidImage) as exc:
            return _error(str(exc), pb_utils.TritonError.INVALID_ARG)
        except Exception as exc:  # a bug must fail this request only
            return _error(f"sample failed: {exc}", pb_utils.TritonError.INTERNAL)
        return pb_utils.InferenceResponse(output_tensors=outputs)


def _input(request: Any, name: str) -> npt.NDArray[Any]:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        raise InvalidGeneration(f"missing input {name!r}")
    array: npt.NDArray[Any] = tensor.as_numpy()
    if array.size != 1:
        raise InvalidGeneration(f"input {name!r} must hold one value, got shape {array.shape}")
    return array


def _scalar(request: Any, name: str) -> Any:
    return _input(request, name).reshape(-1)[0].item()


def _error(message: str, code: Any) -> Any:
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))
