"""Every built-in object validates against the Kubernetes JSON schemas of the version deploy/k8s targets (offline,
the kubernetes-validate package, strict: unknown fields are errors). Custom resources are checked in
test_operator_resources.py, since their CRD schemas are not in that package."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
from k8s_render import Rendered

#: The Kubernetes version the manifests target (docs/operations.md, "Requirements").
KUBERNETES_VERSION = "1.33.0"
CUSTOM_RESOURCE_GROUPS = {"kafka.strimzi.io", "postgresql.cnpg.io", "barmancloud.cnpg.io", "monitoring.coreos.com"}


def is_custom(obj: dict) -> bool:
    return obj["apiVersion"].rpartition("/")[0] in CUSTOM_RESOURCE_GROUPS


def test_every_builtin_object_validates(rendered: Rendered) -> None:
    errors = []
    for obj in rendered.objects:
        if is_custom(obj):
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: no schema for {obj['apiVersion']}")
    assert errors == []


def test_validation_rejects_an_unknown_field(prod: Rendered) -> None:
    # The check above is only worth something if strict validation fails on a typo.
    deployment = copy.deepcopy(prod.get("Deployment", "change-svc"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
