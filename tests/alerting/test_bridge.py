"""Alerts end to end over real servers: published on NATS, taken by the bridge, delivered by a real Celery
worker to three real local channel servers. One channel failing or hanging never stops the other two; repeats
are deduplicated; with the worker stopped (or the broker gone) a critical alert is still emailed, by the bridge
itself; an unacknowledged critical alert is sent again."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async

from alerting import escalation
from alerting.bridge import AlertBridge
from alerting.tasks import dispatch, escalate_due
from audit.records import DELIVERY, DISPATCHED, AlertRecord
from audit.store import get_store
from cio_kernel.alerting import make_alert
from cio_kernel.contracts.alert import Severity, alert_subject
from tests.audit.ingest_helpers import wait_for
from tests.celery_processes import celery_env, start_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


@pytest.fixture
def worker_env(stack, channels, redis_url, tmp_path, smtp, grafana, collector, broker):
    return celery_env(
        stack,
        redis_url,
        tmp_path,
        CIO_SMTP_HOST="127.0.0.1",
        CIO_SMTP_PORT=str(smtp.port),
        CIO_ALERT_EMAIL_TO="oncall@example.test",
        CIO_GRAFANA_URL=grafana.url,
        CIO_GRAFANA_TOKEN="glsa_test_token",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        CIO_ALERT_MAX_ATTEMPTS="2",
        CIO_ALERT_RETRY_BACKOFF_S="0.2",
        CIO_ALERT_CHANNEL_TIMEOUT_S="1",
    )


@pytest.fixture
def worker(worker_env, tmp_path):
    process = start_worker(worker_env, tmp_path / "worker.log")
    yield process
    process.stop()


@pytest.fixture
async def bridge(nc, redis_url):
    redis = aioredis.Redis.from_url(redis_url)
    running = AlertBridge(get_store(), redis, dispatch, dedup_window_s=60, direct_after_s=1.0)
    await running.subscribe(nc)
    await nc.flush()
    yield running
    await running.drain()
    await redis.aclose()


def outcomes(alert_id: str) -> dict[str, str]:
    latest = {}
    for event in get_store().alert_events([alert_id]):
        if event.kind == DELIVERY:
            latest[event.channel] = event.outcome
    return latest


async def publish(nc, severity: Severity, title: str, source: str = "gate:g1"):
    alert = make_alert(severity, source, title, {"gate_id": "g1"})
    await nc.publish(alert_subject(severity), alert.model_dump_json().encode())
    await nc.flush()
    return alert


async def until(condition, what: str, timeout_s: float = 60):
    """Poll the store for what the worker (another process) did; the timeout only bounds a failure."""
    return await sync_to_async(wait_for)(condition, timeout_s, what)


async def test_every_channel_delivers_and_one_failing_does_not_stop_the_others(
    nc, bridge, worker, smtp, grafana, collector
):
    first = await publish(nc, Severity.WARNING, "audit stream backlog near its limit")
    await until(
        lambda: outcomes(first.alert_id) == {"email": "delivered", "grafana": "delivered", "otel": "delivered"},
        "three deliveries",
    )
    stored = await sync_to_async(get_store().get_alert)(first.alert_id)
    assert stored is not None and stored.title == "audit stream backlog near its limit"

    grafana.stop()  # Grafana goes away mid-test
    second = await publish(nc, Severity.CRITICAL, "gate lost Redis")
    await until(lambda: outcomes(second.alert_id).get("grafana") == "dead_letter", "Grafana's dead letter")
    assert await sync_to_async(outcomes)(second.alert_id) == {
        "email": "delivered",
        "grafana": "dead_letter",
        "otel": "delivered",
    }
    assert "[CRITICAL] gate lost Redis (gate:g1)" in smtp.subjects()
    events = await sync_to_async(get_store().alert_events)([second.alert_id])
    attempts = [e for e in events if e.channel == "grafana" and e.kind == DELIVERY]
    assert [(e.attempt, e.outcome) for e in attempts] == [(1, "retrying"), (2, "dead_letter")]


async def test_a_hanging_channel_does_not_hold_the_others_back(nc, bridge, worker, grafana, smtp):
    grafana.hang_s = 30  # accepts the connection and never answers
    alert = await publish(nc, Severity.WARNING, "policy anomaly")
    await until(
        lambda: {"email", "otel"} <= {c for c, o in outcomes(alert.alert_id).items() if o == "delivered"},
        "email and OpenTelemetry while Grafana hangs",
    )
    assert (await sync_to_async(outcomes)(alert.alert_id)).get("grafana") in (
        None,
        "retrying",
    )  # still stuck in its own timeout


async def test_repeats_within_the_window_are_one_alert_with_a_count(nc, bridge, worker, smtp):
    first = await publish(nc, Severity.WARNING, "NATS refused an operation")
    repeat = await publish(nc, Severity.WARNING, "NATS refused an operation")
    other_source = await publish(nc, Severity.WARNING, "NATS refused an operation", source="gate:g2")
    await until(lambda: outcomes(other_source.alert_id).get("email") == "delivered", "the other source's email")
    await until(lambda: outcomes(first.alert_id).get("email") == "delivered", "the first one's email")
    kept = await sync_to_async(get_store().get_alert)(repeat.alert_id)
    assert kept is not None and kept.duplicate_of == first.alert_id
    assert await sync_to_async(outcomes)(repeat.alert_id) == {}  # kept, never delivered
    assert smtp.subjects().count("[WARNING] NATS refused an operation (gate:g1)") == 1
    assert bridge.counters["duplicates"] == 1


async def test_with_no_worker_a_critical_alert_is_emailed_by_the_bridge(nc, bridge, channels, broker, smtp):
    alert = await publish(nc, Severity.CRITICAL, "gate cannot decide: no usable policy")
    await until(lambda: outcomes(alert.alert_id).get("email_direct") == "delivered", "the direct email", 20)
    assert smtp.subjects() == ["[CRITICAL] gate cannot decide: no usable policy (gate:g1)"]
    warning = await publish(nc, Severity.WARNING, "a warning waits for the workers")
    await asyncio.sleep(0)  # (no fallback is scheduled for it; nothing to wait for)
    assert "email_direct" not in await sync_to_async(outcomes)(warning.alert_id)


async def test_with_the_broker_gone_a_critical_alert_is_emailed_at_once(nc, redis_url, channels, smtp, settings):
    from cio_site.celery import app

    app.conf.broker_url, app._pool, app.amqp._producer_pool = "redis://127.0.0.1:1/0", None, None
    try:
        redis = aioredis.Redis.from_url(redis_url)
        bridge = AlertBridge(get_store(), redis, dispatch, dedup_window_s=60, direct_after_s=60)
        alert = make_alert(Severity.CRITICAL, "audit-ingest", "audit events dropped before they were stored")
        assert await bridge.handle(alert) == "direct"
        assert smtp.subjects() == ["[CRITICAL] audit events dropped before they were stored (audit-ingest)"]
        await redis.aclose()
    finally:
        app._pool = app.amqp._producer_pool = None


def test_an_unacknowledged_critical_alert_is_sent_again_until_acknowledged(channels, broker, redis_client, settings):
    settings.CIO_ALERT_ESCALATE_AFTER_S, settings.CIO_ALERT_ESCALATIONS = 600, 2
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    store = get_store()
    for alert_id, severity in (("crit-1", "critical"), ("warn-1", "warning")):
        store.insert_alert(AlertRecord(alert_id, t0, severity, "gate:g1", "down", {}, None, t0))
    assert escalate_due(now=t0 + timedelta(minutes=5)) == 0  # not yet due
    assert escalate_due(now=t0 + timedelta(minutes=11)) == 1  # round 1: the critical one only
    assert redis_client.llen("alerts") == 3  # one delivery per channel, queued
    assert escalate_due(now=t0 + timedelta(minutes=12)) == 0  # round 2 waits its own interval
    escalation.acknowledge("crit-1", "officer2", "on it")
    assert escalate_due(now=t0 + timedelta(minutes=25)) == 0
    events = store.alert_events(["crit-1"])
    assert [e.kind for e in events if e.kind != DISPATCHED] == ["escalated", "acknowledged"]
    assert sorted(e.channel for e in events if e.kind == DISPATCHED and e.detail["round"] == 1) == [
        "email",
        "grafana",
        "otel",
    ]  # each queued delivery has its dispatch record, which the worker checks before sending


def test_the_sweep_takes_a_due_round_once_and_leaves_its_dispatch_to_the_caller(broker, redis_client, settings):
    settings.CIO_ALERT_ESCALATE_AFTER_S, settings.CIO_ALERT_ESCALATIONS = 600, 2
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    store = get_store()
    store.insert_alert(AlertRecord("crit-2", t0, "critical", "gate:g1", "down", {"lost_s": 3}, None, t0))
    due = escalation.sweep(now=t0 + timedelta(minutes=11))
    assert [(alert.alert_id, alert.title, alert.detail, round_) for alert, round_ in due] == [
        ("crit-2", "down", {"lost_s": 3}, 1)
    ]
    assert escalation.sweep(now=t0 + timedelta(minutes=11)) == []  # a second sweep at once: the round is taken
    assert [e.kind for e in store.alert_events(["crit-2"])] == ["escalated"]  # nothing dispatched
    assert redis_client.llen("alerts") == 0
