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

from vitrine.client import InvalidRequest, VitrineClient
from vitrine.options import core_value, encode_mask, example_options, wire_value
from vitrine.pipeline import ENCODED_INPUT, ENCODED_OUTPUT, FORMAT_INPUT, QUALITY_INPUT
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec, OptionKind

pytestmark = pytest.mark.integration

SPEC_IDS = {"ids": lambda spec: spec.name}
EDITORS = [spec for spec in SPECS.values() if not spec.is_generator]  # generators: test_generators


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


def _option_wires(spec: ModelSpec, payload: bytes) -> dict[str, tuple[str, np.ndarray]]:
    """Valid wire values of ``spec``'s options for the image in ``payload`` (when decodable)."""
    try:
        width, height = Image.open(io.BytesIO(payload)).size
    except Exception:
        width = height = spec.limits.min_side
    values = example_options(spec, height, width)
    return {
        o.name: (o.wire.dtype, np.array([[wire_value(o, values[o.name])]], o.wire.numpy_dtype))
        for o in spec.options
    }


def _pipeline_request(
    triton: grpcclient.InferenceServerClient,
    spec: ModelSpec,
    payload: bytes,
    fmt: bytes = b"png",
    quality: int = 90,
    option: tuple[str, object] | None = None,
) -> np.ndarray:
    """One pipeline request; ``option`` = (name, wire element) replaces that option's value."""
    options = _option_wires(spec, payload)
    if option is not None:
        name, value = option
        dtype, example = options[name]
        options[name] = (dtype, np.array([[value]], dtype=example.dtype))
    tensors = {
        ENCODED_INPUT: ("BYTES", np.array([[payload]], dtype=object)),
        **options,
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
    tensors = [tensor]
    if array.ndim >= 3:  # options sized for the image (a bad image keeps them valid)
        values = example_options(spec, *array.shape[1:3])
        for option in spec.options:
            value = core_value(option, values[option.name], np.zeros(array.shape[:3] + (3,)))
            tensors.append(
                grpcclient.InferInput(option.core.name, list(value.shape), option.core.dtype)
            )
            tensors[-1].set_data_from_numpy(value)
    triton.infer(spec.core_model, tensors, client_timeout=60)


def _expect_invalid(call: Callable[[], object], message: str) -> None:
    with pytest.raises(InferenceServerException) as caught:
        call()
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT", caught.value
    assert message in str(caught.value.message()).lower(), caught.value.message()


def _still_serves(triton: grpcclient.InferenceServerClient, spec: ModelSpec) -> None:
    width, height = min(spec.limits.min_side + 8, spec.limits.max_side), spec.limits.min_side
    encoded = _pipeline_request(triton, spec, _png(width, height))[0, 0]
    assert Image.open(io.BytesIO(encoded)).size == (
        width * spec.output_scale,
        height * spec.output_scale,
    )


PIPELINE_CASES = {
    "corrupt": (b"\x89PNG\r\n\x1a\n garbage", {}, "decode"),
    "truncated": (_png(32, 32)[:60], {}, "decode"),  # a size every editor takes
    "empty": (b"", {}, "empty"),
    "gif": (_png(16, 16, "GIF"), {}, "gif"),
    "bomb": (_png_claiming(40000, 40000), {}, "exceeds the limit"),
    "too small": (_png(4, 4), {}, "4x4"),
    "bad format": (_png(32, 32), {"fmt": b"bmp"}, "format"),
    "bad quality": (_png(32, 32), {"quality": 0}, "quality"),
}


@pytest.mark.parametrize("spec", EDITORS, **SPEC_IDS)
@pytest.mark.parametrize("case", PIPELINE_CASES)
def test_pipeline_rejects_bad_input(
    triton: grpcclient.InferenceServerClient, spec: ModelSpec, case: str
) -> None:
    payload, options, message = PIPELINE_CASES[case]
    _expect_invalid(lambda: _pipeline_request(triton, spec, payload, **options), message)
    _still_serves(triton, spec)


def _mask_png(width: int, height: int, fill: int = 255, mode: str = "L") -> bytes:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[: height // 2, : width // 2] = fill
    if mode == "L":
        return encode_mask(mask)
    buffer = io.BytesIO()
    Image.fromarray(mask).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


OPTION_CASES: dict[OptionKind, dict[str, tuple[object, str]]] = {
    OptionKind.STRENGTH: {
        "above one": (1.5, "within [0, 1]"),
        "negative": (-0.25, "within [0, 1]"),
        "nan": (float("nan"), "within [0, 1]"),
    },
    OptionKind.MASK: {
        "wrong size": (_mask_png(40, 48), "mask is 40x48 but the image is"),
        "empty": (encode_mask(np.zeros((32, 40), np.uint8)), "empty"),
        "all ones": (encode_mask(np.full((32, 40), 255, np.uint8)), "whole image"),
        "non-binary": (_mask_png(40, 32, fill=128), "binary"),
        "rgb": (_mask_png(40, 32, mode="RGB"), "greyscale"),
        "garbage": (b"not a png", "could not decode mask"),
    },
    OptionKind.BACKGROUND: {
        "unknown name": (b"purple", "background must be"),
        "short hex": (b"#12345", "background must be"),
    },
    OptionKind.IMAGE: {
        "wrong size": (_png(32, 24), "is 32x24 but the image is 32x32"),
        "garbage": (b"not an image", "could not decode"),
        "empty": (b"", "empty"),
    },
    OptionKind.LABEL: {
        "unknown": (b"hat", "must be one of"),
        "empty": (b"", "must be one of"),
    },
    OptionKind.SEED: {
        "negative": (-1, "must be an integer in [0, 4294967295]"),
        "too large": (2**32, "must be an integer in [0, 4294967295]"),
    },
}
OPTION_PARAMS = [
    pytest.param(spec, option.name, case, id=f"{spec.name}-{option.name}-{case}")
    for spec in SPECS.values()
    for option in spec.options
    for case in OPTION_CASES[option.kind]
]


@pytest.mark.parametrize(("spec", "option_name", "case"), OPTION_PARAMS)
def test_pipeline_rejects_bad_options(
    triton: grpcclient.InferenceServerClient, spec: ModelSpec, option_name: str, case: str
) -> None:
    (option,) = [o for o in spec.options if o.name == option_name]
    value, message = OPTION_CASES[option.kind][case]
    width = min(max(40, spec.limits.min_side), spec.limits.max_side)
    height = max(32, spec.limits.min_side)
    payload = _png(width, height)
    _expect_invalid(
        lambda: _pipeline_request(triton, spec, payload, option=(option.name, value)),
        message.lower(),
    )
    _still_serves(triton, spec)


def test_oversized_image_names_the_limit(triton: grpcclient.InferenceServerClient) -> None:
    spec = SPECS["superres_x4"]
    side = spec.limits.max_side + 1
    _expect_invalid(
        lambda: _pipeline_request(triton, spec, _png(side, 16)), str(spec.limits.max_side)
    )
    _still_serves(triton, spec)


@pytest.mark.parametrize("spec", EDITORS, **SPEC_IDS)
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
    with pytest.raises(InvalidRequest, match="exceeds the limit") as caught:
        client.super_resolve(_png_claiming(40000, 40000), scale=2)
    assert caught.value.status == "INVALID_ARGUMENT"
    assert client.super_resolve(_png(10, 10), scale=2).image.size == (20, 20)


@pytest.mark.parametrize(
    "spec",
    [s for s in SPECS.values() if any(o.kind is OptionKind.BACKGROUND for o in s.options)],
    **SPEC_IDS,
)
def test_transparent_result_refuses_jpeg(
    triton: grpcclient.InferenceServerClient, spec: ModelSpec
) -> None:
    from vitrine.training.background import eval_composites

    (option,) = [o for o in spec.options if o.kind is OptionKind.BACKGROUND]
    buffer = io.BytesIO()
    Image.fromarray(eval_composites()[0].image).save(buffer, format="PNG")  # a product photo
    payload = buffer.getvalue()
    _expect_invalid(
        lambda: _pipeline_request(
            triton, spec, payload, fmt=b"jpeg", option=(option.name, b"transparent")
        ),
        "jpeg cannot keep transparency",
    )
    encoded = _pipeline_request(triton, spec, payload, option=(option.name, b"transparent"))
    assert Image.open(io.BytesIO(encoded[0, 0])).mode == "RGBA"
    _still_serves(triton, spec)
