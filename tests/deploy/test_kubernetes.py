"""deploy/k8s, offline (no cluster runs here): the base and the production overlay rendered
(tests/deploy/kustomize.py), every manifest validated against Kubernetes' own schemas
(kubernetes-validate, strict: unknown fields are errors), and the references between them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from pawhub.settings import Settings
from realtime.drain import DRAIN_BOUND_S
from tests.deploy.kustomize import Manifest, render, strategic_merge

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "k8s" / "base"
PRODUCTION = ROOT / "deploy" / "k8s" / "overlays" / "production"
# The oldest Kubernetes release these manifests are written for.
KUBERNETES_VERSION = "1.32.0"


@pytest.fixture(scope="module", params=[BASE, PRODUCTION], ids=["base", "production"])
def manifests(request: pytest.FixtureRequest) -> list[Manifest]:
    return render(request.param)


@pytest.fixture(scope="module")
def production() -> list[Manifest]:
    return render(PRODUCTION)


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def pod_specs(manifests: list[Manifest]) -> dict[str, dict[str, Any]]:
    return {
        m["metadata"]["name"]: m["spec"]["template"]["spec"]
        for m in manifests
        if m["kind"] in {"Deployment", "Job"}
    }


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_every_manifest_is_valid_for_kubernetes(manifests: list[Manifest]) -> None:
    kinds = sorted(m["kind"] for m in manifests)
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= set(kinds)
    assert {"Ingress", "ConfigMap", "NetworkPolicy", "Job"} <= set(kinds)
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_validation_does_reject_a_mistake(manifests: list[Manifest]) -> None:
    deployment = copy.deepcopy(of_kind(manifests, "Deployment")["pawhub-hub"])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbes"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinessProbes"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    container["readinessProbe"] = container.pop("readinessProbes")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError, match="'two' is not of type"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_servers_are_ready_by_healthz_alive_by_a_dependency_free_check_and_drain(
    manifests: list[Manifest],
) -> None:
    deployments = of_kind(manifests, "Deployment")
    assert set(deployments) == {"pawhub-hub", "pawhub-api", "pawhub-worker"}
    for name, port in (("pawhub-hub", 8080), ("pawhub-api", 8000)):
        pod = deployments[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        liveness = container["livenessProbe"]
        assert liveness.get("httpGet", {}).get("path") != "/healthz", name
        assert liveness["failureThreshold"] * liveness["periodSeconds"] >= 60
        # The endpoints drop the pod during preStop; the process then drains (the hub) or
        # shuts down gracefully (uvicorn, 10 s) within DRAIN_BOUND_S, well before SIGKILL.
        assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
        assert pod["terminationGracePeriodSeconds"] >= 5 + DRAIN_BOUND_S + 10
    hub = deployments["pawhub-hub"]["spec"]["template"]["spec"]["containers"][0]
    (config,) = of_kind(manifests, "ConfigMap").values()
    # The notice the hub gives balancers that poll /healthz is a valid setting (within the
    # drain's bound): preStop already gives the endpoints their time.
    notice = config["data"]["HUB_DRAIN_NOTICE_S"]
    assert Settings(_env_file=None, hub_drain_notice_s=notice).hub_drain_notice_s == 0  # type: ignore[call-arg]
    assert {"configMapRef": {"name": "pawhub-config"}} in hub["envFrom"]


def test_every_container_is_sized_and_locked_down(manifests: list[Manifest]) -> None:
    for name, pod in pod_specs(manifests).items():
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the image's user
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert "memory" in container["resources"]["limits"], name
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_settings_come_from_the_configmap_and_a_secret_that_is_only_referenced(
    manifests: list[Manifest],
) -> None:
    assert "Secret" not in {m["kind"] for m in manifests}
    settings = {name.upper() for name in Settings.model_fields}
    (config,) = of_kind(manifests, "ConfigMap").values()
    assert config["metadata"]["name"] == "pawhub-config"
    assert set(config["data"]) <= settings, set(config["data"]) - settings
    for name, pod in pod_specs(manifests).items():
        for container in pod["containers"]:
            assert container["envFrom"] == [
                {"configMapRef": {"name": "pawhub-config"}},
                {"secretRef": {"name": "pawhub-secrets"}},
            ], name
            assert "env" not in container, name
    config_settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        **{key.lower(): value for key, value in config["data"].items()},
    )
    assert config_settings.is_production and config_settings.trusted_proxies


def test_autoscalers_budgets_and_services_point_at_the_deployments(
    manifests: list[Manifest],
) -> None:
    deployments = of_kind(manifests, "Deployment")
    labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()}
    autoscalers = of_kind(manifests, "HorizontalPodAutoscaler")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in autoscalers.values()} == set(deployments)
    for autoscaler in autoscalers.values():
        assert autoscaler["spec"]["minReplicas"] >= 1
        assert autoscaler["spec"]["maxReplicas"] > autoscaler["spec"]["minReplicas"]
    budgets = of_kind(manifests, "PodDisruptionBudget")
    for name, pod_labels in labels.items():
        assert selects(deployments[name]["spec"]["selector"]["matchLabels"], pod_labels)
        covering = [
            b for b in budgets.values() if selects(b["spec"]["selector"]["matchLabels"], pod_labels)
        ]
        assert len(covering) == 1, name
    for service in of_kind(manifests, "Service").values():
        (target,) = [
            name for name, pod in labels.items() if selects(service["spec"]["selector"], pod)
        ]
        container_ports = {
            port["name"]
            for port in deployments[target]["spec"]["template"]["spec"]["containers"][0]["ports"]
        }
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= container_ports


def test_the_ingress_routes_sockets_to_hubs_and_v1_to_the_api_with_websocket_timeouts(
    manifests: list[Manifest],
) -> None:
    services = of_kind(manifests, "Service")
    routes: dict[str, str] = {}
    for ingress in of_kind(manifests, "Ingress").values():
        annotations = ingress["metadata"]["annotations"]
        assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 60
        for rule in ingress["spec"]["rules"]:
            assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                ports = {port["name"] for port in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["name"] in ports
                routes[path["path"]] = backend["name"]
    assert routes == {"/socket.io/": "pawhub-hub", "/app/": "pawhub-hub", "/v1/": "pawhub-api"}
    hub_annotations = of_kind(manifests, "Ingress")["pawhub-hub"]["metadata"]["annotations"]
    assert hub_annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert hub_annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"


def test_network_policies_deny_by_default_and_open_only_the_needed_paths(
    manifests: list[Manifest],
) -> None:
    policies = of_kind(manifests, "NetworkPolicy")
    pods = {
        name: m["spec"]["template"]["metadata"]["labels"]
        for name, m in {**of_kind(manifests, "Deployment"), **of_kind(manifests, "Job")}.items()
    }
    deny = policies["pawhub-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny
    assert all(selects(deny["podSelector"]["matchLabels"], labels) for labels in pods.values())

    def ingress_sources(pod: str) -> list[dict[str, Any]]:
        return [
            source
            for policy in policies.values()
            if selects(policy["spec"]["podSelector"]["matchLabels"], pods[pod])
            for rule in policy["spec"].get("ingress", [])
            for source in rule["from"]
        ]

    controller = {"kubernetes.io/metadata.name": "ingress-nginx"}
    assert [s["namespaceSelector"]["matchLabels"] for s in ingress_sources("pawhub-api")] == [
        controller
    ]
    assert controller in [
        s["namespaceSelector"]["matchLabels"] for s in ingress_sources("pawhub-hub")
    ]
    assert ingress_sources("pawhub-worker") == ingress_sources("pawhub-migrate") == []
    egress = policies["pawhub-datastores"]["spec"]["egress"]
    assert [
        (rule["to"][0]["podSelector"]["matchLabels"], rule["ports"][0]["port"]) for rule in egress
    ] == [
        ({"app.kubernetes.io/name": "postgresql"}, 5432),
        ({"app.kubernetes.io/name": "redis"}, 6379),
    ]


def test_the_migration_job_runs_once_with_the_api_image(manifests: list[Manifest]) -> None:
    job = of_kind(manifests, "Job")["pawhub-migrate"]["spec"]
    (container,) = job["template"]["spec"]["containers"]
    assert container["args"] == ["pawhub", "migrate"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    api = of_kind(manifests, "Deployment")["pawhub-api"]["spec"]["template"]["spec"]
    assert container["image"] == api["containers"][0]["image"]


def test_the_production_overlay_sets_namespace_images_host_and_size(
    production: list[Manifest],
) -> None:
    assert (
        of_kind(production, "Namespace")["pawhub"]["metadata"]["labels"][
            "pod-security.kubernetes.io/enforce"
        ]
        == "restricted"
    )
    for manifest in production:
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"]["namespace"] == "pawhub", manifest["metadata"]["name"]
    for name, pod in pod_specs(production).items():
        assert pod["containers"][0]["image"].startswith("registry.example.com/pawhub/"), name
        assert pod["containers"][0]["image"].endswith(":0.1.0"), name
    hub = of_kind(production, "Deployment")["pawhub-hub"]["spec"]
    assert hub["replicas"] == 3
    assert hub["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] == "384Mi"
    assert (
        hub["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/healthz"
    )
    assert of_kind(production, "HorizontalPodAutoscaler")["pawhub-hub"]["spec"]["minReplicas"] == 3
    budget = of_kind(production, "PodDisruptionBudget")["pawhub-hub"]["spec"]
    assert budget["minAvailable"] == 2 and "maxUnavailable" not in budget
    for ingress in of_kind(production, "Ingress").values():
        assert ingress["spec"]["rules"][0]["host"] == "pawhub.example.org"
        assert ingress["spec"]["tls"][0]["hosts"] == ["pawhub.example.org"]


def test_the_renderer_merges_as_kustomize_does() -> None:
    base = {
        "spec": {
            "replicas": 2,
            "maxUnavailable": 1,
            "containers": [{"name": "a", "image": "x", "env": [{"name": "K", "value": "1"}]}],
            "args": ["one", "two"],
        }
    }
    patch = {
        "spec": {
            "maxUnavailable": None,
            "containers": [{"name": "a", "env": [{"name": "L", "value": "2"}]}, {"name": "b"}],
            "args": ["three"],
        }
    }
    assert strategic_merge(base, patch) == {
        "spec": {
            "replicas": 2,
            "containers": [
                {
                    "name": "a",
                    "image": "x",
                    "env": [{"name": "K", "value": "1"}, {"name": "L", "value": "2"}],
                },
                {"name": "b"},
            ],
            "args": ["three"],
        }
    }


def test_the_renderer_refuses_what_it_does_not_render(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(ValueError, match="commonLabels"):
        render(tmp_path)
