"""Every production workload of the one image: its command, what it may write, what it serves and how it is
probed. One table: the Dockerfile's default, the Kubernetes manifests (deploy/k8s/) and the read-only start test
(tests/deploy/) all read it, and a test keeps the manifests equal to it.

The image's working directory is `/app` (the source, read-only); `/tmp` is the only path every workload may
write. A workload that keeps state on disk declares its volume here and nowhere else.
"""

from dataclasses import dataclass, field

APP_DIR = "/app"
TMP = "/tmp"  # noqa: S108 (an emptyDir in every pod: Python, Django and Celery write temporary files)
GATE_SPOOL = "/var/lib/cio/spool"  # CIO_AUDIT_SPOOL_DIR: the gate's audit spool and its version floor
CANARY_STATE = "/var/lib/cio/canary"  # the canary's state file between runs
STATIC_ROOT = "/app/static"  # collected at build time (CIO_STATIC_ROOT), served read-only by the web
IMAGE_UID = 10001  # non-root, above every host's system range
GATE_HEALTH_PORT = 8081  # CIO_GATE_HEALTH_PORT: /healthz/ready, /healthz/live, /metrics
WEB_PORT = 8000
# The Host the web's readiness probe sends: its Service's name, which the manifests' `CIO_ALLOWED_HOSTS` lists.
# Django refuses (400) a Host that list lacks, and the kubelet's default Host is the pod's IP.
WEB_SERVICE = "cio-web"
# The Celery worker: threads (a cycle and the alert deliveries share it; each delivery has its own timeout), both
# queues (the Strategist's `celery`, alerting's `alerts`), no gossip or mingle (nothing here uses them); remote
# control is off in the settings (the broker's identity must not be able to stop alert delivery, issue 17).
CELERY_WORKER = (
    "worker",
    "-P",
    "threads",
    "-c",
    "4",
    "-Q",
    "celery,alerts",
    "-l",
    "INFO",
    "--without-gossip",
    "--without-mingle",
)


@dataclass(frozen=True)
class Probe:
    path: str
    port: int
    host: str | None = None  # the Host header to send; None: the kubelet's default, the pod's IP


@dataclass(frozen=True)
class Workload:
    name: str
    command: tuple[str, ...]
    writable: tuple[str, ...] = (TMP,)
    port: int | None = None  # the port it serves (HTTP), if any
    readiness: Probe | None = None
    liveness: Probe | None = None
    metrics: Probe | None = None
    env: dict[str, str] = field(default_factory=dict)  # fixed settings the image's command needs
    schedule: str | None = None  # a CronJob's schedule; None for a long-running workload


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "gate",
        ("python", "-m", "gate"),
        writable=(TMP, GATE_SPOOL),
        port=GATE_HEALTH_PORT,
        readiness=Probe("/healthz/ready", GATE_HEALTH_PORT),
        liveness=Probe("/healthz/live", GATE_HEALTH_PORT),
        metrics=Probe("/metrics", GATE_HEALTH_PORT),
        env={
            "CIO_AUDIT_SPOOL_DIR": GATE_SPOOL,
            "CIO_GATE_HEALTH_PORT": str(GATE_HEALTH_PORT),
            "CIO_GATE_HEALTH_HOST": "0.0.0.0",  # noqa: S104 (the kubelet probes the pod's address)
        },
    ),
    Workload(
        "web",
        (
            "python",
            "-m",
            "uvicorn",
            "cio_site.asgi:application",
            "--host",
            "0.0.0.0",  # noqa: S104
            "--port",
            str(WEB_PORT),
            "--lifespan",
            "off",
            "--no-access-log",
            "--no-proxy-headers",
        ),
        port=WEB_PORT,
        readiness=Probe("/api/health", WEB_PORT, host=WEB_SERVICE),  # behind Django's host check
        liveness=Probe("/api/live", WEB_PORT),  # answers before the host check, without touching the database
        metrics=Probe("/metrics", WEB_PORT),
    ),
    Workload("migrate", ("python", "manage.py", "prepare_release")),  # a Job per release
    Workload("reconcile", ("python", "manage.py", "reconcile_policies", "--watch", "5")),
    Workload("ingest", ("python", "manage.py", "audit_ingest", "--stats-every", "30")),
    Workload("worker", ("python", "-m", "celery", "-A", "cio_site", *CELERY_WORKER)),
    # django-celery-beat's schedule lives in the database: beat writes nothing but its pid, and no pid file here.
    Workload(
        "beat",
        (
            "python",
            "-m",
            "celery",
            "-A",
            "cio_site",
            "beat",
            "-l",
            "INFO",
            "--pidfile=",
            "-S",
            "django_celery_beat.schedulers:DatabaseScheduler",
        ),
    ),
    Workload("strategist", ("python", "manage.py", "strategist_listen", "--stats-every", "60")),
    Workload("alerts", ("python", "manage.py", "alert_bridge", "--stats-every", "60")),
    Workload("snapshot-bridge", ("python", "-m", "bridges.engine_state")),
    Workload("audit-verify", ("python", "manage.py", "audit_verify"), schedule="17 * * * *"),
    Workload(
        "canary",
        ("python", "-m", "canary", "--state-file", f"{CANARY_STATE}/state.json"),
        writable=(TMP, CANARY_STATE),
        schedule="* * * * *",
    ),
)

BY_NAME = {w.name: w for w in WORKLOADS}


def workload(name: str) -> Workload:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no workload {name!r}; known: {', '.join(BY_NAME)}") from None
