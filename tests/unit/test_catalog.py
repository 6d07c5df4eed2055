"""The catalog: explicit registry, clear errors, derived names."""

from __future__ import annotations

import dataclasses

import pytest

from vitrine.registry import SPECS, _registry, get_spec, specs_for_method
from vitrine.spec import TensorSpec


def test_registry_refuses_duplicates() -> None:
    spec = SPECS["superres_x2"]
    with pytest.raises(ValueError, match="duplicate spec name 'superres_x2'"):
        _registry([spec, spec])


def test_unknown_model_lists_the_known() -> None:
    with pytest.raises(KeyError, match="superres_x2, superres_x4"):
        get_spec("superres_x3")


def test_names_derive_from_the_spec_name() -> None:
    spec = get_spec("superres_x4")
    assert (spec.core_model, spec.pipeline, spec.decode_model) == (
        "superres_x4",
        "superres_x4_pipeline",
        "superres_x4_decode",
    )


def test_selectors_route_super_resolve_by_scale() -> None:
    assert {scale: spec.name for scale, spec in specs_for_method("super_resolve").items()} == {
        2: "superres_x2",
        4: "superres_x4",
    }


def test_specs_are_frozen() -> None:
    spec = get_spec("superres_x2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.arch_kwargs["scale"] = 3  # type: ignore[index]


def test_tensor_spec_names_exactly_the_dynamic_axes() -> None:
    with pytest.raises(ValueError, match="dynamic"):
        TensorSpec(name="x", dtype="UINT8", dims=(-1, 3), axis_names=(None, None))
