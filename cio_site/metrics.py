"""`GET /metrics` (Prometheus) and `GET /api/live` (the kubelet's liveness) for the web (docs/metrics.md).

The web does not see the worker's, the ingest's or the gates' counters: what it exposes is derived at scrape time
from the stores (the active policy, Strategist cycles, alert deliveries) and from JetStream (the audit ingest's
backlog), with a few bounded queries, cached for `CIO_METRICS_CACHE_S` so a scrape storm cannot load the
database. With `CIO_METRICS_TOKEN` set, a scrape must carry it as a bearer token; without, `/metrics` is open and
must stay cluster-internal (the ingress does not route it; deploy/k8s's NetworkPolicy)."""

import asyncio
import hmac
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from audit.ingest import DURABLE, BacklogStatus, measure_backlog
from audit.store import alert_log
from cio_kernel.exposition import CONTENT_TYPE, Exposition
from core.nats_connect import connect_once
from policies.models import PolicyVersion, Status
from strategist.models import Cycle

log = logging.getLogger(__name__)

_NATS_TIMEOUT_S = 2.0
_lock = threading.Lock()
_cached: tuple[float, str] | None = None  # (monotonic time rendered, text)


@require_GET
def live(request: HttpRequest) -> HttpResponse:
    """The process answers: nothing else is touched (a database outage must not restart every web pod)."""
    return JsonResponse({"status": "ok"})


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.CIO_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return HttpResponse("unauthorized\n", status=401, content_type="text/plain")
    return HttpResponse(_render_cached(), content_type=CONTENT_TYPE)


class ProbePathsMiddleware:
    """First in `MIDDLEWARE`: answers `/api/live` and `/metrics` before Django's `ALLOWED_HOSTS` check, since the
    kubelet and Prometheus address the pod by its IP, a host no deployment lists. Neither path sets or reads a
    cookie or session, so the host check protects nothing there."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = _PROBE_PATHS.get(request.path_info)
        return view(request) if view is not None else self.get_response(request)


_PROBE_PATHS: dict[str, Callable[[HttpRequest], HttpResponse]] = {"/api/live": live, "/metrics": metrics}


def _render_cached() -> str:
    global _cached
    with _lock:  # one rendering at a time: concurrent scrapes wait for it and share it
        now = time.monotonic()
        if _cached is None or now - _cached[0] >= settings.CIO_METRICS_CACHE_S:
            _cached = (now, render())
        return _cached[1]


def render() -> str:
    out = Exposition()
    database_up = True
    for section in (_policy, _strategist):
        try:
            section(out)
        except Exception as exc:  # the database away: say so, and still report what else answers
            log.warning("metrics: %s unreadable: %r", section.__name__.strip("_"), exc)
            database_up = False
    out.gauge("cio_database_up", "1 when the database answered this scrape's queries", int(database_up))
    _alerts(out)
    _audit_backlog(out)
    return out.text()


def _policy(out: Exposition) -> None:
    active = PolicyVersion.objects.filter(status=Status.ACTIVE).values_list("version", "activated_at").first()
    version, activated_at = active if active is not None else (0, None)
    out.gauge("cio_policy_active_version", "The active policy version in the database (0: none)", version)
    if activated_at is not None:
        age = (datetime.now(UTC) - activated_at).total_seconds()
        out.gauge("cio_policy_active_age_seconds", "Seconds since the active version was activated", age)


def _strategist(out: Exposition) -> None:
    # Both queries before anything is written: a failure leaves no half-written family.
    groups = sorted(Cycle.objects.values_list("outcome", "brain").annotate(n=Count("id")).order_by())
    tokens = Cycle.objects.aggregate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
    out.labelled(
        "cio_strategist_cycles_total",
        "counter",
        "Strategist cycles recorded, by outcome and brain",
        (({"outcome": outcome, "brain": brain}, n) for outcome, brain, n in groups),
    )
    out.labelled(
        "cio_strategist_tokens_total",
        "counter",
        "LLM tokens the Strategist's cycles used, by kind",
        (({"kind": kind}, int(tokens[kind] or 0)) for kind in ("prompt", "completion")),
    )


def _alerts(out: Exposition) -> None:
    try:
        counts = alert_log().delivery_counts()
    except Exception as exc:  # the audit store away: say so, do not fail the scrape
        log.warning("metrics: alert deliveries unreadable: %r", exc)
        counts = None
    out.gauge("cio_alert_log_up", "1 when the alert log answered this scrape", int(counts is not None))
    out.labelled(
        "cio_alert_deliveries_total",
        "counter",
        "Alert delivery attempts recorded, by channel and outcome",
        (({"channel": channel, "outcome": outcome}, n) for (channel, outcome), n in sorted((counts or {}).items())),
    )


def _audit_backlog(out: Exposition) -> None:
    try:
        status = asyncio.run(asyncio.wait_for(_backlog(), _NATS_TIMEOUT_S * 2))
    except Exception as exc:
        log.warning("metrics: the audit stream's backlog is unreadable: %r", exc)
        status = None
    out.gauge(
        "cio_audit_stream_up", "1 when JetStream answered for the audit stream this scrape", int(status is not None)
    )
    if status is None:
        return
    out.gauge("cio_audit_backlog", "Audit events in the stream the ingest has not stored yet", status.pending)
    out.gauge(
        "cio_audit_ingest_lag_seconds",
        "How long the oldest unstored audit event has waited (0: none waiting)",
        status.oldest_age_s or 0.0,
    )
    out.gauge("cio_audit_lost", "Audit events the stream dropped before the ingest stored them", status.lost)
    out.gauge("cio_audit_stream_bytes", "Bytes the audit stream holds", status.stream_bytes)


async def _backlog() -> BacklogStatus:
    nc = await connect_once("cio-metrics", _NATS_TIMEOUT_S)
    try:
        return await measure_backlog(nc.jetstream(), settings.CIO_AUDIT_STREAM, DURABLE)
    finally:
        await nc.close()
