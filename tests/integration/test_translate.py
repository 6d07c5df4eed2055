"""Photo <-> sketch translation through the real server: both directions, the raw path."""

from __future__ import annotations

import numpy as np
import pytest

from vitrine.client import InvalidRequest, VitrineClient
from vitrine.training.photo_sketch import pencil_sketch
from vitrine.training.photos import load_split

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """An odd-sized crop of a validation photo, which training never saw."""
    return load_split("validation")["chelsea"][:101, :90]


def test_both_directions_keep_the_size_and_differ(client: VitrineClient, photo: np.ndarray) -> None:
    sketch = client.translate(photo, direction="photo_to_sketch")
    back = client.translate(pencil_sketch(photo), direction="sketch_to_photo")
    assert sketch.image.size == back.image.size == (90, 101)
    assert sketch.model == "translate_pipeline"
    drawn = np.asarray(sketch.image, dtype=np.int16)
    painted = np.asarray(back.image, dtype=np.int16)
    assert np.abs(drawn - painted).mean() > 5


def test_raw_path_equals_the_pipeline(client: VitrineClient, photo: np.ndarray) -> None:
    pipeline = client.translate(photo, direction="photo_to_sketch")
    raw = client.translate_array(photo, direction="photo_to_sketch")
    np.testing.assert_array_equal(raw.array, np.asarray(pipeline.image))  # one image, unbatched


def test_client_refuses_an_unknown_direction(client: VitrineClient, photo: np.ndarray) -> None:
    with pytest.raises(InvalidRequest, match="direction must be one of photo_to_sketch"):
        client.translate(photo, direction="photo_to_oil")  # type: ignore[arg-type]
    assert client.translate(photo, direction="sketch_to_photo").image.size == (90, 101)
