"""NetworkPolicies from the access table: a workload may reach exactly the servers deploy/access.py gives it an
identity on (NATS, Redis, the database, the audit store, the outside services it names), plus DNS and the
OpenTelemetry collector; it accepts connections only on the ports deploy/workloads.py says it serves (the web's to
the cluster, a metrics port to the observability namespace).

Each policy selects one workload's pods with both policy types, so everything else is denied for them (the
fleet's other apps in the namespace are not touched). Where the fleet's servers live is stated once, in
deploy/k8s/fleet.py.
"""

from dataclasses import dataclass
from typing import Any

from deploy.access import WORKLOAD_ACCESS, WorkloadAccess
from deploy.k8s import fleet
from deploy.workloads import Workload

ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class Destination:
    name: str
    ports: tuple[tuple[str, int], ...]  # (protocol, port)
    namespace: str | None = None  # in-cluster: pods of this namespace (with `pods`, only those)
    pods: dict[str, str] | None = None
    cidr: str | None = None  # outside the cluster

    def peer(self) -> dict[str, Any]:
        if self.cidr is not None:
            return {"ipBlock": {"cidr": self.cidr}}
        peer: dict[str, Any] = {}
        if self.namespace is not None:
            peer["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": self.namespace}}
        peer["podSelector"] = {"matchLabels": dict(self.pods)} if self.pods else {}
        return peer


TCP = "TCP"
DESTINATIONS: dict[str, Destination] = {
    d.name: d
    for d in (
        Destination("dns", (("UDP", 53), (TCP, 53)), "kube-system", {"k8s-app": "kube-dns"}),
        # The fleet's NATS and Redis (with Sentinel).
        Destination("nats", ((TCP, fleet.NATS_PORT),), fleet.NATS_NAMESPACE),
        Destination("redis", ((TCP, fleet.REDIS_PORT), (TCP, fleet.SENTINEL_PORT)), fleet.REDIS_NAMESPACE),
        # Grafana Alloy receives OTLP over HTTP.
        Destination("otel", ((TCP, fleet.OTEL_HTTP_PORT),), fleet.OBSERVABILITY_NAMESPACE),
        # Managed PostgreSQL and MongoDB Atlas live outside the cluster.
        Destination("database", ((TCP, 5432),), cidr=ANYWHERE),
        Destination("audit_store", ((TCP, 27017),), cidr=ANYWHERE),
        Destination("https", ((TCP, 443),), cidr=ANYWHERE),  # the LLM, Grafana, the canary's webhook
        Destination("smtp", ((TCP, 25), (TCP, 465), (TCP, 587)), cidr=ANYWHERE),
        # Today's trade engine in the fleet's namespace: its configuration and state API.
        Destination("tradeengine", ((TCP, fleet.TRADEENGINE_POD_PORT),), None, fleet.TRADEENGINE_PODS),
    )
}
# The canary and the break glass run in another cluster: the fleet's NATS and Redis (the break glass's, with its
# Sentinels if the overlay names them) are reached at their external addresses.
REMOTE_NATS = Destination("nats", ((TCP, fleet.NATS_PORT),), cidr=ANYWHERE)
REMOTE_REDIS = Destination("redis", DESTINATIONS["redis"].ports, cidr=ANYWHERE)
MONITORING_NAMESPACE = fleet.OBSERVABILITY_NAMESPACE  # Grafana Alloy, which collects the fleet's telemetry


def destinations(access: WorkloadAccess, remote: bool = False) -> list[Destination]:
    """Where the access table lets a workload connect, in a stable order."""
    out = [DESTINATIONS["dns"], DESTINATIONS["otel"]] if not remote else [DESTINATIONS["dns"]]
    if access.nats is not None:
        out.append(REMOTE_NATS if remote else DESTINATIONS["nats"])
    if access.redis:
        out.append(REMOTE_REDIS if remote else DESTINATIONS["redis"])
    if access.database:
        out.append(DESTINATIONS["database"])
    if access.audit_store:
        out.append(DESTINATIONS["audit_store"])
    out += [DESTINATIONS[name] for name in access.external]
    return out


def _ports(ports: tuple[tuple[str, int], ...]) -> list[dict[str, Any]]:
    return [{"protocol": protocol, "port": port} for protocol, port in ports]


def _from_namespace(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def ingress_rules(workload: Workload) -> list[dict[str, Any]]:
    """The web answers anyone in the cluster (the ingress controller, the canary's health check through it); a
    workload's metrics port answers the observability namespace (Grafana Alloy scrapes it: deploy/k8s/alloy.py),
    stated on its own even where the first rule covers it, so narrowing the web's callers keeps the scrape. The
    kubelet's probes are not subject to policies: the gate's health port needs no rule of its own."""
    rules: list[dict[str, Any]] = []
    if workload.name == "web" and workload.port is not None:
        rules.append({"from": [{"namespaceSelector": {}}], "ports": [{"protocol": TCP, "port": workload.port}]})
    if workload.metrics is not None:
        rules.append(
            {
                "from": [_from_namespace(MONITORING_NAMESPACE)],
                "ports": [{"protocol": TCP, "port": workload.metrics.port}],
            }
        )
    return rules


def network_policy(
    workload: Workload, labels: dict[str, str], remote: bool = False, access: WorkloadAccess | None = None
) -> dict[str, Any]:
    """`access`: the workload's row of the access table by default; the break glass, which is not a workload of
    the table (deploy/k8s/render.py), passes its own."""
    access = access or WORKLOAD_ACCESS[workload.name]
    egress = [{"to": [d.peer()], "ports": _ports(d.ports)} for d in destinations(access, remote)]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"cio-{workload.name}", "labels": labels},
        "spec": {
            "podSelector": {"matchLabels": labels},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress_rules(workload),
            "egress": egress,
        },
    }
