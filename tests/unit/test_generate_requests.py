"""Generator requests: the seeded sampler, its checks, and the client's generate plans."""

from __future__ import annotations

import io
import math
from types import SimpleNamespace
from typing import Any, get_args, get_type_hints

import numpy as np
import pytest
from PIL import Image
from tritonclient.utils import deserialize_bytes_tensor

from vitrine.client import AsyncVitrineClient, InvalidRequest, ServerError, VitrineClient
from vitrine.client._generate import plan_generate, plan_generate_array
from vitrine.pipeline import generator_pipeline_inputs
from vitrine.registry import SPECS, specs_for_method
from vitrine.sampling import (
    MAX_SEED,
    InvalidGeneration,
    conditioning_from_parameters,
    conditioning_parameters,
    sample,
    sample_latents,
)

DCGAN = SPECS["dcgan"]
STYLEGAN = SPECS["stylegan"]
GENERATORS = list(specs_for_method("generate").values())
REQUEST = {"model": "dcgan", "category": "dress", "color": "red", "seed": 7, "count": 3}


def _plan(**changes: object) -> Any:
    arguments = REQUEST | {"truncation": 1.0, "output_format": "png", "quality": 90} | changes
    return plan_generate(**arguments)


def _content(infer_input: Any) -> np.ndarray:
    raw = infer_input._get_content()
    if infer_input.datatype() == "BYTES":
        return deserialize_bytes_tensor(raw).reshape(infer_input.shape())
    dtype = {"INT32": np.int32, "INT64": np.int64, "FP32": np.float32}[infer_input.datatype()]
    return np.frombuffer(raw, dtype).reshape(infer_input.shape())


# --- the sampler -------------------------------------------------------------------------


def test_latents_are_deterministic_and_count_independent() -> None:
    four = sample_latents(11, 4, 64)
    assert four.shape == (4, 64) and four.dtype == np.float32
    np.testing.assert_array_equal(four, sample_latents(11, 4, 64))
    np.testing.assert_array_equal(four[:1], sample_latents(11, 1, 64))
    assert not np.array_equal(four, sample_latents(12, 4, 64))


def test_truncation_scales_towards_the_mean() -> None:
    np.testing.assert_allclose(sample_latents(3, 2, 8, 0.5), 0.5 * sample_latents(3, 2, 8))


def test_sample_turns_names_into_label_rows() -> None:
    conditioning = DCGAN.conditioning
    assert conditioning is not None
    latents, categories, colours = sample(
        conditioning, seed=1, count=3, category="bag", colour="green"
    )
    assert latents.shape == (3, conditioning.latent_dim)
    assert categories.dtype == colours.dtype == np.int32
    assert categories[:, 0].tolist() == [conditioning.categories.index("bag")] * 3
    assert colours[:, 0].tolist() == [conditioning.colours.index("green")] * 3


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("category", "hat", "category must be one of tshirt"),
        ("colour", "navy", "color must be one of black"),
        ("count", 0, r"count must be an integer in \[1, 16\]"),
        ("count", 17, r"count must be an integer in \[1, 16\]"),
        ("count", True, "count must be an integer"),
        ("count", 2.0, "count must be an integer"),
        ("seed", -1, rf"seed must be an integer in \[0, {MAX_SEED}\]"),
        ("seed", MAX_SEED + 1, "seed must be an integer"),
        ("seed", "1", "seed must be an integer"),
        ("truncation", 0.0, r"truncation must be a number in \(0, 1\]"),
        ("truncation", 1.5, "truncation must be a number"),
        ("truncation", math.nan, "truncation must be a number"),
        ("truncation", "1", "truncation must be a number"),
    ],
)
def test_sample_refuses_bad_requests(field: str, value: object, message: str) -> None:
    assert DCGAN.conditioning is not None
    request: dict[str, object] = {"seed": 0, "count": 1, "category": "bag", "colour": "red"}
    with pytest.raises(InvalidGeneration, match=message):
        sample(DCGAN.conditioning, **(request | {field: value}))


def test_style_mixing_samples_two_latents_and_leaves_truncation_to_the_model() -> None:
    conditioning = STYLEGAN.conditioning
    assert conditioning is not None and conditioning.style_mixing
    request = {"count": 3, "category": "bag", "colour": "red", "truncation": 0.5}
    latents, _, _, fine, truncation = sample(conditioning, seed=1, mix_seed=2, **request)
    np.testing.assert_array_equal(latents, sample_latents(1, 3, 64))  # not scaled by ψ
    np.testing.assert_array_equal(fine, sample_latents(2, 3, 64))
    assert truncation.shape == (3, 1) and truncation.dtype == np.float32
    assert np.all(truncation == np.float32(0.5))
    unmixed = sample(conditioning, seed=1, **request)
    np.testing.assert_array_equal(unmixed[3], unmixed[0])  # mix_seed defaults to seed
    with pytest.raises(InvalidGeneration, match=r"mix_seed must be an integer in \[0, "):
        sample(conditioning, seed=1, mix_seed=MAX_SEED + 1, **request)
    assert DCGAN.conditioning is not None
    with pytest.raises(InvalidGeneration, match="does not mix styles"):
        sample(DCGAN.conditioning, seed=1, mix_seed=2, **request)


def test_generate_plan_sends_a_style_mixers_mix_seed() -> None:
    sent = {i.name(): _content(i) for i in _plan(model="stylegan").inputs}
    assert list(sent) == [t.name for t in generator_pipeline_inputs(STYLEGAN)]
    assert "mix_seed" in sent and sent["mix_seed"][0] == sent["seed"][0] == 7
    mixed = {i.name(): _content(i) for i in _plan(model="stylegan", mix_seed=8).inputs}
    assert mixed["mix_seed"].dtype == np.int64 and mixed["mix_seed"][0] == 8


@pytest.mark.parametrize("spec", GENERATORS, ids=lambda spec: spec.name)
def test_conditioning_round_trips_through_config_parameters(spec: Any) -> None:
    assert spec.conditioning is not None
    text = {key: str(value) for key, value in conditioning_parameters(spec.conditioning).items()}
    assert conditioning_from_parameters(text) == spec.conditioning
    with pytest.raises(ValueError, match="max_count"):
        conditioning_from_parameters({k: v for k, v in text.items() if k != "max_count"})


# --- static types pinned to the specs ----------------------------------------------------


@pytest.mark.parametrize("client", [VitrineClient, AsyncVitrineClient])
@pytest.mark.parametrize("method", ["generate", "generate_array", "mix_styles"])
def test_literals_match_the_specs(client: type, method: str) -> None:
    hints = get_type_hints(getattr(client, method))
    mixers = {
        name
        for name, spec in specs_for_method("generate").items()
        if spec.conditioning.style_mixing
    }
    models = mixers if method == "mix_styles" else set(specs_for_method("generate"))
    assert set(get_args(hints["model"])) == models
    for spec in GENERATORS:
        assert spec.conditioning is not None
        assert get_args(hints["category"]) == spec.conditioning.categories
        assert get_args(hints["color"]) == spec.conditioning.colours


# --- plans -------------------------------------------------------------------------------


def test_generate_plan_sends_the_request_to_the_pipeline() -> None:
    plan = _plan(truncation=0.7, output_format="webp", quality=80)
    assert plan.model == "dcgan_pipeline"
    sent = {i.name(): _content(i) for i in plan.inputs}
    assert list(sent) == [t.name for t in generator_pipeline_inputs(DCGAN)]
    assert {name: value.shape for name, value in sent.items()} == dict.fromkeys(sent, (1,))
    assert sent["seed"].dtype == np.int64 and sent["seed"][0] == 7
    assert sent["count"][0] == 3 and sent["quality"][0] == 80
    assert sent["category"][0] == b"dress" and sent["color"][0] == b"red"
    assert sent["format"][0] == b"webp"
    assert sent["truncation"][0] == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "gan"}, "model must be one of 'dcgan', 'vae', 'stylegan'"),
        ({"mix_seed": 3}, "this generator does not mix styles"),
        ({"model": "stylegan", "mix_seed": -1}, "mix_seed must be an integer"),
        ({"category": "hat"}, "category must be one of"),
        ({"color": 3}, "color must be one of"),
        ({"count": 99}, "count must be an integer"),
        ({"seed": -5}, "seed must be an integer"),
        ({"truncation": 0}, "truncation must be a number"),
        ({"output_format": "bmp"}, "output_format must be one of"),
        ({"quality": 0}, "quality must be an int"),
    ],
)
def test_generate_plan_refuses_bad_calls(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        _plan(**changes)


def _png_column(count: int) -> np.ndarray:
    items = []
    for index in range(count):
        buffer = io.BytesIO()
        Image.new("RGB", (32, 32), (index, 0, 0)).save(buffer, format="PNG")
        items.append(buffer.getvalue())
    return np.array(items, dtype=np.object_).reshape(count, 1)


def _result(outputs: dict[str, np.ndarray]) -> Any:
    response = SimpleNamespace(model_version="1")
    return SimpleNamespace(as_numpy=outputs.get, get_response=lambda: response)


def test_generate_plan_parses_every_image_in_order() -> None:
    result = _plan().parse(_result({"result_bytes": _png_column(3)}), 5.0)
    assert [image.getpixel((0, 0)) for image in result.images] == [(0, 0, 0), (1, 0, 0), (2, 0, 0)]
    assert result.model == "dcgan_pipeline" and result.format == "png" and len(result.data) == 3


def test_generate_plan_refuses_a_short_response() -> None:
    with pytest.raises(ServerError, match="not 3 images"):
        _plan().parse(_result({"result_bytes": _png_column(2)}), 5.0)


def test_generate_array_plan_draws_the_pipelines_latents() -> None:
    plan = plan_generate_array(**REQUEST, truncation=0.5)
    assert plan.model == "dcgan"
    latent, category, colour = (_content(i) for i in plan.inputs)
    np.testing.assert_array_equal(latent, sample_latents(7, 3, 64, 0.5))
    assert category.shape == colour.shape == (3, 1)
    pixels = np.zeros((3, 32, 32, 3), np.uint8)
    parsed = plan.parse(_result({"images": pixels}), 1.0)
    assert parsed.array.shape == (3, 32, 32, 3)
    with pytest.raises(ServerError, match="expected uint8"):
        plan.parse(_result({"images": pixels[:2]}), 1.0)
