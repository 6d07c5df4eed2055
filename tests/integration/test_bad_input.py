"""Bad input gets INVALID_ARGUMENT with a message, and the server serves the next request."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from PIL import Image
from tritonclient.utils import InferenceServerException

from vitrine.catalog import SPECS
from vitrine.client import InvalidRequest, VitrineClient
from vitrine.pipeline import ENCODED_INPUT, ENCODED_OUTPUT, FORMAT_INPUT, QUALITY_INPUT
from vitrine.spec import ModelSpec

pytestmark = pytest.mark.integration

SPEC_IDS = {"ids": lambda spec: spec.name}


def _png(width: int, height: int, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` (a decompression bomb)."""
    data = bytearray(_png(8, 8))
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = header[4:]
    data[29:33] = struct.pack(">I", zlib.crc32(header))
    return bytes(data)


def _pipeline_request(
    triton: grpcclient.InferenceServerClient,
    spec: ModelSpec,
    payload: bytes,
    fmt: bytes = b"png",
    quality: int = 90,
) -> np.ndarray:
    tensors = {
        ENCODED_INPUT: ("BYTES", np.array([[payload]], dtype=object)),
        FORMAT_INPUT: ("BYTES", np.array([[fmt]], dtype=object)),
        QUALITY_INPUT: ("INT32", np.array([[quality]], dtype=np.int32)),
    }
    inputs = []
    for name, (dtype, value) in tensors.items():
        tensor = grpcclient.InferInput(name, list(value.shape), dtype)
        tensor.set_data_from_numpy(value)
        inputs.append(tensor)
    result = triton.infer(spec.pipeline, inputs, client_timeout=60)
    return result.as_numpy(ENCODED_OUTPUT)


def _core_request(
    triton: grpcclient.InferenceServerClient, spec: ModelSpec, array: np.ndarray, dtype: str
) -> None:
    tensor = grpcclient.InferInput(spec.input.name, list(array.shape), dtype)
    tensor.set_data_from_numpy(array)
    triton.infer(spec.core_model, [tensor], client_timeout=60)


def _expect_invalid(call: Callable[[], object], message: str) -> None:
    with pytest.raises(InferenceServerException) as caught:
        call()
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT", caught.value
    assert message in str(caught.value.message()).lower(), caught.value.message()


def _still_serves(triton: grpcclient.InferenceServerClient, spec: ModelSpec) -> None:
    width, height = spec.limits.min_side + 8, spec.limits.min_side
    encoded = _pipeline_request(triton, spec, _png(width, height))[0, 0]
    assert Image.open(io.BytesIO(encoded)).size == (
        width * spec.output_scale,
        height * spec.output_scale,
    )


PIPELINE_CASES = {
    "corrupt": (b"\x89PNG\r\n\x1a\n garbage", {}, "decode"),
    "truncated": (_png(64, 64)[:60], {}, "decode"),
    "empty": (b"", {}, "empty"),
    "gif": (_png(16, 16, "GIF"), {}, "gif"),
    "bomb": (_png_claiming(40000, 40000), {}, "too large"),
    "too small": (_png(4, 4), {}, "4x4"),
    "bad format": (_png(32, 32), {"fmt": b"bmp"}, "format"),
    "bad quality": (_png(32, 32), {"quality": 0}, "quality"),
}


@pytest.mark.parametrize("spec", SPECS.values(), **SPEC_IDS)
@pytest.mark.parametrize("case", PIPELINE_CASES)
def test_pipeline_rejects_bad_input(
    triton: grpcclient.InferenceServerClient, spec: ModelSpec, case: str
) -> None:
    payload, options, message = PIPELINE_CASES[case]
    _expect_invalid(lambda: _pipeline_request(triton, spec, payload, **options), message)
    _still_serves(triton, spec)


def test_oversized_image_names_the_limit(triton: grpcclient.InferenceServerClient) -> None:
    spec = SPECS["superres_x4"]
    side = spec.limits.max_side + 1
    _expect_invalid(
        lambda: _pipeline_request(triton, spec, _png(side, 16)), str(spec.limits.max_side)
    )
    _still_serves(triton, spec)


@pytest.mark.parametrize("spec", SPECS.values(), **SPEC_IDS)
def test_core_model_rejects_wrong_dtype_rank_and_size(
    triton: grpcclient.InferenceServerClient, spec: ModelSpec
) -> None:
    image = np.zeros((1, 32, 32, 3), np.uint8)
    _expect_invalid(
        lambda: _core_request(triton, spec, image.astype(np.float32), "FP32"), "data-type"
    )
    _expect_invalid(lambda: _core_request(triton, spec, image[..., 0], "UINT8"), "shape")
    _expect_invalid(
        lambda: _core_request(triton, spec, np.zeros((1, 16, 16, 4), np.uint8), "UINT8"), "shape"
    )
    tiny = np.zeros((1, 2, 2, 3), np.uint8)
    _expect_invalid(lambda: _core_request(triton, spec, tiny, "UINT8"), str(spec.limits.min_side))
    _core_request(triton, spec, image, "UINT8")
    _still_serves(triton, spec)


def test_client_raises_invalid_request_for_server_rejections(client: VitrineClient) -> None:
    with pytest.raises(InvalidRequest, match="too large") as caught:
        client.super_resolve(_png_claiming(40000, 40000), scale=2)
    assert caught.value.status == "INVALID_ARGUMENT"
    assert client.super_resolve(_png(10, 10), scale=2).image.size == (20, 20)
