"""Each service runs as the issue asks: probes, resources, a locked-down security context, spread over nodes and
zones, migrations before it serves, and its Service, ServiceAccount, HorizontalPodAutoscaler and
PodDisruptionBudget."""

from __future__ import annotations

from typing import Any

from k8s_render import Rendered, containers, pod_spec, split_image


def secret_name(env: dict[str, Any]) -> str | None:
    return env.get("valueFrom", {}).get("secretKeyRef", {}).get("name")


def test_each_service_has_its_objects(rendered: Rendered, services: list) -> None:
    for service in services:
        for kind in ("Deployment", "Service", "ServiceAccount", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
            assert rendered.get(kind, service.name)
        hpa = rendered.get("HorizontalPodAutoscaler", service.name)
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service.name}
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert "replicas" not in rendered.get("Deployment", service.name)["spec"], "the HPA owns replicas"
        pdb = rendered.get("PodDisruptionBudget", service.name)
        labels = rendered.get("Deployment", service.name)["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_probes_hit_the_health_endpoints(rendered: Rendered, services: list) -> None:
    for service in services:
        (app,) = pod_spec(rendered.get("Deployment", service.name))["containers"]
        assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert app["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_pods_are_locked_down(rendered: Rendered, services: list) -> None:
    for service in services:
        deployment = rendered.get("Deployment", service.name)
        spec = pod_spec(deployment)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        assert spec["serviceAccountName"] == service.name
        keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        for container in containers(spec):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
            assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
            assert split_image(container["image"])[0].endswith(f"greenzone/{service.name}")


def test_migrations_run_before_the_new_version_serves(rendered: Rendered, services: list) -> None:
    for service in services:
        spec = pod_spec(rendered.get("Deployment", service.name))
        (migrate,) = spec["initContainers"]
        program = " ".join(migrate["command"])
        assert f"from {service.package}.main import SPEC" in program
        assert "migrate(get_settings(), SPEC.migrations, SPEC.schema)" in program
        (app,) = spec["containers"]
        assert migrate["image"] == app["image"]
        # The same settings as the app, less the Kafka credential: migrations only open the database.
        kafka_users = {u["metadata"]["name"] for u in rendered.of_kind("KafkaUser")}
        app_env = [e for e in app["env"] if secret_name(e) not in kafka_users]
        assert len(app_env) < len(app["env"]), "the app reads its KafkaUser's password"
        assert migrate["envFrom"] == app["envFrom"] and migrate["env"] == app_env
        strategy = rendered.get("Deployment", service.name)["spec"]["strategy"]["rollingUpdate"]
        assert strategy["maxUnavailable"] == 0, "zero-downtime rollouts"
