"""Both overlays render with the subset of Kustomize the renderer implements, and the result hangs together."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from k8s_render import CLUSTER_SCOPED, KustomizeError, Rendered, containers, pod_spec, render

NAMESPACE = "greenzone"


def test_overlay_renders_into_one_namespace(rendered: Rendered) -> None:
    assert len(rendered.objects) > 40
    for obj in rendered.objects:
        assert {"apiVersion", "kind", "metadata"} <= obj.keys()
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]
    assert rendered.get("Namespace", NAMESPACE)


def test_every_configmap_a_pod_references_exists(rendered: Rendered) -> None:
    names = {cm["metadata"]["name"] for cm in rendered.of_kind("ConfigMap")}
    for obj in rendered.objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        refs = [v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v]
        for container in containers(spec):
            refs += [s["configMapRef"]["name"] for s in container.get("envFrom", []) if "configMapRef" in s]
            refs += [
                e["valueFrom"]["configMapKeyRef"]["name"]
                for e in container.get("env", [])
                if "configMapKeyRef" in e.get("valueFrom", {})
            ]
        assert set(refs) <= names, f"{obj['metadata']['name']} references missing ConfigMaps {set(refs) - names}"


def test_no_secret_is_committed(rendered: Rendered) -> None:
    # Secrets are created by the operator (docs/operations.md) or by the operators (Strimzi, CloudNativePG).
    assert rendered.of_kind("Secret") == []


def test_settings_change_rolls_the_pods(rendered: Rendered) -> None:
    # Generated ConfigMaps carry a content hash in their name, so a changed setting is a new pod template.
    assert rendered.configmap("greenzone-common")["metadata"]["name"] != "greenzone-common"


def test_overlays_differ_only_where_intended(dev: Rendered, prod: Rendered) -> None:
    assert {o["kind"] for o in prod.objects} - {o["kind"] for o in dev.objects} == {"ObjectStore", "ScheduledBackup"}
    assert dev.get("Cluster", "greenzone-pg")["spec"]["instances"] == 1
    assert prod.get("Cluster", "greenzone-pg")["spec"]["instances"] == 3


def test_prod_images_are_pinned(prod: Rendered) -> None:
    for deployment in prod.of_kind("Deployment"):
        for container in containers(pod_spec(deployment) or {}):
            image = container["image"]
            assert "@sha256:" in image or not image.endswith((":latest", ":dev")), image
            assert ":" in image.rpartition("/")[2] or "@" in image, f"{image} has no tag"


def test_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("namePrefix: x-\nresources: []\n")
    with pytest.raises(KustomizeError, match="namePrefix"):
        render(tmp_path)


def test_renderer_refuses_a_patch_that_matches_nothing(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n")
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\npatches:\n  - target: {kind: ConfigMap, name: b}\n"
        "    patch: '[{op: replace, path: /data/k, value: w}]'\n"
    )
    with pytest.raises(KustomizeError, match="matches nothing"):
        render(tmp_path)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed: the renderer stands in for it")
def test_renderer_agrees_with_kubectl_kustomize(rendered: Rendered) -> None:
    overlay = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "overlays" / rendered.overlay
    out = subprocess.run(["kubectl", "kustomize", str(overlay)], check=True, capture_output=True, text=True).stdout

    def by_id(objs: list[dict]) -> dict[tuple[str, str], dict]:
        return {(o["kind"], o["metadata"]["name"]): o for o in objs if o}

    assert by_id(rendered.objects) == by_id(list(yaml.safe_load_all(out)))
