"""The custom resources have what their operators need (Strimzi, CloudNativePG with its Barman Cloud plugin,
the Prometheus Operator): a schema-lite check of the fields they require, the values they accept and the
references between objects, since the CRD schemas themselves are not available offline."""

from __future__ import annotations

import re
from typing import Any

from k8s_render import Rendered

STRIMZI = "kafka.strimzi.io/v1beta2"
CNPG = "postgresql.cnpg.io/v1"
BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"
KAFKA_OPERATIONS = {
    "Read",
    "Write",
    "Create",
    "Delete",
    "Alter",
    "Describe",
    "ClusterAction",
    "AlterConfigs",
    "DescribeConfigs",
    "IdempotentWrite",
    "All",
}
#: Ports Strimzi keeps for itself (replication, control plane, metrics, JMX, agent).
STRIMZI_RESERVED_PORTS = {9090, 9091, 9404, 9999, 8443}


def kafka(r: Rendered) -> dict[str, Any]:
    (k,) = r.of_kind("Kafka")
    return k


def brokers(r: Rendered) -> int:
    return sum(p["spec"]["replicas"] for p in r.of_kind("KafkaNodePool") if "broker" in p["spec"]["roles"])


def test_kafka_runs_kraft_with_node_pools(rendered: Rendered) -> None:
    k = kafka(rendered)
    assert k["apiVersion"] == STRIMZI
    assert k["metadata"]["annotations"] == {"strimzi.io/kraft": "enabled", "strimzi.io/node-pools": "enabled"}
    spec = k["spec"]
    assert "zookeeper" not in spec
    assert not {"replicas", "storage"} & spec["kafka"].keys(), "with node pools, replicas and storage are per pool"
    assert {"topicOperator", "userOperator"} <= spec["entityOperator"].keys(), "KafkaTopic/KafkaUser need them"


def test_kafka_listeners_are_valid(rendered: Rendered) -> None:
    listeners = kafka(rendered)["spec"]["kafka"]["listeners"]
    assert len({x["name"] for x in listeners}) == len({x["port"] for x in listeners}) == len(listeners)
    for listener in listeners:
        assert re.fullmatch(r"[a-z0-9]{1,11}", listener["name"]), listener["name"]
        assert listener["port"] >= 9092 and listener["port"] not in STRIMZI_RESERVED_PORTS
        assert listener["type"] in {"internal", "cluster-ip", "route", "loadbalancer", "nodeport", "ingress"}
        assert isinstance(listener["tls"], bool)
        if "authentication" in listener:
            assert listener["authentication"]["type"] in {"tls", "scram-sha-512", "oauth", "custom"}


def test_kafka_is_durable(rendered: Rendered) -> None:
    config = kafka(rendered)["spec"]["kafka"]["config"]
    n = brokers(rendered)
    assert config["unclean.leader.election.enable"] is False
    assert config["auto.create.topics.enable"] is False
    assert config["default.replication.factor"] == config["offsets.topic.replication.factor"] == n
    assert config["min.insync.replicas"] == (2 if n >= 3 else 1)


def test_prod_kafka_has_three_brokers_and_a_controller_quorum(prod: Rendered) -> None:
    assert brokers(prod) == 3
    assert kafka(prod)["spec"]["kafka"]["config"]["min.insync.replicas"] == 2
    pools = prod.of_kind("KafkaNodePool")
    controllers = sum(p["spec"]["replicas"] for p in pools if "controller" in p["spec"]["roles"])
    assert controllers >= 3 and controllers % 2 == 1


def test_node_pools_are_valid(rendered: Rendered) -> None:
    name = kafka(rendered)["metadata"]["name"]
    roles: set[str] = set()
    for pool in rendered.of_kind("KafkaNodePool"):
        assert pool["apiVersion"] == STRIMZI
        assert pool["metadata"]["labels"]["strimzi.io/cluster"] == name
        spec = pool["spec"]
        assert isinstance(spec["replicas"], int) and spec["replicas"] >= 1
        assert spec["roles"] and set(spec["roles"]) <= {"controller", "broker"}
        roles |= set(spec["roles"])
        storage = spec["storage"]
        assert storage["type"] in {"ephemeral", "persistent-claim", "jbod"}
        volumes = storage["volumes"] if storage["type"] == "jbod" else [storage]
        assert len({v.get("id") for v in volumes}) == len(volumes)
        for volume in volumes:
            assert volume["type"] in {"ephemeral", "persistent-claim"}
            if volume["type"] == "persistent-claim":
                assert re.fullmatch(r"\d+(Mi|Gi|Ti)", volume["size"])
        assert sum(1 for v in volumes if v.get("kraftMetadata") == "shared") <= 1
    assert roles == {"controller", "broker"}


def test_topics_are_valid(rendered: Rendered) -> None:
    name, n = kafka(rendered)["metadata"]["name"], brokers(rendered)
    for topic in rendered.of_kind("KafkaTopic"):
        assert topic["apiVersion"] == STRIMZI
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == name
        spec = topic["spec"]
        assert isinstance(spec["partitions"], int) and spec["partitions"] >= 1
        assert spec["replicas"] == min(3, n), "replicas 3 where there are three brokers"
        assert spec["config"]["min.insync.replicas"] == (2 if spec["replicas"] >= 3 else 1)
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", topic["metadata"]["name"])


def test_users_are_valid(rendered: Rendered) -> None:
    k = kafka(rendered)
    listener_auth = {x.get("authentication", {}).get("type") for x in k["spec"]["kafka"]["listeners"]}
    assert k["spec"]["kafka"]["authorization"]["type"] == "simple", "ACLs apply only with an authorizer"
    for user in rendered.of_kind("KafkaUser"):
        assert user["apiVersion"] == STRIMZI
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == k["metadata"]["name"]
        spec = user["spec"]
        assert spec["authentication"]["type"] in {"tls", "tls-external", "scram-sha-512"}
        assert spec["authentication"]["type"] in listener_auth | {"tls-external"}, "no listener accepts it"
        assert spec["authorization"]["type"] == "simple"
        for acl in spec["authorization"]["acls"]:
            resource = acl["resource"]
            assert resource["type"] in {"topic", "group", "cluster", "transactionalId"}
            if resource["type"] != "cluster":
                assert resource["name"] and resource["patternType"] in {"literal", "prefix"}
            assert acl["operations"] and set(acl["operations"]) <= KAFKA_OPERATIONS
            assert acl.get("type", "allow") in {"allow", "deny"}


def postgres(r: Rendered) -> dict[str, Any]:
    (cluster,) = r.of_kind("Cluster")
    return cluster


def test_postgres_cluster_is_valid(rendered: Rendered) -> None:
    cluster = postgres(rendered)
    assert cluster["apiVersion"] == CNPG
    spec = cluster["spec"]
    assert isinstance(spec["instances"], int) and spec["instances"] >= 1
    assert re.fullmatch(r"\d+(Mi|Gi|Ti)", spec["storage"]["size"])
    initdb = spec["bootstrap"]["initdb"]
    assert initdb["database"] and initdb["owner"]
    for role in spec["managed"]["roles"]:
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", role["name"])
        assert role["ensure"] == "present" and role["login"] is True
        assert role["passwordSecret"]["name"]
    assert all(isinstance(p, str) for p in spec["postgresql"]["parameters"].values()), "parameters are strings"


def test_prod_postgres_has_three_instances_and_backups(prod: Rendered) -> None:
    cluster = postgres(prod)
    assert cluster["spec"]["instances"] == 3
    archivers = [p for p in cluster["spec"]["plugins"] if p.get("isWALArchiver")]
    assert [p["name"] for p in archivers] == [BARMAN_PLUGIN]
    store = prod.get("ObjectStore", archivers[0]["parameters"]["barmanObjectName"])
    assert store["apiVersion"] == "barmancloud.cnpg.io/v1"
    configuration = store["spec"]["configuration"]
    assert configuration["destinationPath"].startswith(("s3://", "gs://", "https://"))
    for ref in configuration["s3Credentials"].values():
        assert ref.keys() == {"name", "key"}, "credentials come from a Secret"
    (backup,) = prod.of_kind("ScheduledBackup")
    assert backup["apiVersion"] == CNPG
    spec = backup["spec"]
    assert len(spec["schedule"].split()) == 6, "CloudNativePG schedules have six fields, seconds first"
    assert spec["cluster"]["name"] == cluster["metadata"]["name"]
    assert spec["method"] == "plugin" and spec["pluginConfiguration"]["name"] == BARMAN_PLUGIN


def test_every_service_has_a_role_and_a_schema(rendered: Rendered, services: list) -> None:
    spec = postgres(rendered)["spec"]
    sql = " ".join(spec["bootstrap"]["initdb"]["postInitApplicationSQL"])
    roles = {r["name"]: r["passwordSecret"]["name"] for r in spec["managed"]["roles"]}
    for service in services:
        assert roles[service.package] == f"greenzone-db-{service.name}"
        assert f"CREATE ROLE {service.package} LOGIN" in sql
        assert f"CREATE SCHEMA {service.spec.schema} AUTHORIZATION {service.package}" in sql


def test_service_monitors_scrape_each_service(rendered: Rendered, services: list) -> None:
    monitors = rendered.of_kind("ServiceMonitor")
    assert sorted(m["metadata"]["name"] for m in monitors) == sorted(s.name for s in services)
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        selector = monitor["spec"]["selector"]["matchLabels"]
        targets = [
            s for s in rendered.of_kind("Service") if selector.items() <= s["metadata"].get("labels", {}).items()
        ]
        assert len(targets) == 1, f"{monitor['metadata']['name']} selects {len(targets)} Services"
        port_names = {p["name"] for p in targets[0]["spec"]["ports"]}
        assert monitor["spec"]["endpoints"]
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in port_names
            assert endpoint["path"] == "/metrics"
