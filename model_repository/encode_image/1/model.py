"""Pipeline encode step: uint8 (B, H, W, C) RGB or RGBA pixels + format + quality -> bytes.

Copied verbatim as ``encode_image/1/model.py``; reads no parameters. The work is
:func:`vitrine.imaging.encode_image`.
"""

from __future__ import annotations

from typing import Any

import numpy.typing as npt
import triton_python_backend_utils as pb_utils

from vitrine.batching import object_column, text_column
from vitrine.imaging import InvalidImage, encode_image
from vitrine.pipeline import DECODED_OUTPUT, ENCODED_OUTPUT, FORMAT_INPUT, QUALITY_INPUT


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        pass  # no settings: format and quality travel with each request

    def execute(self, requests: list[Any]) -> list[Any]:
        return [self._answer(request) for request in requests]

    def _answer(self, request: Any) -> Any:
        try:
            pixels = _input(request, DECODED_OUTPUT)
            formats = text_column(_input(request, FORMAT_INPUT), FORMAT_INPUT)
            qualities = _input(request, QUALITY_INPUT)
            if pixels.ndim != 4:
                raise InvalidImage(
                    f"input {DECODED_OUTPUT!r} must have shape (B, H, W, C), "
                    f"got {tuple(pixels.shape)}"
                )
            if qualities.ndim != 2 or qualities.shape[1] != 1:
                raise InvalidImage(
                    f"input {QUALITY_INPUT!r} must have shape (B, 1), got {tuple(qualities.shape)}"
                )
            if not len(pixels) == len(formats) == len(qualities):
                raise InvalidImage("inputs disagree in batch size")
            encoded = [
                encode_image(image, fmt, int(quality))
                for image, fmt, quality in zip(pixels, formats, qualities[:, 0], strict=True)
            ]
        except InvalidImage as exc:
            return _error(str(exc), pb_utils.TritonError.INVALID_ARG)
        except Exception as exc:  # a bug must fail this request only, not the batch
            return _error(f"encode failed: {exc}", pb_utils.TritonError.INTERNAL)
        output = pb_utils.Tensor(ENCODED_OUTPUT, object_column(encoded))
        return pb_utils.InferenceResponse(output_tensors=[output])


def _input(request: Any, name: str) -> npt.NDArray[Any]:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        raise InvalidImage(f"missing input {name!r}")
    array: npt.NDArray[Any] = tensor.as_numpy()
    return array


def _error(message: str, code: Any) -> Any:
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))
