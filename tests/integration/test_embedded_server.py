"""The embedded Triton server running the real python-backend steps on CPU."""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
import tritonclient.grpc as grpcclient
from PIL import Image
from tritonclient.grpc import model_config_pb2

from vitrine.export.triton_config import (
    RESPONSE_CACHE_ARGUMENT,
    Target,
    core_config,
    decode_config,
    encode_config,
    render,
)
from vitrine.pipeline import (
    DECODED_OUTPUT,
    ENCODE_MODEL,
    ENCODED_INPUT,
    ENCODED_OUTPUT,
    FORMAT_INPUT,
    QUALITY_INPUT,
)
from vitrine.registry import get_spec
from vitrine.serving import EmbeddedTriton, TritonStartupError, backend_directory, free_port
from vitrine.spec import BatchingPolicy, ImageLimits, ShapeProfile

PYTHON_MODELS = Path(__file__).resolve().parents[2] / "export" / "python_models"
SPEC = get_spec("superres_x2")
CORE_MODEL = "identity_core"  # onnx_runner over a tiny Identity graph


# -- repository ------------------------------------------------------------------------------
# An identity core model run by onnx_runner, with a long queue delay so concurrent requests batch.
IDENTITY = dataclasses.replace(
    SPEC,
    name=CORE_MODEL,
    limits=ImageLimits(min_side=8, max_side=64),
    large=None,  # its pipeline takes what its core takes
    batching=BatchingPolicy(
        max_batch_size=8, preferred_batch_sizes=(8,), max_queue_delay_us=200_000
    ),
    profile=ShapeProfile(min=(1, 8, 8, 3), opt=(8, 32, 32, 3), max=(8, 64, 64, 3)),
)


BATCH = 5
BATCHED_DECODE = "batched_decode"
"""The real decode step under a config that holds requests until ``BATCH`` of them form one
batch (the long queue delay is only a hang guard), so a test knows what Triton batched."""


def _batched_decode() -> model_config_pb2.ModelConfig:
    config = decode_config(SPEC)
    config.name = BATCHED_DECODE
    config.dynamic_batching.preferred_batch_size[:] = [BATCH]
    config.dynamic_batching.max_queue_delay_microseconds = 30_000_000
    return config


def _write(repository: Path, config: model_config_pb2.ModelConfig, source: str) -> Path:
    version = repository / config.name / "1"
    version.mkdir(parents=True)
    (repository / config.name / "config.pbtxt").write_text(render(config))
    shutil.copyfile(PYTHON_MODELS / source, version / "model.py")
    return version


def build_repository(repository: Path) -> None:
    """The real decode and encode steps of the catalog, and an identity core model."""
    _write(repository, decode_config(SPEC), "decode.py")
    _write(repository, _batched_decode(), "decode.py")
    encode = encode_config(
        SPEC.batching.max_batch_size, max_queue_size=SPEC.batching.max_queue_size
    )
    _write(repository, encode, "encode.py")
    helper = onnx.helper
    image = helper.make_tensor_value_info("image", onnx.TensorProto.UINT8, ["n", "h", "w", 3])
    result = helper.make_tensor_value_info("result", onnx.TensorProto.UINT8, ["n", "h", "w", 3])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["result"])], "identity", [image], [result]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    version = _write(repository, core_config(IDENTITY, Target.EMBEDDED), "onnx_runner.py")
    onnx.save(model, str(version / "model.onnx"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedTriton]:
    root = tmp_path_factory.mktemp("triton")
    repository = root / "repository"
    build_repository(repository)
    triton = EmbeddedTriton(
        repository,
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        log_path=root / "tritonserver.log",
    )
    with triton:
        yield triton
    assert not triton.is_running()
    assert triton.returncode is not None


@pytest.fixture(scope="module")
def client(server: EmbeddedTriton) -> Iterator[grpcclient.InferenceServerClient]:
    with grpcclient.InferenceServerClient(server.grpc_url) as triton_client:
        yield triton_client


# -- helpers ---------------------------------------------------------------------------------
def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _bytes_input(name: str, items: list[bytes]) -> grpcclient.InferInput:
    array = np.array([[item] for item in items], dtype=np.object_)
    tensor = grpcclient.InferInput(name, list(array.shape), "BYTES")
    tensor.set_data_from_numpy(array)
    return tensor


def _array_input(name: str, array: np.ndarray, datatype: str) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return tensor


def _decode(client: grpcclient.InferenceServerClient, payloads: list[bytes]) -> np.ndarray:
    result = client.infer(SPEC.decode_model, [_bytes_input(ENCODED_INPUT, payloads)])
    return result.as_numpy(DECODED_OUTPUT)


def _encode(
    client: grpcclient.InferenceServerClient, pixels: np.ndarray, fmt: str, quality: int
) -> bytes:
    batch = len(pixels)
    inputs = [
        _array_input(DECODED_OUTPUT, pixels, "UINT8"),
        _bytes_input(FORMAT_INPUT, [fmt.encode()] * batch),
        _array_input(QUALITY_INPUT, np.full((batch, 1), quality, dtype=np.int32), "INT32"),
    ]
    output = client.infer(ENCODE_MODEL, inputs).as_numpy(ENCODED_OUTPUT)
    assert output.shape == (batch, 1)
    return bytes(output[0, 0])


def _pixels(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _statistics(client: grpcclient.InferenceServerClient, model: str) -> tuple[int, int]:
    """Triton's (executions, inferences) of ``model``: batches run, and requests in them.
    (A python model's error response counts as an inference like any other.)"""
    (stats,) = client.get_inference_statistics(model, as_json=True)["model_stats"]
    return int(stats.get("execution_count", 0)), int(stats.get("inference_count", 0))


def _sent_together(
    client: grpcclient.InferenceServerClient, model: str, requests: list[list[object]]
) -> list[tuple[object, object]]:
    """(result, error) of each request, all sent before any answer is awaited."""
    answers: queue.Queue[tuple[int, object, object]] = queue.Queue()
    for index, inputs in enumerate(requests):
        client.async_infer(
            model,
            inputs,
            callback=lambda result, error, index=index: answers.put((index, result, error)),
        )
    received = dict(
        (index, (result, error))
        for index, result, error in (answers.get(timeout=60) for _ in requests)
    )
    return [received[index] for index in range(len(requests))]


# -- tests -----------------------------------------------------------------------------------
@pytest.mark.integration
def test_server_is_ready(server: EmbeddedTriton, client: grpcclient.InferenceServerClient) -> None:
    assert server.is_running()
    assert client.is_server_ready()
    for model in (SPEC.decode_model, ENCODE_MODEL, CORE_MODEL):
        assert client.is_model_ready(model)


@pytest.mark.integration
def test_png_round_trip_through_decode_and_encode(
    client: grpcclient.InferenceServerClient,
) -> None:
    original = _pixels(24, 40)
    decoded = _decode(client, [_png(original)])
    assert decoded.dtype == np.uint8
    assert decoded.shape == (1, 24, 40, 3)
    np.testing.assert_array_equal(decoded[0], original)

    encoded = _encode(client, decoded, "png", 90)
    with Image.open(io.BytesIO(encoded)) as image:
        assert image.format == "PNG"
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), original)


@pytest.mark.integration
def test_encode_jpeg_and_webp(client: grpcclient.InferenceServerClient) -> None:
    pixels = _pixels(16, 16)[None]
    for fmt, pil_name in (("jpeg", "JPEG"), ("webp", "WEBP")):
        with Image.open(io.BytesIO(_encode(client, pixels, fmt, 80))) as image:
            assert image.format == pil_name
            assert image.size == (16, 16)


@pytest.mark.integration
def test_decode_batch_of_equal_sizes(client: grpcclient.InferenceServerClient) -> None:
    images = [_pixels(16, 20, seed) for seed in range(3)]
    decoded = _decode(client, [_png(image) for image in images])
    np.testing.assert_array_equal(decoded, np.stack(images))


@pytest.mark.integration
def test_corrupt_payload_is_invalid_argument_and_server_keeps_serving(
    client: grpcclient.InferenceServerClient,
) -> None:
    good = _png(_pixels(16, 16))
    with pytest.raises(grpcclient.InferenceServerException) as raised:
        _decode(client, [good[: len(good) // 2]])
    assert "INVALID_ARGUMENT" in str(raised.value.status())
    assert "could not decode image" in raised.value.message()

    with pytest.raises(grpcclient.InferenceServerException) as raised:
        _decode(client, [b"definitely not an image"])
    assert "INVALID_ARGUMENT" in str(raised.value.status())

    assert _decode(client, [good]).shape == (1, 16, 16, 3)


@pytest.mark.integration
def test_decode_rejects_sizes_outside_limits(client: grpcclient.InferenceServerClient) -> None:
    with pytest.raises(grpcclient.InferenceServerException) as raised:
        _decode(client, [_png(_pixels(4, 4))])
    assert "INVALID_ARGUMENT" in str(raised.value.status())
    assert "4x4" in raised.value.message()


@pytest.mark.integration
def test_encode_bad_format_is_invalid_argument(client: grpcclient.InferenceServerClient) -> None:
    with pytest.raises(grpcclient.InferenceServerException) as raised:
        _encode(client, _pixels(8, 8)[None], "gif", 90)
    assert "INVALID_ARGUMENT" in str(raised.value.status())
    assert "gif" in raised.value.message()


@pytest.mark.integration
def test_onnx_runner_batches_concurrent_requests(
    client: grpcclient.InferenceServerClient,
) -> None:
    shapes = [(16, 16), (16, 16), (24, 8), (16, 16), (24, 8)]
    sent = [_pixels(height, width, index)[None] for index, (height, width) in enumerate(shapes)]
    before = _statistics(client, CORE_MODEL)
    answers = _sent_together(
        client, CORE_MODEL, [[_array_input("image", pixels, "UINT8")] for pixels in sent]
    )
    for pixels, (result, error) in zip(sent, answers, strict=True):
        assert error is None, error
        np.testing.assert_array_equal(result.as_numpy("result"), pixels)  # type: ignore[attr-defined]
    after = _statistics(client, CORE_MODEL)
    executions, inferences = (now - then for now, then in zip(after, before, strict=True))
    assert inferences == len(shapes)
    assert executions < len(shapes), "Triton ran every request alone: no batch formed"


@pytest.mark.integration
def test_a_bad_request_fails_alone_and_the_rest_of_its_batch_is_served(
    client: grpcclient.InferenceServerClient,
) -> None:
    images = [_pixels(16, 20, seed) for seed in range(BATCH - 1)]
    payloads = [_png(image) for image in images]
    payloads.insert(2, b"definitely not an image")
    before = _statistics(client, BATCHED_DECODE)
    answers = _sent_together(
        client, BATCHED_DECODE, [[_bytes_input(ENCODED_INPUT, [payload])] for payload in payloads]
    )
    executions, inferences = (
        now - then for now, then in zip(_statistics(client, BATCHED_DECODE), before, strict=True)
    )
    _, error = answers.pop(2)
    assert isinstance(error, grpcclient.InferenceServerException), error
    assert "INVALID_ARGUMENT" in str(error.status()) and "could not decode" in error.message()
    for image, (result, error) in zip(images, answers, strict=True):
        assert error is None, f"a good request of the batch failed: {error}"
        np.testing.assert_array_equal(result.as_numpy(DECODED_OUTPUT)[0], image)  # type: ignore[attr-defined]
    assert (executions, inferences) == (1, BATCH), "the requests were not one batch"


@pytest.mark.integration
def test_onnx_runner_rejects_out_of_limit_sides(client: grpcclient.InferenceServerClient) -> None:
    with pytest.raises(grpcclient.InferenceServerException) as raised:
        client.infer(CORE_MODEL, [_array_input("image", _pixels(4, 16)[None], "UINT8")])
    assert "INVALID_ARGUMENT" in str(raised.value.status())
    assert "within [8, 64]" in raised.value.message()


# -- startup failures ------------------------------------------------------------------------
def _server_on(repository: Path, startup_attempts: int = 2) -> EmbeddedTriton:
    """A server for ``repository`` on free ports, logging beside it."""
    return EmbeddedTriton(
        repository,
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        log_path=repository.parent / "server.log",
        startup_timeout=60,
        startup_attempts=startup_attempts,
    )


def test_missing_repository_fails_with_log_tail(tmp_path: Path) -> None:
    triton = _server_on(tmp_path / "no-such-repository")
    with pytest.raises(TritonStartupError) as raised:
        triton.start()
    assert not raised.value.transient  # a broken repository is not launched again
    message = str(raised.value)
    assert "exited with status" in message
    assert "no-such-repository" in message  # quoted from the server's own log
    assert not triton.is_running()


def _abort_first_launch(triton: EmbeddedTriton) -> int:
    """SIGABRT the server's first process as soon as it exists, as a crash at load would."""
    deadline = time.monotonic() + 60
    while triton.pid is None:
        assert time.monotonic() < deadline, "the server was never launched"
        time.sleep(0.001)
    os.kill(triton.pid, signal.SIGABRT)
    return triton.pid


def _loading_server(tmp_path: Path, startup_attempts: int) -> EmbeddedTriton:
    """A server whose python models take seconds to load: time for the abort to land first."""
    build_repository(tmp_path / "repository")
    return _server_on(tmp_path / "repository", startup_attempts)


def test_server_that_crashes_while_loading_is_launched_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    triton = _loading_server(tmp_path, startup_attempts=2)
    with ThreadPoolExecutor(max_workers=1) as pool, caplog.at_level(logging.WARNING):
        aborted = pool.submit(_abort_first_launch, triton)
        with triton:
            assert triton.is_running()
            assert triton.pid != aborted.result()
    assert "died from SIGABRT before becoming ready" in caplog.text
    assert "launching tritonserver again (attempt 2 of 2)" in caplog.text


def test_startup_attempts_are_bounded(tmp_path: Path) -> None:
    triton = _loading_server(tmp_path, startup_attempts=1)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(_abort_first_launch, triton)
        with pytest.raises(TritonStartupError, match="died from SIGABRT") as raised:
            triton.start()
    assert raised.value.transient
    assert not triton.is_running()


def test_startup_attempts_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="startup_attempts must be at least 1"):
        EmbeddedTriton(tmp_path, startup_attempts=0)


# -- fast: no models loaded ------------------------------------------------------------------
def test_backend_directory_links_python_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VITRINE_CACHE_DIR", str(tmp_path))
    directory = backend_directory()
    assert directory.is_relative_to(tmp_path / "triton-backends")
    python = directory / "python"
    for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
        assert (python / name).is_file()
    assert (python / "triton_python_backend_stub").is_file()
    assert backend_directory() == directory  # idempotent


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_urls_and_command(tmp_path: Path) -> None:
    triton = EmbeddedTriton(tmp_path, grpc_port=1, http_port=2, metrics_port=3, extra_args=["-x"])
    assert triton.grpc_url == "127.0.0.1:1"
    assert triton.http_url == "127.0.0.1:2"
    assert triton.metrics_url == "http://127.0.0.1:3/metrics"
    command = triton.command(tmp_path / "backends", Path("/bin/tritonserver"))
    assert f"--model-repository={tmp_path}" in command
    assert "--model-control-mode=none" in command
    assert "--strict-readiness=true" in command
    assert "--cache-directory=/caches" in command  # beside bin/ in the wheel
    assert RESPONSE_CACHE_ARGUMENT in command
    assert command[-1] == "-x"
    assert triton.stop() is None  # never started


_SERVE = """
import logging, sys
from pathlib import Path
from vitrine.serving import EmbeddedTriton, serve_forever
logging.basicConfig(level=logging.INFO)
ports = [int(port) for port in sys.argv[2:5]]
server = EmbeddedTriton(Path(sys.argv[1]), grpc_port=ports[0], http_port=ports[1],
                        metrics_port=ports[2])
sys.exit(serve_forever(server))
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_forever_stops_cleanly_on_signal(tmp_path: Path, signum: int) -> None:
    (tmp_path / "repository").mkdir()  # empty: starts in well under a second
    ports = [free_port() for _ in range(3)]
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(tmp_path / "repository"), *map(str, ports)],
        stderr=subprocess.PIPE,
        text=True,
    )
    ready_url = f"http://127.0.0.1:{ports[1]}/v2/health/ready"
    try:
        deadline = time.monotonic() + 60
        while not _ready(ready_url):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.2)
        process.send_signal(signum)
        _, log = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, log
    assert f"gRPC 127.0.0.1:{ports[0]}" in log
    assert f"HTTP 127.0.0.1:{ports[1]}" in log
    assert not _ready(ready_url)  # tritonserver went with it


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False
