"""deploy/k8s against what the code serves and reads: the web's probes pass Django's host check with the rendered
`CIO_ALLOWED_HOSTS` (the kubelet's own Host, the pod's IP, would not), and the gate, loading its settings from the
rendered environment the way it does in the pod, serves its probes where the manifest probes them."""

import os
from typing import Any

import pytest
from django.http.request import validate_host

from bridges.engine_state.config import BridgeSettings
from cio_kernel.nats_credentials import PASSWORD_FILE_ENV, USER_ENV
from deploy.access import NATS_ROLES, WORKLOAD_ACCESS
from deploy.k8s import fleet, render
from deploy.workloads import GATE_SPOOL, workload
from gate.config import GateSettings
from tests.k8s_rendered import POD_IP, allowed_hosts, base_config, container, documents, fleet_config, web_probe_hosts


def test_the_web_readiness_probe_names_a_host_the_rendered_allowed_hosts_contain():
    hosts = web_probe_hosts()
    readiness = workload("web").readiness
    assert readiness is not None and hosts[readiness.path] == readiness.host is not None
    for config in (base_config(), fleet_config()):
        allowed = allowed_hosts(config)
        assert validate_host(readiness.host, allowed)
        assert not validate_host(POD_IP, allowed), "the host check must stay real: no wildcard"
    # The probe's Host is the web's Service, so callers in the cluster use the same name.
    services = [d for d in documents("base", "resources", "web.yaml") if d["kind"] == "Service"]
    (service,) = [s for s in services if s["metadata"]["name"] == readiness.host]
    assert service["spec"]["selector"] == render.labels("web")
    assert [p["port"] for p in service["spec"]["ports"]] == [readiness.port]
    # Probes sent with the pod's IP reach only what answers before the host check (cio_site.metrics).
    assert {path for path, host in hosts.items() if host is None} == {"/api/live"}


def test_the_fleet_overlay_allows_the_public_host_and_trusts_its_https_origin():
    base, overlaid = allowed_hosts(base_config()), allowed_hosts(fleet_config())
    assert not validate_host(fleet.PUBLIC_HOST, base)  # a placeholder only the fleet overlay sets
    assert validate_host(fleet.PUBLIC_HOST, overlaid)
    assert fleet_config()["CIO_TRUSTED_ORIGINS"] == f"https://{fleet.PUBLIC_HOST}"
    # The canary checks the web's health through that same public name.
    (canary_config,) = [d for d in documents("canary", "resources", "canary.yaml") if d["kind"] == "ConfigMap"]
    assert canary_config["data"]["CIO_CANARY_HEALTH_URL"] == f"https://{fleet.PUBLIC_HOST}/api/health"


def rendered_environment(pod_container: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The process environment as the pod has it (literal values): the ConfigMap (`envFrom`, with the fleet
    overlay), then the container's own `env`; nothing of this machine's CIO_ settings left over."""
    for name in list(os.environ):
        if name.startswith(("CIO_", "NATS_", "REDIS_")):
            monkeypatch.delenv(name)
    literal = {e["name"]: e["value"] for e in pod_container["env"] if "value" in e}
    for name, value in {**fleet_config(), **literal}.items():
        monkeypatch.setenv(name, value)


def test_the_gate_loads_from_its_rendered_environment_what_its_manifest_probes(monkeypatch: pytest.MonkeyPatch):
    gate_container = container("gate")
    rendered_environment(gate_container, monkeypatch)
    settings = GateSettings()

    gate = workload("gate")
    assert gate.readiness is not None and gate.liveness is not None and gate.metrics is not None
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert gate_container[kind]["httpGet"]["port"] == settings.gate_health_port
    assert {p["containerPort"] for p in gate_container["ports"]} == {settings.gate_health_port}
    assert gate.metrics.port == settings.gate_health_port
    assert settings.gate_health_host == "0.0.0.0"  # the kubelet probes the pod's address
    # The spool is the claim's mount, and the drain ends before the pod is killed.
    mounts = {m["mountPath"] for m in gate_container["volumeMounts"] if not m.get("readOnly")}
    assert str(settings.audit_spool_dir) == GATE_SPOOL and GATE_SPOOL in mounts
    assert settings.shutdown_timeout_s == render.GATE_DRAIN_S < render.GATE_GRACE_S
    # The fleet's servers, as the gate parses them.
    assert settings.nats_url == fleet.NATS_URL
    sentinel = settings.redis_sentinel()
    assert sentinel is not None and len(sentinel.hosts) == 3
    assert settings.nats_inbox_prefix == NATS_ROLES[WORKLOAD_ACCESS["gate"].nats or ""].inbox_prefix
    assert settings.intake_queue_group == "cio-gate" and not settings.gate_shadow
    # Every CIO_ setting the gate's container names is one the gate reads: a misspelt one would be ignored.
    read = {f"CIO_{name.upper()}" for name in GateSettings.model_fields} | {USER_ENV, PASSWORD_FILE_ENV, "CIO_GATE_ID"}
    named = {e["name"] for e in gate_container["env"] if e["name"].startswith("CIO_")}
    assert named <= read, named - read


def test_the_snapshot_bridge_and_the_web_reach_the_trade_engine_where_their_policies_let_them(
    monkeypatch: pytest.MonkeyPatch,
):
    bridge = container("snapshot-bridge")
    rendered_environment(bridge, monkeypatch)
    # The symbols come from the fleet's shared ConfigMap, the very key the trade engine's own list is read from.
    (symbols,) = [e["valueFrom"]["configMapKeyRef"] for e in bridge["env"] if e["name"] == "CIO_SNAPSHOT_SYMBOLS"]
    assert symbols == {"name": fleet.COMMON_CONFIG, "key": fleet.TRADED_SYMBOLS_KEY}
    with pytest.raises(ValueError, match="CIO_SNAPSHOT_SYMBOLS"):
        BridgeSettings()  # without them the bridge refuses to start
    monkeypatch.setenv("CIO_SNAPSHOT_SYMBOLS", "BTCUSDT,ETHUSDT")  # as the fleet's ConfigMap holds them
    settings = BridgeSettings()
    assert settings.engine_state_url == fleet.TRADEENGINE_STATE_URL  # not the local stand-in's default
    assert settings.symbols() == ("BTCUSDT", "ETHUSDT")
    assert base_config()["CIO_TRADEENGINE_URL"] == fleet.TRADEENGINE_URL
    engine = {"matchLabels": fleet.TRADEENGINE_PODS}
    for name in ("snapshot-bridge", "web"):
        (policy,) = [d for d in documents("base", "resources", f"{name}.yaml") if d["kind"] == "NetworkPolicy"]
        to_engine = [r for r in policy["spec"]["egress"] if r["to"][0].get("podSelector") == engine]
        assert [p["port"] for r in to_engine for p in r["ports"]] == [fleet.TRADEENGINE_POD_PORT], name
