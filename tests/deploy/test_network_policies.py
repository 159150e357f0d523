"""NetworkPolicies allow only the flows that exist: callers into each API; each service out to PostgreSQL, Kafka,
the OpenTelemetry Collector and DNS; nothing between the services (they talk through Kafka only)."""

from __future__ import annotations

from typing import Any

from k8s_render import Rendered, pod_spec


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors here"
    return selector.get("matchLabels", {}).items() <= labels.items()


def pod_labels(r: Rendered, deployment: str) -> dict[str, str]:
    return dict(r.get("Deployment", deployment)["spec"]["template"]["metadata"]["labels"])


def policies_for(r: Rendered, labels: dict[str, str]) -> list[dict[str, Any]]:
    return [p for p in r.of_kind("NetworkPolicy") if selects(p["spec"]["podSelector"], labels)]


def egress_to(policy: dict[str, Any], labels: dict[str, str], port: int) -> bool:
    for rule in policy["spec"].get("egress", []):
        peers = [p for p in rule.get("to", []) if "podSelector" in p and "namespaceSelector" not in p]
        if any(selects(p["podSelector"], labels) for p in peers) and any(
            x["port"] == port for x in rule.get("ports", [])
        ):
            return True
    return False


def reaches(peer: dict[str, Any], labels: dict[str, str]) -> bool:
    return "podSelector" in peer and "namespaceSelector" not in peer and selects(peer["podSelector"], labels)


def test_each_service_has_its_own_policy(rendered: Rendered, services: list) -> None:
    (kafka,) = rendered.of_kind("Kafka")
    (postgres,) = rendered.of_kind("Cluster")
    broker = {"strimzi.io/cluster": kafka["metadata"]["name"], "strimzi.io/broker-role": "true"}
    database = {"cnpg.io/cluster": postgres["metadata"]["name"]}
    # The port the services connect to (GREENZONE_KAFKA_BOOTSTRAP, the `tls` listener).
    bootstrap = rendered.configmap("greenzone-common")["data"]["GREENZONE_KAFKA_BOOTSTRAP"]
    kafka_port = int(bootstrap.rpartition(":")[2])
    assert kafka_port in {x["port"] for x in kafka["spec"]["kafka"]["listeners"]}
    for service in services:
        labels = pod_labels(rendered, service.name)
        (policy,) = policies_for(rendered, labels)
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}, "default deny both ways"
        container_ports = {
            p["name"]
            for c in pod_spec(rendered.get("Deployment", service.name))["containers"]
            for p in c.get("ports", [])
        }
        for rule in policy["spec"]["ingress"]:
            assert {p["port"] for p in rule["ports"]} <= container_ports, "ingress to the API port only"
        assert egress_to(policy, database, 5432), f"{service.name} must reach PostgreSQL"
        assert egress_to(policy, broker, kafka_port), f"{service.name} must reach Kafka"
        to_brokers = [r for r in policy["spec"]["egress"] if any(reaches(p, broker) for p in r.get("to", []))]
        assert {x["port"] for r in to_brokers for x in r["ports"]} == {kafka_port}, "no other listener"
        for other in services:
            if other.name != service.name:
                assert not egress_to(policy, pod_labels(rendered, other.name), 8000), "services talk via Kafka"


def test_postgres_accepts_the_services_only(rendered: Rendered, services: list) -> None:
    (postgres,) = rendered.of_kind("Cluster")
    (policy,) = policies_for(rendered, {"cnpg.io/cluster": postgres["metadata"]["name"]})
    sql_rules = [r for r in policy["spec"]["ingress"] if any(p["port"] == 5432 for p in r["ports"])]
    for service in services:
        labels = pod_labels(rendered, service.name)
        assert any(selects(p["podSelector"], labels) for r in sql_rules for p in r["from"] if "podSelector" in p)
    for rule in sql_rules:
        assert all("namespaceSelector" not in p and "ipBlock" not in p for p in rule["from"]), "in-namespace only"


def test_kafka_listeners_accept_greenzone_pods_only(rendered: Rendered, services: list) -> None:
    (kafka,) = rendered.of_kind("Kafka")
    for listener in kafka["spec"]["kafka"]["listeners"]:
        peers = listener["networkPolicyPeers"]
        assert peers and all(p.keys() == {"podSelector"} for p in peers)
        for service in services:
            assert any(selects(p["podSelector"], pod_labels(rendered, service.name)) for p in peers)
