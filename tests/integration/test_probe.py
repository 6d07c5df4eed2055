"""The readiness probe against the session's server: every pipeline, and every step of each,
answers a real request (a generator's: one image of fixed labels, through its sample step)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import tritonclient.grpc as grpcclient

from vitrine.pipeline import pipeline_steps
from vitrine.registry import SPECS
from vitrine.serving.embedded import EmbeddedTriton
from vitrine.serving.probe import main, probe_pipelines, probe_steps, step_probes
from vitrine.spec import ModelSpec

pytestmark = pytest.mark.integration

GENERATORS = [spec for spec in SPECS.values() if spec.is_generator]


def test_every_pipeline_answers_its_probe(triton: grpcclient.InferenceServerClient) -> None:
    results = probe_pipelines(triton)
    assert [result.model for result in results] == [spec.pipeline for spec in SPECS.values()]
    assert all(result.ok for result in results), [r for r in results if not r.ok]


@pytest.mark.parametrize("spec", SPECS.values(), ids=lambda spec: spec.name)
def test_every_step_answers_its_probe(
    triton: grpcclient.InferenceServerClient, spec: ModelSpec
) -> None:
    probes = step_probes(spec)
    assert tuple(probes) == pipeline_steps(spec)  # a generator's sample step, no decode step
    results = probe_steps(triton, probes)
    assert all(result.ok for result in results), [r for r in results if not r.ok]


def test_probe_command_checks_the_chosen_pipelines(
    vitrine_server: EmbeddedTriton, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = [SPECS["superres_x2"].pipeline, *(spec.pipeline for spec in GENERATORS)]
    assert main(["--url", vitrine_server.grpc_url, "--pipelines", ",".join(chosen)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [(result["model"], result["ok"]) for result in printed] == [
        (name, True) for name in chosen
    ]


@pytest.mark.parametrize("spec", GENERATORS, ids=lambda spec: spec.name)
def test_a_generator_probe_fails_on_a_server_without_it(
    triton: grpcclient.InferenceServerClient, spec: ModelSpec
) -> None:
    renamed = dataclasses.replace(spec, name=f"{spec.name}_missing")
    (result,) = probe_pipelines(triton, specs=[renamed])
    assert not result.ok and result.error and renamed.pipeline in result.error
