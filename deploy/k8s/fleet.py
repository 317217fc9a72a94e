"""Where the fleet's own servers live, stated once: render.py (the ConfigMap, the overlays) and network.py (the
NetworkPolicies) read these, and deploy/k8s/README.md says which the fleet's repositories confirm.

Read from the fleet's repositories (PetroSa2/*, the newest manifests each kept before they moved to the hub
`petrosa_k8s`, and their code's defaults; commits in deploy/k8s/README.md):
- NATS: Service `nats-server` in namespace `nats`, client port 4222 (every app's `NATS_URL`).
- The OTel collector: Grafana Alloy, Service `grafana-alloy` in namespace `observability`; 4317 (gRPC, what the
  fleet's shared `OTEL_EXPORTER_OTLP_ENDPOINT` points at) and 4318 (HTTP). Ours exports OTLP/HTTP: 4318.
- The trade engine: pods `app: petrosa-tradeengine` serving 8000, behind the Service `petrosa-tradeengine-service`
  (port 80); its configuration routes `/api/v1/config/...` and its `GET /state`.
- The fleet's shared ConfigMap `petrosa-common-config` in the apps' namespace; its `DEFAULT_SYMBOLS` is the
  trade engine's `SUPPORTED_SYMBOLS` (comma-separated, `BTCUSDT,...`): every symbol it may hold a position in.
Not said by any of them (our assumptions): Redis with Sentinel in namespace `redis` (docs/redis-ha.md); Alloy's
service account named like its Service.
"""

NAMESPACE = "petrosa-apps"  # the fleet's apps, the trade engine among them
DOMAIN = "svc.cluster.local"

NATS_SERVICE = "nats-server"
NATS_NAMESPACE = "nats"
NATS_PORT = 4222
NATS_URL = f"nats://{NATS_SERVICE}.{NATS_NAMESPACE}.{DOMAIN}:{NATS_PORT}"

OBSERVABILITY_NAMESPACE = "observability"  # Grafana Alloy: the OTLP collector, and what scrapes metrics
OTEL_SERVICE = "grafana-alloy"
OTEL_HTTP_PORT = 4318  # OTLP/HTTP, the protocol of our exporters (the fleet's own apps mostly use gRPC on 4317)
# Our assumption: Alloy's pods run as a service account of the Service's name (the Helm chart names both after the
# release). The Role that lets it scrape us (deploy/k8s/alloy.py) is bound to it; change it here if it differs.
OTEL_SERVICE_ACCOUNT = OTEL_SERVICE
OTEL_ENDPOINT = f"http://{OTEL_SERVICE}.{OBSERVABILITY_NAMESPACE}.{DOMAIN}:{OTEL_HTTP_PORT}"

TRADEENGINE_PODS = {"app": "petrosa-tradeengine"}
TRADEENGINE_POD_PORT = 8000  # NetworkPolicies see the pod's port, not the Service's 80
TRADEENGINE_URL = f"http://petrosa-tradeengine-service.{NAMESPACE}.{DOMAIN}"  # port 80
TRADEENGINE_STATE_URL = f"{TRADEENGINE_URL}/state"
COMMON_CONFIG = "petrosa-common-config"
TRADED_SYMBOLS_KEY = "DEFAULT_SYMBOLS"  # the engine's SUPPORTED_SYMBOLS come from this key

# Our assumption (no fleet repository names a Redis): three Sentinels beside the Redis nodes, namespace `redis`.
REDIS_NAMESPACE = "redis"
REDIS_PORT = 6379
SENTINEL_PORT = 26379
REDIS_SENTINELS = ",".join(
    f"redis-node-{i}.redis-headless.{REDIS_NAMESPACE}.{DOMAIN}:{SENTINEL_PORT}" for i in range(3)
)

# The web's public name behind the fleet's ingress: a placeholder the hub replaces in the fleet overlay (and the
# canary's, which checks `/api/health` through it).
PUBLIC_HOST = "cio.fleet.example"
