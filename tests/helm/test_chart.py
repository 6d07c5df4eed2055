"""The chart lints, renders and validates for every values file, and renders what matters."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from helm_chart import (
    CHART,
    MONITORING_API,
    VALUES_FILES,
    Render,
    kinds,
    load_values,
    only,
    run_helm,
    template_args,
)
from PIL import Image

from vitrine.client import Health, VitrineClient
from vitrine.helm_values import model_entry
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec

# Bundled by kubernetes-validate; the oldest the chart supports (Chart.yaml kubeVersion),
# one in the middle and the newest.
KUBERNETES_VERSIONS = ("1.29.0", "1.32.0", "1.37.0")
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}  # no schema bundled: checked below instead


def _pod_spec(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = only(manifests, "Deployment")["spec"]["template"]["spec"]
    return spec


def _triton(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = _pod_spec(manifests)["containers"]
    assert container["name"] == "triton"
    return container


def _arg(container: dict[str, Any], flag: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in container["args"] if a.startswith(f"{flag}=")]
    return value


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_helm_lint_strict(helm: Path, values_file: str) -> None:
    done = run_helm(helm, "lint", str(CHART), "--strict", "-f", str(CHART / values_file))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_manifests_pass_strict_kubernetes_schemas(
    render: Render, tmp_path: Path, values_file: str, version: str
) -> None:
    manifests = [m for m in render(values_file) if m["kind"] not in CRD_KINDS]
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(manifests))
    done = _kubernetes_validate(rendered, version)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" passed for resource ") == len(manifests)


def test_strict_validation_catches_an_unknown_field(render: Render, tmp_path: Path) -> None:
    """Guards the test above: the validator really is strict."""
    deployment = json.loads(json.dumps(only(render(), "Deployment")))
    _pod_spec([deployment])["containers"][0]["livenessProbe"]["httpGett"] = {"port": 1}
    rendered = tmp_path / "broken.yaml"
    rendered.write_text(yaml.safe_dump(deployment))
    assert _kubernetes_validate(rendered, KUBERNETES_VERSIONS[0]).returncode != 0


def _kubernetes_validate(path: Path, version: str) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).parent / "kubernetes-validate"
    return subprocess.run(
        [str(command), "--strict", "--no-warn", "-k", version, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_triton_arguments_come_from_values(render: Render, values_file: str) -> None:
    server = load_values(values_file)["server"]
    triton = _triton(render(values_file))
    assert triton["command"] == ["tritonserver"]
    assert _arg(triton, "--model-control-mode") == "none"
    assert _arg(triton, "--strict-readiness") == "true"
    assert _arg(triton, "--log-format") == server["logFormat"]
    ports = {p["name"]: p["containerPort"] for p in triton["ports"]}
    for name in ("grpc", "http", "metrics"):
        assert int(_arg(triton, f"--{name}-port")) == ports[name] == server["ports"][name]


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_exit_timeout_matches_the_grace_period(render: Render, values_file: str) -> None:
    shutdown = load_values(values_file)["server"]["shutdown"]
    manifests = render(values_file)
    triton = _triton(manifests)
    exit_timeout = int(_arg(triton, "--exit-timeout-secs"))
    pre_stop = int(triton["lifecycle"]["preStop"]["exec"]["command"][1])
    grace = _pod_spec(manifests)["terminationGracePeriodSeconds"]
    assert exit_timeout == shutdown["exitTimeoutSeconds"]
    assert pre_stop == shutdown["preStopSleepSeconds"]
    assert grace == pre_stop + exit_timeout + shutdown["killMarginSeconds"]


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_probes(render: Render, values_file: str) -> None:
    values = load_values(values_file)
    triton = _triton(render(values_file))
    startup = triton["startupProbe"]
    assert startup["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 60
    assert triton["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    readiness = triton["readinessProbe"]
    check = values["probes"]["readiness"]["pipelineCheck"]
    if not check["enabled"]:
        assert readiness["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
        return
    *command, url, timeout = readiness["exec"]["command"]
    assert command == check["command"] == ["python", "-m", "vitrine.serving.probe"]
    assert url == f"--url=127.0.0.1:{_arg(triton, '--grpc-port')}"
    per_request = int(timeout.removeprefix("--timeout="))
    assert per_request == check["secondsPerPipeline"]
    assert readiness["timeoutSeconds"] == per_request * len(values["models"]) + 1
    assert readiness["timeoutSeconds"] <= readiness["periodSeconds"]
    env = {e["name"]: e["value"] for e in triton["env"]}
    assert env["VITRINE_PIPELINES"].split() == [m["pipeline"] for m in values["models"]]


def test_readiness_timeout_grows_with_the_model_count(render: Render, helm: Path) -> None:
    """Derived, never tuned by hand: seconds per pipeline x models + 1, within the period."""
    for values_file in ("values.yaml", "values-dev.yaml"):
        values = load_values(values_file)
        seconds = values["probes"]["readiness"]["pipelineCheck"]["secondsPerPipeline"]
        readiness = _triton(render(values_file))["readinessProbe"]
        assert readiness["timeoutSeconds"] == seconds * len(values["models"]) + 1, values_file
    slow = ["probes.readiness.pipelineCheck.secondsPerPipeline=2"]  # 12 x 2 + 1 > 15
    done = run_helm(helm, *template_args("values.yaml", slow))
    assert done.returncode != 0
    assert "exceeds periodSeconds 15; raise periodSeconds or serve fewer models" in done.stderr


def test_readiness_falls_back_to_triton_ready(render: Render) -> None:
    triton = _triton(render(sets=["probes.readiness.pipelineCheck.enabled=false"]))
    assert "exec" not in triton["readinessProbe"]
    assert triton["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_shm_is_memory_backed_and_sized(render: Render, values_file: str) -> None:
    manifests = render(values_file)
    volumes = {v["name"]: v for v in _pod_spec(manifests)["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {
        "medium": "Memory",
        "sizeLimit": load_values(values_file)["server"]["shmSize"],
    }
    mounts = {m["mountPath"]: m["name"] for m in _triton(manifests)["volumeMounts"]}
    assert mounts["/dev/shm"] == "dshm"


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_every_container_runs_non_root_and_locked_down(render: Render, values_file: str) -> None:
    manifests = render(values_file)
    pods = [_pod_spec(manifests), only(manifests, "Pod")["spec"]]  # the server and helm test
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["automountServiceAccountToken"] is False
        for container in pod.get("initContainers", []) + pod["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, container["name"]
            assert context["readOnlyRootFilesystem"] is True, container["name"]
            assert context["allowPrivilegeEscalation"] is False, container["name"]
            assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]


def test_gpu_resources_and_placement(render: Render) -> None:
    prod = render("values-prod.yaml")
    pod = _pod_spec(prod)
    for container in (_triton(prod), pod["initContainers"][1]):
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"]["nvidia.com/gpu.present"] == "true"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    spread = pod["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    assert all(c["labelSelector"]["matchLabels"] for c in spread)
    assert "nvidia.com/gpu" not in json.dumps(render("values-dev.yaml"))


def test_engine_build_runs_on_the_gpu_before_triton(render: Render) -> None:
    pod = _pod_spec(render("values-prod.yaml"))
    sync, build = pod["initContainers"]
    assert (sync["name"], build["name"]) == ("sync-repository", "build-engines")
    assert {m["name"] for m in build["volumeMounts"]} >= {"model-repository", "engine-cache"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["engine-cache"]["persistentVolumeClaim"]["claimName"] == "vitrine-engine-cache"
    env = {e["name"]: e["value"] for e in build["env"]}
    assert env["VITRINE_MODELS"].split() == list(SPECS)
    assert build["command"][-2:] == ["vitrine.serving.gpu_entrypoint", "--build-only"]
    (triton,) = pod["containers"]
    assert "--model-repository=/runtime/repository" in triton["args"]  # where engines are linked
    mounts = {m["name"]: m["mountPath"] for m in triton["volumeMounts"]}
    assert mounts["engine-cache"] == env["VITRINE_ENGINE_CACHE"]  # the links resolve
    dev = _pod_spec(render("values-dev.yaml"))
    assert [c["name"] for c in dev["initContainers"]] == ["sync-repository"]


def test_autoscaling_v2_on_queue_time_per_pod(render: Render) -> None:
    manifests = render("values-prod.yaml")
    hpa = only(manifests, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "vitrine_queue_time_per_request_us"
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "15000"}
    assert "replicas" not in only(manifests, "Deployment")["spec"]
    dev = render("values-dev.yaml")
    assert "HorizontalPodAutoscaler" not in kinds(dev)
    assert only(dev, "Deployment")["spec"]["replicas"] == 1


def test_pod_disruption_budget(render: Render) -> None:
    pdb = only(render("values-prod.yaml"), "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "vitrine"
    pdb = only(render(sets=["podDisruptionBudget.minAvailable=2"]), "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 2
    assert "maxUnavailable" not in pdb["spec"]


def test_monitoring_objects_only_with_their_crds(render: Render) -> None:
    assert not kinds(render("values-prod.yaml")) & CRD_KINDS
    manifests = render("values-prod.yaml", api_versions=[MONITORING_API])
    monitor = only(manifests, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    metrics_service = next(m for m in manifests if m["metadata"]["name"].endswith("-metrics"))
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        metrics_service["metadata"]["labels"].items()
    )
    (group,) = only(manifests, "PrometheusRule")["spec"]["groups"]
    (rule,) = group["rules"]
    assert rule["record"] == "vitrine:queue_time_per_request_us"
    assert "nv_inference_queue_duration_us" in rule["expr"]
    pipelines = "|".join(spec.pipeline for spec in SPECS.values())
    assert f'model!~"{pipelines}"' in rule["expr"]


def test_services_and_grpc_ingress(render: Render) -> None:
    manifests = render("values-prod.yaml")
    ports = {
        p["name"]: p["port"]
        for m in manifests
        if m["kind"] == "Service"
        for p in m["spec"]["ports"]
    }
    assert ports == {"grpc": 8001, "http": 8000, "metrics": 8002}
    ingress = only(manifests, "Ingress")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == (
        "GRPC"
    )
    assert ingress["spec"]["tls"] == [
        {"hosts": ["vitrine.internal.example.com"], "secretName": "vitrine-grpc-tls"}
    ]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["port"] == {"name": "grpc"}
    assert "Ingress" not in kinds(render())


def test_network_policy_admits_grpc_from_labelled_namespaces_only(render: Render) -> None:
    policy = only(render("values-prod.yaml"), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    grpc, metrics = policy["spec"]["ingress"]
    assert grpc["ports"] == [{"port": "grpc", "protocol": "TCP"}]
    namespaces, test_client = grpc["from"]
    assert namespaces == {"namespaceSelector": {"matchLabels": {"vitrine.io/storefront": "true"}}}
    assert test_client["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "test-client"
    )
    assert metrics["ports"] == [{"port": "metrics", "protocol": "TCP"}]


def test_helm_test_pod_calls_the_client_sdk(render: Render) -> None:
    manifests = render()
    pod = only(manifests, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "test-client"
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["python", "/scripts/helm-test.py"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["VITRINE_GRPC_URL"] == "vitrine:8001"
    first = load_values("values.yaml")["models"][0]
    assert json.loads(env["VITRINE_TEST_CALL"]) == first["clientCall"]
    script = only(manifests, "ConfigMap")["data"]["helm-test.py"]
    compile(script, "helm-test.py", "exec")
    assert "client.health()" in script and "VitrineClient(" in script


@pytest.mark.parametrize("spec", SPECS.values(), ids=lambda spec: spec.name)
def test_helm_test_script_makes_a_valid_call_of_any_first_model(
    render: Render, monkeypatch: pytest.MonkeyPatch, capsys: Any, spec: ModelSpec
) -> None:
    """Any spec may come first in a release: its call passes the client's own checks (the
    RPCs are stubbed; tests/helm/test_helm_test_script.py runs them against Triton)."""
    manifests = render()
    script = only(manifests, "ConfigMap")["data"]["helm-test.py"]
    (container,) = only(manifests, "Pod")["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    env |= {"VITRINE_GRPC_URL": "127.0.0.1:1"}  # never dialled: the RPCs are stubbed
    env |= {"VITRINE_TEST_CALL": json.dumps(model_entry(spec)["clientCall"])}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ready = {name: True for name in env["VITRINE_PIPELINES"].split()}
    monkeypatch.setattr(VitrineClient, "health", lambda self, **_: Health(True, True, ready))
    plans: list[Any] = []

    def infer(self: VitrineClient, plan: Any, timeout: float | None) -> Any:
        plans.append(plan)
        images = [Image.new("RGB", (32, 32))] * plan.inputs[0].shape()[0]
        return SimpleNamespace(model=plan.model, latency_ms=1.0, image=images[0], images=images)

    monkeypatch.setattr(VitrineClient, "_infer", infer)
    exec(compile(script, "helm-test.py", "exec"), {"__name__": "__main__"})
    (plan,) = plans
    assert plan.model == spec.pipeline
    assert f": {spec.pipeline} -> [(32, 32)] in 1.0 ms" in capsys.readouterr().out


CREDENTIAL_PATTERNS = (
    r"AKIA[0-9A-Z]{16}",  # AWS access key id
    r"(?i)aws_secret_access_key\s*[:=]\s*\S",
    r"(?i)aws_session_token",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r'"type":\s*"service_account"',  # GCP key file
    r"(?i)password\s*[:=]",
)


@pytest.mark.parametrize(
    "values_file, sets",
    [
        ("values-prod.yaml", ()),
        ("values.yaml", ("modelRepository.source=s3", "modelRepository.s3.uri=s3://b/p",
                         "modelRepository.s3.existingSecret=vitrine-s3")),
        ("values.yaml", ("modelRepository.source=gcs", "modelRepository.gcs.uri=gs://b/p",
                         "modelRepository.gcs.existingSecret=vitrine-gcs")),
    ],
)  # fmt: skip
def test_no_credentials_are_rendered(
    render: Render, values_file: str, sets: tuple[str, ...]
) -> None:
    manifests = render(values_file, sets)
    assert "Secret" not in kinds(manifests)
    text = yaml.safe_dump_all(manifests)
    for pattern in CREDENTIAL_PATTERNS:
        assert not re.search(pattern, text), pattern
    sync = _pod_spec(manifests)["initContainers"][0]
    assert not any(name.startswith("AWS_SECRET") for name in (e["name"] for e in sync["env"]))


def test_existing_secrets_are_referenced_by_name(render: Render) -> None:
    s3 = _pod_spec(
        render(sets=("modelRepository.source=s3", "modelRepository.s3.uri=s3://b/p",
                     "modelRepository.s3.existingSecret=vitrine-s3"))
    )  # fmt: skip
    assert s3["initContainers"][0]["envFrom"] == [{"secretRef": {"name": "vitrine-s3"}}]
    account = only(render("values-prod.yaml"), "ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith(
        "arn:aws:iam"
    )


@pytest.mark.parametrize(
    "sets, message",
    [
        (["server.shmSize=true"], "server.shmSize: Invalid type"),
        (["replicaCount=two"], "replicaCount: Invalid type"),
        (["server.logFormat=json"], "server.logFormat must be one of"),
        (["server.modelControlMode=poll"], "server.modelControlMode must be one of"),
        (["server.ports.grpc=70000"], "server.ports.grpc: Must be less than or equal to 65535"),
        (["imageTag=latest"], "Additional property imageTag is not allowed"),
        (["modelRepository.s3.accessKeyId=AKIA0000"], "Additional property accessKeyId"),
        (["probes.readiness.command=true"], "Additional property command is not allowed"),
    ],
)
def test_schema_rejects_bad_values(helm: Path, sets: list[str], message: str) -> None:
    done = run_helm(helm, *template_args("values.yaml", sets))
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


@pytest.mark.parametrize(
    "sets, message",
    [
        (["ingress.enabled=true"], "ingress.tlsSecretName is required"),
        (["modelRepository.source=s3"], "modelRepository.s3.uri is required"),
        (["gpu.enabled=false"], "engineBuild needs gpu.enabled"),
        (["autoscaling.minReplicas=9"], "minReplicas must not exceed"),
    ],
)
def test_inconsistent_values_fail_with_a_reason(helm: Path, sets: list[str], message: str) -> None:
    done = run_helm(helm, *template_args("values.yaml", sets))
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_the_server_gets_the_malloc_settings_of_the_embedded_server(render: Render) -> None:
    """A photo's buffers go back to the system in the pod as they do in `vitrine serve`."""
    from vitrine.serving.embedded import MALLOC_ENVIRONMENT

    env = {e["name"]: e.get("value") for e in _triton(render())["env"]}
    assert {name: env.get(name) for name in MALLOC_ENVIRONMENT} == MALLOC_ENVIRONMENT
