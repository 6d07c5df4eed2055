"""VAE variations and interpolations of catalog images through the real server."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from PIL import Image

from vitrine.client import AsyncVitrineClient, InvalidRequest, VitrineClient
from vitrine.serving.embedded import EmbeddedTriton
from vitrine.training.catalog_data import load_catalog

pytestmark = pytest.mark.integration


def _pixels(images: list[Image.Image]) -> np.ndarray:
    return np.stack([np.asarray(image, dtype=np.int16) for image in images])


@pytest.fixture(scope="module")
def dresses() -> tuple[np.ndarray, np.ndarray]:
    """Two red dresses of the test catalog (never trained on)."""
    catalog = load_catalog("test")
    chosen = np.flatnonzero((catalog.categories == 3) & (catalog.colours == 3))[:2]
    return catalog.images[chosen[0]], catalog.images[chosen[1]]


LABELS = {"category": "dress", "color": "red"}


def test_variations_are_seeded_and_count_independent(
    client: VitrineClient, dresses: tuple[np.ndarray, np.ndarray]
) -> None:
    image = dresses[0]
    four = client.variations(image, **LABELS, count=4, seed=7)
    assert four.model == "vae_edit_pipeline" and len(four.images) == 4
    assert all(variation.size == (32, 32) for variation in four.images)
    assert len({bytes(data) for data in four.data}) == 4  # four different variations
    assert client.variations(image, **LABELS, count=4, seed=7).data == four.data
    assert client.variations(image, **LABELS, count=1, seed=9).data == four.data[2:3]  # seed + i


def test_variations_stay_near_the_image_and_spread_widens_them(
    client: VitrineClient, dresses: tuple[np.ndarray, np.ndarray]
) -> None:
    image = dresses[0]
    still = client.variations(image, **LABELS, count=3, spread=0.0)
    assert still.data[0] == still.data[1] == still.data[2]  # no noise: the reconstruction
    reconstruction = _pixels(still.images[:1])
    assert np.abs(reconstruction - image.astype(np.int16)).mean() < 40  # close to the photo

    def distance(spread: float) -> float:
        varied = _pixels(client.variations(image, **LABELS, count=6, spread=spread).images)
        return float(np.abs(varied - reconstruction).mean())

    assert 0 < distance(0.3) < distance(1.0)


def test_interpolation_runs_from_one_image_to_the_other(
    client: VitrineClient, dresses: tuple[np.ndarray, np.ndarray]
) -> None:
    first, second = dresses
    path = client.interpolate(first, second, **LABELS, steps=5)
    assert len(path.images) == 5
    start = client.variations(first, **LABELS, count=1, spread=0.0)
    end = client.variations(second, **LABELS, count=1, spread=0.0)
    assert path.data[0] == start.data[0]
    assert np.abs(_pixels(path.images[-1:]) - _pixels(end.images)).max() <= 2  # float lerp
    steps = _pixels(path.images)
    towards_end = [np.abs(step - steps[-1]).mean() for step in steps]
    assert towards_end == sorted(towards_end, reverse=True)  # every step closer to the end


def test_async_interpolate_equals_sync(
    vitrine_server: EmbeddedTriton,
    client: VitrineClient,
    dresses: tuple[np.ndarray, np.ndarray],
) -> None:
    async def run() -> list[bytes]:
        async with AsyncVitrineClient(vitrine_server.grpc_url, timeout=60.0) as remote:
            return (await remote.interpolate(*dresses, **LABELS, steps=3)).data

    assert asyncio.run(run()) == client.interpolate(*dresses, **LABELS, steps=3).data


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"color": "navy"}, "color must be one of"),
        ({"count": 0}, r"count must be an int in 1\.\.16"),
        ({"count": 17}, r"count must be an int in 1\.\.16"),
        ({"seed": -1}, r"seed must be an integer in \[0, 4294967295\]"),
        ({"spread": 1.5}, r"spread must be within \[0, 1\]"),
        ({"output_format": "bmp"}, "output_format must be one of"),
    ],
)
def test_client_refuses_bad_variations(
    client: VitrineClient,
    dresses: tuple[np.ndarray, np.ndarray],
    call: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        client.variations(dresses[0], **(LABELS | call))  # type: ignore[arg-type]


def test_interpolation_refuses_mismatched_sizes_and_one_step(
    client: VitrineClient, dresses: tuple[np.ndarray, np.ndarray]
) -> None:
    first, second = dresses
    with pytest.raises(InvalidRequest, match="other is 32x24 but the image is 32x32"):
        client.interpolate(first, second[:24], **LABELS)
    with pytest.raises(InvalidRequest, match=r"steps must be an int in 2\.\.16"):
        client.interpolate(first, second, **LABELS, steps=1)
    with pytest.raises(InvalidRequest, match="32"):  # the catalog side, checked before sending
        client.variations(np.zeros((40, 40, 3), np.uint8), **LABELS)
    assert len(client.interpolate(first, second, **LABELS, steps=2).images) == 2
