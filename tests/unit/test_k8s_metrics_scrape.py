"""The metrics reach the fleet's Grafana: the committed Alloy module (deploy/grafana/cio-scrape.alloy), read back
from its text, scrapes every workload with a `metrics` probe and only those, on the probe's port and path, with
the labels the dashboard groups by and the web's bearer token from the Secret the web reads; the pods carry the
matching `prometheus.io/*` annotations; and each NetworkPolicy admits the observability namespace on exactly
those ports."""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from deploy.k8s import fleet, render
from deploy.k8s.__main__ import ALLOY_MODULE, ROOT
from deploy.workloads import BY_NAME, WORKLOADS
from tests.k8s_rendered import container, documents

ANNOTATIONS = ("prometheus.io/scrape", "prometheus.io/port", "prometheus.io/path")
DASHBOARD = ROOT / "deploy" / "grafana" / "cio-dashboard.json"
SCRAPED = {w.name: w.metrics for w in WORKLOADS if w.metrics is not None}


@dataclass
class Block:
    name: str
    label: str | None
    attributes: dict[str, str] = field(default_factory=dict)
    blocks: list["Block"] = field(default_factory=list)

    def children(self, name: str) -> dict[str | None, "Block"]:
        return {b.label: b for b in self.blocks if b.name == name}


def parse(text: str) -> Block:
    """Alloy's syntax as the generator writes it (one statement per line): blocks, attributes, `//` comments."""
    root = Block("", None)
    stack = [root]
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("//"):
            continue
        if opened := re.fullmatch(r'([a-z_.]+)(?: "([^"]+)")? \{', line):
            block = Block(opened[1], opened[2])
            stack[-1].blocks.append(block)
            stack.append(block)
        elif line == "}":
            stack.pop()
        else:
            key, _, value = line.partition(" = ")
            assert key.isidentifier() and value, f"not an attribute: {line!r}"
            stack[-1].attributes[key] = value
    assert stack == [root], "unbalanced braces"
    return root


def strings(expression: str) -> list[str]:
    assert expression.startswith("[") and expression.endswith("]"), expression
    return json.loads(expression)


MODULE = parse(ALLOY_MODULE.read_text())
(DECLARE,) = MODULE.blocks


def test_the_module_scrapes_every_workload_with_a_metrics_probe_on_its_port_and_path_and_only_those():
    assert DECLARE.name == "declare" and MODULE.attributes == {}  # importable: nothing but the declaration
    (pods,) = DECLARE.children("discovery.kubernetes").values()
    assert pods.attributes["role"] == '"pod"'
    assert strings(pods.children("namespaces")[None].attributes["names"]) == [fleet.NAMESPACE]
    scrapes = DECLARE.children("prometheus.scrape")
    relabels = DECLARE.children("discovery.relabel")
    assert set(scrapes) == set(relabels) == {name.replace("-", "_") for name in SCRAPED}
    for name, probe in SCRAPED.items():
        scrape = scrapes[name.replace("-", "_")]
        assert json.loads(scrape.attributes["metrics_path"]) == probe.path
        assert scrape.attributes["forward_to"] == "argument.forward_to.value"  # where the hub wires it
        relabel_id = scrape.attributes["targets"].removeprefix("discovery.relabel.").removesuffix(".output")
        rules = relabels[relabel_id].blocks
        assert relabels[relabel_id].attributes["targets"] == "discovery.kubernetes.pods.targets"
        (ours,) = [r for r in rules if "__meta_kubernetes_pod_container_port_number" in r.attributes["source_labels"]]
        assert ours.attributes["action"] == '"keep"'
        kept = dict(
            zip(strings(ours.attributes["source_labels"]), json.loads(ours.attributes["regex"]).split(";"), strict=True)
        )
        assert kept == {
            "__meta_kubernetes_pod_label_app_kubernetes_io_name": render.APP,
            "__meta_kubernetes_pod_label_app_kubernetes_io_component": name,
            "__meta_kubernetes_pod_container_port_number": str(probe.port),
        }
        # The pods' own labels and port are what the rule keeps (discovery: one target per container port).
        pod = container(name)
        assert probe.port in [p["containerPort"] for p in pod["ports"]]


def test_the_targets_carry_every_label_the_dashboard_tells_series_apart_by():
    targets = {
        json.loads(r.attributes["target_label"]): strings(r.attributes["source_labels"])
        for relabel in DECLARE.children("discovery.relabel").values()
        for r in relabel.blocks
        if "target_label" in r.attributes
    }
    assert targets["pod"] == ["__meta_kubernetes_pod_name"]  # the gate's id is its pod's name (CIO_GATE_ID)
    queries = [
        t["expr"] + " " + t.get("legendFormat", "")
        for p in json.loads(DASHBOARD.read_text())["panels"]
        for t in p.get("targets", [])
    ]
    grouped = {
        label.strip() for q in queries for group in re.findall(r"by \(([^)]*)\)", q) for label in group.split(",")
    }
    grouped |= {label for q in queries for label in re.findall(r"\{\{(\w+)\}\}", q)}
    own = {"decision", "reason", "le", "channel", "outcome", "kind", "brain"}  # labels the metrics carry themselves
    assert "pod" in grouped and grouped - own <= set(targets)


def test_the_web_is_scraped_with_the_bearer_token_it_requires_from_the_same_secret():
    env = {e["name"]: e for e in container("web")["env"]}
    variable, secret, key = render.METRICS_TOKEN
    reference = env[variable]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": secret, "key": key}  # required: the web's port is open to the whole cluster
    readers = DECLARE.children("remote.kubernetes.secret")
    for name in SCRAPED:
        auth = DECLARE.children("prometheus.scrape")[name.replace("-", "_")].children("authorization")
        if name not in render.METRICS_BEARER:
            assert auth == {}
            continue
        assert auth[None].attributes["type"] == '"Bearer"'
        reader, _, data_key = (
            auth[None].attributes["credentials"].removeprefix("remote.kubernetes.secret.").partition(".data")
        )
        assert json.loads(readers[reader].attributes["name"]) == secret
        assert json.loads(readers[reader].attributes["namespace"]) == fleet.NAMESPACE
        assert data_key == f'["{key}"]'


def _manifest(name: str) -> list[dict[str, Any]]:
    return documents(
        *(("canary", "resources", "canary.yaml") if name == "canary" else ("base", "resources", f"{name}.yaml"))
    )


def test_pod_annotations_name_the_metrics_port_and_path_of_the_table():
    for workload in WORKLOADS:
        for doc in _manifest(workload.name):
            spec = doc.get("spec", {})
            template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
            if template is None:
                continue
            annotations = template["metadata"].get("annotations", {})
            found = {k: v for k, v in annotations.items() if k.startswith("prometheus.io/")}
            probe = workload.metrics
            expected = dict(zip(ANNOTATIONS, ("true", str(probe.port), probe.path), strict=True)) if probe else {}
            assert found == expected, workload.name


def _admitted_ports(policy: dict[str, Any], namespace: str) -> set[int]:
    """The ports a pod of `namespace` may connect to under this policy (a peer selecting every namespace counts)."""
    ports: set[int] = set()
    for rule in policy["spec"]["ingress"]:
        for peer in rule["from"]:
            selector = peer.get("namespaceSelector")
            if selector is not None and selector.get("matchLabels", {}) in (
                {},
                {"kubernetes.io/metadata.name": namespace},
            ):
                ports |= {p["port"] for p in rule["ports"]}
    return ports


def test_network_policies_admit_the_scraper_namespace_on_exactly_the_metrics_ports():
    policies = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for name in BY_NAME
        for d in _manifest(name)
        if d["kind"] == "NetworkPolicy"
    }
    assert set(policies) == set(BY_NAME)
    for name, policy in policies.items():
        expected = {SCRAPED[name].port} if name in SCRAPED else set()
        assert _admitted_ports(policy, fleet.OBSERVABILITY_NAMESPACE) == expected, name
    # Stated for the scraper on its own, so narrowing the web's callers later keeps the scrape working.
    (web_scrape,) = [
        r for r in policies["web"]["spec"]["ingress"] if r["from"][0]["namespaceSelector"].get("matchLabels")
    ]
    assert web_scrape["ports"] == [{"protocol": "TCP", "port": SCRAPED["web"].port}]


def test_alloy_may_read_our_pods_and_only_the_token_secret_by_name():
    role, binding = (d for d in _manifest("metrics-scraper") if d["kind"] in ("Role", "RoleBinding"))
    assert role["kind"] == "Role" and role["metadata"]["namespace"] == fleet.NAMESPACE  # never cluster-wide
    secret_rules = [r for r in role["rules"] if "secrets" in r["resources"]]
    assert secret_rules == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [render.METRICS_TOKEN[1]], "verbs": ["get"]}
    ]
    assert all(set(r["verbs"]) <= {"get", "list", "watch"} for r in role["rules"])
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": fleet.OTEL_SERVICE_ACCOUNT, "namespace": fleet.OBSERVABILITY_NAMESPACE}
    ]
