"""A small Kustomize renderer for the subset deploy/k8s uses, so the checks run without kubectl or a cluster.

Supported, with kustomize's semantics: ``resources`` (files, and folders holding a kustomization.yaml),
``namespace``, ``configMapGenerator`` (literals and files; behaviors create, merge and replace; ``options``
labels and annotations; the content-hash name suffix and the rewrite of the pod specs' references to it),
``patches`` (strategic merge or JSON 6902, with a ``target`` selector by kind, name and labelSelector) and
``images``. A kustomization that uses anything else is refused, so the overlays stay within what is checked here.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

SUPPORTED_KEYS = {"apiVersion", "kind", "namespace", "resources", "configMapGenerator", "patches", "images"}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
_GENERATED = "__generated__"  # marks generated ConfigMaps until their names get the hash suffix


class KustomizeError(ValueError):
    pass


def render(path: Path) -> list[Obj]:
    """Build the kustomization in the folder ``path`` as ``kustomize build`` would, objects in input order."""
    objs = _build(path)
    return _finalize(objs)


def _build(folder: Path) -> list[Obj]:
    kfile = folder / "kustomization.yaml"
    if not kfile.is_file():
        raise KustomizeError(f"{folder}: no kustomization.yaml")
    k = yaml.safe_load(kfile.read_text()) or {}
    unsupported = set(k) - SUPPORTED_KEYS
    if unsupported:
        raise KustomizeError(f"{kfile}: fields this renderer does not support: {sorted(unsupported)}")
    objs: list[Obj] = []
    for entry in k.get("resources", []):
        target = (folder / entry).resolve()
        if target.is_dir():
            objs += _build(target)
        elif target.is_file():
            objs += [d for d in yaml.safe_load_all(target.read_text()) if d]
        else:
            raise KustomizeError(f"{kfile}: resource {entry} not found")
    for gen in k.get("configMapGenerator", []):
        _generate(folder, gen, objs)
    for patch in k.get("patches", []):
        _patch(folder, patch, objs)
    for image in k.get("images", []):
        _set_image(image, objs)
    if "namespace" in k:
        for obj in objs:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = k["namespace"]
    _refuse_duplicates(objs, kfile)
    return objs


def _key(obj: Obj) -> tuple[str, str, str]:
    return (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def _refuse_duplicates(objs: list[Obj], where: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for obj in objs:
        if _key(obj) in seen:
            raise KustomizeError(f"{where}: {_key(obj)} defined twice")
        seen.add(_key(obj))


# --- configMapGenerator ---


def _generate(folder: Path, gen: Obj, objs: list[Obj]) -> None:
    data: dict[str, str] = {}
    for literal in gen.get("literals", []):
        key, sep, value = literal.partition("=")
        if not sep:
            raise KustomizeError(f"literal {literal!r} has no '='")
        data[key] = value
    for entry in gen.get("files", []):
        key, sep, rel = entry.partition("=")
        if not sep:
            key, rel = Path(entry).name, entry
        data[key] = (folder / rel).read_text()
    options = gen.get("options", {})
    behavior = gen.get("behavior", "create")
    existing = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == gen["name"]]
    if behavior == "create":
        if existing:
            raise KustomizeError(f"ConfigMap {gen['name']} already exists; use behavior merge or replace")
        cm: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data}
        for field in ("labels", "annotations"):
            if field in options:
                cm["metadata"][field] = dict(options[field])
        cm[_GENERATED] = True
        objs.append(cm)
        return
    if len(existing) != 1 or not existing[0].get(_GENERATED):
        raise KustomizeError(f"behavior {behavior}: no generated ConfigMap {gen['name']} to change")
    cm = existing[0]
    cm["data"] = {**cm["data"], **data} if behavior == "merge" else data
    for field in ("labels", "annotations"):
        if field in options:
            cm["metadata"][field] = {**cm["metadata"].get(field, {}), **options[field]}


def configmap_hash(cm: Obj) -> str:
    """kustomize's name suffix: sha256 of the JSON of kind, name and data, 10 hex digits with some letters swapped.
    (kustomize 5 hashes with an empty name, as it computes the hash before naming the object.)"""
    encoded = {"kind": "ConfigMap", "name": "", "data": cm.get("data", {})}
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")  # as Go's json.Marshal
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _finalize(objs: list[Obj]) -> list[Obj]:
    renames: dict[tuple[str, str], str] = {}
    for obj in objs:
        if obj.pop(_GENERATED, False):
            old = obj["metadata"]["name"]
            obj["metadata"]["name"] = f"{old}-{configmap_hash(obj)}"
            renames[(obj["metadata"].get("namespace", ""), old)] = obj["metadata"]["name"]
    for obj in objs:
        spec = pod_spec(obj)
        if spec is None:
            continue
        ns = obj["metadata"].get("namespace", "")

        def rename(ref: Obj | None, ns: str = ns) -> None:
            if ref and (ns, ref.get("name")) in renames:
                ref["name"] = renames[(ns, ref["name"])]

        for container in containers(spec):
            for source in container.get("envFrom", []):
                rename(source.get("configMapRef"))
            for env in container.get("env", []):
                rename(env.get("valueFrom", {}).get("configMapKeyRef"))
        for volume in spec.get("volumes", []):
            rename(volume.get("configMap"))
            for source in volume.get("projected", {}).get("sources", []):
                rename(source.get("configMap"))
    return objs


# --- patches ---


def _patch(folder: Path, entry: Obj, objs: list[Obj]) -> None:
    if "path" in entry:
        body = yaml.safe_load((folder / entry["path"]).read_text())
    else:
        body = yaml.safe_load(entry["patch"])
    target = entry.get("target")
    if isinstance(body, list):  # JSON 6902
        if not target:
            raise KustomizeError("a JSON 6902 patch needs a target")
        selected = _select(objs, target)
        for obj in selected:
            for op in body:
                _json6902(obj, op)
        return
    selected = _select(objs, target or {"kind": body["kind"], "name": body["metadata"]["name"]})
    for obj in selected:
        patch = copy.deepcopy(body)
        if target:  # a patch applied by selector does not rename what it patches
            patch.get("metadata", {}).pop("name", None)
        _merge(obj, patch, builtin=_is_builtin(obj))


def _select(objs: list[Obj], target: Obj) -> list[Obj]:
    def matches(obj: Obj) -> bool:
        group, _, version = obj["apiVersion"].rpartition("/")
        if "kind" in target and obj["kind"] != target["kind"]:
            return False
        if "group" in target and group != target["group"]:
            return False
        if "version" in target and version != target["version"]:
            return False
        if "name" in target and not re.fullmatch(target["name"], obj["metadata"]["name"]):
            return False
        if "namespace" in target and obj["metadata"].get("namespace") != target["namespace"]:
            return False
        if "labelSelector" in target:
            labels = obj["metadata"].get("labels", {})
            for term in target["labelSelector"].split(","):
                key, _, value = term.partition("=")
                if labels.get(key.strip()) != value.strip():
                    return False
        return True

    selected = [o for o in objs if matches(o)]
    if not selected:
        raise KustomizeError(f"patch target {target} matches nothing")
    return selected


def _is_builtin(obj: Obj) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def _merge(base: Obj, patch: Obj, *, builtin: bool) -> None:
    """Strategic merge for built-in kinds (lists of named items merge by name), JSON merge patch for the others."""
    for key, value in patch.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, builtin=builtin)
        elif builtin and isinstance(value, list) and _named(value) and _named(base.get(key)):
            by_name = {item["name"]: item for item in base[key]}
            for item in value:
                if item["name"] in by_name:
                    _merge(by_name[item["name"]], item, builtin=builtin)
                else:
                    base[key].append(copy.deepcopy(item))
        else:
            base[key] = copy.deepcopy(value)


def _named(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, dict) and "name" in i for i in value)


def _json6902(obj: Obj, op: Obj) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    parent: Any = obj
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    kind = op["op"]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if kind == "add":
            parent.insert(index, copy.deepcopy(op["value"]))
        elif kind == "replace":
            parent[index] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del parent[index]
        else:
            raise KustomizeError(f"unsupported JSON 6902 op {kind}")
        return
    if kind in ("replace", "remove") and last not in parent:
        raise KustomizeError(f"{op['path']}: nothing to {kind}")
    if kind in ("add", "replace"):
        parent[last] = copy.deepcopy(op["value"])
    elif kind == "remove":
        del parent[last]
    else:
        raise KustomizeError(f"unsupported JSON 6902 op {kind}")


# --- images ---


def _set_image(image: Obj, objs: list[Obj]) -> None:
    for obj in objs:
        spec = pod_spec(obj)
        if spec is None:
            continue
        for container in containers(spec):
            name, tag = split_image(container["image"])
            if name != image["name"]:
                continue
            name = image.get("newName", name)
            if "digest" in image:
                container["image"] = f"{name}@{image['digest']}"
            else:
                container["image"] = f"{name}:{image.get('newTag', tag)}" if image.get("newTag", tag) else name


def split_image(ref: str) -> tuple[str, str]:
    """``registry:5000/a/b:tag`` → (``registry:5000/a/b``, ``tag``)."""
    head, _, last = ref.rpartition("/")
    name, _, tag = last.partition(":")
    return (f"{head}/{name}" if head else name), tag


# --- helpers the checks use too ---


def pod_spec(obj: Obj) -> Obj | None:
    if obj["kind"] in POD_TEMPLATE_KINDS:
        spec: Obj = obj["spec"]["template"]["spec"]
        return spec
    if obj["kind"] == "CronJob":
        spec = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        return spec
    return None


def containers(spec: Obj) -> list[Obj]:
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


class Rendered:
    """One overlay, built."""

    def __init__(self, overlay: str, objects: list[Obj]) -> None:
        self.overlay = overlay
        self.objects = objects

    def __repr__(self) -> str:
        return f"Rendered({self.overlay!r}, {len(self.objects)} objects)"

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> Obj:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.overlay}: expected one {kind} {name}, found {len(found)}"
        return found[0]

    def configmap(self, name: str) -> Obj:
        """A ConfigMap by the name the manifests give it (a generated one carries a hash suffix)."""
        found = [
            o
            for o in self.of_kind("ConfigMap")
            if o["metadata"]["name"] == name or re.fullmatch(re.escape(name) + r"-[a-z0-9]{10}", o["metadata"]["name"])
        ]
        assert len(found) == 1, f"{self.overlay}: expected one ConfigMap {name}, found {len(found)}"
        return found[0]
