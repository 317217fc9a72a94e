"""Control-plane settings, 12-factor: connections come from the environment (README, Configuration), with
defaults that point at the embedded local stack (`make up`): SQLite in `.cio/`, NATS and Redis on its ports."""

import os
import secrets
from pathlib import Path

import dj_database_url

from brakes.addresses import parse_networks
from cio_kernel.audit_checkpoint import CHECKPOINT_STREAM
from cio_kernel.audit_stream import AUDIT_STREAM, DEFAULT_EXPECTED_RATE_PER_DAY, DEFAULT_RETENTION_HOURS
from cio_kernel.defaults import LOCAL_NATS_URL, LOCAL_REDIS_URL
from cio_kernel.redis_clients import SentinelConfig, celery_broker, channels_host
from cio_site import log_component

BASE_DIR = Path(__file__).resolve().parent.parent


def _local_secret_key(state: Path) -> str:
    """Outside production, a key generated once into the state folder (0600): never a public default."""
    path = state / "secret-key"
    if not path.exists():
        state.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


STATE_DIR = Path(os.environ.get("CIO_STATE_DIR", BASE_DIR / ".cio"))

DEBUG = os.environ.get("CIO_DEBUG", "0") == "1"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if os.environ.get("CIO_ENV", "local") == "production":
        raise RuntimeError("SECRET_KEY must be set when CIO_ENV=production")
    SECRET_KEY = _local_secret_key(STATE_DIR)
ALLOWED_HOSTS = [h for h in os.environ.get("CIO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
# Origins, exactly (`https://cio.example.com`, scheme, host and port), besides the site's own, that admin forms and
# the live feed's websocket trust with an officer's session: the public origin behind a TLS-terminating proxy.
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CIO_TRUSTED_ORIGINS", "").split(",") if o.strip()]

NATS_URL = os.environ.get("NATS_URL", LOCAL_NATS_URL)
REDIS_URL = os.environ.get("REDIS_URL", LOCAL_REDIS_URL)
# Redis through Sentinel for every Redis user of this process, the broker and the channel layer included
# (docs/redis-ha.md): `CIO_REDIS_SENTINELS` (host:port,...), `CIO_REDIS_SENTINEL_MASTER` (default `cio`) and the
# Sentinels' own login. Unset: each URL's host. Each URL's user and password stay that component's own.
CIO_REDIS_SENTINEL = SentinelConfig.from_env()
MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:17017/petrosa_cio?directConnection=true")
# Where audit records, thoughts and incidents live: "django" (this database, the embedded default) or "mongodb".
CIO_AUDIT_STORE = os.environ.get("CIO_AUDIT_STORE", "django")
if CIO_AUDIT_STORE not in ("django", "mongodb"):
    raise RuntimeError(f"CIO_AUDIT_STORE must be django or mongodb, not {CIO_AUDIT_STORE!r}")
# How long activation waits on Redis and NATS before failing loudly.
CIO_AUDIT_STREAM = os.environ.get("CIO_AUDIT_STREAM", AUDIT_STREAM)
# The stream's sizing (docs/nats-cluster.md): the ingest warns at start when the stream's limits cannot hold its
# max age at this rate; prepare_release creates the stream from the window and rate with these replicas.
CIO_AUDIT_EXPECTED_RATE_PER_DAY = float(
    os.environ.get("CIO_AUDIT_EXPECTED_RATE_PER_DAY", str(DEFAULT_EXPECTED_RATE_PER_DAY))
)
CIO_AUDIT_STREAM_RETENTION_HOURS = float(
    os.environ.get("CIO_AUDIT_STREAM_RETENTION_HOURS", str(DEFAULT_RETENTION_HOURS))
)
CIO_AUDIT_REPLICAS = int(os.environ.get("CIO_AUDIT_REPLICAS", "1"))
# Tamper evidence (docs/audit.md): the gates' checkpoint public key(s) audit_verify trusts (base64, comma-separated
# during a rotation; else read from the file), the stream gates publish checkpoints to, and how long decisions are
# kept (unset: for ever; `audit_prune` removes older ones, and verification starts at the checkpoint they end at).
CIO_AUDIT_PUBLIC_KEY = os.environ.get("CIO_AUDIT_PUBLIC_KEY", "")
CIO_AUDIT_PUBLIC_KEY_FILE = Path(os.environ.get("CIO_AUDIT_PUBLIC_KEY_FILE", STATE_DIR / "audit-signing.pub"))
CIO_AUDIT_CHECKPOINT_STREAM = os.environ.get("CIO_AUDIT_CHECKPOINT_STREAM", CHECKPOINT_STREAM)
_retention_days = os.environ.get("CIO_AUDIT_RETENTION_DAYS", "").strip()
CIO_AUDIT_RETENTION_DAYS = float(_retention_days) if _retention_days else None
# The live audit feed's channel layer (Channels on Redis, keys `asgi*`); its own URL so it can carry its own
# Redis identity (deploy/access.py, role `feed`).
CIO_CHANNELS_REDIS_URL = os.environ.get("CIO_CHANNELS_REDIS_URL", REDIS_URL)
# Each websocket waits for its messages with a blocking Redis read of `brpop_timeout` (5 s); redis-py's default
# socket timeout is also 5 s, so an idle feed's read timed out and closed the socket after 5 s without traffic.
# The socket timeout is kept well above the blocking read (a dead Redis is still noticed).
CIO_CHANNELS_SOCKET_TIMEOUT_S = 30.0
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                channels_host(CIO_CHANNELS_REDIS_URL, CIO_REDIS_SENTINEL, socket_timeout=CIO_CHANNELS_SOCKET_TIMEOUT_S)
            ],
            "capacity": 1000,
            "expiry": 30,
        },
    }
}

CIO_COCKPIT_PUSH_S = float(os.environ.get("CIO_COCKPIT_PUSH_S", "2"))  # the cockpit's panels, per open page
CIO_ACTIVATION_TIMEOUT_S = float(os.environ.get("CIO_ACTIVATION_TIMEOUT_S", "3"))
# `/metrics` (cio_site/metrics.py, docs/metrics.md): a bearer token Prometheus must send (empty: open, and then
# cluster-internal only), and how long one rendering is served to every scrape.
CIO_METRICS_TOKEN = os.environ.get("CIO_METRICS_TOKEN", "")
CIO_METRICS_CACHE_S = float(os.environ.get("CIO_METRICS_CACHE_S", "10"))
# The control plane's policy signing key (gates verify with its public half; docs/policy.md, "Signing"). Local and
# test stacks create the pair in the state folder on first use; production must provide the file.
CIO_POLICY_SIGNING_KEY_FILE = Path(os.environ.get("CIO_POLICY_SIGNING_KEY_FILE", STATE_DIR / "policy-signing.key"))
CIO_PRODUCTION = os.environ.get("CIO_ENV", "local") == "production"
# Releasing the global trading state (halted or reducing → less severe) takes a second risk officer, like any
# loosening (docs/policy.md, "Releasing a global halt"). On unless set to 0.
CIO_GLOBAL_RELEASE_NEEDS_SECOND_OFFICER = os.environ.get("CIO_GLOBAL_RELEASE_NEEDS_SECOND_OFFICER", "1") != "0"
# Reply inboxes of the control plane's NATS connections (`_INBOX.control` under deploy/access.py).
CIO_NATS_INBOX_PREFIX = os.environ.get("CIO_NATS_INBOX_PREFIX", "_INBOX")

# -- Celery (`celery -A cio_site worker` / `beat`): the Strategist's cycles and alert delivery ---------------------
# The broker is Redis; its own URL so it can carry its own Redis identity (deploy/access.py, role `celery`).
# With Sentinel, kombu's `sentinel://` transport: one URL per Sentinel, the primary's name in the transport options.
CELERY_BROKER_URL, _broker_sentinel = celery_broker(
    os.environ.get("CIO_CELERY_BROKER_URL", REDIS_URL), CIO_REDIS_SENTINEL
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, **_broker_sentinel}
CELERY_TASK_IGNORE_RESULT = True  # tasks leave their results in the database (cycles, deliveries), not in Redis
CELERY_TASK_ACKS_LATE = True  # a task whose worker died is delivered again
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # Django's LOGGING (the redacting formatter) stays in charge
CELERY_WORKER_SEND_TASK_EVENTS = False
# No remote control: the worker delivers alerts, and the broker's credentials alone must not be able to tell it to
# stop consuming `alerts` (`cancel_consumer`), shut down or revoke tasks (issue 17). Nothing here uses it; the
# broker's Redis identity no longer reaches the control channels either (deploy/access.py).
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# -- policy impact preview (docs/impact-preview.md) ----------------------------------------------------------------
# The window of audited intents a preview replays unless asked for another (any window back to the first record).
CIO_IMPACT_WINDOW_HOURS = float(os.environ.get("CIO_IMPACT_WINDOW_HOURS", "24"))
# A window with at most this many decisions is replayed in the request (well under two seconds); more goes to Celery.
CIO_IMPACT_INLINE_MAX = int(os.environ.get("CIO_IMPACT_INLINE_MAX", "500"))

# -- the Strategist (docs/strategist.md) ---------------------------------------------------------------------------
# Its Redis: the listener's inputs, the cycle lock, the LLM token budget, trigger debouncing (`strategist:*`), and
# reading `policy:active`.
CIO_STRATEGIST_REDIS_URL = os.environ.get("CIO_STRATEGIST_REDIS_URL", REDIS_URL)
CIO_STRATEGIST_INTERVAL_S = int(os.environ.get("CIO_STRATEGIST_INTERVAL_S", "900"))  # the beat schedule's default
CIO_STRATEGIST_LOCK_TTL_S = float(os.environ.get("CIO_STRATEGIST_LOCK_TTL_S", "60"))
CIO_STRATEGIST_BUSY_RETRY_S = float(os.environ.get("CIO_STRATEGIST_BUSY_RETRY_S", "30"))
CIO_STRATEGIST_DEBOUNCE_S = float(os.environ.get("CIO_STRATEGIST_DEBOUNCE_S", "120"))
CIO_STRATEGIST_REGIME_MAX_AGE_S = float(os.environ.get("CIO_STRATEGIST_REGIME_MAX_AGE_S", "900"))
CIO_STRATEGIST_PORTFOLIO_MAX_AGE_S = float(os.environ.get("CIO_STRATEGIST_PORTFOLIO_MAX_AGE_S", "300"))
CIO_STRATEGIST_STATS_WINDOW_S = int(os.environ.get("CIO_STRATEGIST_STATS_WINDOW_S", "3600"))
CIO_STRATEGIST_DRAWDOWN_TRIGGER = float(os.environ.get("CIO_STRATEGIST_DRAWDOWN_TRIGGER", "0.05"))
CIO_STRATEGIST_CONCENTRATION_TRIGGER = float(os.environ.get("CIO_STRATEGIST_CONCENTRATION_TRIGGER", "0.5"))
CIO_STRATEGIST_REJECTION_BURST = os.environ.get("CIO_STRATEGIST_REJECTION_BURST", "50/60")
CIO_STRATEGIST_ALERT_BURST = os.environ.get("CIO_STRATEGIST_ALERT_BURST", "5/300")
# A requested cycle (admin, listener) not run within this is refused: a message held back by the broker goes stale.
CIO_STRATEGIST_REQUEST_MAX_AGE_S = float(os.environ.get("CIO_STRATEGIST_REQUEST_MAX_AGE_S", "3600"))
# The longest a cycle may hold the lock (its sealed token says until when); a lock held past it is broken.
CIO_STRATEGIST_MAX_CYCLE_S = float(os.environ.get("CIO_STRATEGIST_MAX_CYCLE_S", "900"))
# The control plane's watch alerts when no cycle completed within twice the schedule's interval plus this.
CIO_STRATEGIST_OVERDUE_GRACE_S = float(os.environ.get("CIO_STRATEGIST_OVERDUE_GRACE_S", "120"))
CIO_STRATEGIST_OVERDUE_ALERT_EVERY_S = float(os.environ.get("CIO_STRATEGIST_OVERDUE_ALERT_EVERY_S", "900"))
# The LLM brain reads CIO_LLM_* from the environment itself (strategist/brains/llm.py): its key never
# becomes a setting.

# -- alerting (docs/alerting.md) ---------------------------------------------------------------------------------
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = os.environ.get("CIO_SMTP_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("CIO_SMTP_PORT", "18025"))
EMAIL_HOST_USER = os.environ.get("CIO_SMTP_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("CIO_SMTP_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("CIO_SMTP_STARTTLS", "0") == "1"
EMAIL_USE_SSL = os.environ.get("CIO_SMTP_SSL", "0") == "1"
CIO_ALERT_EMAIL_FROM = os.environ.get("CIO_ALERT_EMAIL_FROM", "petrosa-cio@localhost")
CIO_ALERT_EMAIL_TO = [a.strip() for a in os.environ.get("CIO_ALERT_EMAIL_TO", "").split(",") if a.strip()]
CIO_GRAFANA_URL = os.environ.get("CIO_GRAFANA_URL", "")
CIO_GRAFANA_TOKEN = os.environ.get("CIO_GRAFANA_TOKEN", "")
CIO_ALERT_OTEL_SERVICE = os.environ.get("CIO_ALERT_OTEL_SERVICE", "petrosa-cio-alerting")
CIO_ALERT_CHANNEL_TIMEOUT_S = float(os.environ.get("CIO_ALERT_CHANNEL_TIMEOUT_S", "10"))
CIO_ALERT_MAX_ATTEMPTS = int(os.environ.get("CIO_ALERT_MAX_ATTEMPTS", "5"))
CIO_ALERT_RETRY_BACKOFF_S = float(os.environ.get("CIO_ALERT_RETRY_BACKOFF_S", "5"))
CIO_ALERT_DEDUP_WINDOW_S = float(os.environ.get("CIO_ALERT_DEDUP_WINDOW_S", "300"))
CIO_ALERT_ESCALATE_AFTER_S = float(os.environ.get("CIO_ALERT_ESCALATE_AFTER_S", "600"))
CIO_ALERT_ESCALATIONS = int(os.environ.get("CIO_ALERT_ESCALATIONS", "3"))
CIO_ALERT_DIRECT_EMAIL_AFTER_S = float(os.environ.get("CIO_ALERT_DIRECT_EMAIL_AFTER_S", "30"))
CIO_ALERTING_REDIS_URL = os.environ.get("CIO_ALERTING_REDIS_URL", REDIS_URL)
# The control plane's watch over the gates (outages/watch.py, each `reconcile_policies` pass): a gate is silent once
# its newest verified heartbeat is older than this (a gate's key lives 5 s and a reader still takes a beat up to
# its TTL plus 5 s of clock skew: 10 s is past anything a reader would call live), and unconfirmed once it has not
# reported the active policy version for this long (a gate polls Redis every 2 s; a notice makes it immediate).
CIO_GATE_SILENT_AFTER_S = float(os.environ.get("CIO_GATE_SILENT_AFTER_S", "10"))
CIO_GATE_UNCONFIRMED_AFTER_S = float(os.environ.get("CIO_GATE_UNCONFIRMED_AFTER_S", "30"))

# -- the trade engine's configuration API (docs/tradeconfig.md) ----------------------------------------------------
CIO_TRADEENGINE_URL = os.environ.get("CIO_TRADEENGINE_URL", "")
CIO_TRADEENGINE_TOKEN = os.environ.get("CIO_TRADEENGINE_TOKEN", "")
CIO_TRADEENGINE_TIMEOUT_S = float(os.environ.get("CIO_TRADEENGINE_TIMEOUT_S", "5"))
# How long after a push with an unknown outcome the engine's unchanged value may be read as "not applied" (a push
# still on its way must not be declared lost): well beyond the timeout.
CIO_TRADEENGINE_SETTLE_S = float(os.environ.get("CIO_TRADEENGINE_SETTLE_S", "60"))

# MCP at /mcp (docs/mcp.md): the public base URL clients reach this server at (the OAuth resource metadata names it).
CIO_MCP_PUBLIC_URL = os.environ.get("CIO_MCP_PUBLIC_URL", "http://127.0.0.1:18000")

INSTALLED_APPS = [
    "cio_site.apps.CioAdminConfig",  # django.contrib.admin with the floor plan (cio_site/admin_site.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_celery_beat",
    "core",
    "brakes",
    "audit",
    "alerting",
    "policies",
    "strategist",
    "tradeconfig",
    "lineage",
    "outages",
    "cockpit",
]

MIDDLEWARE = [
    "cio_site.metrics.ProbePathsMiddleware",  # /api/live and /metrics by pod address, before the host check
    "core.envelope.TraceIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.nul.AdminNulRefusalMiddleware",  # after the CSRF check: a forged POST is still a 403
    "core.envelope.ApiErrorEnvelopeMiddleware",
]

ROOT_URLCONF = "cio_site.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ASGI_APPLICATION = "cio_site.asgi.application"
WSGI_APPLICATION = "cio_site.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{STATE_DIR / 'control-plane.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers take the write lock when their transaction begins and wait for it (instead of failing with
    # "database is locked" when two transactions that both read try to write): SQLite then serialises
    # activations, kill switches and proposals the way PostgreSQL's row lock does.
    # Write-ahead log: a commit writes each changed page once and syncs once (the rollback journal copies every
    # page it changes and syncs three times), and readers no longer wait for the writer. The audit ingest's
    # commits at a million stored decisions touch a page of each random-key index per decision, so this decides
    # its tail latency (bench/audit_store). Synchronous stays FULL: a committed batch has been acked to JetStream.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# Where `collectstatic` puts the static files: the state folder locally; the image collects them at build time into
# its read-only source folder (CIO_STATIC_ROOT=/app/static, deploy/workloads.py), so no workload writes them.
STATIC_ROOT = Path(os.environ.get("CIO_STATIC_ROOT", STATE_DIR / "static"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "policies.authentication.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["core.envelope.EnvelopeRenderer"],
    "DEFAULT_PARSER_CLASSES": ["cio_site.parsers.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "core.envelope.envelope_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": [
        "brakes.throttles.AnonRateThrottle",
        "brakes.throttles.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("CIO_ANON_RATE", "60/min"),
        "user": os.environ.get("CIO_USER_RATE", "1200/min"),
    },
}
# Request bodies above this are refused (413) before they are read; Django's own limit matches it.
CIO_MAX_REQUEST_BYTES = int(os.environ.get("CIO_MAX_REQUEST_BYTES", str(2 * 1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = CIO_MAX_REQUEST_BYTES
# Brakes on guessing (docs/access.md, "Brakes on guessing"): failed admin logins per account and client address
# (or per signed-in-before browser), and failed tokens per client address, within a minute before that party is
# refused; failures per account (or token prefix) across all addresses before the account is on guard.
CIO_AUTH_FAILURES_PER_MINUTE = int(os.environ.get("CIO_AUTH_FAILURES_PER_MINUTE", "10"))
CIO_AUTH_ACCOUNT_FAILURES_PER_MINUTE = int(os.environ.get("CIO_AUTH_ACCOUNT_FAILURES_PER_MINUTE", "30"))
CIO_AUTH_DEVICE_DAYS = int(os.environ.get("CIO_AUTH_DEVICE_DAYS", "30"))
# The reverse proxies (CIDRs, comma-separated) whose X-Forwarded-For names the client; empty: the TCP peer is.
CIO_TRUSTED_PROXIES = os.environ.get("CIO_TRUSTED_PROXIES", "")
try:
    parse_networks(CIO_TRUSTED_PROXIES)
except ValueError as exc:
    raise RuntimeError(f"CIO_TRUSTED_PROXIES must be comma-separated CIDRs: {exc}") from exc
SPECTACULAR_SETTINGS = {
    "TITLE": "Petrosa CIO control plane",
    "DESCRIPTION": "Policy history, four-eyes approval, activation, kill switch and gate status. Every response "
    "is the envelope `{success, data, trace_id, error}`.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Names clients are generated with, instead of drf-spectacular's hashed `Status937Enum` for colliding names.
    "ENUM_NAME_OVERRIDES": {
        "PolicyStatusEnum": "policies.models.Status",
        "ConfigChangeStatusEnum": "tradeconfig.models.ChangeStatus",
        "TradingStateEnum": "policies.api.serializers.TRADING_STATES",
    },
    # The envelope around every response, and the errors each operation answers (core/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.envelope_responses",
    ],
}

# One format for every process (cio_kernel.log_format, docs/logging.md): CIO_LOG_FORMAT=json for JSON lines.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"cio": {"()": "cio_kernel.log_format.RedactingFormatter", "component": log_component.component()}},
    "handlers": {"console": {"class": "cio_kernel.log_format.LogHandler", "formatter": "cio"}},
    "root": {"handlers": ["console"], "level": os.environ.get("CIO_LOG_LEVEL", "INFO")},
    # uvicorn gives its loggers handlers of its own before it loads the app: sent to the root's, they share it.
    "loggers": {name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
}
