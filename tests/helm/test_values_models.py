"""The values files list exactly the pipelines the catalog defines."""

from __future__ import annotations

import pytest
from helm_chart import VALUES_FILES, Render, load_values, only

from vitrine.export.repository import repository_models
from vitrine.export.triton_config import Target
from vitrine.helm_values import model_entry, models_values
from vitrine.registry import SPECS


@pytest.mark.parametrize("values_file", ["values.yaml", "values-prod.yaml"])
def test_full_values_files_list_every_spec(values_file: str) -> None:
    values = load_values(values_file)
    assert {key: values[key] for key in ("sharedModels", "models")} == models_values()


def test_dev_lists_a_subset_of_the_specs_verbatim() -> None:
    models = load_values("values-dev.yaml")["models"]
    assert 0 < len(models) < len(SPECS)
    assert models == [model_entry(SPECS[model["name"]]) for model in models]


def test_a_generator_lists_its_sample_step_and_its_generate_call() -> None:
    spec = next(spec for spec in SPECS.values() if spec.is_generator)
    entry = model_entry(spec)
    assert entry["repositoryModels"] == [spec.sample_model, spec.core_model, spec.pipeline]
    assert entry["clientCall"] == {"method": "generate", "selector": {"model": spec.name}}


def test_model_list_names_every_folder_of_the_generated_repository() -> None:
    values = models_values()
    named = set(values["sharedModels"])
    named |= {folder for model in values["models"] for folder in model["repositoryModels"]}
    for target in Target:
        generated = {model.config.name for model in repository_models(target, SPECS.values())}
        assert named == generated, target


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_rendered_pod_syncs_and_probes_the_listed_models(render: Render, values_file: str) -> None:
    values = load_values(values_file)
    pod = only(render(values_file), "Deployment")["spec"]["template"]["spec"]
    sync_env = {e["name"]: e["value"] for e in pod["initContainers"][0]["env"]}
    expected = values["sharedModels"] + [f for m in values["models"] for f in m["repositoryModels"]]
    assert sync_env["MODELS"].split() == expected
