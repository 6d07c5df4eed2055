"""Public API of vitrine.client, and both clients end to end against a fake tritonclient."""

from __future__ import annotations

import asyncio
import functools
import inspect
import io
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tritonclient.utils import InferenceServerException, deserialize_bytes_tensor

import vitrine.client
from vitrine.channel import channel_args
from vitrine.client import (
    ArrayResult,
    AsyncVitrineClient,
    Health,
    ImageResult,
    InvalidRequest,
    ModelMismatch,
    Unavailable,
    VitrineClient,
    _base,
)
from vitrine.registry import SPECS

CLIENTS = [VitrineClient, AsyncVitrineClient]
MODELS = [name for spec in SPECS.values() for name in (spec.pipeline, spec.core_model)]


def test_public_names() -> None:
    assert vitrine.client.__all__ == [
        "VitrineClient",
        "AsyncVitrineClient",
        "ImageResult",
        "ArrayResult",
        "GeneratedImages",
        "Health",
        "Scale",
        "Direction",
        "OutputFormat",
        "Style",
        "Strength",
        "Background",
        "MaskInput",
        "GeneratorModel",
        "MixingModel",
        "Category",
        "Color",
        "VitrineError",
        "InvalidRequest",
        "NotFound",
        "Unavailable",
        "DeadlineExceeded",
        "ResourceExhausted",
        "ServerError",
        "ModelMismatch",
    ]
    for name in vitrine.client.__all__:
        value = getattr(vitrine.client, name)
        if isinstance(value, type):  # the rest are type aliases (typing objects)
            assert value.__module__.startswith("vitrine.client.")


def test_import_pulls_no_heavy_or_server_modules(tmp_path: Path) -> None:
    code = (
        "import sys, vitrine.client\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'onnx', 'onnxruntime', 'skimage'} or m.startswith("
        "('vitrine.training', 'vitrine.export', 'vitrine.serving'))]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)  # the installed one


def test_sync_and_async_share_signatures() -> None:
    public = [name for name in vars(VitrineClient) if not name.startswith("_")]
    assert {"generate", "generate_array", "super_resolve", "verify"} <= set(public)
    for name in ("__init__", *public):
        sync, aio = getattr(VitrineClient, name), getattr(AsyncVitrineClient, name)
        assert inspect.signature(sync) == inspect.signature(aio), name
        assert name == "__init__" or inspect.iscoroutinefunction(aio)


def test_results_are_frozen() -> None:
    health = Health(live=True, ready=True, models={})
    with pytest.raises(AttributeError):
        health.live = False  # type: ignore[misc]


# --- a fake tritonclient ----------------------------------------------------------------


def _tensor(name: str, datatype: str, shape: list[int]) -> SimpleNamespace:
    return SimpleNamespace(name=name, datatype=datatype, shape=shape)


def _metadata(model: str) -> SimpleNamespace:
    """What a correctly deployed Triton reports (written out, not derived from the specs)."""
    wire_options = {
        "denoise": [_tensor("strength", "FP32", [-1, 1])],
        "inpaint": [_tensor("mask", "BYTES", [-1, 1])],
        "remove_background": [_tensor("background", "BYTES", [-1, 1])],
        "stylize": [_tensor("style", "BYTES", [-1, 1]), _tensor("strength", "FP32", [-1, 1])],
        "translate": [_tensor("direction", "BYTES", [-1, 1])],
        "vae_edit": [
            _tensor("other", "BYTES", [-1, 1]),
            _tensor("category", "BYTES", [-1, 1]),
            _tensor("color", "BYTES", [-1, 1]),
            _tensor("blend", "FP32", [-1, 1]),
            _tensor("seed", "INT64", [-1, 1]),
            _tensor("spread", "FP32", [-1, 1]),
        ],
    }
    core_options = {
        "denoise": [_tensor("strength", "FP32", [-1, 1])],
        "inpaint": [_tensor("mask", "UINT8", [-1, -1, -1, 1])],
        "remove_background": [_tensor("background", "UINT8", [-1, 4])],
        "stylize": [_tensor("style", "INT32", [-1, 1]), _tensor("strength", "FP32", [-1, 1])],
        "translate": [_tensor("direction", "INT32", [-1, 1])],
        "vae_edit": [
            _tensor("other", "UINT8", [-1, -1, -1, 3]),
            _tensor("category", "INT32", [-1, 1]),
            _tensor("color", "INT32", [-1, 1]),
            _tensor("blend", "FP32", [-1, 1]),
            _tensor("seed", "FP32", [-1, 64]),
            _tensor("spread", "FP32", [-1, 1]),
        ],
    }
    generators = ("dcgan", "vae", "stylegan")
    mixing = model.startswith("stylegan")  # style mixing: a second seed, a second latent
    if model in [f"{name}_pipeline" for name in generators]:  # one request, `count` images
        inputs = [
            _tensor("seed", "INT64", [1]),
            _tensor("count", "INT32", [1]),
            _tensor("category", "BYTES", [1]),
            _tensor("color", "BYTES", [1]),
            _tensor("truncation", "FP32", [1]),
            *([_tensor("mix_seed", "INT64", [1])] if mixing else []),
            _tensor("format", "BYTES", [1]),
            _tensor("quality", "INT32", [1]),
        ]
        return SimpleNamespace(inputs=inputs, outputs=[_tensor("result_bytes", "BYTES", [-1, 1])])
    if model in generators:
        styles = [_tensor("mix_latent", "FP32", [-1, 64]), _tensor("truncation", "FP32", [-1, 1])]
        inputs = [
            _tensor("latent", "FP32", [-1, 64]),
            _tensor("category", "INT32", [-1, 1]),
            _tensor("color", "INT32", [-1, 1]),
            *(styles if mixing else []),
        ]
        return SimpleNamespace(inputs=inputs, outputs=[_tensor("images", "UINT8", [-1, 32, 32, 3])])
    if model.endswith("_pipeline"):
        inputs = [
            _tensor("image_bytes", "BYTES", [-1, 1]),
            *wire_options.get(model.removesuffix("_pipeline"), []),
            _tensor("format", "BYTES", [-1, 1]),
            _tensor("quality", "INT32", [-1, 1]),
        ]
        return SimpleNamespace(inputs=inputs, outputs=[_tensor("result_bytes", "BYTES", [-1, 1])])
    channels = 4 if model == "remove_background" else 3  # RGBA cut-outs
    return SimpleNamespace(
        inputs=[_tensor("image", "UINT8", [-1, -1, -1, 3]), *core_options.get(model, [])],
        outputs=[_tensor("result", "UINT8", [-1, -1, -1, channels])],
    )


class FakeTriton:
    """Stands in for tritonclient's InferenceServerClient; upscales by pixel repetition."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url, self.options = url, options
        self.calls: list[tuple[str, str, float]] = []
        self.errors: list[InferenceServerException] = []
        self.ready = dict.fromkeys(MODELS, True)
        self.metadata = {model: _metadata(model) for model in MODELS}
        self.missing: set[str] = set()
        self.closed = False

    def _rpc(self, method: str, model: str, client_timeout: float) -> None:
        self.calls.append((method, model, client_timeout))
        if self.errors:
            raise self.errors.pop(0)

    def infer(
        self, model_name: str, inputs: list[Any], *, outputs: list[Any], client_timeout: float
    ) -> Any:
        self._rpc("infer", model_name, client_timeout)
        data = {
            i.name(): deserialize_bytes_tensor(i._get_content())
            for i in inputs
            if i.datatype() == "BYTES"
        }
        spec = SPECS[model_name.removesuffix("_pipeline")]
        scale = spec.output_scale
        if model_name == spec.pipeline:
            pixels = np.asarray(Image.open(io.BytesIO(data["image_bytes"][0])))
            big = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
            buffer = io.BytesIO()
            Image.fromarray(big).save(buffer, format=data["format"][0].decode().upper())
            output = {"result_bytes": np.array([[buffer.getvalue()]], dtype=object)}
        else:
            (image,) = inputs
            batch = np.frombuffer(image._get_content(), np.uint8).reshape(image.shape())
            output = {"result": batch.repeat(scale, axis=1).repeat(scale, axis=2)}
        assert [o.name() for o in outputs] == list(output)
        response = SimpleNamespace(model_version="7")
        return SimpleNamespace(as_numpy=output.get, get_response=lambda: response)

    def is_server_live(self, *, client_timeout: float) -> bool:
        self._rpc("live", "", client_timeout)
        return True

    def is_server_ready(self, *, client_timeout: float) -> bool:
        self._rpc("ready", "", client_timeout)
        return all(self.ready.values())

    def is_model_ready(self, model_name: str, *, client_timeout: float) -> bool:
        self._rpc("model_ready", model_name, client_timeout)
        if model_name in self.missing:
            raise InferenceServerException("unknown model", status="StatusCode.NOT_FOUND")
        return self.ready[model_name]

    def get_model_metadata(self, model_name: str, *, client_timeout: float) -> Any:
        self._rpc("metadata", model_name, client_timeout)
        return self.metadata[model_name]

    def close(self) -> None:
        self.closed = True


class AsyncFakeTriton(FakeTriton):
    """The same fake with tritonclient.grpc.aio's coroutine methods."""

    async def infer(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return FakeTriton.infer(self, *args, **kwargs)

    async def is_server_live(self, **kwargs: Any) -> bool:  # type: ignore[override]
        return FakeTriton.is_server_live(self, **kwargs)

    async def is_server_ready(self, **kwargs: Any) -> bool:  # type: ignore[override]
        return FakeTriton.is_server_ready(self, **kwargs)

    async def is_model_ready(self, *args: Any, **kwargs: Any) -> bool:  # type: ignore[override]
        return FakeTriton.is_model_ready(self, *args, **kwargs)

    async def get_model_metadata(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return FakeTriton.get_model_metadata(self, *args, **kwargs)

    async def close(self) -> None:  # type: ignore[override]
        FakeTriton.close(self)


@pytest.fixture(params=CLIENTS, ids=["sync", "async"])
def make(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Builds a client of the parametrised flavour wired to a fake tritonclient."""
    cls = request.param
    fake = FakeTriton if cls is VitrineClient else AsyncFakeTriton
    monkeypatch.setattr(cls, "_triton_module", SimpleNamespace(InferenceServerClient=fake))
    return lambda *args, **kwargs: cls(*args, **kwargs)


def run(client: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call a client method, awaiting it for the async client."""
    result = getattr(client, method)(*args, **kwargs)
    return asyncio.run(result) if inspect.iscoroutine(result) else result


def _unavailable() -> InferenceServerException:
    return InferenceServerException("connection refused", status="StatusCode.UNAVAILABLE")


# --- both clients -------------------------------------------------------------------------


def test_connection_options_passed_through(make: Any) -> None:
    client = make(
        "triton:8001",
        ssl=True,
        root_certificates="ca.pem",
        private_key="key.pem",
        certificate_chain="chain.pem",
    )
    assert client._triton.url == "triton:8001"
    assert client._triton.options == {
        "ssl": True,
        "root_certificates": "ca.pem",
        "private_key": "key.pem",
        "certificate_chain": "chain.pem",
        "channel_args": channel_args(),
    }
    assert repr(client).endswith("('triton:8001', timeout=30.0)")


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"timeout": 0}, "timeout"), ({"retries": -1}, "retries")]
)
def test_bad_constructor_arguments(make: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


@pytest.fixture
def stopped_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deadlines on a clock that does not move: the time left is exactly the timeout, so
    tests check which deadline a call passes on, not how fast the machine is."""
    stopped = functools.partial(_base.Deadline, clock=lambda: 1000.0)
    monkeypatch.setattr(_base, "Deadline", stopped)


@pytest.mark.parametrize("scale", [2, 4])
def test_super_resolve(make: Any, scale: int, stopped_clock: None) -> None:
    client = make()
    image = Image.new("RGB", (20, 10), (200, 100, 50))
    result = run(client, "super_resolve", image, scale=scale)
    assert isinstance(result, ImageResult)
    assert result.image.size == (20 * scale, 10 * scale) and result.image.mode == "RGB"
    assert result.image.getpixel((0, 0)) == (200, 100, 50)
    assert result.data.startswith(b"\x89PNG") and result.format == "png"
    assert (result.model, result.model_version) == (f"superres_x{scale}_pipeline", "7")
    assert result.latency_ms > 0
    ((method, model, client_timeout),) = client._triton.calls
    assert (method, model) == ("infer", f"superres_x{scale}_pipeline")
    work = SPECS[f"superres_x{scale}"].seconds_per_megapixel * 20 * 10 / 1e6
    assert client_timeout == pytest.approx(30.0 + work, rel=1e-12)  # the default + the photo's


def test_super_resolve_jpeg_from_bytes_with_call_timeout(make: Any, stopped_clock: None) -> None:
    client = make(timeout=10.0)
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, format="WEBP")
    result = run(
        client,
        "super_resolve",
        buffer.getvalue(),
        scale=2,
        output_format="jpeg",
        quality=50,
        timeout=2.5,
    )
    assert result.data.startswith(b"\xff\xd8") and result.image.size == (32, 32)
    assert client._triton.calls[0][2] == 2.5  # the call's own deadline, not the client's


@pytest.mark.parametrize("shape", [(10, 12, 3), (3, 10, 12, 3)])
def test_super_resolve_array(make: Any, shape: tuple[int, ...]) -> None:
    client = make()
    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    result = run(client, "super_resolve_array", pixels, scale=4)
    assert isinstance(result, ArrayResult)
    assert result.array.shape == (*shape[:-3], 40, 48, 3)
    np.testing.assert_array_equal(result.array[..., ::4, ::4, :], pixels)
    assert (result.model, result.model_version) == ("superres_x4", "7")


def test_local_validation_sends_nothing(make: Any) -> None:
    client = make()
    with pytest.raises(InvalidRequest, match="scale must be one of 2, 4; got 3"):
        run(client, "super_resolve", b"x", scale=3)
    with pytest.raises(InvalidRequest, match="image bytes are empty"):
        run(client, "super_resolve", b"", scale=2)
    with pytest.raises(InvalidRequest, match="timeout must be a positive number"):
        run(client, "super_resolve", b"x", scale=2, timeout=-1)
    with pytest.raises(InvalidRequest, match="dtype uint8"):
        run(client, "super_resolve_array", np.zeros((8, 8, 3)), scale=2)
    assert client._triton.calls == []


def test_server_error_is_typed(make: Any) -> None:
    client = make()
    client._triton.errors.append(
        InferenceServerException("image side 600 exceeds 512", status="StatusCode.INVALID_ARGUMENT")
    )
    with pytest.raises(InvalidRequest, match="image side 600 exceeds 512") as raised:
        run(client, "super_resolve", b"x", scale=2)
    assert raised.value.status == "INVALID_ARGUMENT"


def test_unavailable_is_retried(make: Any) -> None:
    client = make(retries=2)
    client._triton.errors.extend([_unavailable(), _unavailable()])
    result = run(client, "super_resolve_array", np.zeros((8, 8, 3), np.uint8), scale=2)
    assert result.array.shape == (16, 16, 3)
    timeouts = [call[2] for call in client._triton.calls]
    assert len(timeouts) == 3 and timeouts == sorted(timeouts, reverse=True)


def test_unavailable_after_retries(make: Any) -> None:
    client = make(retries=1)
    client._triton.errors.extend([_unavailable()] * 3)
    with pytest.raises(Unavailable, match="connection refused"):
        run(client, "super_resolve_array", np.zeros((8, 8, 3), np.uint8), scale=2)
    assert len(client._triton.calls) == 2


def test_health(make: Any) -> None:
    client = make()
    client._triton.ready["superres_x4"] = False
    health = run(client, "health")
    assert health == Health(
        live=True, ready=False, models={**dict.fromkeys(MODELS, True), "superres_x4": False}
    )


def test_health_not_found_model(make: Any) -> None:
    client = make()
    client._triton.missing.add("superres_x2")
    assert run(client, "health").models == {**dict.fromkeys(MODELS, True), "superres_x2": False}


def test_health_unreachable(make: Any) -> None:
    client = make(retries=0)
    client._triton.errors.append(_unavailable())
    assert run(client, "health") == Health(
        live=False, ready=False, models=dict.fromkeys(MODELS, False)
    )


def test_verify_ok(make: Any) -> None:
    client = make()
    assert run(client, "verify") is None
    assert sorted(
        model for method, model, _ in client._triton.calls if method == "metadata"
    ) == sorted(MODELS)


def test_verify_lists_every_mismatch(make: Any) -> None:
    client = make()
    fake = client._triton
    fake.ready["superres_x4_pipeline"] = False
    fake.metadata["superres_x2"].inputs[0].datatype = "FP32"
    fake.metadata["superres_x2"].outputs[0].shape = [-1, -1, -1, 4]
    fake.metadata["superres_x2_pipeline"].inputs.pop()  # quality
    fake.metadata["superres_x4"].outputs.append(_tensor("extra", "UINT8", [-1]))
    with pytest.raises(ModelMismatch) as raised:
        run(client, "verify")
    assert raised.value.problems == (
        "superres_x2_pipeline: missing input 'quality'",
        "superres_x2: input 'image' has datatype FP32, expected UINT8",
        "superres_x2: output 'result' has shape [-1, -1, -1, 4], expected [-1, -1, -1, 3]",
        "superres_x4_pipeline: not ready (not loaded, loading or failed)",
        "superres_x4: unexpected output 'extra'",
    )


def test_sync_context_manager_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        VitrineClient, "_triton_module", SimpleNamespace(InferenceServerClient=FakeTriton)
    )
    with VitrineClient() as client:
        fake = client._triton
    assert fake.closed


def test_async_context_manager_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        AsyncVitrineClient, "_triton_module", SimpleNamespace(InferenceServerClient=AsyncFakeTriton)
    )

    async def main() -> Any:
        async with AsyncVitrineClient() as client:
            return client._triton

    assert asyncio.run(main()).closed


# --- real tritonclient, no server -------------------------------------------------------


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def test_real_sync_client_without_server() -> None:
    with VitrineClient(_closed_port(), timeout=5.0, retries=0) as client:
        assert client.health() == Health(
            live=False, ready=False, models=dict.fromkeys(MODELS, False)
        )
        with pytest.raises(Unavailable) as raised:
            client.super_resolve_array(np.zeros((8, 8, 3), np.uint8), scale=2)
    assert raised.value.status == "UNAVAILABLE"


def test_real_async_client_without_server() -> None:
    async def main() -> tuple[Health, Unavailable]:
        async with AsyncVitrineClient(_closed_port(), timeout=5.0, retries=0) as client:
            health = await client.health()
            with pytest.raises(Unavailable) as raised:
                await client.super_resolve_array(np.zeros((8, 8, 3), np.uint8), scale=2)
            return health, raised.value

    health, error = asyncio.run(main())
    assert not health.live and not any(health.models.values())
    assert error.status == "UNAVAILABLE"
