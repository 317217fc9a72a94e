"""Least privilege on the shipped configuration (deploy/access.py rendered into a real nats-server and Valkey):
each component can do its job, every forbidden publish is refused with nothing arriving on the other side, and
the gate counts the violations NATS reports to it."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import orjson
import pytest
import redis.asyncio as aioredis
from nats.aio.msg import Msg
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from cio_kernel.nats_flush import flush_ordered
from cio_kernel.policy.document import ACTIVE_POLICY_KEY
from cio_kernel.policy.store import build_document, write_active_policy
from deploy import access
from gate.config import GateSettings
from gate.runtime.service import Gate
from tests.factories import TEST_PUBLIC_KEY, live_intent_body, make_spec
from tests.integration.helpers import Collector, activate, collect, request, wait_for_policy, wait_until
from tests.integration.secured_gate import start_gate
from tests.secured_stack import Secured


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    stack = Secured(tmp_path)
    yield stack
    stack.stop()


@pytest.fixture
async def secured_gate(secured: Secured, tmp_path: Path) -> AsyncIterator[Gate]:
    gate = await start_gate(secured, tmp_path, gate_id="secured-gate")
    yield gate
    await gate.stop()
    for client in secured.clients:
        await client.close()


def test_the_files_in_deploy_are_rendered_from_the_table():
    assert access.NATS_CONFIG.read_text() == access.render_nats_config(), "run `python -m deploy.access`"
    assert access.REDIS_ACL.read_text() == access.render_redis_acl_template(), "run `python -m deploy.access`"
    assert "$2b$" not in access.NATS_CONFIG.read_text() and "password:" in access.NATS_CONFIG.read_text()


async def test_every_component_does_its_job_under_its_own_identity(secured, secured_gate):
    roles = ("control", "strategy", "tradeengine", "canary")
    control, strategy, tradeengine, canary = [await secured.connect(role) for role in roles]
    control_redis = aioredis.Redis.from_url(secured.redis_url("control"))
    try:
        await activate(control_redis, control, make_spec(), 1)  # the control plane's two writes
        await wait_for_policy(secured_gate, 1)
        signals = Collector()
        await tradeengine.subscribe("signals.trading.*", queue="tradeengine-workers", cb=signals.cb)
        await flush_ordered(tradeengine)
        envelope, _ = await request(strategy, live_intent_body())  # request/reply in its own inbox
        assert envelope.data.decision == "APPROVED"
        await signals.wait_for(1)
        beat = await canary.request("cio.gate.ping", b"", timeout=2)
        assert b'"gate_id":"secured-gate"' in beat.data
        await wait_until(lambda: secured_gate.heartbeat().counters.audit_published >= 1, what="audit event stored")
        key = f"gate:heartbeat:{secured_gate.settings.gate_id}"
        await wait_until(lambda: control_redis.get(key), what="the gate heartbeat stored in Redis")
        assert all(not secured.violations(role) for role in ("control", "strategy", "tradeengine", "canary"))
        assert secured_gate.counters.permission_violations == 0
    finally:
        await control_redis.aclose()


# (who publishes, on what) -> who would have received it: each observer is a component allowed to subscribe there.
FORBIDDEN = [
    ("strategy", "signals.trading.momentum-1", "tradeengine"),
    ("strategy", "cio.strategist.update", "gate"),
    ("strategy", "cio.gate.heartbeat", "canary"),
    ("strategy", "cio.heartbeat", "tradeengine"),
    ("strategy", "cio.gate.promotion", "gate"),
    ("strategy", "cio.portfolio.snapshot", "gate"),
    ("strategy", "cio.risk.latch", "gate"),
    ("strategy", "cio.gate.ping", "gate"),
    ("tradeengine", "signals.trading.momentum-1", "tradeengine"),
    ("tradeengine", "intent.trading.BTCUSDT", "gate"),
    ("tradeengine", "cio.strategist.update", "gate"),
    ("control", "signals.trading.momentum-1", "tradeengine"),
    ("control", "cio.portfolio.snapshot", "gate"),
    ("control", "cio.gate.heartbeat", "canary"),
    ("canary", "intent.trading.BTCUSDT", "gate"),
    ("canary", "cio.strategist.update", "gate"),
    ("marketdata", "cio.portfolio.snapshot", "gate"),
    ("audit", "signals.trading.momentum-1", "tradeengine"),
    # Today's engine publishes no snapshot: only the snapshot bridge does, and it publishes nothing else.
    ("tradeengine", "cio.portfolio.snapshot", "gate"),
    ("snapshot-bridge", "signals.trading.momentum-1", "tradeengine"),
    ("snapshot-bridge", "intent.trading.BTCUSDT", "gate"),
    ("snapshot-bridge", "cio.strategist.update", "gate"),
    ("snapshot-bridge", "cio.gate.heartbeat", "canary"),
    ("snapshot-bridge", "cio.risk.latch", "gate"),
    ("snapshot-bridge", "cio.market.regime", "strategist"),
    # Decisions come from gates only (docs/contracts.md, "Producers that never listen").
    ("strategy", "cio.decision.momentum_1", "control"),
    ("tradeengine", "cio.decision.momentum_1", "control"),
]


@pytest.mark.parametrize(("role", "subject", "observer"), FORBIDDEN, ids=[f"{r}->{s}" for r, s, _ in FORBIDDEN])
async def test_a_forbidden_publish_is_refused_and_nothing_arrives(secured, role, subject, observer):
    watcher = await secured.connect(observer, label="watcher")
    watching = await watcher.subscribe(subject)
    await flush_ordered(watcher)
    sender = await secured.connect(role)
    await sender.publish(subject, b'{"forged": true}')
    # The server handles a connection's messages in order: once the sender's PING is answered the forged message
    # was routed (or refused), and once the watcher's is, anything routed to it has been delivered.
    await flush_ordered(sender)
    await flush_ordered(watcher)
    assert watching.delivered == 0
    assert not secured.violations("watcher"), "the watcher may subscribe there, so it would have seen the message"
    await wait_until(lambda: secured.violations(role), what=f"NATS refusing {role} on {subject}")
    assert subject.lower() in secured.violations(role)[0].lower()
    for client in secured.clients:
        await client.close()


@pytest.mark.parametrize("role", ["strategy", "control", "tradeengine", "canary", "gate", "audit"])
async def test_only_the_gate_and_the_ingest_touch_the_audit_stream(secured, secured_gate, role):
    client = await secured.connect(role)
    js = client.jetstream(timeout=0.5)
    if role == "control":  # the web's /metrics reads the stream's state (docs/metrics.md), and nothing more
        assert (await js.stream_info("CIO_AUDIT")).config.name == "CIO_AUDIT"
    elif role not in ("gate", "audit"):
        with pytest.raises(nats.errors.TimeoutError):  # refused: nats-py times out, the violation comes via error_cb
            await js.stream_info("CIO_AUDIT")
        await wait_until(lambda: secured.violations(role), what="violation reported")
    for operation in ("STREAM.PURGE", "STREAM.DELETE"):
        await client.publish(f"$JS.API.{operation}.CIO_AUDIT", b"")
    await client.publish("cio.audit.decision.approved", b'{"decision_id": "forged"}', headers={"Nats-Msg-Id": "x"})
    await flush_ordered(client)
    await wait_until(lambda: len(secured.violations(role)) >= 2, what="purge and delete refused")
    gate_js = (await secured.connect("gate")).jetstream()
    info = await gate_js.stream_info("CIO_AUDIT")  # still there, and nothing forged in it (gates do publish events)
    assert info.state.messages == (1 if role == "gate" else 0)
    await client.close()


@pytest.mark.parametrize("role", ["strategy", "control", "tradeengine", "canary", "audit", "gate"])
async def test_only_gates_publish_checkpoints_and_nobody_removes_one(secured, secured_gate, role):
    from cio_kernel.audit_checkpoint import CHECKPOINT_STREAM, checkpoint_subject

    strategy = await secured.connect("strategy")
    await request(strategy, live_intent_body())  # a decision, so the gate has a head to sign
    await wait_until(secured_gate.checkpoint_step, what="the gate's checkpoint published under its own identity")
    client = await secured.connect(role)
    for operation in ("STREAM.PURGE", "STREAM.DELETE", "STREAM.MSG.DELETE"):
        await client.publish(f"$JS.API.{operation}.{CHECKPOINT_STREAM}", b"")
    if role != "gate":
        await client.publish(checkpoint_subject("secured-gate.1"), b'{"forged": true}', headers={"Nats-Msg-Id": "x"})
    await flush_ordered(client)
    await wait_until(lambda: len(secured.violations(role)) >= 3, what="purge and deletes refused")
    info = await (await secured.connect("gate")).jetstream().stream_info(CHECKPOINT_STREAM)
    assert info.state.messages == 1  # the gate's one checkpoint, nothing forged, nothing removed
    for client in secured.clients:
        await client.close()


async def test_the_gate_counts_the_violations_nats_reports(secured, tmp_path):
    # A gate misconfigured to promote where its identity may not publish: NATS refuses, the gate counts and logs.
    settings = GateSettings(
        nats_url=secured.nats_url("gate"),
        redis_url=secured.redis_url("gate"),
        nats_inbox_prefix=access.NATS_ROLES["gate"].inbox_prefix,
        gate_id="misconfigured",
        audit_spool_dir=tmp_path / "spool",
        signal_subject_prefix="elsewhere.signals",
        policy_public_key=TEST_PUBLIC_KEY,
    )
    gate = Gate(settings)
    await gate.start()
    control = await secured.connect("control")
    strategy = await secured.connect("strategy")
    control_redis = aioredis.Redis.from_url(secured.redis_url("control"))
    try:
        await activate(control_redis, control, make_spec(), 1)
        await wait_for_policy(gate, 1)
        await request(strategy, live_intent_body())
        await wait_until(lambda: gate.counters.permission_violations >= 1, what="the gate counting a violation")
        assert gate.heartbeat().counters.permission_violations >= 1
    finally:
        await control_redis.aclose()
        await gate.stop()
        for client in secured.clients:
            await client.close()


async def test_redis_users_get_exactly_their_keys(secured):
    gate = aioredis.Redis.from_url(secured.redis_url("gate"))
    control = aioredis.Redis.from_url(secured.redis_url("control"))
    anonymous = aioredis.Redis(port=secured.redis.port)
    try:
        assert await write_active_policy(control, build_document(make_spec(), 1, "officer"))
        assert await gate.get(ACTIVE_POLICY_KEY) is not None
        with pytest.raises(NoPermissionError):
            await gate.set(ACTIVE_POLICY_KEY, b"{}")  # a gate can read the policy, never write it
        with pytest.raises(NoPermissionError):
            await write_active_policy(gate, build_document(make_spec(), 2, "gate"))
        assert await gate.set("gate:heartbeat:g1", b"{}", ex=3)
        await gate.hset("risk:latches", "drawdown:global:*", b"{}")
        with pytest.raises(NoPermissionError):
            await gate.set("anything:else", b"1")
        with pytest.raises(NoPermissionError):
            await control.set("gate:heartbeat:forged", b"{}")  # the control plane only reads heartbeats
        assert await control.mget(["gate:heartbeat:g1"]) == [b"{}"]
        with pytest.raises((AuthenticationError, ResponseError)):
            await anonymous.get(ACTIVE_POLICY_KEY)  # the default user is off
        wrong = aioredis.Redis.from_url(secured.redis_url("gate").replace(secured.passwords["redis:gate"], "wrong"))
        with pytest.raises((AuthenticationError, ResponseError)):
            await wrong.ping()
        await wrong.aclose()
    finally:
        for client in (gate, control, anonymous):
            await client.aclose()


async def test_a_strategy_with_its_own_identity_can_speak_only_for_itself(secured, secured_gate):
    own = access.strategy_identity("momentum_pulse").name
    sender = await secured.connect(own)
    await sender.publish("cio.intent.trading.llm-swing", b"{}")  # another strategy's subject
    await sender.publish("intent.trading.BTCUSDT", b"{}")  # a subject that names no strategy
    await flush_ordered(sender)
    await wait_until(lambda: len(secured.violations(own)) == 2, what="both refused")
    reply = await sender.request("cio.intent.trading.momentum_pulse", b"{}", timeout=5)  # its own: decided
    assert b'"decision":"REJECTED"' in reply.data and b"VAL_ERR" in reply.data


async def test_the_shared_identity_cannot_speak_for_a_strategy_with_its_own_identity(secured, secured_gate):
    """The dedicated subject is carved out of the shared identity's permissions, and the gate refuses every other
    spelling and subject for that strategy; the dedicated identity speaks only for its own key."""
    control, shared = await secured.connect("control"), await secured.connect("strategy")
    own = access.strategy_identity("momentum_pulse").name
    dedicated = await secured.connect(own)
    control_redis = aioredis.Redis.from_url(secured.redis_url("control"))
    spec = make_spec(
        only_listed_strategies=True, strategies={"momentum_pulse": {"own_identity": True}, "momentum_1": {}}
    )
    try:
        await activate(control_redis, control, spec, 1)
        await wait_for_policy(secured_gate, 1)
        pulse = live_intent_body(strategy_id="momentum_pulse", signal_id=None)
        await shared.publish("cio.intent.trading.momentum_pulse", orjson.dumps(pulse))  # NATS refuses it
        await flush_ordered(shared)
        await wait_until(lambda: secured.violations("strategy"), what="the dedicated subject refused to the shared one")
        for subject, strategy_id in [
            ("cio.intent.trading.Momentum_Pulse", "momentum_pulse"),
            ("cio.intent.trading.momentum-pulse", "Momentum Pulse"),
            ("intent.trading.BTCUSDT", "momentum_pulse"),
            ("cio.nurse.audit", "MOMENTUM PULSE"),
        ]:
            envelope, _ = await request(shared, live_intent_body(strategy_id=strategy_id, signal_id=None), subject)
            assert [r.code for r in envelope.data.reasons] == ["IDENTITY_UNVERIFIED"], subject
        envelope, _ = await request(shared, live_intent_body(strategy_id="newcomer"), "cio.intent.trading.newcomer")
        assert [r.code for r in envelope.data.reasons] == ["STRATEGY_UNLISTED"]
        envelope, _ = await request(
            dedicated, live_intent_body(strategy_id="momentum-1"), "cio.intent.trading.momentum_pulse"
        )
        assert [r.code for r in envelope.data.reasons] == ["IDENTITY_MISMATCH"]
        envelope, _ = await request(
            dedicated, pulse | {"strategy_id": "Momentum Pulse"}, "cio.intent.trading.momentum_pulse"
        )
        assert envelope.data.decision == "APPROVED"
        assert secured_gate.counters.approved == 1
    finally:
        await control_redis.aclose()


@pytest.mark.parametrize("role", sorted(access.NATS_ROLES))
async def test_no_identity_may_read_another_identitys_inbox(secured, role):
    client = await secured.connect(role)
    others = [f"{r.inbox_prefix}.>" for r in access.NATS_ROLES.values() if r.name != role]
    for subject in ["_INBOX.>", "_INBOX.*.>", "_INBOX.*.*", *others]:
        await client.subscribe(subject)
    await flush_ordered(client)
    await wait_until(lambda: len(secured.violations(role)) >= 3 + len(others), what=f"{role}'s subscriptions refused")
    await client.subscribe(f"{access.NATS_ROLES[role].inbox_prefix}.>")  # its own: allowed
    # A refusal arrives asynchronously, in order: once a marker refused after it is in, its own would be too.
    await client.subscribe("_INBOX.>")
    await flush_ordered(client)
    await wait_until(lambda: len(secured.violations(role)) >= 4 + len(others), what="the marker subscription refused")
    assert len(secured.violations(role)) == 4 + len(others)


async def test_a_strategy_hears_nothing_of_the_gates_and_the_control_planes_replies(secured, secured_gate):
    """What the issue saw: a strategy on `_INBOX.>` read every audited intent and decision in seconds."""
    spy = await secured.connect("strategy", label="spy")
    heard = Collector()
    for subject in ("_INBOX.>", "_INBOX.gate.>", "_INBOX.audit.>", "_INBOX.control.>"):
        await spy.subscribe(subject, cb=heard.cb)
    await flush_ordered(spy)
    control, strategy = await secured.connect("control"), await secured.connect("strategy")
    control_redis = aioredis.Redis.from_url(secured.redis_url("control"))
    try:
        await activate(control_redis, control, make_spec(), 1)
        await wait_for_policy(secured_gate, 1)
        envelope, _ = await request(strategy, live_intent_body())  # a reply in the shared identity's own inbox
        assert envelope.data.decision == "APPROVED"
        await wait_until(lambda: secured_gate.heartbeat().counters.audit_published >= 1, what="audit acknowledged")
        await flush_ordered(spy)
        assert heard.messages == []
        assert len(secured.violations("spy")) == 4
    finally:
        await control_redis.aclose()


async def test_the_audit_ingest_and_the_live_feed_work_under_their_own_identities(
    secured, secured_gate, transactional_db
):
    from asgiref.sync import sync_to_async
    from channels_redis.core import RedisChannelLayer

    from audit.checkpoints import latest_checkpoints
    from audit.ingest import DURABLE, AuditIngest, measure_backlog
    from audit.store.django_db import DjangoAuditStore
    from cio_kernel.audit_checkpoint import CHECKPOINT_STREAM

    control, strategy = await secured.connect("control"), await secured.connect("strategy")
    control_redis = aioredis.Redis.from_url(secured.redis_url("control"))
    feed_redis = aioredis.Redis.from_url(secured.redis_url("feed"))
    try:
        await activate(control_redis, control, make_spec(), 1)
        await wait_for_policy(secured_gate, 1)
        await request(strategy, live_intent_body())
        await wait_until(lambda: secured_gate.heartbeat().counters.audit_published >= 1, what="audit event published")
        audit = await secured.connect("audit")
        store = DjangoAuditStore()
        ingest = AuditIngest(audit, store, fetch_timeout_s=0.5)
        await ingest.start()
        while await ingest.step():
            pass
        status = await ingest.backlog_step()  # stream info, consumer info and a message read: all allowed
        # The web's /metrics measures the same backlog as `control` (docs/metrics.md), through its own connection:
        # its reply inbox must be the identity's, or every JetStream answer is refused.
        assert (await measure_backlog(control.jetstream(), "CIO_AUDIT", DURABLE)).pending == status.pending
        from django.test import override_settings

        from cio_site import metrics

        inbox = access.NATS_ROLES["control"].inbox_prefix
        with override_settings(NATS_URL=secured.nats_url("control"), CIO_NATS_INBOX_PREFIX=inbox):
            assert (await metrics._backlog()).pending == status.pending
        assert not secured.violations("control")
        assert await secured_gate.checkpoint_step()  # the gate signs its head...
        assert await ingest.checkpoint_step() == 1  # ...the ingest copies it into the store...
        latest, _ = await latest_checkpoints(audit, CHECKPOINT_STREAM)  # ...and audit_verify reads it
        assert latest[secured_gate.heartbeat().audit_chain].seq == 1
        await ingest.close()
        await audit.subscribe("cio.risk.latch")  # latch trips become incidents
        await flush_ordered(audit)
        assert ingest.counters.stored == 1 and status.pending == 0
        assert await sync_to_async(store.count_decisions)() == 1
        assert not secured.violations("audit")

        layer = RedisChannelLayer(hosts=[secured.redis_url("feed")])
        channel = await layer.new_channel()
        await layer.group_add("audit.decisions", channel)
        await layer.group_send("audit.decisions", {"type": "decisions", "decisions": [{"decision_id": "d1"}]})
        assert (await asyncio.wait_for(layer.receive(channel), 5))["decisions"] == [{"decision_id": "d1"}]
        await layer.close_pools()  # (not flush: that runs KEYS, which the feed identity may not)
        with pytest.raises(NoPermissionError):
            await feed_redis.get(ACTIVE_POLICY_KEY)  # the feed's identity sees its own keys only
    finally:
        await control_redis.aclose()
        await feed_redis.aclose()


def _from_bridge(alerts: Collector) -> list[Msg]:
    return [m for m in alerts.messages if orjson.loads(m.data)["source"] == "snapshot-bridge"]


async def test_the_snapshot_bridge_publishes_snapshots_and_alerts_and_hears_nothing(secured, secured_gate):
    """The bridge under its own identity against the engine stand-in: its snapshot reaches the gate and the
    Strategist, its alert reaches alerting, and NATS refuses it every subscription but its own inbox."""
    from bridges.engine_state.config import BridgeSettings
    from bridges.engine_state.service import SnapshotBridge
    from deploy.fake_tradeengine import FakeTradeEngine, demo_book

    engine = FakeTradeEngine(book=demo_book()).start()
    strategist = await secured.connect("strategist")
    snapshots = await collect(strategist, "cio.portfolio.snapshot")
    alerts = await collect(await secured.connect("alerting"), "cio.alert.>")
    settings = BridgeSettings(
        nats_url=secured.nats_url("snapshot-bridge"),
        nats_inbox_prefix=access.NATS_ROLES["snapshot-bridge"].inbox_prefix,
        engine_state_url=f"{engine.url}/state",
        snapshot_symbols="BTCUSDT,ETHUSDT,DOGEUSDT",
    )
    bridge = SnapshotBridge(settings)
    try:
        await bridge.start()
        assert bridge.nc is not None
        outcome = await bridge.step()
        assert outcome.snapshot is not None
        await wait_until(lambda: secured_gate.state.portfolio == outcome.snapshot, what="the gate adopting it")
        await snapshots.wait_for(1)
        engine.state_failure = "engine down"
        assert (await bridge.step()).kind == "http_error"
        assert bridge.permission_violations == 0  # snapshots and alerts: its own
        # The gate alone on the stack may raise its own (no policy was ever activated): the bridge's is the one.
        await wait_until(lambda: _from_bridge(alerts), what="the bridge's alert")
        assert [m.subject for m in _from_bridge(alerts)] == ["cio.alert.warning"]
        for subject in ("signals.trading.>", "cio.alert.>", "cio.portfolio.snapshot", "_INBOX.gate.>"):
            await bridge.nc.subscribe(subject)
        await flush_ordered(bridge.nc)
        await wait_until(lambda: bridge.permission_violations == 4, what="every subscription refused")
        assert not secured.violations("strategist") and not secured.violations("alerting")
    finally:
        await bridge.stop()
        engine.stop()
        for client in secured.clients:
            await client.close()


async def test_decisions_reach_the_identities_that_may_read_them(secured, secured_gate):
    """Plain publishes are decided from the intake stream under the gate's own permissions; every decision goes to
    `cio.decision.<strategy key>`: the control plane reads all, the shared strategy identity its strategies', a
    strategy with its own identity only its own (and the shared identity never that one's)."""
    control, shared, dedicated = [await secured.connect(r) for r in ("control", "strategy", "strategy-momentum_pulse")]
    control_redis = aioredis.Redis.from_url(secured.redis_url("control"))
    try:
        await activate(control_redis, control, make_spec(), 1)
        await wait_for_policy(secured_gate, 1)
        seen = {name: Collector() for name in ("control", "shared", "dedicated")}
        await control.subscribe("cio.decision.>", cb=seen["control"].cb)
        await shared.subscribe("cio.decision.>", cb=seen["shared"].cb)
        await dedicated.subscribe("cio.decision.momentum_pulse", cb=seen["dedicated"].cb)
        for client in (control, shared, dedicated):
            await flush_ordered(client)
        await shared.publish("intent.trading.BTCUSDT", orjson.dumps(live_intent_body(signal_id="shared-1")))
        pulse = live_intent_body(signal_id="pulse-1", strategy_id="momentum_pulse")
        await dedicated.publish("cio.intent.trading.momentum_pulse", orjson.dumps(pulse))
        both = await seen["control"].wait_for(2)
        assert sorted(m.subject for m in both) == ["cio.decision.momentum_1", "cio.decision.momentum_pulse"]
        assert all(orjson.loads(m.data)["data"]["decision"] == "APPROVED" for m in both)
        [own] = await seen["dedicated"].wait_for(1)
        assert orjson.loads(own.data)["data"]["intent_id"] == "pulse-1"
        await seen["shared"].wait_for(1)
        await flush_ordered(shared)
        assert [m.subject for m in seen["shared"].messages] == ["cio.decision.momentum_1"]
        # The shared identity may neither ask for a dedicated strategy's decisions nor forge a claim (which would
        # make the gates skip a stored intent).
        await shared.subscribe("cio.decision.momentum_pulse")
        await shared.publish("cio.intake.claim.00000000000000000000000000000000", b"{}")
        await flush_ordered(shared)
        await wait_until(lambda: len(secured.violations("strategy")) >= 2, what="both refused")
        assert not secured.violations("control") and not secured.violations("strategy-momentum_pulse")
        await wait_until(lambda: secured_gate.counters.intake_decided == 2, what="both decided from the stream")
        assert secured_gate.counters.permission_violations == 0
    finally:
        await control_redis.aclose()


async def test_shadow_mode_works_under_the_shipped_identities(secured, tmp_path):
    """A shadow gate creates the stream recording the serving CIO's promotions as `gate`; the shadow report reads it
    as `control` (the web's identity) through its own inbox, and may neither purge it nor publish signals."""
    from datetime import UTC, datetime, timedelta

    from audit.shadow_report import recorded_promotions
    from cio_kernel.shadow import SHADOW_SIGNAL_STREAM

    shadow = await start_gate(secured, tmp_path, gate_id="shadow-gate", gate_shadow=True)
    try:
        gate_js = (await secured.connect("gate")).jetstream()
        info = await gate_js.stream_info(SHADOW_SIGNAL_STREAM)  # created by the shadow gate under `gate`
        serving = await secured.connect("gate", label="serving")  # the serving CIO promotes (gates publish signals)
        await serving.publish("signals.trading.momentum-1", orjson.dumps(live_intent_body(signal_id="promoted-1")))
        await flush_ordered(serving)
        for _ in range(500):  # the stream stores it after the publisher's flush returns
            if (await gate_js.stream_info(SHADOW_SIGNAL_STREAM)).state.messages > info.state.messages:
                break
            await asyncio.sleep(0.01)
        control = await secured.connect("control")
        now = datetime.now(UTC)
        found = await recorded_promotions(control, SHADOW_SIGNAL_STREAM, now - timedelta(minutes=1), now)
        assert [p.intent_id for p in found] == ["promoted-1"]
        assert not secured.violations("control")
        for operation in ("STREAM.PURGE", "STREAM.DELETE"):
            await control.publish(f"$JS.API.{operation}.{SHADOW_SIGNAL_STREAM}", b"")
        await control.publish("signals.trading.momentum-1", b"{}")
        await flush_ordered(control)
        await wait_until(lambda: len(secured.violations("control")) >= 3, what="purge, delete and a signal refused")
        assert (await gate_js.stream_info(SHADOW_SIGNAL_STREAM)).state.messages == info.state.messages + 1
    finally:
        await shadow.stop()
        for client in secured.clients:
            await client.close()
