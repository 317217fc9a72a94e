"""Every Kubernetes object of the CIO, as Python data: one function per kind of workload, all fed by
deploy/workloads.py (what runs) and deploy/access.py (as whom, reaching what). deploy/k8s/__main__.py writes them.

Hardening is the same for every container (`hardened`), so the tests can require it of every workload.
"""

from dataclasses import dataclass
from typing import Any

from deploy import nats_cluster
from deploy.access import NATS_ROLES, WORKLOAD_ACCESS, WorkloadAccess
from deploy.k8s import fleet
from deploy.k8s.network import network_policy
from deploy.workloads import CANARY_STATE, GATE_SPOOL, IMAGE_UID, TMP, WEB_SERVICE, WORKLOADS, Probe, Workload

IMAGE = "petrosa-cio"
# The fleet tags images `v<version>-r<run>-<sha>`; overlays set the release's tag (kustomize `images:`), and the
# hub's pipeline replaces this placeholder in the plain files.
IMAGE_TAG = "v0.1.0-r0-0000000"
NAMESPACE = fleet.NAMESPACE
CANARY_NAMESPACE = "petrosa-canary"
CONFIG = "cio-config"
SECRETS_DIR = "/var/run/secrets/cio"
NATS_PASSWORD_FILE = f"{SECRETS_DIR}/nats/password"
# The fleet's servers (deploy/k8s/fleet.py). Redis through its three Sentinels (docs/redis-ha.md); each component
# keeps its own URL (user, password, database) and the Sentinels name the primary.
NATS_URL = fleet.NATS_URL
OTEL_ENDPOINT = fleet.OTEL_ENDPOINT
REDIS_SENTINELS = fleet.REDIS_SENTINELS
# The names Django's host check accepts (`CIO_ALLOWED_HOSTS`): the web's Service as the namespace, the cluster and
# the readiness probe (its Host header) call it; the fleet overlay adds the public name behind the ingress.
WEB_HOSTS = tuple(
    f"{WEB_SERVICE}{suffix}" for suffix in ("", f".{NAMESPACE}", f".{NAMESPACE}.svc", f".{NAMESPACE}.{fleet.DOMAIN}")
)
PUBLIC_ORIGIN = f"https://{fleet.PUBLIC_HOST}"  # TLS ends at the ingress; the web sees plain HTTP
GATES = 3
GATE_DRAIN_S = 20  # CIO_SHUTDOWN_TIMEOUT_S: how long a stopping gate flushes its audit outbox
GATE_GRACE_S = 45  # longer than the drain, plus NATS's own drain of the subscriptions
# The spool holds audit events NATS has not acknowledged (an outage): at the stated production rate a gate
# writes about 1.2 KB x 10M / 3 gates a day, 46 KB/s: 2 GiB is about half a day of a NATS outage.
GATE_SPOOL_SIZE = "2Gi"
CANARY_STATE_SIZE = "16Mi"


@dataclass(frozen=True)
class Size:
    """Requests and limits. The gate's come from the benchmark (`make bench`): one gate saturates about one core
    (its decision loop is one Python thread), so it asks for a core and may burst to two (GC, TLS, the spool's
    writer); the others are I/O-bound and small."""

    cpu: str
    memory: str
    cpu_limit: str
    memory_limit: str


SIZES: dict[str, Size] = {
    "gate": Size("1000m", "256Mi", "2000m", "512Mi"),
    "web": Size("250m", "384Mi", "1000m", "768Mi"),
    "migrate": Size("250m", "256Mi", "1000m", "512Mi"),
    "reconcile": Size("50m", "192Mi", "250m", "384Mi"),
    "ingest": Size("250m", "256Mi", "1000m", "512Mi"),
    "worker": Size("250m", "384Mi", "1000m", "768Mi"),
    "beat": Size("50m", "192Mi", "250m", "384Mi"),
    "strategist": Size("100m", "256Mi", "500m", "512Mi"),
    "alerts": Size("100m", "256Mi", "500m", "512Mi"),
    "snapshot-bridge": Size("50m", "128Mi", "250m", "256Mi"),
    "audit-verify": Size("250m", "256Mi", "1000m", "512Mi"),
    "canary": Size("50m", "128Mi", "250m", "256Mi"),
    "break-glass": Size("50m", "128Mi", "250m", "256Mi"),
}
REPLICAS = {"web": 2, "ingest": 2, "worker": 2}  # others: 1 (beat: exactly one, a StatefulSet of one)


@dataclass(frozen=True)
class SecretFile:
    secret: str
    key: str
    variable: str  # the setting that names the file


def _trust(variable: str, key: str) -> SecretFile:
    return SecretFile("cio-trust", key, variable)


POLICY_PUBLIC = _trust("CIO_POLICY_PUBLIC_KEY_FILE", "policy-signing.pub")
AUDIT_PUBLIC = _trust("CIO_AUDIT_PUBLIC_KEY_FILE", "audit-signing.pub")
POLICY_SIGNING = SecretFile("cio-policy-signing", "policy-signing.key", "CIO_POLICY_SIGNING_KEY_FILE")
BREAK_GLASS_KEY = SecretFile("cio-canary-break-glass", "policy-signing.key", "CIO_BREAK_GLASS_SIGNING_KEY_FILE")
# The break glass (docs/canary.md): `python -m canary halt`, in the canary's cluster, started by hand only (a
# suspended CronJob as its template: `kubectl create job --from=cronjob/cio-break-glass`). Not a workload of
# deploy/workloads.py: nothing runs it on its own, and the image's start tests have nothing to start. Operator and
# reason come from the container's environment, which Kubernetes expands in the command (`$(VAR)`); the manifest
# leaves them empty, and the halt refuses an empty one or an unexpanded reference, so a run nobody named halts
# nothing.
BREAK_GLASS_OPERATOR = "CIO_BREAK_GLASS_OPERATOR"
BREAK_GLASS_REASON = "CIO_BREAK_GLASS_REASON"
BREAK_GLASS = Workload(
    "break-glass",
    (
        "python",
        "-m",
        "canary",
        "halt",
        "--operator",
        f"$({BREAK_GLASS_OPERATOR})",
        "--reason",
        f"$({BREAK_GLASS_REASON})",
    ),
    env={BREAK_GLASS_OPERATOR: "", BREAK_GLASS_REASON: ""},
    # Kubernetes wants a schedule even on a suspended CronJob: once a year, were it ever unsuspended, and then the
    # empty operator makes the run refuse to halt.
    schedule="0 0 1 1 *",
)
# As whom the halt runs: the control plane's NATS and Redis identity (docs/canary.md), the URL under the halt's
# own variable (`--redis-url`'s default).
ACCESS: dict[str, WorkloadAccess] = {
    **WORKLOAD_ACCESS,
    BREAK_GLASS.name: WorkloadAccess("control", (("CIO_BREAK_GLASS_REDIS_URL", "control"),)),
}
BREAK_GLASS_DEADLINE_S = 120  # the halt listens 3 s and waits 10 s for confirmations; connecting is bounded too
FILES: dict[str, tuple[SecretFile, ...]] = {
    "gate": (POLICY_PUBLIC, SecretFile("cio-audit-signing", "audit-signing.key", "CIO_AUDIT_SIGNING_KEY_FILE")),
    "web": (POLICY_SIGNING, AUDIT_PUBLIC),
    "reconcile": (POLICY_SIGNING, AUDIT_PUBLIC),
    "ingest": (AUDIT_PUBLIC,),
    "audit-verify": (AUDIT_PUBLIC,),
    # Not the break-glass copy of the policy key: the minutely check never signs, and its `canary` identity could
    # not halt anyway (the halt runs as `control`); only the hand-started break glass below mounts it.
    "canary": (AUDIT_PUBLIC,),
    # The break glass signs the halt with that copy, and counts only heartbeats the gates signed (docs/canary.md).
    BREAK_GLASS.name: (AUDIT_PUBLIC, BREAK_GLASS_KEY),
}
# Credentials of outside services, by workload: (variable, Secret, key). Optional: a channel not configured is
# recorded as skipped (docs/alerting.md), the Strategist without an LLM key reasons by rules.
_SMTP = ("CIO_SMTP_PASSWORD", "cio-smtp", "password")
_GRAFANA = ("CIO_GRAFANA_TOKEN", "cio-grafana", "token")
OPTIONAL_SECRETS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "worker": (("CIO_LLM_API_KEY", "cio-llm", "api-key"), _SMTP, _GRAFANA),
    "alerts": (_SMTP, _GRAFANA),
    "canary": (("CIO_CANARY_SMTP_PASSWORD", "cio-canary-smtp", "password"),),
}
# Settings taken from the fleet's own shared ConfigMap, by workload: (variable, ConfigMap, key). Not optional: the
# snapshot bridge must poll every symbol the engine may hold, and refuses to start without the list.
FLEET_CONFIG: dict[str, tuple[tuple[str, str, str], ...]] = {
    "snapshot-bridge": (("CIO_SNAPSHOT_SYMBOLS", fleet.COMMON_CONFIG, fleet.TRADED_SYMBOLS_KEY),),
}
# The web's /metrics answers only this bearer token (CIO_METRICS_TOKEN): its port is open to the whole cluster
# (the ingress), so the token is required, and Grafana Alloy reads the same Secret to scrape it (deploy/k8s/alloy.py).
METRICS_TOKEN = ("CIO_METRICS_TOKEN", "cio-metrics", "token")
METRICS_BEARER = ("web",)  # the workloads whose /metrics wants it
NOT_DJANGO = ("gate", "snapshot-bridge", "canary", BREAK_GLASS.name)  # no SECRET_KEY: they import nothing from Django

# Checks that cannot pass, each with its reason (checkov reads `checkov.io/skipN` annotations).
SKIP_DIGEST = "CKV_K8S_43=the fleet pins immutable tags v<version>-r<run>-<sha>, set per release by the overlay"
SKIP_ENV_SECRETS = (
    "CKV_K8S_35=connection URLs come from the environment by the names SPEC 9 fixes (REDIS_URL, DATABASE_URL, "
    "MONGODB_URI); passwords and keys are files"
)
SKIP_PROBES = (
    "CKV_K8S_8=no HTTP server to probe: a stuck consumer is caught by its own stats and alerts",
    "CKV_K8S_9=no HTTP server to probe: it serves nothing, so readiness gates no traffic",
)


NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
APP = "petrosa-cio"


def labels(name: str) -> dict[str, str]:
    return {NAME_LABEL: APP, COMPONENT_LABEL: name}


def scrape_annotations(workload: Workload) -> dict[str, str]:
    """The `prometheus.io/*` annotations many Prometheus and Alloy setups discover scrape targets by; only on the
    pods of a workload with a `metrics` probe. (The web's also wants its bearer token: deploy/k8s/alloy.py.)"""
    if workload.metrics is None:
        return {}
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(workload.metrics.port),
        "prometheus.io/path": workload.metrics.path,
    }


def _metadata(name: str, component: str, skips: tuple[str, ...] = ()) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels(component)}
    if skips:
        meta["annotations"] = {f"checkov.io/skip{i}": skip for i, skip in enumerate(skips, 1)}
    return meta


def _volume_name(path: str) -> str:
    return path.strip("/").replace("/", "-").replace("_", "-")


def _env(workload: Workload) -> list[dict[str, Any]]:
    access = ACCESS[workload.name]
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in workload.env.items()]
    if workload.name == "gate":
        # Gate id = pod name: the replacement pod of a StatefulSet gets the same name, volume and spool.
        env.append({"name": "CIO_GATE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
        env.append({"name": "CIO_SHUTDOWN_TIMEOUT_S", "value": str(GATE_DRAIN_S)})
    if access.nats is not None:
        env += [
            {"name": "CIO_NATS_USER", "value": access.nats},
            {"name": "CIO_NATS_PASSWORD_FILE", "value": NATS_PASSWORD_FILE},
            {"name": "CIO_NATS_INBOX_PREFIX", "value": NATS_ROLES[access.nats].inbox_prefix},
        ]
    for variable, role in access.redis:
        env.append(_secret_env(variable, f"cio-redis-{role}", "url"))
    if access.redis:  # the Sentinels' own password, when they have one
        env.append(_secret_env("CIO_REDIS_SENTINEL_PASSWORD", "cio-redis-sentinel", "password", optional=True))
    if access.database:
        env.append(_secret_env("DATABASE_URL", "cio-database", "url"))
    if access.audit_store:
        env.append(_secret_env("MONGODB_URI", "cio-mongodb", "uri"))
    if workload.name not in NOT_DJANGO:
        env.append(_secret_env("SECRET_KEY", "cio-django", "secret-key"))
    for file in FILES.get(workload.name, ()):
        env.append({"name": file.variable, "value": f"{SECRETS_DIR}/{file.secret}/{file.key}"})
    if workload.name in METRICS_BEARER:
        env.append(_secret_env(*METRICS_TOKEN))
    for variable, secret, key in OPTIONAL_SECRETS.get(workload.name, ()):
        env.append(_secret_env(variable, secret, key, optional=True))
    for variable, config, key in FLEET_CONFIG.get(workload.name, ()):
        env.append({"name": variable, "valueFrom": {"configMapKeyRef": {"name": config, "key": key}}})
    return env


def _secret_env(variable: str, secret: str, key: str, optional: bool = False) -> dict[str, Any]:
    reference: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        reference["optional"] = True
    return {"name": variable, "valueFrom": {"secretKeyRef": reference}}


def _secret_volumes(workload: Workload) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Secrets mounted as files (read-only, 0440: owned by root, readable through the pod's fsGroup): the NATS
    password and the keys."""
    access = ACCESS[workload.name]
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if access.nats is not None:
        volumes.append(_secret_volume("nats-password", f"cio-nats-{access.nats}", {"password": "password"}))
        mounts.append({"name": "nats-password", "mountPath": f"{SECRETS_DIR}/nats", "readOnly": True})
    by_secret: dict[str, dict[str, str]] = {}
    for file in FILES.get(workload.name, ()):
        by_secret.setdefault(file.secret, {})[file.key] = file.key
    for secret, items in by_secret.items():
        volumes.append(_secret_volume(secret, secret, items))
        mounts.append({"name": secret, "mountPath": f"{SECRETS_DIR}/{secret}", "readOnly": True})
    return volumes, mounts


def _secret_volume(name: str, secret: str, items: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "secret": {
            "secretName": secret,
            "defaultMode": 0o440,  # root:fsGroup, readable by the image's group only
            "items": [{"key": key, "path": path} for key, path in items.items()],
        },
    }


def _probe(probe: Probe, period_s: int, failures: int) -> dict[str, Any]:
    get: dict[str, Any] = {"path": probe.path, "port": probe.port}
    if probe.host is not None:  # the kubelet sends the pod's IP otherwise, which Django's host check refuses
        get["httpHeaders"] = [{"name": "Host", "value": probe.host}]
    return {
        "httpGet": get,
        "periodSeconds": period_s,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def hardened() -> dict[str, Any]:
    """Every container's security context: non-root, read-only root, no capabilities, the runtime's seccomp."""
    return {
        "runAsNonRoot": True,
        "runAsUser": IMAGE_UID,
        "runAsGroup": IMAGE_UID,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container(workload: Workload) -> dict[str, Any]:
    size = SIZES[workload.name]
    _, secret_mounts = _secret_volumes(workload)
    mounts = [{"name": _volume_name(path), "mountPath": path} for path in workload.writable] + secret_mounts
    spec: dict[str, Any] = {
        "name": workload.name,
        "image": f"{IMAGE}:{IMAGE_TAG}",
        "imagePullPolicy": "Always",
        "command": list(workload.command),
        "envFrom": [{"configMapRef": {"name": CONFIG}}],
        "env": _env(workload),
        "resources": {
            "requests": {"cpu": size.cpu, "memory": size.memory},
            "limits": {"cpu": size.cpu_limit, "memory": size.memory_limit},
        },
        "securityContext": hardened(),
        "volumeMounts": mounts,
    }
    if workload.port is not None:
        spec["ports"] = [{"name": "http", "containerPort": workload.port, "protocol": "TCP"}]
    if workload.readiness is not None:
        spec["readinessProbe"] = _probe(workload.readiness, 5, 3)
    if workload.liveness is not None:
        spec["livenessProbe"] = _probe(workload.liveness, 10, 3)
        # Start-up (NATS, the policy, a spool replay) may take longer than liveness tolerates.
        spec["startupProbe"] = _probe(workload.liveness, 2, 60)
    return spec


def pod_spec(workload: Workload, restart: str = "Always") -> dict[str, Any]:
    secret_volumes, _ = _secret_volumes(workload)
    volumes: list[dict[str, Any]] = [{"name": _volume_name(TMP), "emptyDir": {"sizeLimit": "256Mi"}}]
    volumes += secret_volumes
    if CANARY_STATE in workload.writable:
        volumes.append({"name": _volume_name(CANARY_STATE), "persistentVolumeClaim": {"claimName": "cio-canary-state"}})
    spec: dict[str, Any] = {
        "serviceAccountName": "cio",
        "automountServiceAccountToken": False,  # no workload talks to the Kubernetes API
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": IMAGE_UID,
            "runAsGroup": IMAGE_UID,
            "fsGroup": IMAGE_UID,  # the spool's and the canary's volumes are writable by the image's user
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container(workload)],
        "volumes": volumes,
        "restartPolicy": restart,
    }
    return spec


def _skips(workload: Workload) -> tuple[str, ...]:
    skips = [SKIP_DIGEST]
    access = ACCESS[workload.name]
    if (
        access.redis
        or access.database
        or access.audit_store
        or workload.name not in NOT_DJANGO
        or (workload.name in OPTIONAL_SECRETS)
    ):
        skips.append(SKIP_ENV_SECRETS)
    if workload.readiness is None and workload.schedule is None and workload.name != "migrate":
        skips += SKIP_PROBES
    return tuple(skips)


def _template(workload: Workload, restart: str = "Always") -> dict[str, Any]:
    metadata: dict[str, Any] = {"labels": labels(workload.name)}
    if annotations := scrape_annotations(workload):
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": pod_spec(workload, restart)}


def gate_objects(workload: Workload) -> list[dict[str, Any]]:
    template = _template(workload)
    template["spec"]["terminationGracePeriodSeconds"] = GATE_GRACE_S
    template["spec"]["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": labels("gate")},
        }
    ]
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _metadata("cio-gate", "gate", _skips(workload)),
        "spec": {
            "serviceName": "cio-gate",
            "replicas": GATES,
            "podManagementPolicy": "Parallel",  # each gate has its own id: no need to start them in order
            "selector": {"matchLabels": labels("gate")},
            "template": template,
            # The spool's crash replay: a replacement pod gets the same name (gate id) and this volume back.
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": _volume_name(GATE_SPOOL), "labels": labels("gate")},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": GATE_SPOOL_SIZE}}},
                }
            ],
        },
    }
    return [statefulset, _headless_service(workload), _pdb(workload, max_unavailable=1)]


def _headless_service(workload: Workload) -> dict[str, Any]:
    assert workload.port is not None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(f"cio-{workload.name}", workload.name),
        "spec": {
            "clusterIP": "None",
            "selector": labels(workload.name),
            "ports": [{"name": "http", "port": workload.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _pdb(workload: Workload, max_unavailable: int) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(f"cio-{workload.name}", workload.name),
        "spec": {"maxUnavailable": max_unavailable, "selector": {"matchLabels": labels(workload.name)}},
    }


def deployment(workload: Workload) -> list[dict[str, Any]]:
    replicas = REPLICAS.get(workload.name, 1)
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _metadata(f"cio-{workload.name}", workload.name, _skips(workload)),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels(workload.name)},
                "template": _template(workload),
            },
        }
    ]
    if workload.port is not None:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": _metadata(f"cio-{workload.name}", workload.name),
                "spec": {
                    "selector": labels(workload.name),
                    "ports": [{"name": "http", "port": workload.port, "targetPort": "http", "protocol": "TCP"}],
                },
            }
        )
    if replicas > 1:
        objects.append(_pdb(workload, max_unavailable=1))
    return objects


def beat(workload: Workload) -> list[dict[str, Any]]:
    """Exactly one beat: a StatefulSet of one never runs two pods at once, even while rolling (a Deployment
    would start the new pod before the old one stops, and both would send every scheduled task)."""
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": _metadata("cio-beat", "beat", _skips(workload)),
            "spec": {
                "serviceName": "cio-beat",
                "replicas": 1,
                "selector": {"matchLabels": labels("beat")},
                "template": _template(workload),
            },
        }
    ]


def migrate_job(workload: Workload) -> list[dict[str, Any]]:
    """One per release, applied before the rest: `prepare_release` (migrations, audit indexes, the vector index,
    the audit streams). Kept an hour after it finished, then removed so the next release's Job can be created."""
    return [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": _metadata("cio-migrate", "migrate", _skips(workload)),
            "spec": {
                "backoffLimit": 3,
                "activeDeadlineSeconds": 1800,
                "ttlSecondsAfterFinished": 3600,
                "template": _template(workload, restart="Never"),
            },
        }
    ]


def cronjob(workload: Workload, name: str, deadline_s: int) -> dict[str, Any]:
    """No concurrent runs; a run is stopped at `deadline_s` so a hung one cannot hold the next ones back."""
    assert workload.schedule is not None
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _metadata(name, workload.name, _skips(workload)),
        "spec": {
            "schedule": workload.schedule,
            "concurrencyPolicy": "Forbid",  # never two runs at once (the canary's state file has one writer)
            "startingDeadlineSeconds": 120,
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": deadline_s,
                    "template": _template(workload, restart="Never"),
                }
            },
        },
    }


def service_account() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata("cio", "service-account"),
        "automountServiceAccountToken": False,
    }


def config_map() -> dict[str, Any]:
    """Settings that are not secret, shared by every workload of the fleet's cluster."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(CONFIG, "config"),
        "data": {
            "CIO_ENV": "production",
            "CIO_AUDIT_STORE": "mongodb",
            "NATS_URL": NATS_URL,
            "CIO_REDIS_SENTINELS": REDIS_SENTINELS,
            "CIO_REDIS_SENTINEL_MASTER": "cio",
            "OTEL_EXPORTER_OTLP_ENDPOINT": OTEL_ENDPOINT,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            # The web's names (the fleet overlay adds the public one and its origin: `fleet_config`).
            "CIO_ALLOWED_HOSTS": ",".join(WEB_HOSTS),
            # Today's trade engine: its configuration routes (web) and `GET /state` (snapshot bridge).
            "CIO_TRADEENGINE_URL": fleet.TRADEENGINE_URL,
            "CIO_ENGINE_STATE_URL": fleet.TRADEENGINE_STATE_URL,
            # The audit stream's sizing (docs/nats-cluster.md): the stated window and rate, and three copies.
            "CIO_AUDIT_STREAM_RETENTION_HOURS": f"{nats_cluster.PRODUCTION_RETENTION_HOURS:g}",
            "CIO_AUDIT_EXPECTED_RATE_PER_DAY": str(nats_cluster.PRODUCTION_RATE_PER_DAY),
            "CIO_AUDIT_REPLICAS": str(nats_cluster.PRODUCTION_AUDIT_REPLICAS),
            "CIO_LOG_LEVEL": "INFO",
        },
    }


def canary_objects() -> list[dict[str, Any]]:
    workload = next(w for w in WORKLOADS if w.name == "canary")
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata("cio-canary-state", "canary"),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": CANARY_STATE_SIZE}}},
    }
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(CONFIG, "config"),
        "data": {
            # The fleet's NATS and control plane as seen from the canary's cluster: set by the canary overlay.
            "NATS_URL": "nats://nats.fleet.example:4222",
            "CIO_CANARY_HEALTH_URL": f"{PUBLIC_ORIGIN}/api/health",
            "CIO_CANARY_EXPECT_STATE": "active",
        },
    }
    return [
        service_account(),
        config,
        claim,
        cronjob(workload, "cio-canary", deadline_s=50),  # every minute
        network_policy(workload, labels("canary"), remote=True),
    ]


def break_glass_objects() -> list[dict[str, Any]]:
    """The halt as a suspended CronJob (never scheduled: `kubectl create job --from=...` runs it) with the
    break-glass key, the `control` credentials and the gates' public key, and a policy that lets its pods reach
    the fleet's NATS and Redis only. Its own file in the canary's folder, so the key's Secret is named in one
    place; the canary's ServiceAccount and ConfigMap (NATS_URL) serve it too."""
    job = cronjob(BREAK_GLASS, "cio-break-glass", deadline_s=BREAK_GLASS_DEADLINE_S)
    job["spec"] = {"suspend": True, **job["spec"]}  # first, where a reader of the file sees it
    return [job, network_policy(BREAK_GLASS, labels(BREAK_GLASS.name), remote=True, access=ACCESS[BREAK_GLASS.name])]


def fleet_config() -> dict[str, str]:
    """What the fleet overlay sets in the ConfigMap: the NATS URL, and the web's public name behind the ingress
    (`fleet.PUBLIC_HOST`, a placeholder the hub replaces) allowed by the host check, its HTTPS origin trusted by the
    admin's forms and the live feed (TLS ends at the ingress, so Django sees plain HTTP and the browser's Origin
    is not the request's own), and the MCP server's public URL."""
    return {
        "NATS_URL": NATS_URL,
        "CIO_ALLOWED_HOSTS": ",".join((*WEB_HOSTS, fleet.PUBLIC_HOST)),
        "CIO_TRUSTED_ORIGINS": PUBLIC_ORIGIN,
        "CIO_MCP_PUBLIC_URL": PUBLIC_ORIGIN,  # the MCP server's resource metadata names where clients reach it
    }


def fleet_objects() -> dict[str, list[dict[str, Any]]]:
    """The fleet cluster's objects, by file name (one file per workload)."""
    files: dict[str, list[dict[str, Any]]] = {"config": [service_account(), config_map()]}
    for workload in WORKLOADS:
        if workload.name == "canary":
            continue
        if workload.name == "gate":
            objects = gate_objects(workload)
        elif workload.name == "beat":
            objects = beat(workload)
        elif workload.name == "migrate":
            objects = migrate_job(workload)
        elif workload.schedule is not None:
            objects = [cronjob(workload, f"cio-{workload.name}", deadline_s=3000)]
        else:
            objects = deployment(workload)
        files[workload.name] = [*objects, network_policy(workload, labels(workload.name))]
    return files
