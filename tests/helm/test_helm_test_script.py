"""The `helm test` script, rendered from the chart, run against a real Triton server.

The rendered test pod calls the release's first model; the script is run here as that pod
would run it, once for that model and once for each generator and latent editor (a release
may list one first; their calls differ from an editor's), against the embedded repository
of the shipped weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from helm_chart import Render, load_values, only

from vitrine.helm_values import model_entry
from vitrine.registry import SPECS
from vitrine.serving.embedded import EmbeddedTriton, free_port
from vitrine.serving.serve import embedded_repository
from vitrine.spec import Task

pytestmark = pytest.mark.integration

CALLED = [
    load_values("values.yaml")["models"][0]["name"],
    *(s.name for s in SPECS.values() if s.is_generator or s.task is Task.LATENT_EDIT),
]


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedTriton]:
    ports = {name: free_port() for name in ("grpc_port", "http_port", "metrics_port")}
    with EmbeddedTriton(embedded_repository(), **ports) as running:
        yield running


@pytest.mark.parametrize("model", CALLED)
def test_helm_test_calls_the_model_through_the_client(
    render: Render, server: EmbeddedTriton, model: str
) -> None:
    manifests = render()
    script = only(manifests, "ConfigMap")["data"]["helm-test.py"]
    (container,) = only(manifests, "Pod")["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    env["VITRINE_GRPC_URL"] = server.grpc_url
    env["VITRINE_TEST_CALL"] = json.dumps(model_entry(SPECS[model])["clientCall"])
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    spec = SPECS[model]
    side = spec.limits.max_side if spec.is_generator else 32 * spec.output_scale
    assert f": {spec.pipeline} -> [({side}, {side})] in " in done.stdout
