"""Issue 17 §1, alarms nobody can silence: each attack made with exactly the credentials the attacking component
holds (NATS and Valkey started with the shipped permissions), against the real bridge, broker, worker and store.

- the bridge's own Redis identity planting or replaying deduplication keys;
- any identity allowed on `cio.alert.>` sending a milder alert with a gate's source and title;
- the broker's identity dropping queued deliveries, forging delivery tasks and trying Celery's remote control;
- a gate flooding critical repeats to push a real alert out of the escalation sweep."""

import base64
import json
from datetime import UTC, datetime, timedelta
from importlib import import_module

import pytest
import redis as sync_redis
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from celery import Celery
from redis.exceptions import NoPermissionError

from alerting import escalation
from alerting.bridge import AlertBridge
from alerting.dedup import Deduplicator, key
from alerting.tasks import dispatch, escalate_due
from audit.records import DELIVERY, DISPATCHED, REFUSED
from audit.store import get_store
from cio_kernel.alerting import make_alert
from cio_kernel.contracts.alert import Severity, alert_subject
from cio_kernel.nats_flush import flush_ordered
from tests.audit.ingest_helpers import wait_for
from tests.celery_processes import celery_env, start_beat, start_worker
from tests.factories import TEST_SIGNER
from tests.integration.helpers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

GATE = "gate:g1"
NO_POLICY = "gate cannot decide: no usable policy"  # a gate's fixed title (docs/alerting.md)


@pytest.fixture
def celery_broker(secured):
    """This process's Celery app (the bridge's dispatch, the sweep) sends under the `celery` identity."""
    from cio_site.celery import app

    def point_at(url: str) -> None:
        app.conf.broker_url, app._pool, app.amqp._producer_pool = url, None, None

    before = app.conf.broker_url
    point_at(secured.redis_url("celery"))
    yield secured.redis_url("celery")
    point_at(before)


@pytest.fixture
async def bridge(secured, celery_broker):
    redis = aioredis.Redis.from_url(secured.redis_url("alerting"))
    running = AlertBridge(get_store(), redis, dispatch, dedup_window_s=60, direct_after_s=600)
    yield running
    for task in list(running._watchdogs):  # the fallback's own wait is not under test unless a test drains it
        task.cancel()
    await redis.aclose()
    await secured.close_clients()


def settled(bridge: AlertBridge) -> int:
    """Alerts the bridge has finished with (it counts `received` as it starts on one)."""
    return bridge.counters["dispatched"] + bridge.counters["duplicates"]


def events_of(alert_id: str, kind: str) -> list:
    return [e for e in get_store().alert_events([alert_id]) if e.kind == kind]


async def test_keys_planted_with_the_bridges_redis_identity_do_not_silence_a_critical_alert(secured, bridge):
    attacker = aioredis.Redis.from_url(secured.redis_url("alerting"))
    try:
        real = make_alert(Severity.CRITICAL, GATE, NO_POLICY)
        await attacker.set(key(real), "someone-else")  # no expiry, any value
        assert await bridge.handle(real) == "dispatched"
        stored = await sync_to_async(get_store().get_alert)(real.alert_id)
        assert stored is not None and stored.duplicate_of is None
        assert len(await sync_to_async(events_of)(real.alert_id, DISPATCHED)) == 3
        assert bridge.counters["dedup_tampered"] == 1
        assert 0 < await attacker.pttl(key(real)) <= 60_000  # the bridge's own window replaced the planted key
        reports = await sync_to_async(get_store().recent_alerts)(severity="critical")
        [report] = [a for a in reports if a.source == "alerting-bridge"]
        assert report.detail["why"] == "no_expiry" and report.detail["alert_id"] == real.alert_id
        assert len(await sync_to_async(events_of)(report.alert_id, DISPATCHED)) == 3  # the tampering is alarmed

        repeat = make_alert(Severity.CRITICAL, GATE, NO_POLICY)
        assert await bridge.handle(repeat) == "duplicate"  # the bridge's own window still deduplicates

        # The bridge's genuine value, copied and written back without an expiry or with a longer one.
        genuine = await attacker.get(key(real))
        for planted in ({"px": None}, {"px": 3_600_000}):
            await attacker.set(key(real), genuine, **({"px": planted["px"]} if planted["px"] else {}))
            again = make_alert(Severity.CRITICAL, GATE, NO_POLICY)
            assert await bridge.handle(again) == "dispatched"
        # A window's end spelled "²" passed `isdigit()` and made `int()` raise: taken for Redis being away, the
        # alert was delivered but the planted key went unnoticed (no tampering alarm) and stayed.
        # So did a MAC holding a non-ASCII character (`hmac.compare_digest` raises on such a str).
        alert_id, ends, mac = genuine.decode().split("|")
        for planted in (f"{alert_id}|²|{mac}", f"{alert_id}|{ends}|{mac[:-1]}é"):
            await attacker.set(key(real), planted, px=30_000)
            assert await bridge.handle(make_alert(Severity.CRITICAL, GATE, NO_POLICY)) == "dispatched"
        assert bridge.counters["dedup_tampered"] == 5

        # Written back with an expiry inside the window but after its signed end: a replay, not a window.
        windows = Deduplicator(attacker, "the bridge's secret", 60)
        opened = make_alert(Severity.CRITICAL, GATE, "gate lost Redis")
        assert (await windows.first_of(opened, now_ms=1_000_000)).first is None
        replayed = await attacker.get(key(opened))
        await attacker.set(key(opened), replayed, px=30_000)
        later = await windows.first_of(make_alert(Severity.CRITICAL, GATE, "gate lost Redis"), now_ms=1_070_000)
        assert later.first is None and later.tampered == "replayed"
        forged = Deduplicator(attacker, "not the bridge's secret", 60)  # what the Redis password alone can sign
        assert (await forged.first_of(make_alert(Severity.CRITICAL, GATE, "x"))).first is None
        assert (await windows.first_of(make_alert(Severity.CRITICAL, GATE, "x"))).tampered == "unsigned"
        with pytest.raises(NoPermissionError):
            await attacker.delete(key(real))  # it can overwrite (noticed, replaced), never remove
    finally:
        await attacker.aclose()


async def test_a_milder_alert_with_a_gates_source_and_title_does_not_hold_back_its_critical_alert(secured, bridge):
    bridge_nc = await secured.connect("alerting")
    await bridge.subscribe(bridge_nc)
    control = await secured.connect("control")  # allowed on cio.alert.> (an older policy put back)
    gate = await secured.connect("gate")
    await flush_ordered(bridge_nc)
    sent = []
    for client, severity in ((control, Severity.INFO), (control, Severity.WARNING), (gate, Severity.CRITICAL)):
        alert = make_alert(severity, GATE, NO_POLICY)
        sent.append(alert)
        await client.publish(alert_subject(severity), alert.model_dump_json().encode())
        await flush_ordered(client)
    await flush_ordered(bridge_nc)
    await wait_until(lambda: settled(bridge) == 3, 20.0, "the bridge settling all three")
    assert bridge.counters["duplicates"] == 0 and bridge.counters["dispatched"] == 3
    for alert in sent:  # each severity opened its own window; the critical one went to every channel
        stored = await sync_to_async(get_store().get_alert)(alert.alert_id)
        assert stored is not None and stored.duplicate_of is None
    assert {e.channel for e in await sync_to_async(events_of)(sent[2].alert_id, DISPATCHED)} == {
        "email",
        "grafana",
        "otel",
    }
    # The same info alert again is still a repeat of the first info alert, and nothing else.
    info_again = make_alert(Severity.INFO, GATE, NO_POLICY)
    assert await bridge.handle(info_again) == "duplicate"
    kept = await sync_to_async(get_store().get_alert)(info_again.alert_id)
    assert kept is not None and kept.duplicate_of == sent[0].alert_id


@pytest.fixture
def worker_settings(settings, secured, tmp_path, channels):
    key_file = tmp_path / "policy-signing.key"
    key_file.write_text(base64.b64encode(TEST_SIGNER.private_key.private_bytes_raw()).decode())
    settings.CIO_POLICY_SIGNING_KEY_FILE = key_file
    settings.NATS_URL = secured.nats_url("control")
    settings.REDIS_URL = secured.redis_url("strategist")
    settings.CIO_GRAFANA_URL = ""  # the worker and the bridge here mail only
    return settings


async def test_the_broker_identity_can_neither_fake_a_delivery_nor_stop_the_alert_worker(
    secured, bridge, celery_broker, worker_settings, smtp, tmp_path
):
    broker_url = secured.redis_url("celery")
    real = make_alert(Severity.CRITICAL, GATE, NO_POLICY)
    assert await bridge.handle(real) == "dispatched"  # queued while no worker runs

    # The broker's identity: it reads the queue, drops the real deliveries and queues its own.
    queue = sync_redis.Redis.from_url(broker_url)
    attacker = Celery("attacker", broker=broker_url, set_as_current=False)  # this process's tasks keep theirs
    try:
        assert queue.llen("alerts") == 3
        queue.delete("alerts")
        attacker.send_task("alerting.deliver", args=[real.alert_id, "email", 0, "a-nonce-of-its-own"], queue="alerts")
        all_clear = {**real.model_dump(mode="json"), "severity": "info", "title": "all clear, ignore the last alert"}
        attacker.send_task("alerting.deliver", args=[all_clear, "email", 0], queue="alerts")  # the old task shape
        with pytest.raises(NoPermissionError):
            queue.publish("/0.celery.pidbox", b"{}")  # no control channel to reach the workers on
        with pytest.raises(Exception, match=r"(?i)noperm|permission"):
            attacker.control.cancel_consumer("alerts", reply=True, timeout=1)

        env = celery_env(
            worker_settings,
            broker_url,
            tmp_path,
            CIO_CELERY_BROKER_URL=broker_url,
            CIO_STRATEGIST_REDIS_URL=secured.redis_url("strategist"),
            CIO_SMTP_HOST="127.0.0.1",
            CIO_SMTP_PORT=str(smtp.port),
            CIO_ALERT_EMAIL_TO="oncall@example.test",
            CIO_ALERT_CHANNEL_TIMEOUT_S="2",
        )
        worker = start_worker(env, tmp_path / "worker.log")
        try:
            refused = await sync_to_async(wait_for)(
                lambda: len(events_of(real.alert_id, REFUSED)) == 2, 60, "both forged tasks refused and recorded"
            )
            assert refused
            assert not [e for e in await sync_to_async(events_of)(real.alert_id, DELIVERY)]  # nothing counts as sent
            await bridge.drain()  # the fallback looks now: no genuine delivery, so the bridge mails it itself
            delivered = {e.channel: e.outcome for e in await sync_to_async(events_of)(real.alert_id, DELIVERY)}
            assert delivered == {"email_direct": "delivered"}

            # The worker kept consuming `alerts` through all of it: a genuine alert is delivered by it.
            later = make_alert(Severity.WARNING, GATE, "decision timeouts above the limit")
            assert await bridge.handle(later) == "dispatched"
            await sync_to_async(wait_for)(
                lambda: any(e.outcome == "delivered" for e in events_of(later.alert_id, DELIVERY)),
                60,
                "the worker delivering a genuine alert",
            )
        finally:
            worker.stop()
        assert sorted(smtp.subjects()) == sorted(
            [f"[CRITICAL] {NO_POLICY} ({GATE})", f"[WARNING] decision timeouts above the limit ({GATE})"]
        )  # no "all clear", and the real alert's own text
        assert "NOPERM" not in worker.log()
    finally:
        queue.close()
        attacker.close()


async def test_a_flood_of_critical_repeats_does_not_push_a_real_alert_out_of_the_escalation_sweep(
    secured, bridge, settings
):
    settings.CIO_ALERT_ESCALATE_AFTER_S, settings.CIO_ALERT_ESCALATIONS = 600, 3
    bridge_nc = await secured.connect("alerting")
    await bridge.subscribe(bridge_nc)
    gate = await secured.connect("gate")
    await flush_ordered(bridge_nc)
    real = make_alert(Severity.CRITICAL, "gate:g2", NO_POLICY)
    flood = [make_alert(Severity.CRITICAL, GATE, "NATS refused an operation") for _ in range(520)]
    for alert in (real, *flood):
        await gate.publish(alert_subject(alert.severity), alert.model_dump_json().encode())
    await flush_ordered(gate)
    await wait_until(lambda: settled(bridge) == 521, 120.0, "the bridge settling the flood")
    assert bridge.counters["duplicates"] == 519
    now = datetime.now(UTC) + timedelta(minutes=11)
    assert await sync_to_async(escalate_due)(now=now) == 2  # the real alert and the flood's first
    rounds = await sync_to_async(events_of)(real.alert_id, "escalated")
    assert [e.detail["round"] for e in rounds] == [1]


def test_beat_and_a_worker_escalate_under_the_broker_identity_without_pub_sub(secured, worker_settings, smtp, tmp_path):
    """The `celery` identity lost pub/sub and the pidbox keys: beat still sends the sweep, a worker still runs it
    and delivers the escalation round (the sweep's own dispatch and nonces)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from audit.records import AlertRecord

    schedule = import_module("alerting.migrations.0001_escalation_schedule").NAME

    t0 = datetime.now(UTC) - timedelta(minutes=15)  # round 1 due (after 10), round 2 not before 20
    get_store().insert_alert(AlertRecord("crit-old", t0, "critical", GATE, NO_POLICY, {}, None, t0))
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.exclude(task="alerting.escalate").update(enabled=False)
    PeriodicTask.objects.update_or_create(  # the row the migration made, when this test runs first
        name=schedule,
        defaults={"task": "alerting.escalate", "interval": every_second, "kwargs": "{}", "enabled": True},
    )
    broker_url = secured.redis_url("celery")
    env = celery_env(
        worker_settings,
        broker_url,
        tmp_path,
        CIO_STRATEGIST_REDIS_URL=secured.redis_url("strategist"),
        CIO_SMTP_HOST="127.0.0.1",
        CIO_SMTP_PORT=str(smtp.port),
        CIO_ALERT_EMAIL_TO="oncall@example.test",
    )
    worker = start_worker(env, tmp_path / "worker.log")
    beat = None
    try:
        beat = start_beat(env, tmp_path / "beat.log", tmp_path)
        wait_for(
            lambda: any(e.outcome == "delivered" for e in events_of("crit-old", DELIVERY)),
            60,
            "the escalation round delivered",
        )
    finally:
        if beat is not None:
            beat.stop()
        worker.stop()
    [round_] = events_of("crit-old", "escalated")
    assert round_.detail == {"round": 1}
    assert f"[CRITICAL] {NO_POLICY} ({GATE})" in smtp.subjects()
    assert "NOPERM" not in worker.log() and "NOPERM" not in beat.log()


async def test_the_broker_dropping_only_the_email_task_still_ends_in_the_direct_email(
    secured, bridge, celery_broker, worker_settings, smtp, grafana, tmp_path
):
    """Dropping the email delivery alone and letting the Grafana annotation through: an annotation pages nobody, so
    with email configured only a genuine email delivery stands the direct email down."""
    broker_url = secured.redis_url("celery")
    real = make_alert(Severity.CRITICAL, GATE, NO_POLICY)
    assert await bridge.handle(real) == "dispatched"
    queue = sync_redis.Redis.from_url(broker_url)
    try:
        for message in queue.lrange("alerts", 0, -1):
            if json.loads(base64.b64decode(json.loads(message)["body"]))[0][1] == "email":
                assert queue.lrem("alerts", 1, message) == 1
        assert queue.llen("alerts") == 2
    finally:
        queue.close()
    env = celery_env(
        worker_settings,
        broker_url,
        tmp_path,
        CIO_STRATEGIST_REDIS_URL=secured.redis_url("strategist"),
        CIO_SMTP_HOST="127.0.0.1",
        CIO_SMTP_PORT=str(smtp.port),
        CIO_ALERT_EMAIL_TO="oncall@example.test",
        CIO_GRAFANA_URL=grafana.url,
        CIO_GRAFANA_TOKEN="glsa_test_token",
        CIO_ALERT_CHANNEL_TIMEOUT_S="2",
    )
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        await sync_to_async(wait_for)(
            lambda: any(
                e.channel == "grafana" and e.outcome == "delivered" for e in events_of(real.alert_id, DELIVERY)
            ),
            60,
            "the Grafana annotation the broker let through",
        )
    finally:
        worker.stop()
    assert smtp.subjects() == []  # nobody was mailed by a worker
    await bridge.drain()
    delivered = {e.channel: e.outcome for e in await sync_to_async(events_of)(real.alert_id, DELIVERY)}
    assert delivered.get("email_direct") == "delivered" and "email" not in delivered
    assert smtp.subjects() == [f"[CRITICAL] {NO_POLICY} ({GATE})"]


async def test_escalation_rounds_the_broker_drops_are_emailed_by_the_bridge(
    secured, bridge, celery_broker, channels, smtp, settings
):
    """Beat's sweep and every round's deliveries travel through the broker, whose identity can drop them: the
    bridge sweeps too, and emails a round no channel genuinely delivered (once, whichever sweep dispatched it)."""
    from audit.records import AlertRecord

    settings.CIO_ALERT_ESCALATE_AFTER_S, settings.CIO_ALERT_ESCALATIONS = 600, 3
    t0 = datetime.now(UTC) - timedelta(minutes=15)  # round 1 due (after 10), round 2 not before 20
    await sync_to_async(get_store().insert_alert)(
        AlertRecord("crit-dropped", t0, "critical", GATE, NO_POLICY, {}, None, t0)
    )
    await sync_to_async(get_store().insert_alert)(
        AlertRecord("crit-acked", t0, "critical", GATE, "acked", {}, None, t0)
    )
    await sync_to_async(escalation.acknowledge)("crit-acked", by="officer1")
    queue = sync_redis.Redis.from_url(secured.redis_url("celery"))
    try:
        now = datetime.now(UTC)
        assert await bridge.escalate(now) == 0  # round 1 dispatched (beat's sweep may not even have run)
        assert [e.detail["round"] for e in await sync_to_async(events_of)("crit-dropped", DISPATCHED)] == [1, 1, 1]
        assert queue.llen("alerts") == 3
        queue.delete("alerts")  # the broker's identity drops the round's deliveries
    finally:
        queue.close()
    later = now + timedelta(seconds=600)  # the bridge fixture's fallback wait (round 2 is dispatched then too)
    assert await bridge.escalate(later) == 1
    assert await bridge.escalate(later) == 0  # once
    direct = [e for e in await sync_to_async(events_of)("crit-dropped", DELIVERY) if e.channel == "email_direct"]
    assert [(e.outcome, e.detail["round"]) for e in direct] == [("delivered", 1)]
    assert smtp.subjects() == [f"[CRITICAL] {NO_POLICY} ({GATE})"]
    assert not await sync_to_async(events_of)("crit-acked", DISPATCHED)  # acknowledged: no round, no email


async def test_a_flood_of_distinct_critical_alerts_does_not_push_an_earlier_one_out_of_the_escalation_sweep(
    secured, bridge, settings
):
    """Not repeats this time: more distinct critical originals than the old sweep read (the newest 500), all newer."""
    from audit.records import AlertRecord

    settings.CIO_ALERT_ESCALATE_AFTER_S, settings.CIO_ALERT_ESCALATIONS = 600, 3
    t0 = datetime.now(UTC) - timedelta(minutes=15)
    store = get_store()
    await sync_to_async(store.insert_alert)(
        AlertRecord("crit-real", t0, "critical", "gate:g2", NO_POLICY, {}, None, t0)
    )
    for n in range(520):
        at = t0 + timedelta(milliseconds=n + 1)
        flood = AlertRecord(f"crit-flood-{n}", at, "critical", GATE, f"flood {n}", {}, None, at)
        await sync_to_async(store.insert_alert)(flood)
    escalated = await sync_to_async(escalate_due)()
    assert escalated == 521
    rounds = await sync_to_async(events_of)("crit-real", "escalated")
    assert [e.detail["round"] for e in rounds] == [1]


async def test_a_genuine_window_copied_from_the_milder_key_does_not_hold_back_the_critical_alert(secured, bridge):
    """The bridge's Redis identity reads the window a warning opened (signed, expiring) and writes it, expiry and
    all, under the critical alert's key: the signature names the key it was made for."""
    attacker = aioredis.Redis.from_url(secured.redis_url("alerting"))
    try:
        warning = make_alert(Severity.WARNING, GATE, NO_POLICY)
        assert await bridge.handle(warning) == "dispatched"
        critical = make_alert(Severity.CRITICAL, GATE, NO_POLICY)
        genuine, pttl = await attacker.get(key(warning)), await attacker.pttl(key(warning))
        await attacker.set(key(critical), genuine, px=pttl)
        assert await bridge.handle(critical) == "dispatched"
        assert bridge.counters["dedup_tampered"] == 1
        stored = await sync_to_async(get_store().get_alert)(critical.alert_id)
        assert stored is not None and stored.duplicate_of is None
    finally:
        await attacker.aclose()


async def test_a_gates_critical_alert_after_an_acknowledged_lookalike_is_delivered_not_a_repeat(secured, bridge):
    """Sources are not authenticated on `cio.alert.>`: the control plane's identity raises a gate's critical title
    first, on-call acknowledges it (nothing is wrong yet), then the gate's real alert comes within the window."""
    bridge_nc = await secured.connect("alerting")
    await bridge.subscribe(bridge_nc)
    control = await secured.connect("control")
    gate = await secured.connect("gate")
    await flush_ordered(bridge_nc)
    lookalike = make_alert(Severity.CRITICAL, GATE, NO_POLICY)
    await control.publish(alert_subject(Severity.CRITICAL), lookalike.model_dump_json().encode())
    await flush_ordered(control)
    await wait_until(lambda: settled(bridge) == 1, 20.0, "the bridge settling the look-alike")
    unacknowledged_repeat = make_alert(Severity.CRITICAL, GATE, NO_POLICY)
    assert await bridge.handle(unacknowledged_repeat) == "duplicate"  # deduplication itself still holds
    await sync_to_async(escalation.acknowledge)(lookalike.alert_id, "officer1")
    real = make_alert(Severity.CRITICAL, GATE, NO_POLICY)
    await gate.publish(alert_subject(Severity.CRITICAL), real.model_dump_json().encode())
    await flush_ordered(gate)
    await wait_until(lambda: settled(bridge) == 3, 20.0, "the bridge settling the gate's real alert")
    assert bridge.counters["after_acknowledged"] == 1 and bridge.counters["dispatched"] == 2
    stored = await sync_to_async(get_store().get_alert)(real.alert_id)
    assert stored is not None and stored.duplicate_of is None
    assert {e.channel for e in await sync_to_async(events_of)(real.alert_id, DISPATCHED)} == {
        "email",
        "grafana",
        "otel",
    }
    # It opened the window again: its own repeats are repeats of it, not of the acknowledged look-alike.
    again = make_alert(Severity.CRITICAL, GATE, NO_POLICY)
    assert await bridge.handle(again) == "duplicate"
    kept = await sync_to_async(get_store().get_alert)(again.alert_id)
    assert kept is not None and kept.duplicate_of == real.alert_id
