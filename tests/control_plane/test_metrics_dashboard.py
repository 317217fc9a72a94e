"""Metrics end to end: a real gate process decides real intents, then its `/metrics` (health port) and the web's
`/metrics` are scraped; both parse as Prometheus' text format, say what happened, and every metric the Grafana
dashboard (deploy/grafana/cio-dashboard.json) queries is among what they expose."""

import asyncio
import json
import re
from datetime import UTC, datetime

import httpx
import nats
import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from audit.ingest import AuditIngest
from audit.records import DELIVERY, AlertEvent
from audit.store import alert_log, get_store
from strategist.models import Cycle
from tests.control_plane.helpers import _wait, decide_buy
from tests.control_plane.helpers import gate_version as _gate_version

pytestmark = pytest.mark.e2e

DASHBOARD = "deploy/grafana/cio-dashboard.json"
_SUFFIXES = ("_bucket", "_sum", "_count")


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _dashboard_metrics() -> set[str]:
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert exprs
    return {name for expr in exprs for name in re.findall(r"\bcio_[a-z0-9_]+", expr)}


async def _start_ingest_consumer(nats_url: str) -> None:
    """The ingest's durable consumer, as `audit_ingest` creates it, left unstepped: the gate's events wait in it."""
    nc = await nats.connect(nats_url)
    try:
        ingest = AuditIngest(nc, get_store())
        await ingest.start()
        await ingest.close()
    finally:
        await nc.close()


def test_gate_and_web_metrics_cover_the_dashboard(active_v1, gate_process, redis_client, stack, settings, db):
    _wait(lambda: _gate_version(redis_client) == 1, 20)
    answers = [decide_buy(stack.NATS_URL)["data"] for _ in range(2)]  # the same intent twice: a duplicate
    assert [a["decision"] for a in answers] == ["APPROVED", "REJECTED"]
    now = datetime.now(UTC)
    Cycle.objects.create(
        cycle_id="c" * 32,
        trigger="manual",
        started_at=now,
        finished_at=now,
        brain="rules",
        model="rules",
        outcome="no_change",
        prompt_tokens=120,
        completion_tokens=30,
        duration_ms=5,
        trace_id="0" * 32,
        thought={},
    )
    alert_log().add_alert_event(AlertEvent("e1", "a1", now, DELIVERY, channel="slack", attempt=1, outcome="delivered"))
    asyncio.run(_start_ingest_consumer(stack.NATS_URL))

    gate = httpx.get(f"{gate_process.health_url}/metrics", timeout=5)
    assert gate.status_code == 200
    assert httpx.get(f"{gate_process.health_url}/healthz/ready", timeout=5).status_code == 200
    gate_found = _samples(gate.text)
    assert gate_found[("cio_gate_decisions_total", frozenset({("decision", "APPROVED"), ("reason", "")}))] == 1
    assert gate_found[("cio_gate_decision_latency_seconds_count", frozenset())] == 2

    settings.CIO_METRICS_CACHE_S = 0.0
    settings.CIO_METRICS_TOKEN = "scrape-secret"
    assert Client().get("/metrics").status_code == 401
    # Prometheus scrapes the pod by its address, which no deployment lists in CIO_ALLOWED_HOSTS.
    web = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret", HTTP_HOST="10.42.0.17:8000")
    assert web.status_code == 200 and web["Content-Type"].startswith("text/plain; version=0.0.4")
    web_found = _samples(web.content.decode())
    assert web_found[("cio_policy_active_version", frozenset())] == 1
    assert web_found[("cio_strategist_cycles_total", frozenset({("outcome", "no_change"), ("brain", "rules")}))] == 1
    assert web_found[("cio_strategist_tokens_total", frozenset({("kind", "prompt")}))] == 120
    assert web_found[("cio_alert_deliveries_total", frozenset({("channel", "slack"), ("outcome", "delivered")}))] == 1
    assert web_found[("cio_audit_stream_up", frozenset())] == 1
    assert web_found[("cio_database_up", frozenset())] == web_found[("cio_alert_log_up", frozenset())] == 1
    assert web_found[("cio_audit_backlog", frozenset())] == 2  # the two decisions, not yet stored
    assert web_found[("cio_audit_ingest_lag_seconds", frozenset())] > 0
    assert Client().get("/api/live").json() == {"status": "ok"}

    exposed = {name for name, _ in gate_found} | {name for name, _ in web_found}
    missing = {m for m in _dashboard_metrics() if m not in exposed}
    assert not missing, f"the dashboard queries metrics nobody exposes: {sorted(missing)}"
