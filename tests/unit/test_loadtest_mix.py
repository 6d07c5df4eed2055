"""Traffic-mix files: the shipped storefront mix, parsing and concise errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vitrine.loadtest.mix import DEFAULT_MIX, MixError, load_mix, parse_mix
from vitrine.registry import SPECS


def _mix(**call: Any) -> dict[str, Any]:
    return {"description": "t", "call": [{"model": "superres_x2", **call}]}


def test_storefront_mix_is_the_default_and_valid() -> None:
    mix = load_mix()
    assert DEFAULT_MIX.name == "storefront.toml"
    assert mix.description.startswith("storefront")
    names = {call.name for call in mix.calls}
    assert {"superres_x2_pipeline", "superres_x4_pipeline", "superres_x2"} <= names
    assert sum(mix.shares().values()) == pytest.approx(1.0)
    assert mix.shares()["superres_x2_pipeline"] == pytest.approx(0.5)  # 6 of 12


def test_every_mix_name_is_a_triton_model_of_a_spec() -> None:
    models = {spec.pipeline for spec in SPECS.values()} | {s.core_model for s in SPECS.values()}
    assert {call.name for call in load_mix().calls} <= models


def test_defaults_come_from_the_spec() -> None:
    (call,) = parse_mix(_mix()).calls
    side = SPECS["superres_x2"].loadtest_side
    assert call.path == "pipeline" and call.weight == 1 and call.sizes == ((side, side),)
    assert (call.input_format, call.output_format, call.quality) == ("jpeg", "png", 90)


def test_sizes_take_sides_and_height_width_pairs() -> None:
    (call,) = parse_mix(_mix(sizes=[64, [48, 96]])).calls
    assert call.sizes == ((64, 64), (48, 96))


def test_raw_path_takes_a_batch() -> None:
    (call,) = parse_mix(_mix(path="raw", batch=4)).calls
    assert call.name == "superres_x2" and call.batch == 4


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"model": "superres_x3"}, "model must be one of"),
        ({"path": "fast"}, "path must be 'pipeline' or 'raw'"),
        ({"weight": 0}, "weight must be a positive integer"),
        ({"weight": 1.5}, "weight must be a positive integer"),
        ({"sizes": [4]}, "outside superres_x2's limits 8..4096"),
        ({"sizes": [513], "path": "raw"}, "outside superres_x2's limits 8..512"),
        ({"sizes": [[1, 2, 3]]}, "is not a side or"),
        ({"sizes": []}, "non-empty list"),
        ({"output_format": "gif"}, "output_format must be one of"),
        ({"input_format": "bmp"}, "input_format must be one of"),
        ({"quality": 101}, "quality must be in 1..100"),
        ({"path": "raw", "output_format": "png"}, "do not apply to the raw path"),
        ({"path": "raw", "batch": 99}, "exceeds superres_x2's max_batch_size"),
        ({"colour": "red"}, "do not apply to the pipeline path"),
    ],
)
def test_bad_calls_are_concise_errors(call: dict[str, Any], message: str) -> None:
    with pytest.raises(MixError, match=message):
        parse_mix(_mix(**call))


GENERATOR = SPECS["dcgan"]


def _generator_mix(**call: Any) -> dict[str, Any]:
    return {"call": [{"model": GENERATOR.name, **call}]}


def test_a_generator_call_asks_for_count_images_of_its_side() -> None:
    side = GENERATOR.loadtest_side
    (default,) = parse_mix(_generator_mix()).calls
    assert default.name == GENERATOR.pipeline and default.count == 1
    assert default.sizes == ((side, side),)
    (raw,) = parse_mix(_generator_mix(path="raw", count=4, sizes=[[side, side]])).calls
    assert raw.name == GENERATOR.core_model and raw.count == 4 and raw.sizes == ((side, side),)
    (pipeline,) = parse_mix(_generator_mix(count=16, sizes=[side], output_format="webp")).calls
    assert (pipeline.count, pipeline.output_format) == (16, "webp")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"sizes": [64]}, "does not apply: dcgan generates 32x32 images; omit sizes"),
        ({"sizes": [[32, 16]]}, "does not apply"),
        ({"count": 0}, "count must be a positive integer"),
        ({"count": 17}, "count 17 exceeds dcgan's max_count 16"),
        (
            {"input_format": "png"},
            r"\['input_format'\] do not apply to the pipeline path of generator",
        ),
        ({"path": "raw", "batch": 2}, r"\['batch'\] do not apply to the raw path of generator"),
        ({"path": "raw", "quality": 90}, "do not apply to the raw path of generator"),
    ],
)
def test_bad_generator_calls_are_concise_errors(call: dict[str, Any], message: str) -> None:
    with pytest.raises(MixError, match=message):
        parse_mix(_generator_mix(**call))


def test_count_is_for_generators_and_latent_edits_only() -> None:
    with pytest.raises(MixError, match=r"\['count'\] do not apply to the pipeline path$"):
        parse_mix(_mix(count=2))


LATENT_EDIT = SPECS["vae_edit"]


def _latent_edit_mix(**call: Any) -> dict[str, Any]:
    return {"call": [{"model": LATENT_EDIT.name, **call}]}


def test_a_latent_edit_call_uploads_a_catalog_image_for_count_variations() -> None:
    (default,) = parse_mix(_latent_edit_mix()).calls
    assert default.name == LATENT_EDIT.pipeline and default.count == 1
    assert default.sizes == ((32, 32),)
    (call,) = parse_mix(_latent_edit_mix(count=16, sizes=[32], input_format="png")).calls
    assert (call.count, call.input_format) == (16, "png")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"path": "raw"}, r"vae_edit has no raw path \(the client has no variations_array\)"),
        ({"path": "raw", "count": 2}, "has no raw path"),
        ({"sizes": [64]}, "does not apply: vae_edit takes 32x32 images only; omit sizes"),
        ({"sizes": [[32, 16]]}, "does not apply"),
        ({"count": 0}, "count must be a positive integer"),
        ({"count": 17}, "count 17 exceeds vae_edit's max_batch_size 16"),
        ({"batch": 2}, r"\['batch'\] do not apply to the pipeline path$"),
    ],
)
def test_bad_latent_edit_calls_are_concise_errors(call: dict[str, Any], message: str) -> None:
    with pytest.raises(MixError, match=message):
        parse_mix(_latent_edit_mix(**call))


def test_a_mix_needs_calls_and_known_keys() -> None:
    with pytest.raises(MixError, match="at least one"):
        parse_mix({"description": "empty"})
    with pytest.raises(MixError, match="unknown keys"):
        parse_mix({"calls": []})


def test_a_mix_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "mix.toml"
    path.write_text('[[call]]\nmodel = "superres_x4"\nweight = 2\n')
    (call,) = load_mix(path).calls
    assert call.name == "superres_x4_pipeline" and call.weight == 2
    path.write_text("[[call]\n")
    with pytest.raises(MixError, match="not valid TOML"):
        load_mix(path)
