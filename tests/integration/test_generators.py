"""Generator pipelines through the real server: seeded images, raw path, bad requests."""

from __future__ import annotations

import asyncio
import io
import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from PIL import Image
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from vitrine.client import AsyncVitrineClient, InvalidRequest, VitrineClient
from vitrine.pipeline import ENCODED_OUTPUT, generator_pipeline_inputs
from vitrine.registry import specs_for_method
from vitrine.sampling import sample
from vitrine.serving.embedded import EmbeddedTriton
from vitrine.spec import ModelSpec

pytestmark = pytest.mark.integration

GENERATORS = pytest.mark.parametrize(
    "spec", specs_for_method("generate").values(), ids=lambda spec: spec.name
)
VALID = {"seed": 5, "count": 2, "category": b"bag", "color": b"blue", "truncation": 1.0}
VALID_MIX_SEED = {"mix_seed": 6}  # style-mixing generators only
STYLE_MIXERS = pytest.mark.parametrize(
    "spec",
    [spec for spec in specs_for_method("generate").values() if spec.conditioning.style_mixing],
    ids=lambda spec: spec.name,
)


def _pixels(images: list[Image.Image]) -> np.ndarray:
    return np.stack([np.asarray(image) for image in images])


def _statistics(
    triton: grpcclient.InferenceServerClient, model: str, answered_at_least: int = 0
) -> dict[str, int]:
    """Triton's counts for ``model``: requests answered, and those of them the cache answered.

    Triton counts a request after its response is sent, so a count read right after the
    answer can lag: with ``answered_at_least``, wait for that many (a 10 s hang guard).
    """
    for _ in range(100):
        (stats,) = triton.get_inference_statistics(model, as_json=True)["model_stats"]
        counts = stats["inference_stats"]
        answered = int(counts.get("success", {}).get("count", 0))
        if answered >= answered_at_least:
            break
        time.sleep(0.1)
    return {"answered": answered, "cached": int(counts.get("cache_hit", {}).get("count", 0))}


@GENERATORS
def test_generate_is_deterministic_in_the_seed(
    client: VitrineClient, triton: grpcclient.InferenceServerClient, spec: ModelSpec
) -> None:
    """Checked where no response cache can answer: the core model run twice, and pipeline
    requests that differ from each other (the cache only repeats an identical request)."""
    request = {"model": spec.selector_kwargs["model"], "category": "dress", "color": "red"}
    before = _statistics(triton, spec.pipeline)
    four = client.generate(**request, seed=42, count=4)
    assert four.model == spec.pipeline and len(four.images) == len(four.data) == 4
    side = spec.output.dims[0]
    assert all(image.size == (side, side) and image.mode == "RGB" for image in four.images)
    one = client.generate(**request, seed=42, count=1)
    assert one.data == four.data[:1]  # image i does not depend on count
    other = client.generate(**request, seed=43, count=1)
    assert other.data != one.data
    after = _statistics(triton, spec.pipeline, before["answered"] + 3)
    assert (after["answered"] - before["answered"], after["cached"] - before["cached"]) == (3, 0)

    core_before = _statistics(triton, spec.core_model)
    first = client.generate_array(**request, seed=42, count=4)
    again = client.generate_array(**request, seed=42, count=4)
    core_after = _statistics(triton, spec.core_model, core_before["answered"] + 2)
    assert core_after["answered"] - core_before["answered"] == 2  # the core model has no cache
    assert core_after["cached"] == core_before["cached"]
    np.testing.assert_array_equal(again.array, first.array)
    np.testing.assert_array_equal(first.array, _pixels(four.images))


@GENERATORS
def test_labels_and_truncation_change_the_images(client: VitrineClient, spec: ModelSpec) -> None:
    model = spec.selector_kwargs["model"]
    base = client.generate(model=model, category="sneaker", color="green", seed=1)
    variants = [
        client.generate(model=model, category="bag", color="green", seed=1),
        client.generate(model=model, category="sneaker", color="yellow", seed=1),
        client.generate(model=model, category="sneaker", color="green", seed=1, truncation=0.3),
    ]
    assert all(variant.data != base.data for variant in variants)


@GENERATORS
def test_raw_path_equals_the_pipeline(client: VitrineClient, spec: ModelSpec) -> None:
    request = {"model": spec.selector_kwargs["model"], "category": "coat", "color": "brown"}
    encoded = client.generate(**request, seed=9, count=3, truncation=0.8)
    raw = client.generate_array(**request, seed=9, count=3, truncation=0.8)
    assert raw.model == spec.core_model and raw.array.shape == (3, *spec.output.dims)
    np.testing.assert_array_equal(raw.array, _pixels(encoded.images))


@GENERATORS
@pytest.mark.parametrize("output_format", ["jpeg", "webp"])
def test_generate_output_formats(
    client: VitrineClient, spec: ModelSpec, output_format: str
) -> None:
    result = client.generate(
        model=spec.selector_kwargs["model"],
        category="tshirt",
        color="pink",
        count=2,
        output_format=output_format,  # type: ignore[arg-type]
        quality=80,
    )
    kinds = {Image.open(io.BytesIO(data)).format for data in result.data}
    assert kinds == {output_format.upper()} and result.format == output_format


def test_async_generate(vitrine_server: EmbeddedTriton) -> None:
    async def run() -> tuple[list[bytes], list[bytes]]:
        async with AsyncVitrineClient(vitrine_server.grpc_url, timeout=60.0) as client:
            calls = [client.generate(category="bag", color="black", seed=s) for s in (3, 3)]
            first, second = await asyncio.gather(*calls)
            return first.data, second.data

    first, second = asyncio.run(run())
    assert first == second and len(first) == 1


# --- bad requests, sent past the client's own checks ------------------------------------


def _request(
    triton: grpcclient.InferenceServerClient, spec: ModelSpec, **changes: object
) -> np.ndarray:
    values = VALID | VALID_MIX_SEED | {"format": b"png", "quality": 90} | changes
    inputs = []
    for tensor in generator_pipeline_inputs(spec):
        value = np.array([values[tensor.name]], dtype=tensor.numpy_dtype)
        inputs.append(grpcclient.InferInput(tensor.name, [1], tensor.dtype))
        inputs[-1].set_data_from_numpy(value)
    return triton.infer(spec.pipeline, inputs, client_timeout=60).as_numpy(ENCODED_OUTPUT)


BAD_REQUESTS = {
    "unknown category": ({"category": b"hat"}, "category must be one of"),
    "unknown colour": ({"color": b"navy"}, "color must be one of"),
    "count zero": ({"count": 0}, "count must be an integer in [1, 16]"),
    "count above max": ({"count": 17}, "count must be an integer in [1, 16]"),
    "negative seed": ({"seed": -1}, "seed must be an integer in [0, 4294967295]"),
    "seed too large": ({"seed": 2**32}, "seed must be an integer"),
    "truncation zero": ({"truncation": 0.0}, "truncation must be a number in (0, 1]"),
    "truncation above one": ({"truncation": 1.5}, "truncation must be a number"),
    "truncation nan": ({"truncation": float("nan")}, "truncation must be a number"),
    "bad format": ({"format": b"bmp"}, "format"),
    "bad quality": ({"quality": 0}, "quality"),
}


@GENERATORS
@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_pipeline_rejects_bad_requests(
    triton: grpcclient.InferenceServerClient, spec: ModelSpec, case: str
) -> None:
    changes, message = BAD_REQUESTS[case]
    with pytest.raises(InferenceServerException) as caught:
        _request(triton, spec, **changes)
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT", caught.value
    assert message in str(caught.value.message()), caught.value.message()
    assert _request(triton, spec).shape == (2, 1)  # and serves the next request


def _core(
    triton: grpcclient.InferenceServerClient, spec: ModelSpec, feeds: dict[str, np.ndarray]
) -> np.ndarray:
    inputs = []
    for tensor in spec.inputs:
        value = feeds[tensor.name]
        datatype = np_to_triton_dtype(value.dtype)
        inputs.append(grpcclient.InferInput(tensor.name, list(value.shape), datatype))
        inputs[-1].set_data_from_numpy(value)
    return triton.infer(spec.core_model, inputs, client_timeout=60).as_numpy(spec.output.name)


@GENERATORS
def test_core_model_rejects_wrong_dtype_and_shape(
    triton: grpcclient.InferenceServerClient, spec: ModelSpec
) -> None:
    assert spec.conditioning is not None
    feeds = sample(spec.conditioning, seed=0, count=2, category="bag", colour="red")
    valid = {tensor.name: feed for tensor, feed in zip(spec.inputs, feeds, strict=True)}
    labels = valid["category"]
    bad = {
        "data-type": {"category": labels.astype(np.float32)},
        "shape": {"latent": valid["latent"][:, :-1]},
        "out of data bounds": {"color": labels * 0 + len(spec.conditioning.colours)},
    }
    for message, change in bad.items():
        with pytest.raises(InferenceServerException) as caught:
            _core(triton, spec, valid | change)
        assert caught.value.status() == "StatusCode.INVALID_ARGUMENT", caught.value
        assert message in str(caught.value.message()).lower()
    assert _core(triton, spec, valid).shape == (2, *spec.output.dims)


@GENERATORS
def test_repeated_requests_are_served_from_the_response_cache(
    client: VitrineClient, triton: grpcclient.InferenceServerClient, spec: ModelSpec
) -> None:
    def hits() -> int:
        (stats,) = triton.get_inference_statistics(spec.pipeline, as_json=True)["model_stats"]
        return int(stats["inference_stats"].get("cache_hit", {}).get("count", 0))

    request = {"model": spec.selector_kwargs["model"], "category": "shirt", "color": "grey"}
    first = client.generate(**request, seed=777, count=3)
    before = hits()
    again = client.generate(**request, seed=777, count=3)
    assert again.data == first.data
    assert hits() == before + 1


# --- style mixing (StyleGAN) -------------------------------------------------------------


def _coarse(pixels: np.ndarray, block: int = 4) -> np.ndarray:
    """Block means (4 x 4 px of 32): the silhouette and layout, without the fine detail."""
    count, height, width, channels = pixels.shape
    blocks = pixels.astype(np.float32).reshape(
        count, height // block, block, width // block, block, channels
    )
    return blocks.mean(axis=(2, 4))


@STYLE_MIXERS
def test_mix_styles_takes_coarse_and_fine_styles_from_two_seeds(
    client: VitrineClient, triton: grpcclient.InferenceServerClient, spec: ModelSpec
) -> None:
    assert spec.conditioning is not None
    request = {"model": spec.selector_kwargs["model"], "category": "dress", "color": "blue"}

    def mix(coarse_seed: int, fine_seed: int) -> np.ndarray:
        images = client.mix_styles(**request, coarse_seed=coarse_seed, fine_seed=fine_seed, count=8)
        return _pixels(images.images)

    mixed = mix(11, 12)
    for seed in (11, 12):
        own = _pixels(client.generate(**request, seed=seed, count=8).images)
        assert not np.array_equal(mixed, own), f"mixing 11 and 12 made seed {seed}'s images"
    # the sample step hands mix_seed's latents to the core model as the fine styles
    feeds = sample(
        spec.conditioning, seed=11, mix_seed=12, count=8, category="dress", colour="blue"
    )
    core = _core(triton, spec, {t.name: feed for t, feed in zip(spec.inputs, feeds, strict=True)})
    np.testing.assert_array_equal(core, mixed)
    # the coarse seed sets the silhouette: a new fine seed moves the 8 x 8 block means far
    # less than a new coarse seed does (by a factor of 3 with these seeds)
    new_fine = np.abs(_coarse(mix(11, 13)) - _coarse(mixed)).mean()
    new_coarse = np.abs(_coarse(mix(14, 12)) - _coarse(mixed)).mean()
    assert 2 * new_fine < new_coarse, (new_fine, new_coarse)


@STYLE_MIXERS
def test_truncation_pulls_images_towards_the_label_mean(
    client: VitrineClient, spec: ModelSpec
) -> None:
    request = {"model": spec.selector_kwargs["model"], "category": "coat", "color": "green"}

    def spread(truncation: float) -> float:
        images = _pixels(client.generate(**request, seed=3, count=8, truncation=truncation).images)
        return float(images.astype(np.float32).std(axis=0).mean())

    assert spread(0.2) < 0.5 * spread(1.0)


@STYLE_MIXERS
@pytest.mark.parametrize("mix_seed", [-1, 2**32])
def test_pipeline_rejects_a_bad_mix_seed(
    triton: grpcclient.InferenceServerClient, spec: ModelSpec, mix_seed: int
) -> None:
    with pytest.raises(InferenceServerException) as caught:
        _request(triton, spec, mix_seed=mix_seed)
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT", caught.value
    assert "mix_seed must be an integer in [0, 4294967295]" in str(caught.value.message())
    assert _request(triton, spec).shape == (2, 1)


def test_mix_styles_refuses_a_generator_without_styles(client: VitrineClient) -> None:
    with pytest.raises(InvalidRequest, match="does not mix styles"):
        client.mix_styles(
            model="dcgan",  # type: ignore[arg-type]
            category="bag",
            color="red",
            coarse_seed=1,
            fine_seed=2,
        )
