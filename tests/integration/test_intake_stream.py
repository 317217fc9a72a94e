"""Producers that never listen (docs/contracts.md): plain publishes decided from the intake stream, requests on the
fast path only, RETRY_SAFE retried while fresh, decisions on `cio.decision.<strategy key>`. Real NATS (JetStream)
and Redis, gates in the test's event loop."""

import asyncio
from collections import Counter

import orjson
from nats.js.api import ConsumerConfig
from nats.js.client import JetStreamContext

from cio_kernel.contracts.alert import Alert
from cio_kernel.contracts.envelope import DecisionEnvelope
from cio_kernel.intake_stream import INTAKE_CONSUMER, INTAKE_STREAM, intake_stream_config, stream_decision_id
from cio_kernel.reason_codes import ReasonCode as C
from gate.runtime.intake_consumer import stored_meta
from tests.factories import live_intent_body, make_spec, ta_bot_body
from tests.integration.helpers import (
    activate,
    audit_events,
    collect,
    promoted_before_marker,
    request,
    wait_for_policy,
    wait_until,
)
from tests.jetstream import wait_consumer_settled

FAST = {"intake_hold_ms": 150.0, "intake_retry_s": 0.2}


async def test_a_plain_publish_is_decided_from_the_stream_promoted_and_audited_once(make_gate, redis, nc):
    gate = await make_gate(**FAST)
    await activate(redis, nc, make_spec(engine_sized_notional_usd=1_000.0), 1)
    await wait_for_policy(gate, 1)
    signals = await collect(nc, "signals.trading.>")
    decisions = await collect(nc, "cio.decision.>")
    subjects = ["cio.intent.trading", "cio.intent.trading.Volume_Surge_Breakout", "intent.trading.BTCUSDT"]
    for i, subject in enumerate(subjects):
        await nc.publish(subject, orjson.dumps(ta_bot_body(f"ta-{i}")))  # fire and forget, as the bot does
    promoted = await signals.wait_for(3)
    await wait_consumer_settled(nc, INTAKE_STREAM, INTAKE_CONSUMER, 10)
    records = await audit_events(nc, expected=3)
    assert Counter(r.event.intent_id for r in records) == Counter(f"ta-{i}" for i in range(3))
    assert {r.event.decision for r in records} == {"APPROVED"}
    assert sorted(r.event.subject for r in records) == sorted(subjects)
    # Deterministic ids: the stream, the sequence and the stored time (what a redelivery re-creates).
    stored = await nc.jetstream().subscribe("cio.intent.trading.>", stream=INTAKE_STREAM, ordered_consumer=True)
    bare = await nc.jetstream().subscribe("cio.intent.trading", stream=INTAKE_STREAM, ordered_consumer=True)
    other = await nc.jetstream().subscribe("intent.trading.>", stream=INTAKE_STREAM, ordered_consumer=True)
    metas = [stored_meta(await sub.next_msg(timeout=2)) for sub in (stored, bare, other)]
    assert {r.event.decision_id for r in records} == {
        stream_decision_id(INTAKE_STREAM, m.sequence, m.stored_us) for m in metas
    }
    assert {orjson.loads(m.data)["meta"]["cio"]["decision_id"] for m in promoted} == {
        r.event.decision_id for r in records
    }
    assert gate.counters.intake_decided == 3 and gate.counters.intake_claimed == 0
    # The decision subject carries the reply envelope, under the strategy's key.
    await decisions.wait_for(3)
    assert {m.subject for m in decisions.messages} == {"cio.decision.volume_surge_breakout"}
    envelopes = [DecisionEnvelope.model_validate_json(m.data) for m in decisions.messages]
    assert {e.data.decision_id for e in envelopes} == {r.event.decision_id for r in records}
    assert all(e.success and e.data.decision == "APPROVED" for e in envelopes)
    assert len(await promoted_before_marker(nc, signals, "cio.intent.trading", ta_bot_body("marker"))) == 3


async def test_a_request_is_answered_on_the_fast_path_and_not_decided_again(make_gate, redis, nc):
    gate = await make_gate(**FAST)
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    signals = await collect(nc, "signals.trading.>")
    decisions = await collect(nc, "cio.decision.>")
    envelope, _ = await request(nc, live_intent_body(signal_id="req-1"))
    assert envelope.data.decision == "APPROVED"
    await wait_consumer_settled(nc, INTAKE_STREAM, INTAKE_CONSUMER, 10)
    assert gate.counters.intake_claimed == 1 and gate.counters.intake_decided == 0
    [record] = await audit_events(nc, expected=1)
    assert record.event.decision_id == envelope.data.decision_id
    [decision] = await decisions.wait_for(1)
    assert decision.subject == "cio.decision.momentum_1"
    assert DecisionEnvelope.model_validate_json(decision.data) == envelope
    assert len(signals.messages) == 1
    # The stream did store the request (JetStream keeps no reply subject): the claim is what kept it undecided.
    assert (await nc.jetstream().stream_info(INTAKE_STREAM)).state.messages == 1
    assert (await nc.jetstream().stream_info("CIO_INTAKE_CLAIMS")).state.messages == 1


async def test_requests_answered_by_one_gate_are_skipped_by_another(make_gate, redis, nc):
    """Two gates: a request's stored copy often goes to the gate that did not answer it, which finds the claim in
    the claims stream."""
    gates = [await make_gate(gate_id=f"g{i}", **FAST) for i in range(2)]
    await activate(redis, nc, make_spec(), 1)
    for g in gates:
        await wait_for_policy(g, 1)
    envelopes = await asyncio.gather(*(request(nc, live_intent_body(signal_id=f"two-{i}")) for i in range(40)))
    assert {e.data.decision for e, _ in envelopes} == {"APPROVED"}
    await wait_consumer_settled(nc, INTAKE_STREAM, INTAKE_CONSUMER, 10)
    assert sum(g.counters.intake_claimed for g in gates) == 40
    assert sum(g.counters.intake_decided for g in gates) == 0
    assert sum(g.intake.stream.lookups for g in gates if g.intake.stream is not None) > 0
    records = await audit_events(nc, expected=40)
    assert len(records) == 40 and {r.event.decision_id for r in records} == {e.data.decision_id for e, _ in envelopes}


async def test_a_retry_safe_plain_publish_waits_while_fresh_and_is_promoted_once_a_policy_arrives(make_gate, redis, nc):
    gate = await make_gate(intake_fresh_s=20.0, **FAST)
    signals = await collect(nc, "signals.trading.>")
    await nc.publish("cio.intent.trading.momentum-1", orjson.dumps(live_intent_body(signal_id="early")))
    await wait_until(lambda: gate.counters.intake_deferred >= 3, what="the intent retried while fresh")
    assert (await nc.jetstream().stream_info("CIO_AUDIT")).state.messages == 0  # nothing recorded yet
    await activate(redis, nc, make_spec(), 1)
    [msg] = await signals.wait_for(1)
    assert orjson.loads(msg.data)["signal_id"] == "early"
    await wait_consumer_settled(nc, INTAKE_STREAM, INTAKE_CONSUMER, 10)
    [record] = await audit_events(nc, expected=1)
    assert record.event.decision == "APPROVED" and record.event.policy_version == 1


async def test_an_intent_undecidable_past_freshness_is_recorded_once_and_never_promoted(make_gate, redis, nc):
    gate = await make_gate(intake_fresh_s=1.5, **FAST)
    signals = await collect(nc, "signals.trading.>")
    await nc.publish("cio.intent.trading.momentum-1", orjson.dumps(live_intent_body(signal_id="late")))
    [record] = await audit_events(nc, expected=1)
    await wait_consumer_settled(nc, INTAKE_STREAM, INTAKE_CONSUMER, 10)
    event = record.event
    assert event.decision == "RETRY_SAFE" and event.intent_id == "late"
    assert [r.code for r in event.reasons] == [C.INTAKE_EXPIRED, C.NO_POLICY]
    assert gate.counters.intake_expired == 1
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    marker = live_intent_body(signal_id="marker")
    assert await promoted_before_marker(nc, signals, "cio.intent.trading.momentum-1", marker) == []
    assert [r.event.intent_id for r in await audit_events(nc, expected=2)] == ["late", "marker"]


async def test_an_intent_past_freshness_is_never_promoted_even_if_the_policy_would(make_gate, redis, nc):
    """Published while no gate ran, looked at after its freshness: recorded once, unpromoted, although the policy
    (no timestamp required) would approve it."""
    await nc.jetstream().add_stream(intake_stream_config())
    body = live_intent_body(signal_id="stale", timestamp=...)
    await nc.publish("cio.intent.trading.momentum-1", orjson.dumps(body))
    await activate(redis, nc, make_spec(require_timestamp=False), 1)
    await asyncio.sleep(1.2)
    signals = await collect(nc, "signals.trading.>")
    await make_gate(intake_fresh_s=1.0, **FAST)
    [record] = await audit_events(nc, expected=1)
    assert record.event.decision == "RETRY_SAFE"
    assert [r.code for r in record.event.reasons] == [C.INTAKE_EXPIRED]
    await wait_consumer_settled(nc, INTAKE_STREAM, INTAKE_CONSUMER, 10)
    assert signals.messages == []


async def test_without_the_intake_stream_plain_publishes_are_decided_as_they_arrive(make_gate, redis, nc):
    gate = await make_gate(intake_stream_enabled=False)
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    signals = await collect(nc, "signals.trading.>")
    await nc.publish("intent.trading.BTCUSDT", orjson.dumps(live_intent_body(signal_id="direct")))
    await signals.wait_for(1)
    assert INTAKE_STREAM not in [s.config.name for s in await nc.jetstream().streams_info()]


async def _has_intake_stream(js: JetStreamContext) -> bool:
    return INTAKE_STREAM in [info.config.name for info in await js.streams_info()]


async def test_the_intake_stream_is_recreated_when_jetstream_loses_it(make_gate, redis, nc):
    gate = await make_gate(**FAST)
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    signals = await collect(nc, "signals.trading.>")
    js = nc.jetstream()
    await js.delete_stream(INTAKE_STREAM)  # what NATS restarting on empty storage leaves behind
    # The gate's pending pull is answered "consumer deleted" (or its next one finds nobody): the gate recreates
    # both and alerts; the periodic check would, had it missed that.
    await wait_until(lambda: _has_intake_stream(js), 10, "the gate recreating its intake stream")
    assert gate.intake.stream is not None
    await gate.intake.stream.watch_step()  # finds both whole
    await nc.publish("cio.intent.trading.momentum-1", orjson.dumps(live_intent_body(signal_id="after")))
    [msg] = await signals.wait_for(1, timeout_s=10)
    assert orjson.loads(msg.data)["signal_id"] == "after"
    assert gate.counters.alerts_raised >= 1


async def _stored_and_dropped(js: JetStreamContext) -> bool:
    """The one intent published was stored (a publish reaches the stream after the publisher's next request may
    have been answered) and is gone again."""
    state = (await js.stream_info(INTAKE_STREAM)).state
    return state.last_seq == 1 and state.messages == 0


async def test_intents_the_stream_dropped_while_no_gate_ran_are_alerted(make_gate, nc):
    """Older than the stream keeps them (every gate down for longer): undecided, and said so when a gate starts."""
    js = nc.jetstream()
    await js.add_stream(intake_stream_config(max_age_s=2.0))
    # The gates' consumer, as a gate that ran before left it.
    await js.add_consumer(INTAKE_STREAM, ConsumerConfig(name=INTAKE_CONSUMER, durable_name=INTAKE_CONSUMER))
    await nc.publish("cio.intent.trading.momentum-1", orjson.dumps(live_intent_body(signal_id="lost")))
    await wait_until(lambda: _stored_and_dropped(js), 10, "the stream dropping the intent past its max age")
    alerts = await collect(nc, "cio.alert.>")
    await make_gate(intake_max_age_s=2.0, intake_fresh_s=1.0, **FAST)

    def dropped() -> list[Alert]:
        found = [Alert.model_validate_json(m.data) for m in alerts.messages]
        return [a for a in found if a.detail.get("key") == "intake_dropped"]

    await wait_until(dropped, what="the intake_dropped alert")
    assert "dropped intents no gate had settled" in dropped()[0].title


async def test_a_plain_publish_byte_identical_to_an_answered_request_is_taken_to_be_it(make_gate, redis, nc):
    """The documented edge: same subject, same bytes, within the hold: one decision (the request's)."""
    gate = await make_gate(**FAST)
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    payload = orjson.dumps(live_intent_body(signal_id="twin"))
    envelope, _ = await request(nc, payload)
    await nc.publish("intent.trading.BTCUSDT", payload)
    other = orjson.dumps(live_intent_body(signal_id="twin", confidence=0.81))  # one byte apart: its own intent
    await nc.publish("intent.trading.BTCUSDT", other)
    await wait_consumer_settled(nc, INTAKE_STREAM, INTAKE_CONSUMER, 10)
    assert gate.counters.intake_claimed == 2 and gate.counters.intake_decided == 1
    records = await audit_events(nc, expected=2)
    assert [r.event.decision for r in records] == ["APPROVED", "REJECTED"]  # the other: a duplicate id
    assert records[0].event.decision_id == envelope.data.decision_id


async def test_a_status_header_spelled_in_unicode_digits_is_handled_like_one_without_a_count(make_gate, redis, nc):
    """NATS writes `Nats-Pending-Messages` in ASCII digits, but anyone allowed to publish into `_INBOX.>` can answer a
    gate's pull too. A "²" passed `isdigit()` and made `int()` raise inside the delivery callback: nats-py swallowed
    it, so the status went unheeded (here: a consumer reported deleted was never recreated, nor alerted)."""
    gate = await make_gate(**FAST)
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    assert gate.intake.stream is not None
    alerts = await collect(nc, "cio.alert.>")
    signals = await collect(nc, "signals.trading.>")

    def missing() -> list[Alert]:
        found = [Alert.model_validate_json(m.data) for m in alerts.messages]
        return [a for a in found if a.detail.get("key") == "intake_missing"]

    status = {"Status": "409", "Description": "Consumer Deleted", "Nats-Pending-Messages": "²"}
    await nc.publish(gate.intake.stream.inbox, b"", headers=status)
    await wait_until(missing, what="the intake_missing alert for the status the gate was sent")
    await nc.publish("cio.intent.trading.momentum-1", orjson.dumps(live_intent_body(signal_id="after")))
    [msg] = await signals.wait_for(1, timeout_s=10)
    assert orjson.loads(msg.data)["signal_id"] == "after"
