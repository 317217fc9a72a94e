"""deploy/k8s: the committed YAML is the generator's output, valid against the Kubernetes schemas (strict), and
says what the tools cannot know: one gate id per pod, at most one beat, every workload hardened, the subject
prefixes the NATS permissions pin left alone, NetworkPolicies equal to the access table, no Secret committed."""

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from deploy import access
from deploy.k8s import fleet, render
from deploy.k8s.__main__ import K8S, rendered
from deploy.k8s.network import DESTINATIONS, REMOTE_NATS, REMOTE_REDIS
from deploy.workloads import BY_NAME, CANARY_STATE, GATE_SPOOL, TMP

KUBERNETES_VERSION = "1.30.0"
# The table's workloads and the hand-started break glass (not in the table: nothing runs it on its own).
RENDERED = {**BY_NAME, render.BREAK_GLASS.name: render.BREAK_GLASS}
REMOTE = ("canary", render.BREAK_GLASS.name)  # in the canary's cluster: the fleet's servers at external addresses


def _objects() -> list[dict[str, Any]]:
    files = sorted(K8S.glob("*/resources/*.yaml"))
    assert files, "no manifests under deploy/k8s"
    return [doc for path in files for doc in yaml.safe_load_all(path.read_text()) if doc]


OBJECTS = _objects()


def _pod_templates() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """workload name -> (the object that runs it, its pod spec)."""
    found: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for obj in OBJECTS:
        spec = obj.get("spec", {})
        template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
        if template is None:
            continue
        name = template["metadata"]["labels"]["app.kubernetes.io/component"]
        assert name not in found, f"{name} runs in two objects"
        found[name] = (obj, template["spec"])
    return found


TEMPLATES = _pod_templates()


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def test_the_committed_files_are_the_generators_output():
    for path, text in rendered().items():
        assert path.exists() and path.read_text() == text, f"{path} is stale: run `python -m deploy.k8s`"
    applied = set((K8S / "base" / "resources").glob("*.yaml")) | set((K8S / "canary" / "resources").glob("*.yaml"))
    assert applied <= set(rendered()), "a file the generator no longer writes would still be applied"


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_every_object_is_valid_against_the_kubernetes_schema_strictly(obj):
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_every_workload_of_the_table_runs_once_with_its_command_probes_and_ports():
    assert set(TEMPLATES) == set(RENDERED)
    for name, (obj, pod) in TEMPLATES.items():
        workload = RENDERED[name]
        (container,) = pod["containers"]
        assert container["command"] == list(workload.command)
        assert container["image"].startswith(f"{render.IMAGE}:v")
        for probe_kind, probe in (("readinessProbe", workload.readiness), ("livenessProbe", workload.liveness)):
            if probe is None:
                assert probe_kind not in container
            else:
                get = container[probe_kind]["httpGet"]
                assert {k: get[k] for k in ("path", "port")} == {"path": probe.path, "port": probe.port}
                assert get.get("httpHeaders", []) == ([{"name": "Host", "value": probe.host}] if probe.host else [])
        ports = [p["containerPort"] for p in container.get("ports", [])]
        assert ports == ([workload.port] if workload.port else [])
        env = _env(container)
        for key, value in workload.env.items():
            assert env[key]["value"] == value
        assert (obj["kind"] == "CronJob") == (workload.schedule is not None)
        if workload.schedule is not None:
            assert obj["spec"]["schedule"] == workload.schedule
            assert obj["spec"]["concurrencyPolicy"] == "Forbid"


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_every_workload_is_hardened_and_sized(name):
    obj, pod = TEMPLATES[name]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] >= 10000
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    resources = container["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
    # The only writable paths are the table's: /tmp an emptyDir everywhere, state on its own claim.
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = {m["mountPath"]: volumes.get(m["name"]) for m in container["volumeMounts"] if not m.get("readOnly")}
    assert set(writable) == set(RENDERED[name].writable)
    assert writable[TMP] == {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}
    if CANARY_STATE in writable:
        assert writable[CANARY_STATE]["persistentVolumeClaim"]["claimName"] == "cio-canary-state"
    # Every annotated skip names its reason.
    for key, value in obj["metadata"].get("annotations", {}).items():
        if key.startswith("checkov.io/skip"):
            check, _, reason = value.partition("=")
            assert check.startswith("CKV") and len(reason) > 20


def test_gate_ids_are_pod_names_each_with_its_own_spool_volume():
    obj, pod = TEMPLATES["gate"]
    assert obj["kind"] == "StatefulSet" and obj["spec"]["replicas"] >= 2
    (container,) = pod["containers"]
    assert _env(container)["CIO_GATE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    (claim,) = obj["spec"]["volumeClaimTemplates"]
    assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]}[claim["metadata"]["name"]] == GATE_SPOOL
    # No other workload names a gate id, and nothing else runs the gate.
    for name, (_, other) in TEMPLATES.items():
        if name != "gate":
            assert "CIO_GATE_ID" not in _env(other["containers"][0])
            assert other["containers"][0]["command"][:3] != ["python", "-m", "gate"]
    # Terminated only after its drain: the grace outlasts the outbox flush.
    assert pod["terminationGracePeriodSeconds"] > int(_env(container)["CIO_SHUTDOWN_TIMEOUT_S"]["value"]) + 10
    spread = pod["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["whenUnsatisfiable"] == "DoNotSchedule"
    budgets = [o for o in OBJECTS if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == "cio-gate"]
    assert budgets and budgets[0]["spec"]["maxUnavailable"] == 1


def test_at_most_one_beat():
    beats = [
        (obj, pod)
        for obj, pod in TEMPLATES.values()
        if "beat" in pod["containers"][0]["command"] and "celery" in pod["containers"][0]["command"]
    ]
    assert len(beats) == 1
    obj, _ = beats[0]
    assert obj["kind"] == "StatefulSet" and obj["spec"]["replicas"] == 1


def test_the_subject_prefixes_and_streams_the_permissions_pin_are_not_overridden():
    """NATS permissions allow exact subjects and streams (deploy/access.py): a manifest that moved a prefix or a
    stream name would be refused at run time, or worse, publish where nobody checks."""
    pinned = ("SUBJECT_PREFIX", "_STREAM", "QUEUE_GROUP", "INTAKE_CONSUMER")
    for obj in OBJECTS:
        settings = dict(obj.get("data", {}))
        for _, pod in [(obj, t) for n, (o, t) in TEMPLATES.items() if o is obj]:
            settings.update({k: v.get("value") for k, v in _env(pod["containers"][0]).items()})
        for key in settings:
            assert not any(part in key for part in pinned) or key.endswith("_RETENTION_HOURS"), key
    config = next(o for o in OBJECTS if o["kind"] == "ConfigMap" and o["metadata"]["namespace"] == render.NAMESPACE)
    assert config["data"]["NATS_URL"] == render.NATS_URL and ".nats.svc." in render.NATS_URL


def test_each_workload_connects_as_its_identity_in_the_access_table():
    for name, (_, pod) in TEMPLATES.items():
        wanted = render.ACCESS[name]
        env = _env(pod["containers"][0])
        if wanted.nats is None:
            assert "CIO_NATS_USER" not in env
        else:
            assert env["CIO_NATS_USER"]["value"] == wanted.nats in access.NATS_ROLES
            assert env["CIO_NATS_INBOX_PREFIX"]["value"] == access.NATS_ROLES[wanted.nats].inbox_prefix
            secret = {v["name"]: v for v in pod["volumes"]}["nats-password"]["secret"]["secretName"]
            assert secret == f"cio-nats-{wanted.nats}"
        for variable, role in wanted.redis:
            assert role in access.REDIS_ROLES
            assert env[variable]["valueFrom"]["secretKeyRef"]["name"] == f"cio-redis-{role}"
        assert ("DATABASE_URL" in env) == wanted.database
        assert ("MONGODB_URI" in env) == wanted.audit_store


def test_no_secret_is_committed_and_every_reference_is_ours():
    assert not [o for o in OBJECTS if o["kind"] == "Secret"]
    text = "\n".join(p.read_text() for p in K8S.rglob("*.yaml"))
    for marker in ("password:", "BEGIN PRIVATE KEY", "mongodb+srv://", "postgres://"):
        assert marker not in text
    for _, pod in TEMPLATES.values():
        for volume in pod["volumes"]:
            if "secret" in volume:
                assert volume["secret"]["secretName"].startswith("cio-")


def _expected_egress(name: str) -> set[tuple[str, int]]:
    """What the access table implies a workload may reach, worked out here from the table alone."""
    wanted = render.ACCESS[name]
    remote = name in REMOTE
    needed = ["dns"] + ([] if remote else ["otel"])
    needed += ["nats"] * (wanted.nats is not None) + ["redis"] * bool(wanted.redis)
    needed += ["database"] * wanted.database + ["audit_store"] * wanted.audit_store + list(wanted.external)
    ports = set()
    for key in needed:
        destination = {"nats": REMOTE_NATS, "redis": REMOTE_REDIS}.get(key) if remote else None
        destination = destination or DESTINATIONS[key]
        ports |= set(destination.ports)
    return ports


def test_network_policies_equal_what_the_access_table_implies():
    policies = {
        o["metadata"]["labels"]["app.kubernetes.io/component"]: o for o in OBJECTS if o["kind"] == "NetworkPolicy"
    }
    assert set(policies) == set(RENDERED) == set(render.ACCESS)
    assert set(access.WORKLOAD_ACCESS) == set(BY_NAME)
    for name, policy in policies.items():
        spec = policy["spec"]
        assert spec["podSelector"]["matchLabels"] == render.labels(name)
        assert spec["policyTypes"] == ["Ingress", "Egress"]  # everything else denied for these pods
        egress = {(p["protocol"], p["port"]) for rule in spec["egress"] for p in rule["ports"]}
        assert egress == _expected_egress(name), name
        nats_rules = [r for r in spec["egress"] if {"protocol": "TCP", "port": 4222} in r["ports"]]
        if render.ACCESS[name].nats is not None and name not in REMOTE:
            assert nats_rules[0]["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "nats"}
        ingress_ports = {p["port"] for rule in spec["ingress"] for p in rule["ports"]}
        assert ingress_ports == ({RENDERED[name].port} if RENDERED[name].port else set())
    # The gate's health port only from the monitoring namespace; nothing reaches a worker.
    (gate_in,) = policies["gate"]["spec"]["ingress"]
    observability = {"kubernetes.io/metadata.name": fleet.OBSERVABILITY_NAMESPACE}
    assert gate_in["from"] == [{"namespaceSelector": {"matchLabels": observability}}]
    assert policies["worker"]["spec"]["ingress"] == []


def test_the_canary_lives_in_its_own_cluster_with_its_state_and_without_the_break_glass_key():
    canary = [o for o in OBJECTS if o["metadata"]["namespace"] == render.CANARY_NAMESPACE]
    assert {o["kind"] for o in canary} >= {"CronJob", "PersistentVolumeClaim", "NetworkPolicy", "ConfigMap"}
    _, pod = TEMPLATES["canary"]
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    # The break-glass copy of the policy signing key is never mounted where a check runs every minute.
    assert "cio-canary-break-glass" not in secrets and "cio-policy-signing" not in secrets
    assert all(o["metadata"]["namespace"] == render.NAMESPACE for o in OBJECTS if o not in canary)
    overlays = {p.parent.name: yaml.safe_load(p.read_text()) for p in (K8S / "overlays").glob("*/kustomization.yaml")}
    assert overlays["fleet"]["namespace"] == render.NAMESPACE and overlays["fleet"]["resources"] == ["../../base"]
    assert overlays["canary"]["namespace"] == render.CANARY_NAMESPACE
    assert overlays["canary"]["resources"] == ["../../canary"]
    for folder in ("base", "canary"):
        listed = yaml.safe_load((K8S / folder / "kustomization.yaml").read_text())["resources"]
        assert sorted(Path(K8S / folder / r) for r in listed) == sorted((K8S / folder / "resources").glob("*.yaml"))


def test_the_readme_names_every_secret_the_manifests_reference():
    readme = (K8S / "README.md").read_text()
    for _, pod in TEMPLATES.values():
        names = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        names |= {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in pod["containers"][0].get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        for name in names:
            prefix = next((p for p in ("cio-nats-", "cio-redis-") if name.startswith(p)), None)
            generic = f"{prefix}<identity>" if prefix else name
            assert f"`{generic}`" in readme, f"deploy/k8s/README.md does not name the Secret {name}"


def test_the_break_glass_is_a_suspended_hand_started_halt_with_the_key_the_control_identity_and_the_gates_key():
    (job,) = [o for o in OBJECTS if o["kind"] == "CronJob" and o["metadata"]["name"] == "cio-break-glass"]
    assert job["metadata"]["namespace"] == render.CANARY_NAMESPACE
    assert job["spec"]["suspend"] is True and job["spec"]["concurrencyPolicy"] == "Forbid"
    assert job["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0  # a halt that failed is read, not retried
    _, pod = TEMPLATES[render.BREAK_GLASS.name]
    (container,) = pod["containers"]
    env = _env(container)
    # The halt, its operator and reason from the container's environment, left empty here (the halt refuses that).
    args = container["command"]
    assert args[:4] == ["python", "-m", "canary", "halt"]
    assert args[args.index("--operator") + 1] == "$(CIO_BREAK_GLASS_OPERATOR)"
    assert args[args.index("--reason") + 1] == "$(CIO_BREAK_GLASS_REASON)"
    assert env["CIO_BREAK_GLASS_OPERATOR"]["value"] == env["CIO_BREAK_GLASS_REASON"]["value"] == ""
    # Exactly the break-glass key, the `control` NATS password and the gates' public key are mounted...
    volumes = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    mounted = {(s["secretName"], item["key"]) for s in volumes.values() for item in s["items"]}
    assert mounted == {
        ("cio-canary-break-glass", "policy-signing.key"),
        ("cio-nats-control", "password"),
        ("cio-trust", "audit-signing.pub"),
    }
    paths = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["CIO_BREAK_GLASS_SIGNING_KEY_FILE"]["value"] == f"{paths['cio-canary-break-glass']}/policy-signing.key"
    assert env["CIO_AUDIT_PUBLIC_KEY_FILE"]["value"] == f"{paths['cio-trust']}/audit-signing.pub"
    assert env["CIO_NATS_USER"]["value"] == "control"
    # ...and the `control` Redis URL (with the Sentinels' optional password) is the only secret in the environment.
    from_secrets = {
        e["valueFrom"]["secretKeyRef"]["name"]: n for n, e in env.items() if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert from_secrets == {
        "cio-redis-control": "CIO_BREAK_GLASS_REDIS_URL",
        "cio-redis-sentinel": "CIO_REDIS_SENTINEL_PASSWORD",
    }
    # The minutely canary still mounts no signing key at all.
    _, canary = TEMPLATES["canary"]
    canary_env = _env(canary["containers"][0])
    assert not {n for n in canary_env if "SIGNING_KEY" in n}
    assert not {v["secret"]["secretName"] for v in canary["volumes"] if "secret" in v} & {"cio-canary-break-glass"}
