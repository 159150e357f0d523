"""Kafka takes authenticated TLS clients only, and each service is one: SASL_SSL with SCRAM-SHA-512 on the `tls`
listener as the KafkaUser named after it, its password from that KafkaUser's Secret, the brokers verified against
the cluster CA Strimzi publishes, and no topic creation (the KafkaTopics own them)."""

from __future__ import annotations

import os
import posixpath
import re
from typing import Any

import pytest
from k8s_render import Rendered, pod_spec

#: The Secret the Strimzi Cluster Operator writes the cluster CA certificate into, and its key.
CLUSTER_CA_SECRET = "{cluster}-cluster-ca-cert"
CLUSTER_CA_KEY = "ca.crt"
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def kafka(r: Rendered) -> dict[str, Any]:
    (k,) = r.of_kind("Kafka")
    return k


def app_container(r: Rendered, service: str) -> dict[str, Any]:
    (app,) = pod_spec(r.get("Deployment", service))["containers"]
    return app


def settings_of(r: Rendered, service: Any, container: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The service's Settings as the container would build them (secrets as stand-ins)."""
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        env.update(r.configmap(source["configMapRef"]["name"])["data"])
    for entry in container["env"]:
        if "value" in entry:
            env[entry["name"]] = VAR_REF.sub(lambda m: env[m.group(1)], entry["value"])
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = f"k8s-test-{ref['name']}-{ref['key']}"
    for name in [n for n in os.environ if n.startswith("GREENZONE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return service.settings_class()


def test_kafka_accepts_authenticated_tls_clients_only(rendered: Rendered) -> None:
    spec = kafka(rendered)["spec"]["kafka"]
    assert spec["listeners"]
    for listener in spec["listeners"]:
        assert listener["tls"] is True, f"listener {listener['name']} is plaintext"
        assert listener.get("authentication", {}).get("type") == "scram-sha-512", f"{listener['name']}: anonymous"
    assert spec["authorization"]["type"] == "simple"
    assert not spec["authorization"].get("superUsers"), "no super users (ANONYMOUS least of all)"


def test_each_service_connects_as_its_kafka_user(
    rendered: Rendered, services: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    k = kafka(rendered)
    cluster = k["metadata"]["name"]
    listeners = {x["port"]: x for x in k["spec"]["kafka"]["listeners"]}
    for service in services:
        app = app_container(rendered, service.name)
        settings = settings_of(rendered, service, app, monkeypatch)
        host, _, port = settings.kafka_bootstrap.rpartition(":")
        assert host == f"{cluster}-kafka-bootstrap", "the bootstrap Service Strimzi creates"
        listener = listeners[int(port)]
        assert listener["tls"] and listener["authentication"]["type"] == "scram-sha-512"
        assert settings.kafka_security_protocol == "SASL_SSL"
        assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
        assert settings.kafka_create_topics is False, "the KafkaTopics create the topics"

        # SCRAM usernames are KafkaUser names; the User Operator writes the password into a Secret of that name.
        user = rendered.get("KafkaUser", settings.kafka_sasl_username)
        assert user["metadata"]["name"] == service.name, f"{service.name} connects as another service"
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == cluster
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        (password,) = [e for e in app["env"] if e["name"] == "GREENZONE_KAFKA_SASL_PASSWORD"]
        assert password["valueFrom"]["secretKeyRef"] == {"name": user["metadata"]["name"], "key": "password"}
        assert settings.kafka_sasl_password.get_secret_value() == f"k8s-test-{service.name}-password"


def test_each_service_trusts_the_cluster_ca(rendered: Rendered, services: list) -> None:
    ca_secret = CLUSTER_CA_SECRET.format(cluster=kafka(rendered)["metadata"]["name"])
    cafile = rendered.configmap("greenzone-common")["data"]["GREENZONE_KAFKA_SSL_CAFILE"]
    folder, filename = posixpath.split(cafile)
    for service in services:
        spec = pod_spec(rendered.get("Deployment", service.name))
        app = app_container(rendered, service.name)
        (mount,) = [m for m in app["volumeMounts"] if m["mountPath"] == folder]
        assert mount.get("readOnly") is True and "subPath" not in mount
        volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
        assert volume["secret"]["secretName"] == ca_secret
        # Only the certificate: not the PKCS#12 truststore or its password.
        assert volume["secret"]["items"] == [{"key": CLUSTER_CA_KEY, "path": filename}]


def test_migrate_gets_no_kafka_credentials(rendered: Rendered, services: list) -> None:
    users = {u["metadata"]["name"] for u in rendered.of_kind("KafkaUser")}
    for service in services:
        spec = pod_spec(rendered.get("Deployment", service.name))
        (migrate,) = spec["initContainers"]
        refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in migrate["env"] if "valueFrom" in e}
        assert refs and not refs & users, f"{service.name}: migrate reads a KafkaUser's Secret"
        secret_volumes = {v["name"] for v in spec["volumes"] if "secret" in v}
        assert not secret_volumes & {m["name"] for m in migrate.get("volumeMounts", [])}
