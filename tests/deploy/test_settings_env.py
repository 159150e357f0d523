"""The GREENZONE_* variables a service's pods get are exactly the settings that service reads (its Settings class,
introspected here, so a setting added to the code fails this check until the manifests say what it is), secrets
come from Secrets, and the values parse."""

from __future__ import annotations

import os
import re
from typing import Any, get_args

import pytest
from k8s_render import Rendered, containers, pod_spec
from pydantic import SecretStr

UNSET_ANNOTATION = "greenzone.dev/unset-settings"
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
#: Settings the migrate init container is deliberately not given: it builds the service's Settings but only opens the
#: database, so it gets no Kafka credential (the Settings start without one: test_settings_accept_the_values).
MIGRATE_OMITS = {"GREENZONE_KAFKA_SASL_PASSWORD"}


def omitted(container: dict[str, Any]) -> set[str]:
    return MIGRATE_OMITS if container["name"] == "migrate" else set()


def setting_names(settings_class: Any) -> dict[str, Any]:
    """The environment variable of each field, with the field."""
    prefix = settings_class.model_config.get("env_prefix", "")
    out = {}
    for name, field in settings_class.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        out[(alias or prefix + name).upper()] = field
    return out


def is_secret(field: Any) -> bool:
    return field.annotation is SecretStr or SecretStr in get_args(field.annotation)


def pod_environment(r: Rendered, service: str) -> list[tuple[dict[str, Any], dict[str, str], set[str]]]:
    """For each container of the service's pods: the container, the variables from its ConfigMaps, and the
    settings those ConfigMaps say are left unset."""
    spec = pod_spec(r.get("Deployment", service))
    assert spec is not None
    out = []
    for container in containers(spec):
        from_configmaps: dict[str, str] = {}
        unset: set[str] = set()
        for source in container.get("envFrom", []):
            assert "configMapRef" in source, f"{service}: envFrom only from ConfigMaps (secrets by secretKeyRef)"
            cm = next(c for c in r.of_kind("ConfigMap") if c["metadata"]["name"] == source["configMapRef"]["name"])
            assert not set(from_configmaps) & set(cm["data"]), f"{service}: a variable set twice"
            from_configmaps.update(cm["data"])
            unset |= set(cm["metadata"].get("annotations", {}).get(UNSET_ANNOTATION, "").split())
        out.append((container, from_configmaps, unset))
    return out


def test_pods_get_exactly_the_settings_the_service_reads(rendered: Rendered, services: list) -> None:
    for service in services:
        expected = set(setting_names(service.settings_class))
        for container, from_configmaps, unset in pod_environment(rendered, service.name):
            names = {k for k in from_configmaps if k.startswith("GREENZONE_")}
            names |= {e["name"] for e in container.get("env", []) if e["name"].startswith("GREENZONE_")}
            where = f"{rendered.overlay}: {service.name}/{container['name']}"
            assert names - expected == set(), f"{where}: variables no setting reads"
            assert unset - expected == set(), f"{where}: {UNSET_ANNOTATION} names unknown settings"
            assert names & unset == set(), f"{where}: both set and declared unset"
            assert expected - names - unset == omitted(container), f"{where}: settings the manifests do not mention"


def test_secrets_come_from_secret_key_refs(rendered: Rendered, services: list) -> None:
    for service in services:
        fields = setting_names(service.settings_class)
        secrets = {name for name, field in fields.items() if is_secret(field)}
        assert {"GREENZONE_JWT_SECRET", "GREENZONE_KAFKA_SASL_PASSWORD"} <= secrets
        for container, from_configmaps, _ in pod_environment(rendered, service.name):
            assert secrets & set(from_configmaps) == set(), f"{service.name}: a secret in a ConfigMap"
            assert not [k for k in from_configmaps if re.search("SECRET|TOKEN|PASSWORD", k)]
            env = {e["name"]: e for e in container.get("env", [])}
            for name in secrets - omitted(container):
                assert "secretKeyRef" in env[name].get("valueFrom", {}), f"{service.name}: {name} not from a Secret"
            from_secrets = {n for n, e in env.items() if "secretKeyRef" in e.get("valueFrom", {})}
            defined: set[str] = set(from_configmaps)
            for entry in container.get("env", []):
                # A literal may use variables ($(DB_PASSWORD)), which Kubernetes expands only when defined earlier.
                for ref in VAR_REF.findall(entry.get("value", "")):
                    assert ref in defined, f"{service.name}: {entry['name']} uses $({ref}) before it is defined"
                defined.add(entry["name"])
            url = env["GREENZONE_DATABASE_URL"]["value"]
            userinfo = re.fullmatch(r"postgresql://([^@]*)@[^/]+/\w+", url)
            assert userinfo, url
            user, _, password = userinfo.group(1).partition(":")
            assert VAR_REF.fullmatch(password) and VAR_REF.fullmatch(password).group(1) in from_secrets
            assert VAR_REF.fullmatch(user), "the role name comes from the same Secret as its password"


def environment_of(container: dict[str, Any], from_configmaps: dict[str, str]) -> dict[str, str]:
    """What the process would see: ConfigMap values, literals with $(VAR) expanded, secrets as stand-ins."""
    env = dict(from_configmaps)
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = VAR_REF.sub(lambda m: env[m.group(1)], entry["value"])
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = f"k8s-test-{ref['name']}-{ref['key']}"
    return env


def test_settings_accept_the_values(rendered: Rendered, services: list, monkeypatch: pytest.MonkeyPatch) -> None:
    for service in services:
        for container, from_configmaps, _ in pod_environment(rendered, service.name):
            for name in [n for n in os.environ if n.startswith("GREENZONE_")]:
                monkeypatch.delenv(name)
            for name, value in environment_of(container, from_configmaps).items():
                monkeypatch.setenv(name, value)
            settings = service.settings_class()  # raises on a value of the wrong type, or a refused secret
            assert settings.service_name == service.name
            assert settings.database_url.endswith("@greenzone-pg-rw:5432/greenzone")


def test_prod_turns_on_producer_idempotence(prod: Rendered) -> None:
    common = prod.configmap("greenzone-common")["data"]
    assert common["GREENZONE_KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    assert common["GREENZONE_ENV"] == "production"
