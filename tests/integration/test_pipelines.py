"""Every pipeline and core model called through the typed client on the real Triton server."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from vitrine.client import AsyncVitrineClient, InvalidRequest, VitrineClient
from vitrine.registry import SPECS, specs_for_method
from vitrine.serving.embedded import EmbeddedTriton
from vitrine.spec import ModelSpec
from vitrine.training.background import eval_composites
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


def test_denoise_pipeline_strength_and_raw_path(client: VitrineClient) -> None:
    clean = np.ascontiguousarray(load_photo("coffee")[:64, :96])
    noise = np.random.default_rng(0).normal(0.0, 25.0, clean.shape)
    noisy = np.clip(clean + noise, 0, 255).round().astype(np.uint8)
    result = client.denoise(noisy)
    assert result.image.size == (96, 64) and result.model == SPECS["denoise"].pipeline
    denoised = np.asarray(result.image)
    assert np.abs(denoised.astype(int) - clean).mean() < np.abs(noisy.astype(int) - clean).mean()
    untouched = client.denoise(noisy, strength=0.0)  # strength 0 blends back to the input
    np.testing.assert_array_equal(np.asarray(untouched.image), noisy)
    raw = client.denoise_array(np.stack([noisy, noisy]), strength="auto")
    assert raw.array.shape == (2, 64, 96, 3)
    np.testing.assert_array_equal(raw.array[0], denoised)
    for strength in (1.5, -0.1, "loud", True):
        with pytest.raises(InvalidRequest, match="strength"):
            client.denoise(noisy, strength=strength)  # type: ignore[arg-type]


def test_inpaint_fills_only_the_mask(client: VitrineClient) -> None:
    clean = np.ascontiguousarray(load_photo("chelsea")[:96, :128])
    mask = np.zeros((96, 128), dtype=bool)
    mask[30:60, 40:90] = True
    damaged = clean.copy()
    damaged[mask] = (255, 0, 255)
    result = client.inpaint(damaged, mask)
    assert result.image.size == (128, 96) and result.model == SPECS["inpaint"].pipeline
    filled = np.asarray(result.image)
    np.testing.assert_array_equal(filled[~mask], damaged[~mask])  # outside: untouched
    assert (
        np.abs(filled[mask].astype(int) - clean[mask]).mean()
        < np.abs(damaged[mask].astype(int) - clean[mask]).mean()
    )
    as_image = client.inpaint(damaged, Image.fromarray(mask.astype(np.uint8) * 255, mode="L"))
    np.testing.assert_array_equal(np.asarray(as_image.image), filled)
    raw = client.inpaint_array(np.stack([damaged, damaged]), mask.astype(np.uint8))
    assert raw.array.shape == (2, 96, 128, 3)
    np.testing.assert_array_equal(raw.array[1], filled)


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.zeros((96, 128), dtype=bool), "empty"),
        (np.ones((96, 128), dtype=bool), "whole image"),
        (np.zeros((64, 128), dtype=bool), "mask is 128x64 but the image is 128x96"),
        (np.full((96, 128), 7, dtype=np.uint8), "binary"),
        (np.zeros((96, 128, 3), dtype=np.uint8), "2-D"),
    ],
)
def test_inpaint_refuses_bad_masks_before_sending(
    client: VitrineClient, mask: np.ndarray, message: str
) -> None:
    pixels = np.ascontiguousarray(load_photo("chelsea")[:96, :128])
    if mask.ndim == 2 and mask.shape == (64, 128):
        mask[10:20, 10:20] = True
    with pytest.raises(InvalidRequest, match=message):
        client.inpaint(pixels, mask)


def test_remove_background_white_colour_and_transparent(client: VitrineClient) -> None:
    composite = eval_composites()[1]
    product = composite.alpha > 0.5
    height, width = composite.image.shape[:2]
    white = client.remove_background(composite.image)
    assert white.image.mode == "RGB" and white.image.size == (width, height)
    assert white.model == SPECS["remove_background"].pipeline
    pixels = np.asarray(white.image).astype(int)
    far = ~ndimage.binary_dilation(product, iterations=8)  # background, away from the rim
    assert np.abs(pixels[far] - 255).mean() < np.abs(composite.image[far].astype(int) - 255).mean()
    red = np.asarray(client.remove_background(composite.image, background=(255, 0, 0)).image)
    assert red.shape == (height, width, 3)
    clear = client.remove_background(composite.image, background="transparent")
    assert clear.image.mode == "RGBA"
    raw = client.remove_background_array(composite.image, background="transparent")
    assert raw.array.shape == (height, width, 4)
    np.testing.assert_array_equal(np.asarray(clear.image), raw.array)  # PNG keeps it exactly
    alpha = raw.array[:, :, 3]
    assert alpha.min() < 128 < alpha.max()  # a cut-out: transparent and opaque pixels
    webp = client.remove_background(composite.image, background="transparent", output_format="webp")
    assert webp.image.mode == "RGBA"
    with pytest.raises(InvalidRequest, match="jpeg cannot keep transparency"):
        client.remove_background(composite.image, background="transparent", output_format="jpeg")
    for bad in ("purple", (256, 0, 0), (1, 2), "#12345"):
        with pytest.raises(InvalidRequest, match="background"):
            client.remove_background(composite.image, background=bad)  # type: ignore[arg-type]
