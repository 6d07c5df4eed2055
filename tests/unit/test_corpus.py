"""The training corpora: the declared photos and split, their files, the patch sampler, the
``[data]`` table, the GPU presets, and that the default corpus's batches did not change."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from vitrine.errors import ConfigError, MissingFile
from vitrine.paths import weights_path
from vitrine.registry import SPECS, get_spec
from vitrine.training import corpus
from vitrine.training.config import load_config
from vitrine.training.corpus import PACKAGED_PHOTOS, PackagedPhoto, PatchSampler, data_settings
from vitrine.training.photos import TRAIN_PHOTOS, VALIDATION_PHOTOS
from vitrine.training.trainer import _recipe, train

MATE = ("Aqua", "Blinds", "Dune", "Garden", "GreenMeadow", "RainDrops", "Storm", "TwoWings")
MATE += ("Wood", "YellowFlower")
PLASMA = ("BytheWater", "ColdRipple", "DarkestHour", "FallenLeaf", "Grey", "Kite")
PLASMA += ("OneStandsOut", "Path", "summer_1am")
GPU_MODELS = ("denoise", "superres_x2", "superres_x4", "inpaint", "enhance")


def test_the_corpus_is_exactly_the_named_photos() -> None:
    by_package = {
        package: {photo.name for photo in PACKAGED_PHOTOS if photo.package == package}
        for package in ("mate-backgrounds", "plasma-workspace-wallpapers")
    }
    assert by_package == {"mate-backgrounds": set(MATE), "plasma-workspace-wallpapers": set(PLASMA)}
    assert len(PACKAGED_PHOTOS) == len(MATE) + len(PLASMA)


def test_the_split_is_by_whole_image_with_colour_photos_in_validation() -> None:
    train = corpus.corpus_names("photos", "train")
    validation = corpus.corpus_names("photos", "validation")
    assert not set(train) & set(validation)
    assert set(train) | set(validation) == set(TRAIN_PHOTOS + VALIDATION_PHOTOS + MATE + PLASMA)
    assert corpus.corpus_names("skimage", "train") == TRAIN_PHOTOS
    assert corpus.corpus_names("skimage", "validation") == VALIDATION_PHOTOS
    new = [name for name in validation if name not in VALIDATION_PHOTOS]
    assert len(new) >= 4
    for name in new:  # colour: the channels differ
        photo = corpus.load_corpus("photos", "validation")[name]
        assert np.abs(photo[..., 0].astype(int) - photo[..., 2]).mean() > 5, name


def test_each_installed_photo_is_the_largest_file_of_its_folder() -> None:
    for photo in PACKAGED_PHOTOS:
        path = photo.installed_file()
        assert path.suffix in (".jpg", ".png") and path.is_file()
        with Image.open(path) as image:
            pixels = image.width * image.height
        folder = Path(photo.path)
        if folder.is_dir():
            for other in folder.iterdir():
                with Image.open(other) as image:
                    assert image.width * image.height <= pixels, other
        assert pixels >= 1280 * 1024, photo.name


def test_a_missing_photo_names_its_package_and_make_setup(tmp_path: Path) -> None:
    absent = PackagedPhoto("Nothing", "some-package", str(tmp_path / "absent.jpg"), "train")
    with pytest.raises(MissingFile, match=r"'some-package'.*make setup"):
        absent.installed_file()


def test_a_carried_copy_is_read_through_the_corpus_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.new("RGB", (8, 6), (10, 20, 30)).save(tmp_path / "Aqua.jpg")
    monkeypatch.setenv(corpus.CORPUS_DIR_VARIABLE, str(tmp_path))
    assert corpus.photo_file("Aqua") == tmp_path / "Aqua.jpg"
    with pytest.raises(MissingFile, match="make gpu-corpus"):
        corpus.photo_file("Kite")


def test_the_sampler_crops_windows_of_the_photos_at_random_scales() -> None:
    photo = np.random.default_rng(1).integers(0, 256, (64, 200, 3), dtype=np.uint8)
    crop = PatchSampler([photo], (1.0, 1.0))(np.random.default_rng(2), 64)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    turns = [np.rot90(crop, -k) for k in range(4)]
    views = turns + [turn[:, ::-1] for turn in turns]
    windows = [photo[:, x : x + 64] for x in range(200 - 63)]
    assert any((w == v).all() for w in windows for v in views), "a window, flipped or turned"
    shrunk = PatchSampler([photo], (0.25, 0.25))(np.random.default_rng(2), 16)
    assert shrunk.shape == (16, 16, 3) and shrunk.std() < crop.std() / 2  # area-averaged noise
    sampler = PatchSampler([photo], (0.25, 1.0))
    first, second = (sampler(np.random.default_rng(5), 32) for _ in range(2))
    assert (first == second).all(), "deterministic in its generator"


def test_the_sampler_draws_photos_by_pixel_count() -> None:
    small = np.zeros((40, 40, 3), np.uint8)
    large = np.full((120, 120, 3), 255, np.uint8)
    sampler = PatchSampler([small, large], (1.0, 1.0))
    rng = np.random.default_rng(0)
    bright = np.mean([sampler(rng, 16).mean() > 128 for _ in range(400)])
    assert abs(bright - 0.9) < 0.05  # 14400 of 16000 pixels


def test_the_data_table_is_checked() -> None:
    assert data_settings({}) == corpus.DataSettings()
    assert data_settings({"corpus": "photos", "scale": [0.5, 1.0]}).scale == (0.5, 1.0)
    with pytest.raises(ConfigError, match="corpus"):
        data_settings({"corpus": "imagenet"})
    with pytest.raises(ConfigError, match="scale"):
        data_settings({"scale": [0.0, 1.0]})
    with pytest.raises(ConfigError, match="unknown"):
        data_settings({"corpora": "photos"})


@pytest.mark.parametrize("name", GPU_MODELS)
def test_gpu_presets_train_on_the_photos_in_bfloat16(name: str) -> None:
    gpu, smoke = load_config(name, "gpu"), load_config(name, "gpu_smoke")
    assert gpu.data["corpus"] == smoke.data["corpus"] == "photos"
    assert gpu.precision == "bfloat16" and gpu.eval_every > gpu.steps
    assert gpu.as_dict()["data"] == gpu.data
    sidecar = weights_path(get_spec(name).weights_name).with_suffix(".json")
    shipped = json.loads(sidecar.read_text())["training"]
    assert load_config(name, "full").as_dict().get("data") == shipped.get("data")


# Two batches (steps 0 and 7) of each default-corpus config, hashed; the same as before the
# [data] table existed (the shipped weights' data). enhance's full preset trains on the photos.
DEFAULT_BATCHES = {
    ("denoise", "full"): "5781e700c45e2f44",
    ("superres_x2", "full"): "183762700551ba65",
    ("superres_x4", "full"): "0efc92e682f17399",
    ("inpaint", "full"): "5e143ead1d593801",
    ("denoise", "smoke"): "c1ba29174bc7843e",
    ("inpaint", "smoke"): "cf4c999535970ee2",
}


@pytest.mark.parametrize(("name", "preset"), DEFAULT_BATCHES)
def test_the_default_corpus_batches_are_unchanged(name: str, preset: str) -> None:
    recipe = _recipe(get_spec(name), load_config(name, preset))
    digest = hashlib.sha256()
    for step in (0, 7):
        for tensor in recipe.batch(step):
            digest.update(tensor.numpy().tobytes())
    assert digest.hexdigest()[:16] == DEFAULT_BATCHES[(name, preset)]


@pytest.mark.expensive
def test_worker_processes_make_the_same_batches_as_the_thread(tmp_path: Path) -> None:
    spec = SPECS["superres_x2"]
    runs = {
        workers: train(
            spec,
            "gpu_smoke",
            run_dir=tmp_path / str(workers),
            out_dir=tmp_path / str(workers),
            progress=False,
            workers=workers,
        )
        for workers in (0, 2)
    }
    a, b = (load_file(str(result.weights)) for result in runs.values() if result is not None)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    meta = json.loads((tmp_path / "2" / "superres_x2.json").read_text())
    assert meta["data_workers"] == 2 and meta["data"]["corpus"] == "photos"
    assert set(meta["data"]["packaged_files"]) == {photo.name for photo in PACKAGED_PHOTOS}


@pytest.mark.expensive
def test_a_spent_budget_ends_the_run_with_its_final_checkpoint(tmp_path: Path) -> None:
    result = train(
        SPECS["superres_x2"],
        "gpu_smoke",
        run_dir=tmp_path,
        out_dir=tmp_path,
        progress=False,
        budget_seconds=0.0,
    )
    assert result is not None
    meta = json.loads(result.weights.with_suffix(".json").read_text())
    assert (meta["steps"], meta["planned_steps"], meta["budget_seconds"]) == (1, 4, 0.0)
    assert "margins" in meta["metrics"]
