"""The client's variations and interpolate plans: one pipeline row per result image."""

from __future__ import annotations

from typing import Any, get_args, get_type_hints

import numpy as np
import pytest
from tritonclient.utils import deserialize_bytes_tensor

from vitrine.client import AsyncVitrineClient, InvalidRequest, VitrineClient
from vitrine.client._latent_edit import plan_interpolate, plan_variations
from vitrine.options import options_from_parameter, options_parameter
from vitrine.pipeline import pipeline_inputs
from vitrine.registry import SPECS
from vitrine.sampling import MAX_SEED

SPEC = SPECS["vae_edit"]
IMAGE = np.full((32, 32, 3), 90, np.uint8)
LABELS = {"category": "bag", "color": "green", "output_format": "png", "quality": 90}


def _sent(plan: Any) -> dict[str, np.ndarray]:
    columns = {}
    for tensor in plan.inputs:
        raw = tensor._get_content()
        if tensor.datatype() == "BYTES":
            columns[tensor.name()] = deserialize_bytes_tensor(raw).reshape(tensor.shape())
        else:
            dtype = {"INT32": np.int32, "INT64": np.int64, "FP32": np.float32}[tensor.datatype()]
            columns[tensor.name()] = np.frombuffer(raw, dtype).reshape(tensor.shape())
    return columns


def test_variations_send_one_row_per_variation_with_consecutive_seeds() -> None:
    plan = plan_variations(IMAGE, count=3, seed=MAX_SEED, spread=0.25, **LABELS)
    sent = _sent(plan)
    assert plan.model == SPEC.pipeline
    assert list(sent) == [tensor.name for tensor in pipeline_inputs(SPEC)]
    assert all(column.shape == (3, 1) for column in sent.values())
    assert sent["seed"][:, 0].tolist() == [MAX_SEED, 0, 1]  # seed + i, wrapping
    assert sent["blend"][:, 0].tolist() == [0.0] * 3 and np.all(sent["spread"] == 0.25)
    assert np.all(sent["other"] == sent["image_bytes"]) and np.all(sent["category"] == b"bag")


def test_interpolation_blends_evenly_from_the_first_image_to_the_second() -> None:
    other = np.full((32, 32, 3), 200, np.uint8)
    sent = _sent(plan_interpolate(IMAGE, other, steps=5, **LABELS))
    assert sent["blend"][:, 0].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert np.all(sent["spread"] == 0.0) and sent["other"][0, 0] != sent["image_bytes"][0, 0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"category": "hat"}, "category must be one of"),
        ({"count": 17}, r"count must be an int in 1\.\.16"),
        ({"seed": -1}, r"seed must be an integer in \[0, "),
        ({"spread": float("nan")}, r"spread must be within \[0, 1\]"),
        ({"quality": 0}, "quality must be an int"),
    ],
)
def test_variations_refuse_bad_calls(changes: dict[str, object], message: str) -> None:
    arguments = {"count": 2, "seed": 0, "spread": 1.0, **LABELS} | changes
    with pytest.raises(InvalidRequest, match=message):
        plan_variations(IMAGE, **arguments)


def test_interpolation_refuses_other_sizes_and_a_single_step() -> None:
    with pytest.raises(InvalidRequest, match="other is 32x16 but the image is 32x32"):
        plan_interpolate(IMAGE, IMAGE[:16], steps=3, **LABELS)
    with pytest.raises(InvalidRequest, match=r"steps must be an int in 2\.\.16"):
        plan_interpolate(IMAGE, IMAGE, steps=1, **LABELS)


@pytest.mark.parametrize("client", [VitrineClient, AsyncVitrineClient])
@pytest.mark.parametrize("method", ["variations", "interpolate"])
def test_label_literals_match_the_spec(client: type, method: str) -> None:
    hints = get_type_hints(getattr(client, method))
    choices = {option.name: option.choices for option in SPEC.options if option.choices}
    assert get_args(hints["category"]) == choices["category"]
    assert get_args(hints["color"]) == choices["color"]


def test_options_round_trip_through_the_decode_step_parameter() -> None:
    assert options_from_parameter(options_parameter(SPEC.options)) == SPEC.options
