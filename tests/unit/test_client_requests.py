"""Request building, local validation and response parsing of the client."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace
from typing import Any, get_args, get_type_hints

import numpy as np
import pytest
from PIL import Image
from tritonclient.utils import deserialize_bytes_tensor

from vitrine.client import (
    ArrayResult,
    AsyncVitrineClient,
    ImageResult,
    InvalidRequest,
    ServerError,
    VitrineClient,
)
from vitrine.client._requests import (
    plan_edit,
    plan_edit_array,
    resolve_spec,
)
from vitrine.options import BACKGROUND_NAMES
from vitrine.pipeline import (
    ENCODED_INPUT,
    ENCODED_OUTPUT,
    FORMAT_INPUT,
    OUTPUT_FORMATS,
    PIPELINE_INPUTS,
    PIPELINE_OUTPUTS,
    QUALITY_INPUT,
)
from vitrine.registry import SPECS, get_spec, specs_for_method


def _planner(method: str) -> Any:
    """``plan_edit`` of ``method``, with its option keywords (the selector included) and
    ``output_format``/``quality`` as the client method takes them."""

    def plan(image: Any, **kwargs: Any) -> Any:
        output = {key: kwargs.pop(key) for key in ("output_format", "quality")}
        return plan_edit(method, image, options=kwargs, **output)

    return plan


def _array_planner(method: str) -> Any:
    return lambda pixels, **options: plan_edit_array(method, pixels, options=options)


_plan_super_resolve = _planner("super_resolve")
_plan_super_resolve_array = _array_planner("super_resolve")
_plan_stylize = _planner("stylize")
_plan_stylize_array = _array_planner("stylize")
_plan_translate = _planner("translate")
_plan_translate_array = _array_planner("translate")


def _content(infer_input: Any) -> np.ndarray:
    """The data an InferInput carries, as numpy."""
    raw = infer_input._get_content()
    if infer_input.datatype() == "BYTES":
        return deserialize_bytes_tensor(raw).reshape(infer_input.shape())
    dtype = {"UINT8": np.uint8, "INT32": np.int32}[infer_input.datatype()]
    return np.frombuffer(raw, dtype).reshape(infer_input.shape())


def _png(size: tuple[int, int] = (20, 12)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _result(outputs: dict[str, np.ndarray], version: str = "3") -> Any:
    response = SimpleNamespace(model_version=version)
    return SimpleNamespace(as_numpy=outputs.get, get_response=lambda: response)


# --- static types pinned to the specs -------------------------------------------------


@pytest.mark.parametrize("client", [VitrineClient, AsyncVitrineClient])
@pytest.mark.parametrize("method", ["super_resolve", "super_resolve_array"])
def test_scale_literal_matches_specs(client: type, method: str) -> None:
    hints = get_type_hints(getattr(client, method))
    assert set(get_args(hints["scale"])) == set(specs_for_method("super_resolve"))


@pytest.mark.parametrize("client", [VitrineClient, AsyncVitrineClient])
def test_output_format_literal_matches_pipeline(client: type) -> None:
    hints = get_type_hints(client.super_resolve)
    assert get_args(hints["output_format"]) == OUTPUT_FORMATS


@pytest.mark.parametrize("client", [VitrineClient, AsyncVitrineClient])
@pytest.mark.parametrize("method", ["remove_background", "remove_background_array"])
def test_background_literal_matches_the_named_backgrounds(client: type, method: str) -> None:
    named, colour = get_args(get_type_hints(getattr(client, method))["background"])
    assert get_args(named) == BACKGROUND_NAMES
    assert get_args(colour) == (int, int, int)


@pytest.mark.parametrize("client", [VitrineClient, AsyncVitrineClient])
@pytest.mark.parametrize("method", ["stylize", "stylize_array"])
def test_style_literal_matches_the_spec(client: type, method: str) -> None:
    (style,) = [o for o in SPECS["stylize"].options if o.name == "style"]
    assert get_args(get_type_hints(getattr(client, method))["style"]) == style.choices


@pytest.mark.parametrize("client", [VitrineClient, AsyncVitrineClient])
@pytest.mark.parametrize("method", ["translate", "translate_array"])
def test_direction_literal_matches_the_spec(client: type, method: str) -> None:
    (direction,) = SPECS["translate"].options
    assert get_args(get_type_hints(getattr(client, method))["direction"]) == direction.choices


def test_translate_plans_check_the_direction_before_sending() -> None:
    image = np.zeros((40, 48, 3), np.uint8)
    plan = _plan_translate(image, direction="photo_to_sketch", output_format="png", quality=90)
    assert plan.model == "translate_pipeline" and plan.inputs[1].name() == "direction"
    raw = _plan_translate_array(image, direction="sketch_to_photo")
    assert raw.model == "translate" and [i.name() for i in raw.inputs] == ["image", "direction"]
    with pytest.raises(InvalidRequest, match="direction must be one of photo_to_sketch"):
        _plan_translate(image, direction="photo_to_oil", output_format="png", quality=90)


def test_stylize_plans_check_style_and_strength_before_sending() -> None:
    image = np.zeros((40, 48, 3), np.uint8)
    plan = _plan_stylize(image, style="mosaic", strength=0.5, output_format="png", quality=90)
    assert plan.model == "stylize_pipeline"
    assert [i.name() for i in plan.inputs][1:3] == ["style", "strength"]
    raw = _plan_stylize_array(image, style="grass", strength=1.0)
    assert raw.model == "stylize" and [i.name() for i in raw.inputs] == [
        "image",
        "style",
        "strength",
    ]
    with pytest.raises(InvalidRequest, match="style must be one of brick, grass"):
        _plan_stylize(image, style="oil", strength=1.0, output_format="png", quality=90)
    with pytest.raises(InvalidRequest, match=r"strength must be within \[0, 1\]"):
        _plan_stylize_array(image, style="grass", strength=1.5)


def test_only_a_strength_the_spec_marks_auto_takes_auto() -> None:
    image = np.zeros((40, 48, 3), np.uint8)
    raw = plan_edit_array("denoise", image, options={"strength": "auto"})
    assert raw.inputs[1].name() == "strength"
    with pytest.raises(InvalidRequest, match=r"strength must be a number in \[0, 1\], got 'auto'$"):
        plan_edit_array("stylize", image, options={"style": "grass", "strength": "auto"})
    with pytest.raises(InvalidRequest, match=r"got 'full' \(or 'auto'\)$"):
        plan_edit_array("denoise", image, options={"strength": "full"})


def test_pipeline_tensor_names_come_from_pipeline_module() -> None:
    assert [t.name for t in PIPELINE_INPUTS] == [ENCODED_INPUT, FORMAT_INPUT, QUALITY_INPUT]
    assert [t.name for t in PIPELINE_OUTPUTS] == [ENCODED_OUTPUT]


# --- selector ----------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 4, np.int64(4)])
def test_resolve_spec(scale: int) -> None:
    assert resolve_spec("super_resolve", "scale", scale).name == f"superres_x{int(scale)}"


@pytest.mark.parametrize("scale", [3, 0, True, "2", None, [2]])
def test_resolve_spec_unknown_names_allowed(scale: object) -> None:
    with pytest.raises(
        InvalidRequest, match=re.escape(f"scale must be one of 2, 4; got {scale!r}")
    ):
        resolve_spec("super_resolve", "scale", scale)


# --- pipeline requests ------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 4])
def test_plan_super_resolve_builds_pipeline_request(scale: int) -> None:
    data = _png()
    plan = _plan_super_resolve(data, scale=scale, output_format="webp", quality=80)
    assert plan.model == f"superres_x{scale}_pipeline" == get_spec(f"superres_x{scale}").pipeline
    shapes = {i.name(): (i.datatype(), i.shape()) for i in plan.inputs}
    assert shapes == {
        "image_bytes": ("BYTES", [1, 1]),
        "format": ("BYTES", [1, 1]),
        "quality": ("INT32", [1, 1]),
    }
    values = {i.name(): _content(i)[0, 0] for i in plan.inputs}
    assert values == {"image_bytes": data, "format": b"webp", "quality": 80}
    assert [o.name() for o in plan.outputs] == ["result_bytes"]


def test_plan_super_resolve_encodes_pil_to_png() -> None:
    image = Image.new("RGB", (30, 10), (1, 2, 3))
    plan = _plan_super_resolve(image, scale=2, output_format="png", quality=95)
    sent = Image.open(io.BytesIO(_content(plan.inputs[0])[0, 0]))
    assert sent.format == "PNG" and sent.size == (30, 10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output_format": "gif"}, "output_format must be one of 'png', 'jpeg', 'webp'; got 'gif'"),
        ({"output_format": "PNG"}, "got 'PNG'"),
        ({"quality": 0}, "quality must be an int in 1..100; got 0"),
        ({"quality": 101}, "got 101"),
        ({"quality": 90.0}, "got 90.0"),
        ({"quality": True}, "got True"),
        ({"scale": 3}, "scale must be one of 2, 4; got 3"),
    ],
)
def test_plan_super_resolve_rejects(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"scale": 2, "output_format": "png", "quality": 95, **kwargs}
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        _plan_super_resolve(_png(), **args)


def test_plan_super_resolve_checks_limits_of_chosen_scale() -> None:
    image = Image.new("RGB", (3000, 2000))
    _plan_super_resolve(image, scale=2, output_format="jpeg", quality=95)
    with pytest.raises(InvalidRequest, match="superres_x4's limits 8..2048"):
        _plan_super_resolve(image, scale=4, output_format="jpeg", quality=95)


def test_parse_image_result() -> None:
    data = _png((20, 12))
    plan = _plan_super_resolve(_png(), scale=2, output_format="png", quality=95)
    result = plan.parse(_result({"result_bytes": np.array([[data]], dtype=object)}), 12.5)
    assert isinstance(result, ImageResult)
    assert result.data == data and result.format == "png"
    assert result.image.mode == "RGB" and result.image.size == (20, 12)
    assert (result.model, result.model_version, result.latency_ms) == (
        "superres_x2_pipeline",
        "3",
        12.5,
    )


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({}, "has no output 'result_bytes'"),
        ({"result_bytes": np.array([[b"a", b"b"]], dtype=object)}, "not one bytes element"),
        ({"result_bytes": np.array([[b"junk"]], dtype=object)}, "not a decodable image"),
    ],
)
def test_parse_image_result_malformed(outputs: dict[str, np.ndarray], message: str) -> None:
    plan = _plan_super_resolve(_png(), scale=2, output_format="png", quality=95)
    with pytest.raises(ServerError, match=message):
        plan.parse(_result(outputs), 1.0)


# --- raw array requests -----------------------------------------------------------------


@pytest.mark.parametrize("shape", [(10, 12, 3), (3, 10, 12, 3)])
def test_plan_super_resolve_array_request(shape: tuple[int, ...]) -> None:
    pixels = np.arange(np.prod(shape), dtype=np.uint64).astype(np.uint8).reshape(shape)
    plan = _plan_super_resolve_array(pixels, scale=4)
    assert plan.model == "superres_x4"
    (infer_input,) = plan.inputs
    batch_shape = [1, *shape] if len(shape) == 3 else list(shape)
    assert (infer_input.name(), infer_input.datatype(), infer_input.shape()) == (
        "image",
        "UINT8",
        batch_shape,
    )
    np.testing.assert_array_equal(_content(infer_input).reshape(shape), pixels)
    assert [o.name() for o in plan.outputs] == ["result"]


@pytest.mark.parametrize("shape", [(10, 12, 3), (2, 10, 12, 3)])
def test_parse_array_result_keeps_rank(shape: tuple[int, ...]) -> None:
    pixels = np.zeros(shape, np.uint8)
    plan = _plan_super_resolve_array(pixels, scale=2)
    out = np.ones((shape[0] if len(shape) == 4 else 1, 20, 24, 3), np.uint8)
    result = plan.parse(_result({"result": out}, version="1"), 4.0)
    assert isinstance(result, ArrayResult)
    assert result.array.shape == (*shape[:-3], 20, 24, 3)
    assert (result.model, result.model_version, result.latency_ms) == ("superres_x2", "1", 4.0)


@pytest.mark.parametrize(
    "out", [np.ones((1, 20, 20, 3), np.uint8), np.ones((1, 20, 24, 3), np.float32)]
)
def test_parse_array_result_wrong_output(out: np.ndarray) -> None:
    plan = _plan_super_resolve_array(np.zeros((10, 12, 3), np.uint8), scale=2)
    with pytest.raises(ServerError, match=r"expected uint8 \(1, 20, 24, 3\)"):
        plan.parse(_result({"result": out}), 1.0)


@pytest.mark.parametrize(
    ("pixels", "scale", "message"),
    [
        ([[[0, 0, 0]]], 2, "pixels must be a numpy.ndarray, got list"),
        (np.zeros((16, 16, 3), np.float32), 2, "pixels must have dtype uint8, got float32"),
        (np.zeros((16, 16), np.uint8), 2, "shape (H, W, 3) or (N, H, W, 3), got shape (16, 16)"),
        (np.zeros((1, 1, 16, 16, 3), np.uint8), 2, "got shape (1, 1, 16, 16, 3)"),
        (np.zeros((16, 16, 4), np.uint8), 2, "pixels must have 3 channels (last axis), got 4"),
        (np.zeros((0, 16, 16, 3), np.uint8), 2, "batch of 0 images; superres_x2 accepts 1 to 8"),
        (np.zeros((9, 16, 16, 3), np.uint8), 2, "batch of 9 images; superres_x2 accepts 1 to 8"),
        (
            np.zeros((7, 16, 3), np.uint8),
            2,
            "image height 7 is outside superres_x2's limits 8..512",
        ),
        (np.zeros((16, 300, 3), np.uint8), 4, "image width 300 is outside superres_x4's limits"),
        (np.zeros((16, 16, 3), np.uint8), 3, "scale must be one of 2, 4; got 3"),
    ],
)
def test_plan_super_resolve_array_rejects(pixels: Any, scale: int, message: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        _plan_super_resolve_array(pixels, scale=scale)


@pytest.mark.parametrize(
    ("shape", "scale"),
    [((8, 8, 8, 3), 2), ((1, 512, 512, 3), 2), ((256, 8, 3), 4), ((8, 256, 256, 3), 4)],
)
def test_plan_super_resolve_array_accepts_limits(shape: tuple[int, ...], scale: int) -> None:
    """The largest batch and the smallest and largest sides go to the core model as given."""
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    plan = _plan_super_resolve_array(pixels, scale=scale)
    assert plan.model == f"superres_x{scale}"
    (infer_input,) = plan.inputs
    assert infer_input.shape() == ([1, *shape] if len(shape) == 3 else list(shape))
    np.testing.assert_array_equal(_content(infer_input).reshape(shape), pixels)


def test_a_large_photo_gets_a_longer_default_deadline() -> None:
    """The deadline grows with the photo, by the editor's seconds per megapixel: whether the
    photo is a PIL image, an array or encoded bytes (read from the header)."""
    spec = SPECS["denoise"]
    photo = Image.new("RGB", (4000, 3000))
    plan = plan_edit("denoise", photo, options={"strength": 1.0}, output_format="jpeg", quality=90)
    assert plan.work_seconds == pytest.approx(spec.seconds_per_megapixel * 12.0)
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG")
    from_bytes = plan_edit(
        "denoise", buffer.getvalue(), options={"strength": 1.0}, output_format="jpeg", quality=90
    )
    assert from_bytes.work_seconds == plan.work_seconds
    small = plan_edit("denoise", _png(), options={"strength": 1.0}, output_format="png", quality=9)
    assert small.work_seconds < 1.0
    with VitrineClient("localhost:1", timeout=30.0) as client:
        assert client._deadline(None, plan.work_seconds).seconds == pytest.approx(30.0 + 240.0)
        assert client._deadline(5.0, plan.work_seconds).seconds == 5.0  # the caller's own
