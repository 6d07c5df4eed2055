"""Property-based fuzzing of every pipeline and core model on the real server.

Every malformed request must be answered with a valid result or INVALID_ARGUMENT and a
message; afterwards a good request succeeds through the fuzzed pipeline and each of its steps.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from tritonclient.utils import InferenceServerException

from vitrine.options import encode_mask
from vitrine.pipeline import (
    ENCODED_INPUT,
    ENCODED_OUTPUT,
    FORMAT_INPUT,
    QUALITY_INPUT,
    generator_pipeline_inputs,
)
from vitrine.registry import SPECS, specs_for_method
from vitrine.serving.embedded import EmbeddedTriton
from vitrine.serving.probe import probe_pipelines, probe_steps, step_probes
from vitrine.spec import ModelSpec, Option, OptionKind

pytestmark = pytest.mark.integration

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same cases on every CI run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TRIED = {"pipeline": 0, "core": 0, "generator": 0}
EDITORS = [spec for spec in SPECS.values() if not spec.is_generator]
GENERATORS = list(specs_for_method("generate").values())


def _encoded(width: int, height: int, fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(
        buffer, format=fmt
    )
    return buffer.getvalue()


def _claim_size(png: bytes, width: int, height: int) -> bytes:
    header = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
    return png[:16] + header[4:] + struct.pack(">I", zlib.crc32(header)) + png[33:]


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """Valid images, then damaged ones: truncated, bytes flipped, lying headers, noise."""
    size = st.integers(1, 40)
    fmt = draw(st.sampled_from(["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"]))
    data = _encoded(draw(size), draw(size), fmt, draw(st.integers(0, 99)))
    damage = draw(st.sampled_from(["none", "truncate", "flip", "claim", "noise", "empty"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif damage == "flip":
        position = draw(st.integers(0, len(data) - 1))
        data = data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1 :]
    elif damage == "claim" and fmt == "PNG":
        data = _claim_size(data, draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1)))
    elif damage == "noise":
        data = draw(st.binary(min_size=1, max_size=512))
    elif damage == "empty":
        data = b""
    return data


@st.composite
def masks(draw: st.DrawFn) -> bytes:
    """Mask payloads: binary masks of any size (often not the image's), or random bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=256))
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    seed = draw(st.integers(0, 99))
    pixels = np.random.default_rng(seed).integers(0, 2, (height, width), dtype=np.uint8)
    return encode_mask(pixels * draw(st.sampled_from([255, 1, 128])))


OPTION_VALUES: dict[OptionKind, st.SearchStrategy[object]] = {
    OptionKind.STRENGTH: st.floats(width=32),  # NaN and infinities included
    OptionKind.MASK: masks(),
    OptionKind.IMAGE: payloads(),
    OptionKind.LABEL: st.one_of(
        st.sampled_from([b"bag", b"red", b"", b"BAG", b"\xff\xfe"]), st.binary(max_size=16)
    ),
    OptionKind.SEED: st.integers(-(2**63), 2**63 - 1),
    OptionKind.BACKGROUND: st.sampled_from(
        [b"white", b"transparent", b"#00ff00", b"", b"purple", b"#zzzzzz", b"\xff\xfe"]
    ),
}


def _option_tensor(option: Option, value: object) -> grpcclient.InferInput:
    wire = option.wire
    return _tensor(option.name, np.array([[value]], dtype=wire.numpy_dtype), wire.dtype)


def _core_options(spec: ModelSpec, shape: list[int]) -> list[grpcclient.InferInput]:
    """Zero option tensors matching an image tensor of ``shape`` as far as it allows."""
    image = [*shape, 1, 1, 1, 1][:4] if len(shape) < 4 else shape[:3] + [3]
    shapes = spec.input_shapes(tuple(image))
    return [
        _tensor(o.core.name, np.zeros(shapes[o.core.name], o.core.numpy_dtype), o.core.dtype)
        for o in spec.options
    ]


def _tensor(name: str, value: np.ndarray, dtype: str) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput(name, list(value.shape), dtype)
    tensor.set_data_from_numpy(value)
    return tensor


def _answer_is_valid_or_invalid_argument(call: object) -> bool:
    """True for a result, False for INVALID_ARGUMENT with a message; anything else fails."""
    try:
        call()  # type: ignore[operator]
    except InferenceServerException as error:
        assert error.status() == "StatusCode.INVALID_ARGUMENT", (error.status(), error.message())
        assert error.message(), "an error without a message"
        return False
    return True


@pytest.fixture(scope="module")
def raw(vitrine_server: EmbeddedTriton) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(vitrine_server.grpc_url)


@pytest.mark.parametrize("spec", EDITORS, ids=lambda spec: spec.name)
def test_fuzz_pipeline(raw: grpcclient.InferenceServerClient, spec: ModelSpec) -> None:
    @FUZZ
    @given(
        payload=payloads(),
        options=st.tuples(*(OPTION_VALUES[option.kind] for option in spec.options)),
        fmt=st.sampled_from([b"png", b"jpeg", b"webp", b"PNG", b"", b"gif", b"\xff\xfe"]),
        quality=st.integers(-10, 300),
    )
    def case(payload: bytes, options: tuple[object, ...], fmt: bytes, quality: int) -> None:
        TRIED["pipeline"] += 1
        inputs = [
            _tensor(ENCODED_INPUT, np.array([[payload]], dtype=object), "BYTES"),
            *(_option_tensor(o, v) for o, v in zip(spec.options, options, strict=True)),
            _tensor(FORMAT_INPUT, np.array([[fmt]], dtype=object), "BYTES"),
            _tensor(QUALITY_INPUT, np.array([[quality]], dtype=np.int32), "INT32"),
        ]

        def call() -> None:
            result = raw.infer(spec.pipeline, inputs, client_timeout=30)
            Image.open(io.BytesIO(result.as_numpy(ENCODED_OUTPUT)[0, 0])).load()

        _answer_is_valid_or_invalid_argument(call)

    case()
    _assert_healthy(raw, spec)


@pytest.mark.parametrize("spec", EDITORS, ids=lambda spec: spec.name)
def test_fuzz_core_model(raw: grpcclient.InferenceServerClient, spec: ModelSpec) -> None:
    dtypes = {"UINT8": np.uint8, "INT32": np.int32, "FP32": np.float32, "INT8": np.int8}

    @FUZZ
    @given(
        dtype=st.sampled_from(sorted(dtypes)),
        shape=st.lists(st.integers(0, 24), min_size=1, max_size=5),
        special=st.sampled_from([0.0, np.nan, np.inf, -1.0, 255.0]),
    )
    def case(dtype: str, shape: list[int], special: float) -> None:
        TRIED["core"] += 1
        with np.errstate(invalid="ignore"):
            array = np.full(shape, special, dtype=np.float64).astype(dtypes[dtype])
        ok = _answer_is_valid_or_invalid_argument(
            lambda: raw.infer(
                spec.core_model,
                [_tensor(spec.input.name, array, dtype), *_core_options(spec, shape)],
                client_timeout=30,
            )
        )
        if ok:  # only well-formed batches may succeed
            assert dtype == "UINT8" and len(shape) == 4 and shape[3] == 3
            assert 1 <= shape[0] <= spec.batching.max_batch_size
            assert all(spec.limits.min_side <= side <= spec.limits.max_side for side in shape[1:3])

    case()
    _assert_healthy(raw, spec)


LABELS = st.one_of(
    st.sampled_from([b"bag", b"dress", b"red", b"blue", b"", b"BAG", b"\xff\xfe"]),
    st.binary(max_size=16),
)
REQUEST_VALUES: dict[str, st.SearchStrategy[object]] = {
    "seed": st.integers(-(2**63), 2**63 - 1),
    "mix_seed": st.integers(-(2**63), 2**63 - 1),
    "count": st.integers(-(2**31), 2**31 - 1),
    "category": LABELS,
    "color": LABELS,
    "truncation": st.floats(width=32),  # NaN and infinities included
    "format": st.sampled_from([b"png", b"jpeg", b"webp", b"", b"gif"]),
    "quality": st.integers(-10, 300),
}


@pytest.mark.parametrize("spec", GENERATORS, ids=lambda spec: spec.name)
def test_fuzz_generator_pipeline(raw: grpcclient.InferenceServerClient, spec: ModelSpec) -> None:
    tensors = generator_pipeline_inputs(spec)

    @FUZZ
    @given(values=st.tuples(*(REQUEST_VALUES[tensor.name] for tensor in tensors)))
    def case(values: tuple[object, ...]) -> None:
        TRIED["generator"] += 1
        inputs = [
            _tensor(t.name, np.array([value], dtype=t.numpy_dtype), t.dtype)
            for t, value in zip(tensors, values, strict=True)
        ]

        def call() -> None:
            result = raw.infer(spec.pipeline, inputs, client_timeout=30)
            for row in result.as_numpy(ENCODED_OUTPUT)[:, 0]:
                Image.open(io.BytesIO(row)).load()

        _answer_is_valid_or_invalid_argument(call)

    case()
    request = {"seed": 1, "count": 2, "category": b"bag", "color": b"red", "truncation": 1.0}
    request |= {"mix_seed": 3, "format": b"png", "quality": 90}
    good = [
        _tensor(t.name, np.array([request[t.name]], dtype=t.numpy_dtype), t.dtype) for t in tensors
    ]
    assert raw.infer(spec.pipeline, good).as_numpy(ENCODED_OUTPUT).shape == (2, 1)
    _assert_serving(raw, spec)


def _assert_serving(raw: grpcclient.InferenceServerClient, spec: ModelSpec) -> None:
    """A good request through ``spec``'s pipeline and through each of its steps. (Readiness
    says nothing here: it stays true while a python-backend stub is dead.)"""
    results = probe_pipelines(raw, timeout=60.0, specs=[spec])
    results += probe_steps(raw, step_probes(spec), timeout=60.0)
    assert all(result.ok for result in results), [result for result in results if not result.ok]


def _assert_healthy(raw: grpcclient.InferenceServerClient, spec: ModelSpec) -> None:
    _assert_serving(raw, spec)
    side = max(16, spec.limits.min_side)
    good = np.full((1, side, side, 3), 77, np.uint8)
    inputs = [_tensor(spec.input.name, good, "UINT8"), *_core_options(spec, list(good.shape))]
    result = raw.infer(spec.core_model, inputs)
    scale, channels = spec.output_scale, spec.output.dims[-1]
    assert result.as_numpy(spec.output.name).shape == (1, side * scale, side * scale, channels)
    print(f"\nfuzz cases tried so far: {TRIED}")
