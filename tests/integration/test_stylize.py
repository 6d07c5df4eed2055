"""Style transfer through the real server: every style, the strength blend, the raw path."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vitrine.client import InvalidRequest, VitrineClient
from vitrine.products import CAMPAIGN_STYLES
from vitrine.training.photos import load_split

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """An odd-sized crop of a validation photo (the model pads to a multiple of 4)."""
    return load_split("validation")["coffee"][:99, :130]


def test_every_style_keeps_the_size_and_looks_different(
    client: VitrineClient, photo: np.ndarray
) -> None:
    results = {style: client.stylize(photo, style=style) for style in CAMPAIGN_STYLES}
    for result in results.values():
        assert result.image.size == (130, 99) and result.model == "stylize_pipeline"
    pixels = [np.asarray(result.image, dtype=np.int16) for result in results.values()]
    for index, first in enumerate(pixels):
        for second in pixels[index + 1 :]:
            assert np.abs(first - second).mean() > 5  # four distinct looks


def test_strength_blends_the_photo_and_the_style(client: VitrineClient, photo: np.ndarray) -> None:
    untouched = client.stylize(photo, style="mosaic", strength=0.0)
    np.testing.assert_array_equal(np.asarray(untouched.image), photo)

    def change(strength: float) -> float:
        result = client.stylize(photo, style="mosaic", strength=strength)
        return float(np.abs(np.asarray(result.image, dtype=np.int16) - photo).mean())

    assert 0 < change(0.4) < change(1.0)


def test_raw_path_equals_the_pipeline(client: VitrineClient, photo: np.ndarray) -> None:
    pipeline = client.stylize(photo, style="grass", strength=0.7)
    raw = client.stylize_array(np.stack([photo, photo]), style="grass", strength=0.7)
    assert raw.array.shape == (2, 99, 130, 3)
    np.testing.assert_array_equal(raw.array[0], np.asarray(pipeline.image))
    np.testing.assert_array_equal(raw.array[1], raw.array[0])


def test_client_refuses_an_unknown_style_and_a_bad_strength(
    client: VitrineClient, photo: np.ndarray
) -> None:
    with pytest.raises(InvalidRequest, match="style must be one of brick, grass, mosaic"):
        client.stylize(photo, style="oil")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match=r"strength must be within \[0, 1\]"):
        client.stylize(photo, style="brick", strength=-0.1)
    with pytest.raises(InvalidRequest, match="outside stylize's limits 32..6000"):
        client.stylize(Image.new("RGB", (600, 20)), style="brick")
    assert client.stylize(photo, style="brick").image.size == (130, 99)  # still serving
