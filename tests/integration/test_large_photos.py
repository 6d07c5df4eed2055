"""Real photos through the real server: the full-size step equals its plan, memory stays
bounded and comes back, and bad uploads at these sizes are refused with their reason."""

from __future__ import annotations

import io
import secrets
import struct
import threading
import time
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from PIL import Image

from vitrine.client import InvalidRequest, VitrineClient
from vitrine.export.build import build_target
from vitrine.export.triton_config import Target
from vitrine.options import background_value
from vitrine.registry import SPECS
from vitrine.serving.embedded import EmbeddedTriton, free_port
from vitrine.serving.stubs import resident_bytes
from vitrine.serving.watchdog import Watchdog
from vitrine.spec import ModelSpec, OptionKind
from vitrine.tiling import PlanSettings, plan_image
from vitrine.training.photos import load_split

pytestmark = pytest.mark.integration

EDITORS = [spec for spec in SPECS.values() if spec.large is not None]


def _photo(height: int, width: int) -> np.ndarray:
    source = load_split("validation")["coffee"]
    return np.asarray(Image.fromarray(source).resize((width, height), Image.Resampling.BICUBIC))


def _options(
    spec: ModelSpec, height: int, width: int
) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    """The client's keywords and the matching core tensors (batch first) for one photo."""
    keywords: dict[str, object] = dict(spec.selector_kwargs)
    tensors: dict[str, np.ndarray] = {}
    for option in spec.options:
        if option.kind is OptionKind.STRENGTH:
            keywords[option.name], tensors[option.core.name] = 1.0, np.ones((1, 1), np.float32)
        elif option.kind is OptionKind.LABEL:
            keywords[option.name] = option.choices[1]
            tensors[option.core.name] = np.ones((1, 1), np.int32)
        elif option.kind is OptionKind.BACKGROUND:
            keywords[option.name] = "transparent"
            tensors[option.core.name] = background_value("transparent")[None]
        elif option.kind is OptionKind.MASK:
            mask = np.zeros((height, width), bool)
            mask[30:60, 20 : width - 20] = True
            mask[height - 80 : height - 40, 100:170] = True
            keywords[option.name] = mask
            tensors[option.core.name] = np.where(mask, 255, 0).astype(np.uint8)[None, :, :, None]
    return keywords, tensors


def _core(
    triton: grpcclient.InferenceServerClient, spec: ModelSpec, call: dict[str, np.ndarray]
) -> np.ndarray:
    inputs = []
    for tensor in spec.inputs:
        array = np.ascontiguousarray(call[tensor.name])
        infer = grpcclient.InferInput(tensor.name, list(array.shape), tensor.dtype)
        infer.set_data_from_numpy(array)
        inputs.append(infer)
    result = triton.infer(spec.core_model, inputs, client_timeout=300)
    return result.as_numpy(spec.output.name)


@pytest.mark.parametrize("spec", EDITORS, ids=lambda spec: spec.name)
def test_a_photo_beyond_the_core_equals_its_plan_through_the_core_model(
    client: VitrineClient, triton: grpcclient.InferenceServerClient, spec: ModelSpec
) -> None:
    """The pipeline's full-size step sends the pieces :func:`plan_image` plans to the core
    model and assembles them: the same calls made here through the raw core model give the
    same pixels."""
    side = spec.core_limits.max_side
    height, width = side + side // 5, side + 40
    photo = _photo(height, width)
    keywords, tensors = _options(spec, height, width)
    plan = plan_image(photo, tensors, PlanSettings.of(spec))
    assert not plan.whole
    expected = plan.result([_core(triton, spec, call) for call in plan.calls])
    result = getattr(client, spec.client_method)(photo, **keywords, output_format="png")
    served = np.asarray(result.image)
    if expected.shape[-1] == 4 and served.shape[-1] == 3:  # an opaque alpha is dropped
        expected = expected[..., :3]
    assert served.shape == expected.shape
    assert np.array_equal(served, expected)


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header declares ``width`` x ``height`` (its data is 8 x 8)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = header[4:]
    data[29:33] = struct.pack(">I", zlib.crc32(header))
    return bytes(data)


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header declares ``width`` x ``height``."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    frame = data.index(b"\xff\xc0") + 5  # SOF0: length (2), precision (1), height, width
    data[frame : frame + 4] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.fixture(scope="module")
def big_png() -> bytes:
    """About 20 MB of PNG: a 25 MP photo's worth of noise compresses badly."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (2600, 2600, 3), dtype=np.uint8)).save(
        buffer, format="PNG", compress_level=1
    )
    return buffer.getvalue()


def test_bad_uploads_at_real_sizes_are_refused_with_their_reason(
    client: VitrineClient, big_png: bytes
) -> None:
    cases = {
        "a 25 MP PNG whose header lies": (_png_claiming(5000, 5000), "could not decode"),
        "a 100 MP JPEG": (_jpeg_claiming(10000, 10000), "exceeds the limit of 6000 px"),
        "a truncated 20 MB upload": (big_png[: len(big_png) // 2], "could not decode"),
    }
    assert len(big_png) > 18_000_000
    for name, (data, reason) in cases.items():
        with pytest.raises(InvalidRequest, match=reason):
            client.denoise(data)
        assert client.enhance(_photo(64, 64)).image.size == (64, 64), name  # still serving
    photo = _photo(1200, 1600)
    with pytest.raises(InvalidRequest, match="mask"):
        client.inpaint(photo, np.ones((1199, 1600), bool))
    encoded = io.BytesIO()
    Image.fromarray(photo).save(encoded, format="JPEG")
    with pytest.raises(InvalidRequest, match="mask"):  # the server checks what it decodes
        client.inpaint(encoded.getvalue(), np.pad(np.ones((10, 10), bool), ((0, 1189), (0, 1590))))
    assert client.enhance(_photo(64, 64)).image.size == (64, 64)


MEMORY_SPECS = ("enhance", "remove_background")  # each takes a 25 MP photo in seconds here


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedTriton]:
    """A server of the memory specs with its watchdog, as `vitrine serve` runs it."""
    work = tmp_path_factory.mktemp("large")
    repository = build_target(
        Target.EMBEDDED, work / "repository", specs=[SPECS[name] for name in MEMORY_SPECS]
    )
    ports = {name: free_port() for name in ("grpc_port", "http_port", "metrics_port")}
    server = EmbeddedTriton(repository, admin_key=secrets.token_urlsafe(16), **ports)
    with server:
        watchdog = Watchdog(server, interval=2.0)
        watchdog.start()
        try:
            yield server
        finally:
            watchdog.stop()


def _settled(server_pid: int, seconds: float = 60.0) -> int:
    """The server's resident memory once it has not changed for three readings 3 s apart
    (the watchdog recycles a grown step after 2 s idle, then replaces it in about 3 s: a
    single quiet interval can fall before that). Hang guard: ``seconds``."""
    deadline, last, quiet = time.monotonic() + seconds, -1, 0
    while time.monotonic() < deadline:
        now = resident_bytes(server_pid)
        quiet = quiet + 1 if abs(now - last) < 8 << 20 else 0
        if quiet == 3:
            return now
        last = now
        time.sleep(3.0)
    return resident_bytes(server_pid)


@pytest.mark.parametrize("name", MEMORY_SPECS)
def test_a_25_mp_photo_costs_at_most_3_gb_and_nothing_lasting(
    guarded: EmbeddedTriton, name: str
) -> None:
    spec = SPECS[name]
    photo = _photo(5000, 5000)
    idle = _settled(guarded.pid or 0)
    peak = [idle]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], resident_bytes(guarded.pid or 0))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with VitrineClient(guarded.grpc_url, timeout=120.0) as client:
            result = getattr(client, spec.client_method)(photo, output_format="jpeg")
    finally:
        done.set()
        sampler.join()
    assert result.image.size == (5000, 5000)
    assert peak[0] - idle <= 3 << 30, f"peak +{(peak[0] - idle) >> 20} MiB"
    after = _settled(guarded.pid or 0)
    assert after - idle <= 0.05 * idle, f"{idle >> 20} MiB idle, {after >> 20} MiB after"
