"""Every pipeline and core model called through the typed client on the real Triton server."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from PIL import Image

from vitrine.catalog import SPECS, specs_for_method
from vitrine.client import AsyncVitrineClient, InvalidRequest, VitrineClient
from vitrine.serving.triton import EmbeddedTriton
from vitrine.spec import ModelSpec
from vitrine.training.photos import load_photo

pytestmark = pytest.mark.integration

SR_SPECS = list(specs_for_method("super_resolve").values())


def _photo(side: int) -> np.ndarray:
    return np.ascontiguousarray(load_photo("chelsea")[:side, : side + 8])


def _encoded(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def _scale(spec: ModelSpec) -> int:
    return int(spec.selector[1])


def test_verify_and_health(client: VitrineClient) -> None:
    client.verify()
    health = client.health()
    assert health.live and health.ready
    expected = {name for spec in SPECS.values() for name in (spec.pipeline, spec.core_model)}
    assert expected <= set(health.models)
    assert all(health.models.values())


@pytest.mark.parametrize("spec", SR_SPECS, ids=lambda spec: spec.name)
@pytest.mark.parametrize("kind", ["pil", "ndarray", "png", "jpeg", "webp"])
def test_super_resolve_accepts_every_input_kind(
    client: VitrineClient, spec: ModelSpec, kind: str
) -> None:
    pixels = _photo(40)
    image = {
        "pil": Image.fromarray(pixels),
        "ndarray": pixels,
        "png": _encoded(pixels, "PNG"),
        "jpeg": _encoded(pixels, "JPEG"),
        "webp": _encoded(pixels, "WEBP"),
    }[kind]
    result = client.super_resolve(image, scale=_scale(spec))
    assert result.image.size == (pixels.shape[1] * _scale(spec), pixels.shape[0] * _scale(spec))
    assert result.image.mode == "RGB"
    assert result.model == spec.pipeline
    assert result.latency_ms > 0


@pytest.mark.parametrize("output_format", ["png", "jpeg", "webp"])
def test_output_formats(client: VitrineClient, output_format: str) -> None:
    result = client.super_resolve(_photo(32), scale=2, output_format=output_format, quality=80)
    assert Image.open(io.BytesIO(result.data)).format == output_format.upper()
    assert result.format == output_format


@pytest.mark.parametrize("spec", SR_SPECS, ids=lambda spec: spec.name)
def test_raw_path_equals_pipeline(client: VitrineClient, spec: ModelSpec) -> None:
    pixels = _photo(48)
    served = np.asarray(client.super_resolve(pixels, scale=_scale(spec)).image)
    raw = client.super_resolve_array(pixels, scale=_scale(spec))
    assert raw.array.dtype == np.uint8
    np.testing.assert_array_equal(raw.array, served)
    batch = client.super_resolve_array(np.stack([pixels, pixels[::-1]]), scale=_scale(spec))
    assert batch.array.shape == (2, *served.shape)
    np.testing.assert_array_equal(batch.array[0], served)


def test_async_client(vitrine_server: EmbeddedTriton) -> None:
    async def run() -> list[tuple[int, int]]:
        async with AsyncVitrineClient(vitrine_server.grpc_url, timeout=60.0) as client:
            await client.verify()
            results = await asyncio.gather(
                *(client.super_resolve(_photo(24 + 8 * i), scale=4) for i in range(4))
            )
            return [result.image.size for result in results]

    assert asyncio.run(run()) == [(4 * (32 + 8 * i), 4 * (24 + 8 * i)) for i in range(4)]


def test_typed_errors_for_bad_uploads(client: VitrineClient) -> None:
    with pytest.raises(InvalidRequest, match="could not decode|cannot identify|not a supported"):
        client.super_resolve(b"definitely not an image", scale=2)
    with pytest.raises(InvalidRequest, match="scale"):
        client.super_resolve(_photo(16), scale=3)  # type: ignore[arg-type]
    assert client.super_resolve(_photo(16), scale=2).image.size == (48, 32)


@pytest.mark.parametrize("output_format", ["png", "jpeg"])
def test_enhance_pipeline_and_raw_path(client: VitrineClient, output_format: str) -> None:
    pixels = np.ascontiguousarray(load_photo("coffee")[:64, :96])
    result = client.enhance(pixels, output_format=output_format, quality=90)
    assert result.image.size == (96, 64) and result.model == SPECS["enhance"].pipeline
    raw = client.enhance_array(np.stack([pixels, pixels]))
    assert raw.array.shape == (2, 64, 96, 3)
    if output_format == "png":
        np.testing.assert_array_equal(raw.array[0], np.asarray(result.image))
