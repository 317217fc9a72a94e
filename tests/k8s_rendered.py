"""The manifests as `python -m deploy.k8s` renders them, read the way Kubernetes and kustomize would apply them: for
the tests that hold them against what the code serves and reads (tests/unit/test_k8s_served.py, and the web's host
check through the real app in tests/control_plane/test_web_host_check.py)."""

from typing import Any

import yaml

from deploy.k8s import render
from deploy.k8s.__main__ import K8S, rendered

POD_IP = "10.42.0.17"  # what the kubelet sends as Host when a probe names none
FILES = rendered()


def documents(*parts: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(FILES[K8S.joinpath(*parts)]) if doc]


def base_config() -> dict[str, str]:
    (config,) = [d for d in documents("base", "resources", "config.yaml") if d["kind"] == "ConfigMap"]
    return dict(config["data"])


def fleet_config() -> dict[str, str]:
    """The base ConfigMap with the fleet overlay's patch applied, as kustomize merges it."""
    (overlay,) = documents("overlays", "fleet", "kustomization.yaml")
    (patch,) = [p for p in overlay["patches"] if p["target"] == {"kind": "ConfigMap", "name": render.CONFIG}]
    return {**base_config(), **yaml.safe_load(patch["patch"])["data"]}


def allowed_hosts(config: dict[str, str]) -> list[str]:
    """`CIO_ALLOWED_HOSTS` as cio_site/settings.py reads it."""
    return [h for h in config["CIO_ALLOWED_HOSTS"].split(",") if h]


def container(name: str) -> dict[str, Any]:
    for doc in documents("base", "resources", f"{name}.yaml"):
        if doc["kind"] in ("Deployment", "StatefulSet"):
            (found,) = doc["spec"]["template"]["spec"]["containers"]
            return found
    raise AssertionError(f"no pod template for {name}")


def web_probe_hosts() -> dict[str, str | None]:
    """Each web probe's Host header (None: the kubelet's default, the pod's IP)."""
    web = container("web")
    hosts: dict[str, str | None] = {}
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        headers = {h["name"].lower(): h["value"] for h in web[kind]["httpGet"].get("httpHeaders", [])}
        hosts[web[kind]["httpGet"]["path"]] = headers.get("host")
    return hosts
