"""Request options: one set of checks for the decode step and the client, and their encodings."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vitrine.client import InvalidRequest
from vitrine.client._options import background_text, mask_pixels
from vitrine.imaging import InvalidImage, encode_image
from vitrine.options import (
    BACKGROUND_NAMES,
    background_value,
    core_value,
    encode_mask,
    example_options,
    mask_value,
    options_from_parameter,
    options_parameter,
    parse_option,
    parse_option_column,
    wire_value,
)
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec, Option, OptionKind

STRENGTH = Option("strength", OptionKind.STRENGTH)
MASK = Option("mask", OptionKind.MASK)
BACKGROUND = Option("background", OptionKind.BACKGROUND)
PIXELS = np.zeros((12, 16, 3), dtype=np.uint8)


def _box_mask(height: int = 12, width: int = 16) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[2:6, 3:9] = 255
    return mask


def test_option_tensors_follow_the_kind() -> None:
    assert (STRENGTH.wire.dtype, STRENGTH.core.dtype, STRENGTH.core.dims) == ("FP32", "FP32", (1,))
    assert (MASK.wire.dtype, MASK.core.dims, MASK.core.axis_names[:2]) == (
        "BYTES",
        (-1, -1, 1),
        ("height", "width"),
    )
    assert (BACKGROUND.wire.dtype, BACKGROUND.core.dims) == ("BYTES", (4,))
    assert MASK.decoded.name == "mask_decoded" and MASK.decoded.dims == MASK.core.dims


@pytest.mark.parametrize("value", [0.0, 0.5, 1, np.float32(1.0)])
def test_strength_accepts_numbers_in_range(value: object) -> None:
    assert parse_option(STRENGTH, value, PIXELS).dtype == np.float32


@pytest.mark.parametrize("value", [1.01, -0.1, float("nan"), True, "1", None])
def test_strength_rejects_the_rest(value: object) -> None:
    with pytest.raises(InvalidImage, match="strength"):
        parse_option(STRENGTH, value, PIXELS)


def test_backgrounds() -> None:
    assert set(BACKGROUND_NAMES) == {"white", "transparent"}
    assert background_value("white").tolist() == [255, 255, 255, 255]
    assert background_value("transparent").tolist() == [0, 0, 0, 0]
    assert parse_option(BACKGROUND, b"#FF8000", PIXELS).tolist() == [255, 128, 0, 255]
    for bad in (b"purple", b"#12345", b"", b"#gg0000", 3):
        with pytest.raises(InvalidImage, match="background must be"):
            parse_option(BACKGROUND, bad, PIXELS)


def test_mask_round_trip_and_checks() -> None:
    mask = _box_mask()
    decoded = parse_option(MASK, encode_mask(mask), PIXELS)
    assert decoded.shape == (12, 16, 1) and np.array_equal(decoded[:, :, 0], mask)
    cases = {
        "is 16x8 but the image is 16x12": encode_mask(_box_mask(8, 16)),
        "empty": encode_mask(np.zeros((12, 16), np.uint8)),
        "whole image": encode_mask(np.full((12, 16), 255, np.uint8)),
        "binary": encode_mask(np.where(mask > 0, 128, 0).astype(np.uint8)),
        "could not decode mask": b"not a png",
        "empty mask payload": b"",
    }
    for message, payload in cases.items():
        with pytest.raises(InvalidImage, match=message):
            parse_option(MASK, payload, PIXELS)
    rgb = io.BytesIO()
    Image.fromarray(np.repeat(mask[:, :, None], 3, axis=2)).save(rgb, format="PNG")
    with pytest.raises(InvalidImage, match="greyscale"):
        parse_option(MASK, rgb.getvalue(), PIXELS)
    with pytest.raises(InvalidImage, match="2-D uint8"):
        mask_value(mask.astype(bool), 12, 16)


def test_columns_stack_per_request_row() -> None:
    images = np.zeros((2, 12, 16, 3), dtype=np.uint8)
    column = np.array([[0.25], [1.0]], dtype=np.float32)
    assert parse_option_column(STRENGTH, column, images).shape == (2, 1)
    with pytest.raises(InvalidImage, match=r"shape \(2, 1\)"):
        parse_option_column(STRENGTH, column[:1], images)


def test_options_parameter_round_trips() -> None:
    options = (MASK, STRENGTH)
    assert options_from_parameter(options_parameter(options)) == options
    assert options_from_parameter("") == ()


@pytest.mark.parametrize("spec", SPECS.values(), ids=lambda spec: spec.name)
def test_example_options_are_valid_on_both_paths(spec: ModelSpec) -> None:
    values = example_options(spec, 12, 16)
    assert set(values) == {option.name for option in spec.options}
    batch = np.zeros((3, 12, 16, 3), dtype=np.uint8)
    for option in spec.options:
        wired = parse_option(option, wire_value(option, values[option.name]), batch[0])
        raw = core_value(option, values[option.name], batch)
        assert raw.shape == (3, *wired.shape)
        assert np.array_equal(raw[0], wired)
        assert raw.dtype == np.dtype(option.core.numpy_dtype)


def test_client_conversions() -> None:
    assert background_text((255, 0, 16)) == "#ff0010"
    assert background_text("transparent") == "transparent"
    for bad in ((256, 0, 0), (1, 2), (1.0, 2, 3), "red"):
        with pytest.raises(InvalidRequest, match="background"):
            background_text(bad)
    ones = _box_mask() // 255
    assert np.array_equal(mask_pixels(ones), _box_mask())
    assert np.array_equal(mask_pixels(_box_mask() > 0), _box_mask())
    assert np.array_equal(mask_pixels(Image.fromarray(_box_mask(), mode="L")), _box_mask())
    with pytest.raises(InvalidRequest, match="binary"):
        mask_pixels(np.where(_box_mask() > 0, 7, 0).astype(np.uint8))
    with pytest.raises(InvalidRequest, match="binary"):
        mask_pixels(np.where(_box_mask() > 0, 255, 1).astype(np.uint8))  # 1 and 255 mixed
    with pytest.raises(InvalidRequest, match="mode"):
        mask_pixels(Image.new("RGB", (16, 12)))


def test_encode_keeps_alpha_only_where_it_matters() -> None:
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    assert Image.open(io.BytesIO(encode_image(rgba, "png", 90))).mode == "RGB"
    assert Image.open(io.BytesIO(encode_image(rgba, "jpeg", 90))).mode == "RGB"
    rgba[:4, :, 3] = 0
    assert Image.open(io.BytesIO(encode_image(rgba, "png", 90))).mode == "RGBA"
    assert Image.open(io.BytesIO(encode_image(rgba, "webp", 90))).mode == "RGBA"
    with pytest.raises(InvalidImage, match="jpeg cannot keep transparency"):
        encode_image(rgba, "jpeg", 90)


OTHER = Option("other", OptionKind.IMAGE)
COLOUR = Option("color", OptionKind.LABEL, choices=("black", "red"))
NOISE = Option("seed", OptionKind.SEED, size=8)


def test_label_seed_and_image_options_check_and_convert() -> None:
    assert OTHER.wire.dtype == COLOUR.wire.dtype == "BYTES" and NOISE.wire.dtype == "INT64"
    assert (COLOUR.core.dtype, COLOUR.core.dims) == ("INT32", (1,))
    assert (NOISE.core.dtype, NOISE.core.dims) == ("FP32", (8,))
    pixels = np.zeros((6, 4, 3), np.uint8)
    assert parse_option(COLOUR, b"red", pixels).tolist() == [1]
    with pytest.raises(InvalidImage, match="color must be one of black, red; got 'blue'"):
        parse_option(COLOUR, b"blue", pixels)
    noise = parse_option(NOISE, np.int64(3), pixels)
    assert noise.shape == (8,) and np.array_equal(noise, parse_option(NOISE, 3, pixels))
    with pytest.raises(InvalidImage, match=r"seed must be an integer in \[0, 4294967295\]"):
        parse_option(NOISE, -1, pixels)
    other = np.full((6, 4, 3), 7, np.uint8)
    decoded = parse_option(OTHER, wire_value(OTHER, other), pixels)
    assert np.array_equal(decoded, other)
    with pytest.raises(InvalidImage, match="other is 6x4 but the image is 4x6"):
        parse_option(OTHER, wire_value(OTHER, other.transpose(1, 0, 2)), pixels)
    with pytest.raises(InvalidImage, match="could not decode other"):
        parse_option(OTHER, b"not an image", pixels)
    assert core_value(OTHER, other, np.zeros((2, 6, 4, 3), np.uint8)).shape == (2, 6, 4, 3)


def test_only_labels_have_choices_and_only_seeds_a_size() -> None:
    with pytest.raises(ValueError, match="labels have choices"):
        Option("color", OptionKind.LABEL)
    with pytest.raises(ValueError, match="seeds have a noise size"):
        Option("seed", OptionKind.SEED)
    with pytest.raises(ValueError, match="labels have choices"):
        Option("strength", OptionKind.STRENGTH, choices=("a",))
