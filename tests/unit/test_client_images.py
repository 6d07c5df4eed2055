"""Image-input conversion of the client: PIL, arrays, bytes, bad inputs, result decoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vitrine.client import InvalidRequest, ServerError
from vitrine.client._images import check_sides, decode_image, encode_image, to_rgb
from vitrine.registry import get_spec

SPEC = get_spec("superres_x2")


def _decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def _rgb(height: int = 16, width: int = 24) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def test_to_rgb_keeps_rgb() -> None:
    pixels = _rgb()
    np.testing.assert_array_equal(to_rgb(pixels), pixels)


@pytest.mark.parametrize("shape", [(16, 24), (16, 24, 1)])
def test_to_rgb_repeats_grey(shape: tuple[int, ...]) -> None:
    grey = np.arange(16 * 24, dtype=np.uint8).reshape(shape)
    rgb = to_rgb(grey)
    assert rgb.shape == (16, 24, 3)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[:, :, channel], grey.reshape(16, 24))


def test_to_rgb_drops_alpha() -> None:
    rgba = np.dstack([_rgb(), np.zeros((16, 24), np.uint8)])
    rgb = to_rgb(rgba)
    assert rgb.shape == (16, 24, 3) and rgb.flags.c_contiguous
    np.testing.assert_array_equal(rgb, rgba[:, :, :3])


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        (np.zeros((16, 16, 3), np.float32), "dtype uint8, got float32"),
        (np.zeros((16, 16, 2), np.uint8), "got (16, 16, 2)"),
        (np.zeros((2, 16, 16, 3), np.uint8), "got (2, 16, 16, 3)"),
        (np.zeros(16, np.uint8), "got (16,)"),
    ],
)
def test_to_rgb_rejects(pixels: np.ndarray, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
        to_rgb(pixels)


def test_encode_array_is_lossless_png() -> None:
    pixels = _rgb()
    decoded = _decode(encode_image(pixels, SPEC))
    assert decoded.format == "PNG" and decoded.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(decoded), pixels)


def test_encode_grey_array() -> None:
    grey = np.full((10, 12), 77, np.uint8)
    decoded = np.asarray(_decode(encode_image(grey, SPEC)))
    assert decoded.shape == (10, 12, 3) and (decoded == 77).all()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_encode_pil_as_rgb_png(mode: str) -> None:
    image = Image.fromarray(_rgb()).convert(mode)
    decoded = _decode(encode_image(image, SPEC))
    assert decoded.format == "PNG" and decoded.mode == "RGB" and decoded.size == (24, 16)
    np.testing.assert_array_equal(np.asarray(decoded), np.asarray(image.convert("RGB")))


def test_encode_bytes_unchanged() -> None:
    payload = b"\xff\xd8 not checked locally"
    assert encode_image(payload, SPEC) is payload


def test_encode_empty_bytes() -> None:
    with pytest.raises(InvalidRequest, match="image bytes are empty"):
        encode_image(b"", SPEC)


@pytest.mark.parametrize("bad", ["shoe.jpg", [[0, 0, 0]], None, bytearray(b"x")])
def test_encode_rejects_other_types(bad: object) -> None:
    with pytest.raises(InvalidRequest, match="PIL.Image.Image, a numpy.ndarray or encoded bytes"):
        encode_image(bad, SPEC)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ((7, 16), "image width 7 is outside superres_x2's limits 8..4096"),
        ((16, 4097), "image height 4097 is outside superres_x2's limits 8..4096"),
    ],
)
def test_encode_checks_sides(size: tuple[int, int], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        encode_image(Image.new("RGB", size), SPEC)


def test_check_sides_bounds_inclusive() -> None:
    check_sides(8, 4096, SPEC)
    check_sides(2048, 2048, get_spec("superres_x4"))  # its output: 8192 x 8192, 64 MP
    with pytest.raises(InvalidRequest, match="superres_x4's limits 8..2048"):
        check_sides(2049, 8, get_spec("superres_x4"))
    check_sides(512, 8, SPEC, raw=True)  # the core model's own sides
    with pytest.raises(InvalidRequest, match="superres_x2's limits 8..512"):
        check_sides(513, 8, SPEC, raw=True)


def test_the_pixel_limit_names_itself() -> None:
    """A photo within the side limits can still exceed the pixel count: 5000 x 5001."""
    with pytest.raises(InvalidRequest, match=r"25.0 MP\): exceeds the limit of 25.0 MP"):
        check_sides(5001, 5000, get_spec("denoise"))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_decode_image_to_rgb(fmt: str) -> None:
    buffer = io.BytesIO()
    Image.new("L", (9, 5), 200).save(buffer, format=fmt)
    image = decode_image(buffer.getvalue())
    assert image.mode == "RGB" and image.size == (9, 5)


def test_decode_garbage_is_server_error() -> None:
    with pytest.raises(ServerError, match="not a decodable image"):
        decode_image(b"garbage")
