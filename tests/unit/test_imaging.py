"""vitrine.imaging: decode/encode of untrusted image payloads."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from vitrine.imaging import InvalidImage, decode_image, encode_image
from vitrine.pipeline import OUTPUT_FORMATS
from vitrine.spec import ImageLimits

LIMITS = ImageLimits(min_side=8, max_side=512)


def _pixels(height: int = 24, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose IHDR (CRC fixed up) claims ``width`` x ``height``: a tiny bomb."""
    data = bytearray(_save(Image.new("RGB", (1, 1)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


# -- round trips -----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_round_trip(fmt: str) -> None:
    pixels = _pixels()
    encoded = encode_image(pixels, fmt, 95)
    decoded = decode_image(encoded, LIMITS)
    assert decoded.shape == pixels.shape
    assert decoded.dtype == np.uint8
    if fmt == "png":
        np.testing.assert_array_equal(decoded, pixels)


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_lossy_round_trip_is_close_on_smooth_images(fmt: str) -> None:
    ramp = np.linspace(0, 255, 64, dtype=np.float32)
    pixels = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], 128.0), axis=2)
    pixels = pixels.astype(np.uint8)
    decoded = decode_image(encode_image(pixels, fmt, 95), LIMITS)
    error = np.abs(decoded.astype(np.int16) - pixels.astype(np.int16))
    assert error.mean() < 3


def test_encode_format_is_case_insensitive_and_matches() -> None:
    for fmt, pil_name in (("PNG", "PNG"), ("Jpeg", "JPEG"), ("WEBP", "WEBP")):
        with Image.open(io.BytesIO(encode_image(_pixels(), fmt, 80))) as image:
            assert image.format == pil_name


def test_quality_changes_jpeg_size() -> None:
    pixels = _pixels(64, 64)
    assert len(encode_image(pixels, "jpeg", 10)) < len(encode_image(pixels, "jpeg", 95))


def test_encode_accepts_non_contiguous_pixels() -> None:
    pixels = _pixels(32, 32)[:, ::2]
    decoded = decode_image(encode_image(pixels, "png", 1), LIMITS)
    np.testing.assert_array_equal(decoded, pixels)


# -- modes -----------------------------------------------------------------------------------
def test_rgba_is_composited_on_white() -> None:
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red
    rgba[:8, :, 3] = 0  # top half transparent
    rgba[8:, :, 3] = 255  # bottom half opaque
    decoded = decode_image(_save(Image.fromarray(rgba, "RGBA"), "PNG"), LIMITS)
    assert decoded.shape == (16, 16, 3)
    np.testing.assert_array_equal(decoded[:8], 255)
    np.testing.assert_array_equal(decoded[8:], np.broadcast_to([255, 0, 0], (8, 16, 3)))


def test_half_transparent_pixels_blend_with_white() -> None:
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., 3] = 128  # half-transparent black
    decoded = decode_image(_save(Image.fromarray(rgba, "RGBA"), "PNG"), LIMITS)
    assert np.all(np.abs(decoded.astype(int) - 127) <= 1)


def test_palette_with_transparency_is_composited_on_white() -> None:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 0, 0, 255, 0])
    image.paste(1, (0, 4, 8, 8))
    decoded = decode_image(_save(image, "PNG", transparency=0), LIMITS)
    np.testing.assert_array_equal(decoded[:4], 255)
    np.testing.assert_array_equal(decoded[4:], np.broadcast_to([0, 255, 0], (4, 8, 3)))


def test_grey_becomes_three_equal_channels() -> None:
    grey = np.arange(0, 256, 4, dtype=np.uint8).reshape(8, 8)
    decoded = decode_image(_save(Image.fromarray(grey, "L"), "PNG"), LIMITS)
    assert decoded.shape == (8, 8, 3)
    for channel in range(3):
        np.testing.assert_array_equal(decoded[..., channel], grey)


def test_sixteen_bit_grey_is_scaled_to_eight_bits() -> None:
    grey16 = np.full((8, 8), 0xFF00, dtype=np.uint16)
    grey16[0, 0] = 0
    decoded = decode_image(_save(Image.fromarray(grey16), "PNG"), LIMITS)
    assert decoded[1, 1].tolist() == [255, 255, 255]
    assert decoded[0, 0].tolist() == [0, 0, 0]


def test_cmyk_jpeg_becomes_rgb() -> None:
    image = Image.new("CMYK", (16, 16), (0, 0, 0, 0))  # no ink: white
    decoded = decode_image(_save(image, "JPEG", quality=95), LIMITS)
    assert decoded.shape == (16, 16, 3)
    assert decoded.min() > 240


def test_exif_orientation_is_applied() -> None:
    pixels = np.zeros((10, 20, 3), dtype=np.uint8)  # 20 wide, 10 high
    pixels[:, :10] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    data = _save(Image.fromarray(pixels), "JPEG", quality=95, exif=exif.tobytes())
    decoded = decode_image(data, LIMITS)
    assert decoded.shape == (20, 10, 3)  # now 10 wide, 20 high
    # the white left half is now the top half
    assert decoded[:8].mean() > 200
    assert decoded[12:].mean() < 50


# -- rejected payloads -----------------------------------------------------------------------
def test_empty_payload() -> None:
    with pytest.raises(InvalidImage, match="^empty image payload$"):
        decode_image(b"", LIMITS)


def test_garbage_bytes() -> None:
    with pytest.raises(InvalidImage, match="could not decode image"):
        decode_image(b"this is not an image at all" * 10, LIMITS)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_payload(fmt: str) -> None:
    data = _save(Image.fromarray(_pixels(64, 64)), fmt)
    with pytest.raises(InvalidImage, match="could not decode image"):
        decode_image(data[: len(data) // 2], LIMITS)


def test_corrupt_png_data() -> None:
    data = bytearray(_save(Image.fromarray(_pixels(64, 64)), "PNG"))
    start = data.index(b"IDAT") + 4
    data[start + 10 : start + 200] = bytes(190)
    with pytest.raises(InvalidImage, match="could not decode image"):
        decode_image(bytes(data), LIMITS)


def test_load_truncated_images_switch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        decode_image(encode_image(_pixels(), "png", 1), LIMITS)


def test_gif_is_rejected_naming_the_format() -> None:
    data = _save(Image.fromarray(_pixels()), "GIF")
    with pytest.raises(InvalidImage, match="unsupported image format GIF"):
        decode_image(data, LIMITS)


def test_bmp_is_rejected() -> None:
    with pytest.raises(InvalidImage, match="BMP"):
        decode_image(_save(Image.fromarray(_pixels()), "BMP"), LIMITS)


def test_too_small() -> None:
    with pytest.raises(
        InvalidImage, match=r"image is 4x20: its short side 4 px is below the minimum of 8 px"
    ):
        decode_image(encode_image(_pixels(20, 4), "png", 1), LIMITS)


def test_too_large() -> None:
    with pytest.raises(InvalidImage, match=r"image is 513x16"):
        decode_image(encode_image(_pixels(16, 513), "png", 1), LIMITS)


def test_declared_size_is_checked_before_decoding() -> None:
    data = _png_claiming(5000, 4000)  # 20 Mpx declared in ~70 bytes
    assert len(data) < 100
    with pytest.raises(
        InvalidImage, match=r"image is 5000x4000: its long side 5000 px exceeds the limit of 512 px"
    ):
        decode_image(data, LIMITS)


def test_pillow_decompression_bomb_becomes_invalid_image() -> None:
    data = _png_claiming(100_000, 100_000)  # beyond Pillow's own bomb limit
    with pytest.raises(
        InvalidImage, match="image declares more than 179 MP: exceeds the limit of 0.3 MP"
    ):
        decode_image(data, LIMITS)


def test_invalid_image_is_a_value_error() -> None:
    assert issubclass(InvalidImage, ValueError)


# -- encode arguments ------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["gif", "bmp", "", "jpg2000"])
def test_encode_rejects_unknown_format(fmt: str) -> None:
    with pytest.raises(InvalidImage, match="unsupported output format"):
        encode_image(_pixels(), fmt, 90)


@pytest.mark.parametrize("quality", [0, 101, -5])
def test_encode_rejects_quality_out_of_range(quality: int) -> None:
    with pytest.raises(InvalidImage, match=r"quality must be within \[1, 100\]"):
        encode_image(_pixels(), "jpeg", quality)


@pytest.mark.parametrize("quality", [90.0, "90", True, None])
def test_encode_rejects_non_integer_quality(quality: object) -> None:
    with pytest.raises(InvalidImage, match="quality must be an integer"):
        encode_image(_pixels(), "jpeg", quality)  # type: ignore[arg-type]


def test_encode_accepts_numpy_integer_quality() -> None:
    assert encode_image(_pixels(), "webp", np.int32(70))[:4] == b"RIFF"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pixels", "match"),
    [
        (np.zeros((8, 8, 3), dtype=np.float32), "must be uint8"),
        (np.zeros((8, 8), dtype=np.uint8), r"shape \(H, W, 3 or 4\)"),
        (np.zeros((8, 8, 2), dtype=np.uint8), r"shape \(H, W, 3 or 4\)"),
        (np.zeros((0, 8, 3), dtype=np.uint8), "must not be empty"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_encode_rejects_bad_pixels(pixels: object, match: str) -> None:
    with pytest.raises(InvalidImage, match=match):
        encode_image(pixels, "png", 90)  # type: ignore[arg-type]
