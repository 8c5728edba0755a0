"""The subset of kustomize that deploy/k8s uses, so the tests render overlays without kubectl.

No kustomize runs on PyPI; this renders `resources` (files and directories), `namespace`,
`images` and `patches` (strategic-merge files, and inline JSON 6902 patches with a target
whose name is a regular expression). A kustomization using anything else is refused, so the
rendering never silently differs from kustomize's.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
CLUSTER_SCOPED_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}


def load_documents(path: Path) -> list[Manifest]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def render(directory: Path) -> list[Manifest]:
    """The manifests `kubectl kustomize directory` would print (for the supported subset)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise ValueError(f"{directory}: kustomization fields not rendered here: {unsupported}")
    manifests: list[Manifest] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        manifests += render(path) if path.is_dir() else load_documents(path)
    for patch in kustomization.get("patches", []):
        if "path" in patch:
            for document in load_documents(directory / patch["path"]):
                target = _find(manifests, document["kind"], document["metadata"]["name"])
                merged = strategic_merge(copy.deepcopy(target), document)
                target.clear()
                target.update(merged)
        else:
            _apply_json6902(manifests, patch["target"], yaml.safe_load(patch["patch"]))
    for image in kustomization.get("images", []):
        for container in _containers(manifests):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = (
                    f"{image.get('newName', name)}:{image.get('newTag', tag or 'latest')}"
                )
    if namespace := kustomization.get("namespace"):
        for manifest in manifests:
            if manifest["kind"] not in CLUSTER_SCOPED_KINDS:
                manifest["metadata"]["namespace"] = namespace
    return manifests


def strategic_merge(base: Any, patch: Any) -> Any:
    """Maps merge key by key (a null deletes); lists of named items merge by name (as for
    containers, env, volumes, ports); any other list is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        for key, value in patch.items():
            if value is None:
                base.pop(key, None)
            else:
                base[key] = strategic_merge(base.get(key), value)
        return base
    if isinstance(base, list) and isinstance(patch, list) and _all_named(base + patch):
        by_name = {item["name"]: item for item in base}
        for item in patch:
            if item["name"] in by_name:
                strategic_merge(by_name[item["name"]], item)
            else:
                base.append(item)
        return base
    return copy.deepcopy(patch)


def _all_named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and "name" in item for item in items)


def _find(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    for manifest in manifests:
        if manifest["kind"] == kind and manifest["metadata"]["name"] == name:
            return manifest
    raise ValueError(f"patch target {kind}/{name} is not among the resources")


def _apply_json6902(
    manifests: list[Manifest], target: dict[str, str], operations: list[dict[str, Any]]
) -> None:
    matched = [
        manifest
        for manifest in manifests
        if manifest["kind"] == target["kind"]
        and re.fullmatch(target["name"], manifest["metadata"]["name"])
    ]
    if not matched:
        raise ValueError(f"patch target {target} matches no resource")
    for manifest in matched:
        for operation in operations:
            if operation["op"] not in {"replace", "add"}:
                raise ValueError(f"JSON patch op {operation['op']!r} is not rendered here")
            *parents, last = operation["path"].lstrip("/").split("/")
            node: Any = manifest
            for key in parents:
                node = node[int(key)] if isinstance(node, list) else node[key]
            if isinstance(node, list):
                index = len(node) if last == "-" else int(last)
                if operation["op"] == "add":
                    node.insert(index, operation["value"])
                else:
                    node[index] = operation["value"]
            else:
                if operation["op"] == "replace" and last not in node:
                    raise ValueError(f"{operation['path']} does not exist to be replaced")
                node[last] = operation["value"]


def _containers(manifests: list[Manifest]) -> list[Manifest]:
    containers: list[Manifest] = []
    for manifest in manifests:
        pod = manifest.get("spec", {}).get("template", {}).get("spec", {})
        containers += pod.get("initContainers", []) + pod.get("containers", [])
    return containers
