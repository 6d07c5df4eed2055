"""The python-backend models: their pure helpers, and the model.py files on a fake pb_utils."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from PIL import Image

from vitrine.batching import (
    TensorConfig,
    bytes_column,
    check_tensor,
    checked_requests,
    group_by_shape,
    int_parameter,
    is_invalid_argument_error,
    limits_from_parameters,
    object_column,
    parse_parameters,
    request_arrays,
    split_rows,
    stack_images,
    tensor_configs,
    text_column,
)
from vitrine.imaging import InvalidImage
from vitrine.pipeline import (
    DECODED_OUTPUT,
    ENCODED_INPUT,
    ENCODED_OUTPUT,
    FORMAT_INPUT,
    QUALITY_INPUT,
)
from vitrine.spec import ImageLimits

PYTHON_MODELS = Path(__file__).resolve().parents[2] / "export" / "python_models"
IMAGE = TensorConfig(name="image", dtype=np.dtype(np.uint8), dims=(-1, -1, 3))


# -- parameters ------------------------------------------------------------------------------
def test_parse_parameters() -> None:
    config = {"parameters": {"min_side": {"string_value": "8"}, "onnx_file": {"string_value": ""}}}
    assert parse_parameters(config) == {"min_side": "8", "onnx_file": ""}
    assert parse_parameters({}) == {}


def test_int_parameter() -> None:
    params = {"a": " 4 ", "b": "x", "c": "-1"}
    assert int_parameter(params, "a") == 4
    assert int_parameter(params, "missing", 7) == 7
    with pytest.raises(ValueError, match="'missing' is required"):
        int_parameter(params, "missing")
    with pytest.raises(ValueError, match="'b' must be an integer"):
        int_parameter(params, "b")
    with pytest.raises(ValueError, match="'c' must be >= 0"):
        int_parameter(params, "c", minimum=0)


def test_limits_from_parameters() -> None:
    assert limits_from_parameters({"min_side": "8", "max_side": "512"}) == ImageLimits(8, 512)
    assert limits_from_parameters({}, required=False) is None
    with pytest.raises(ValueError, match="'min_side' is required"):
        limits_from_parameters({})
    with pytest.raises(ValueError, match="'max_side' is required"):
        limits_from_parameters({"min_side": "8"}, required=False)
    with pytest.raises(ValueError, match="exceeds"):
        limits_from_parameters({"min_side": "9", "max_side": "8"})


def test_tensor_configs_accept_string_and_int_dims() -> None:
    config = {
        "input": [{"name": "image", "data_type": "TYPE_UINT8", "dims": ["-1", "-1", "3"]}],
        "output": [{"name": "result", "data_type": "TYPE_FP32", "dims": [-1, 3]}],
    }
    assert tensor_configs(config, "input") == (IMAGE,)
    (output,) = tensor_configs(config, "output")
    assert output.dtype == np.float32 and output.dims == (-1, 3)
    with pytest.raises(ValueError, match="unsupported data type"):
        tensor_configs({"input": [{"name": "x", "data_type": "TYPE_NOPE"}]}, "input")


# -- tensor checks and grouping --------------------------------------------------------------
def test_check_tensor() -> None:
    limits = ImageLimits(8, 64)
    assert check_tensor(np.zeros((2, 16, 32, 3), np.uint8), IMAGE, limits) is None
    assert "must be uint8" in str(check_tensor(np.zeros((1, 16, 16, 3), np.float32), IMAGE))
    assert "shape (B, ?, ?, 3)" in str(check_tensor(np.zeros((1, 16, 16, 4), np.uint8), IMAGE))
    assert "shape" in str(check_tensor(np.zeros((16, 16, 3), np.uint8), IMAGE))
    message = check_tensor(np.zeros((1, 4, 16, 3), np.uint8), IMAGE, limits)
    assert message == "input 'image' has sides 4x16; each must be within [8, 64]"
    assert check_tensor(np.zeros((1, 4, 16, 3), np.uint8), IMAGE) is None  # no limits


class _Tensor:
    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def as_numpy(self) -> np.ndarray:
        return self.array


def _get_tensor(request: dict[str, np.ndarray], name: str) -> _Tensor | None:
    return _Tensor(request[name]) if name in request else None


LABEL = TensorConfig("category", np.dtype(np.int32), (1,))


def test_request_arrays_checks_each_input_and_the_batch() -> None:
    image, label = np.zeros((2, 16, 16, 3), np.uint8), np.array([[0], [2]], np.int32)
    request = {"image": image, "category": label}
    arrays = request_arrays(
        request, _get_tensor, [IMAGE, LABEL], ImageLimits(8, 64), {"category": 3}
    )
    assert len(arrays) == 2 and arrays[0] is image and arrays[1] is label
    problems = {
        "missing input 'category'": {"image": image},
        "input 'image' has sides 4x16; each must be within [8, 64]": {
            "image": np.zeros((2, 4, 16, 3), np.uint8),
            "category": label,
        },
        "input 'category' must hold label indices in [0, 2)": request,
        "inputs disagree in batch size": {"image": image, "category": label[:1]},
    }
    for problem, bad in problems.items():
        with pytest.raises(ValueError, match=re.escape(problem)):
            request_arrays(bad, _get_tensor, [IMAGE, LABEL], ImageLimits(8, 64), {"category": 2})


def test_checked_requests_separates_the_bad_ones_by_index() -> None:
    def inputs(request: int) -> list[np.ndarray]:
        if request % 2:
            raise ValueError(f"odd {request}")
        return [np.full((1, 2), request)]

    problems, valid, arrays = checked_requests([0, 1, 2, 3], inputs)
    assert problems == {1: "odd 1", 3: "odd 3"}
    assert valid == [0, 2]
    assert [int(batch[0][0, 0]) for batch in arrays] == [0, 2]


def test_group_by_shape_keeps_order_and_ignores_batch() -> None:
    def request(batch: int, height: int, width: int) -> list[np.ndarray]:
        return [np.zeros((batch, height, width, 3), np.uint8)]

    requests = [request(1, 8, 8), request(2, 16, 8), request(3, 8, 8), request(1, 16, 8)]
    assert group_by_shape(requests) == [[0, 2], [1, 3]]
    assert group_by_shape([]) == []
    mixed = [[np.zeros((1, 8), np.uint8)], [np.zeros((1, 8), np.int32)]]
    assert group_by_shape(mixed) == [[0], [1]]


def test_split_rows() -> None:
    first = np.arange(6).reshape(6, 1)
    second = np.arange(12).reshape(6, 2)
    pieces = split_rows([first, second], [1, 3, 2])
    assert [piece[0][:, 0].tolist() for piece in pieces] == [[0], [1, 2, 3], [4, 5]]
    assert pieces[2][1].tolist() == [[8, 9], [10, 11]]
    with pytest.raises(ValueError, match="expected 5"):
        split_rows([first], [2, 3])


def test_stack_images() -> None:
    images = [np.zeros((8, 10, 3), np.uint8), np.ones((8, 10, 3), np.uint8)]
    assert stack_images(images).shape == (2, 8, 10, 3)
    with pytest.raises(InvalidImage, match="same size, got 10x8, 8x10"):
        stack_images([images[0], np.zeros((10, 8, 3), np.uint8)])
    with pytest.raises(InvalidImage, match="no images"):
        stack_images([])


def test_bytes_and_text_columns() -> None:
    column = object_column([b"png", b"JPEG "])
    assert column.shape == (2, 1) and column.dtype == np.object_
    assert bytes_column(column, "format") == [b"png", b"JPEG "]
    assert text_column(column, "format") == ["png", "JPEG"]
    with pytest.raises(InvalidImage, match=r"shape \(B, 1\)"):
        bytes_column(np.array([b"a"], dtype=np.object_), "format")
    with pytest.raises(InvalidImage, match="UTF-8"):
        text_column(object_column([b"\xff\xfe"]), "format")
    with pytest.raises(InvalidImage, match="must hold bytes"):
        bytes_column(np.array([[3]], dtype=np.object_), "format")


def test_is_invalid_argument_error() -> None:
    class InvalidArgument(Exception):
        pass

    assert is_invalid_argument_error(InvalidArgument("bad"))
    assert is_invalid_argument_error(RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : x"))
    assert not is_invalid_argument_error(RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION"))


# -- model.py files on a fake triton_python_backend_utils ------------------------------------
class FakeTensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self._name = name
        self._array = array

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array


class FakeError:
    INTERNAL = 13
    INVALID_ARG = 3

    def __init__(self, message: str, code: int = INTERNAL) -> None:
        self._message = message
        self._code = code

    def message(self) -> str:
        return self._message

    def code(self) -> int:
        return self._code


class FakeResponse:
    def __init__(
        self, output_tensors: list[FakeTensor] | None = None, error: FakeError | None = None
    ) -> None:
        self.outputs = {tensor.name(): tensor.as_numpy() for tensor in output_tensors or []}
        self.error = error


class FakeRequest:
    def __init__(self, **inputs: np.ndarray) -> None:
        self.inputs = {name: FakeTensor(name, array) for name, array in inputs.items()}


@pytest.fixture
def load_model(monkeypatch: pytest.MonkeyPatch) -> Any:
    fake = types.ModuleType("triton_python_backend_utils")
    fake.Tensor = FakeTensor  # type: ignore[attr-defined]
    fake.TritonError = FakeError  # type: ignore[attr-defined]
    fake.InferenceResponse = FakeResponse  # type: ignore[attr-defined]
    fake.get_input_tensor_by_name = (  # type: ignore[attr-defined]
        lambda request, name: request.inputs.get(name)
    )
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", fake)

    def load(source: str, args: dict[str, Any]) -> Any:
        path = PYTHON_MODELS / source
        spec = importlib.util.spec_from_file_location(f"model_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.TritonPythonModel()
        model.initialize(args)
        return model

    return load


def _config(parameters: dict[str, str], **extra: Any) -> str:
    params = {key: {"string_value": value} for key, value in parameters.items()}
    return json.dumps({"max_batch_size": 8, "parameters": params, **extra})


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _pixels(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_decode_model(load_model: Any) -> None:
    model = load_model("decode.py", {"model_config": _config({"min_side": "8", "max_side": "64"})})
    a, b = _pixels(16, 24, 1), _pixels(16, 24, 2)
    requests = [
        FakeRequest(**{ENCODED_INPUT: object_column([_png(a), _png(b)])}),
        FakeRequest(**{ENCODED_INPUT: object_column([b"garbage"])}),
        FakeRequest(**{ENCODED_INPUT: object_column([_png(a), _png(_pixels(24, 16))])}),
        FakeRequest(**{ENCODED_INPUT: object_column([_png(_pixels(80, 16))])}),
        FakeRequest(),
    ]
    ok, garbage, mixed, large, missing = model.execute(requests)
    assert ok.error is None
    np.testing.assert_array_equal(ok.outputs[DECODED_OUTPUT], np.stack([a, b]))
    assert garbage.error.code() == FakeError.INVALID_ARG
    assert "could not decode image" in garbage.error.message()
    assert mixed.error.code() == FakeError.INVALID_ARG
    assert "same size" in mixed.error.message()
    assert "16x80" in large.error.message()
    assert "missing input" in missing.error.message()


def test_decode_model_requires_limits(load_model: Any) -> None:
    with pytest.raises(ValueError, match="min_side"):
        load_model("decode.py", {"model_config": _config({})})


def test_encode_model(load_model: Any) -> None:
    model = load_model("encode.py", {"model_config": _config({})})
    pixels = np.stack([_pixels(8, 8, 1), _pixels(8, 8, 2)])
    good = FakeRequest(
        **{
            DECODED_OUTPUT: pixels,
            FORMAT_INPUT: object_column([b"png", b"WEBP"]),
            QUALITY_INPUT: np.array([[90], [80]], dtype=np.int32),
        }
    )
    bad_format = FakeRequest(
        **{
            DECODED_OUTPUT: pixels[:1],
            FORMAT_INPUT: object_column([b"gif"]),
            QUALITY_INPUT: np.array([[90]], dtype=np.int32),
        }
    )
    bad_quality = FakeRequest(
        **{
            DECODED_OUTPUT: pixels[:1],
            FORMAT_INPUT: object_column([b"jpeg"]),
            QUALITY_INPUT: np.array([[0]], dtype=np.int32),
        }
    )
    ok, fmt_error, quality_error = model.execute([good, bad_format, bad_quality])
    assert ok.error is None
    encoded = ok.outputs[ENCODED_OUTPUT]
    assert encoded.shape == (2, 1) and encoded.dtype == np.object_
    with Image.open(io.BytesIO(encoded[0, 0])) as image:
        assert image.format == "PNG"
        np.testing.assert_array_equal(np.asarray(image), pixels[0])
    assert encoded[1, 0][:4] == b"RIFF"
    assert fmt_error.error.code() == FakeError.INVALID_ARG
    assert "gif" in fmt_error.error.message()
    assert quality_error.error.code() == FakeError.INVALID_ARG


def _identity_onnx(path: Path, height: int | str = "h") -> None:
    helper = onnx.helper
    image = helper.make_tensor_value_info("image", onnx.TensorProto.UINT8, ["n", height, "w", 3])
    result = helper.make_tensor_value_info("result", onnx.TensorProto.UINT8, ["n", height, "w", 3])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["result"])], "identity", [image], [result]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _runner(load_model: Any, tmp_path: Path, parameters: dict[str, str]) -> Any:
    tensors = {
        "input": [{"name": "image", "data_type": "TYPE_UINT8", "dims": [-1, -1, 3]}],
        "output": [{"name": "result", "data_type": "TYPE_UINT8", "dims": [-1, -1, 3]}],
    }
    args = {
        "model_config": _config(parameters, **tensors),
        "model_repository": str(tmp_path),
        "model_version": "1",
    }
    return load_model("onnx_runner.py", args)


def test_onnx_runner_batches_by_shape(load_model: Any, tmp_path: Path) -> None:
    (tmp_path / "1").mkdir()
    _identity_onnx(tmp_path / "1" / "core.onnx")
    model = _runner(
        load_model,
        tmp_path,
        {"onnx_file": "core.onnx", "intra_op_threads": "1", "min_side": "8", "max_side": "32"},
    )
    runs: list[tuple[int, ...]] = []
    session_run = model.session.run

    def spy(names: list[str], feed: dict[str, np.ndarray]) -> Any:
        runs.append(feed["image"].shape)
        return session_run(names, feed)

    model.session.run = spy
    inputs = [
        np.stack([_pixels(16, 16, 0), _pixels(16, 16, 1)]),
        _pixels(8, 24, 2)[None],
        _pixels(16, 16, 3)[None],
        _pixels(4, 16, 4)[None],  # side below min_side
        _pixels(16, 16, 5)[None].astype(np.int32),  # wrong dtype
    ]
    responses = model.execute([FakeRequest(image=array) for array in inputs])
    assert sorted(runs) == [(1, 8, 24, 3), (3, 16, 16, 3)]  # one run per shape group
    for array, response in zip(inputs[:3], responses[:3], strict=True):
        assert response.error is None
        np.testing.assert_array_equal(response.outputs["result"], array)
    assert responses[3].error.code() == FakeError.INVALID_ARG
    assert "within [8, 32]" in responses[3].error.message()
    assert responses[4].error.code() == FakeError.INVALID_ARG
    assert "must be uint8" in responses[4].error.message()


def test_onnx_runner_failure_only_fails_its_group(load_model: Any, tmp_path: Path) -> None:
    (tmp_path / "1").mkdir()
    _identity_onnx(tmp_path / "1" / "model.onnx", height=16)  # the graph only takes H=16
    model = _runner(load_model, tmp_path, {})
    good, bad = _pixels(16, 8)[None], _pixels(24, 8)[None]
    ok, failed = model.execute([FakeRequest(image=good), FakeRequest(image=bad)])
    np.testing.assert_array_equal(ok.outputs["result"], good)
    assert failed.error.code() == FakeError.INVALID_ARG
    assert "onnxruntime failed" in failed.error.message()


def test_onnx_runner_checks_graph_names(load_model: Any, tmp_path: Path) -> None:
    (tmp_path / "1").mkdir()
    _identity_onnx(tmp_path / "1" / "model.onnx")
    args = {
        "model_config": _config(
            {},
            input=[{"name": "pixels", "data_type": "TYPE_UINT8", "dims": [-1, -1, 3]}],
            output=[{"name": "result", "data_type": "TYPE_UINT8", "dims": [-1, -1, 3]}],
        ),
        "model_repository": str(tmp_path),
        "model_version": "1",
    }
    with pytest.raises(ValueError, match="no tensors named"):
        load_model("onnx_runner.py", args)
