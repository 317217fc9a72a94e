"""Shadow mode on real NATS (JetStream) and Redis (docs/deploy.md, "Shadow mode"): a shadow gate beside a stand-in
for the fleet's current CIO decides and audits every intent, marked shadow, and sends nothing anyone acts on; the
report then compares its decisions with what the stand-in promoted."""

import time
from datetime import UTC, datetime, timedelta

import nats
import orjson
import pytest
from nats.aio.msg import Msg

from audit.records import DecisionRecord
from audit.shadow_report import (
    BOTH,
    NEITHER,
    SERVING_ONLY,
    SERVING_ONLY_UNDECIDED,
    SHADOW_ONLY,
    UNSEEN,
    compare,
    recorded_promotions,
)
from cio_kernel import subjects
from cio_kernel.contracts.identity import strategy_key
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.policy.latch_store import LATCHES_KEY, read_latches
from cio_kernel.reason_codes import ReasonCode as C
from cio_kernel.redis_keys import GATE_HEARTBEAT_KEY_PREFIX
from cio_kernel.shadow import SHADOW_SIGNAL_STREAM
from tests.factories import GATES_KEY, POLICY_KEY, live_intent_body, make_snapshot, make_spec
from tests.integration.helpers import activate, after_step, audit_events, collect, wait_for_policy, wait_until
from tests.integration.latch_stack import DRAWDOWN, SPEC

# signal_id -> (confidence, promoted by the stand-in). The policy's floor is 0.7: the shadow approves 0.9, rejects 0.5.
INTENTS = {
    "both-1": (0.9, True),
    "both-2": (0.9, True),
    "blocks-1": (0.5, True),
    "blocks-2": (0.5, True),
    "looser-1": (0.9, False),
    "neither-1": (0.5, False),
}


class OldCio:
    """The fleet's current CIO, as far as the cutover is concerned: it takes every intent in the production queue
    group, answers it, and promotes the intents the test says it promotes."""

    def __init__(self, nc: nats.NATS) -> None:
        self.nc = nc
        self.received: list[str] = []

    async def start(self) -> None:
        for subject in subjects.INTENT_SUBJECTS:
            await self.nc.subscribe(subject, queue="cio-gate", cb=self.on_intent)
        await flush_ordered(self.nc)

    async def on_intent(self, msg: Msg) -> None:
        body = orjson.loads(msg.data)
        self.received.append(body["signal_id"])
        if INTENTS[body["signal_id"]][1]:
            await self.promote(body)
        await self.nc.publish(msg.reply, b'{"old_cio": true}')

    async def promote(self, body: dict[str, object]) -> None:
        await self.nc.publish(f"signals.trading.{body['strategy_id']}", orjson.dumps({**body, "source": "petrosa-cio"}))


@pytest.fixture
async def old_cio(nats_url: str):
    nc = await nats.connect(nats_url)
    cio = OldCio(nc)
    await cio.start()
    yield cio
    await nc.close()


async def test_a_shadow_gate_decides_and_audits_beside_the_old_cio_and_sends_nothing(
    make_gate, old_cio, nc, redis
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    shadow = await make_gate(gate_shadow=True, gate_id="shadow-1", intake_stream_enabled=True)
    assert shadow.intake.stream is None  # the intake stream is never used in shadow mode
    await activate(redis, nc, make_spec(min_confidence=0.7, max_order_notional_usd=10_000.0), 1)
    await wait_for_policy(shadow, 1)
    watched = {
        subject: await collect(nc, subject)
        for subject in ("signals.trading.>", "cio.decision.>", subjects.GATE_PROMOTION, subjects.GATE_HEARTBEAT)
    }
    fleet_beats = await collect(nc, subjects.FLEET_HEARTBEAT)
    replies = await collect(nc, "_INBOX.strategy.>")

    for n, (signal_id, (confidence, _)) in enumerate(INTENTS.items()):
        body = live_intent_body(signal_id=signal_id, confidence=confidence)
        await nc.publish("intent.trading.BTCUSDT", orjson.dumps(body), reply=f"_INBOX.strategy.{n}")
    # And one the old CIO promoted that no shadow gate heard (it was down, say).
    await old_cio.promote(live_intent_body(signal_id="unseen-1", strategy_id="momentum-2"))

    audited = await audit_events(nc, expected=len(INTENTS))
    # Every intent reached the old CIO: the shadow listens beside it, never in its queue group.
    await wait_until(lambda: len(old_cio.received) == len(INTENTS), what="the old CIO took every intent")
    assert sorted(old_cio.received) == sorted(INTENTS)

    assert len(audited) == len(INTENTS)
    by_id = {record.event.intent_id: record for record in audited}
    for signal_id, (confidence, _) in INTENTS.items():
        record = by_id[signal_id]
        assert record.event.shadow is True and orjson.loads(record.payload)["shadow"] is True
        assert record.event.gate_id == "shadow-1"
        expected = "approved" if confidence > 0.7 else "rejected"
        assert record.subject == f"cio.audit.decision.shadow.{expected}"
    assert by_id["blocks-1"].event.reasons[0].code == C.CONFIDENCE_TOO_LOW

    # The report: promotions recorded in the stream the shadow gate created, against its audited decisions.
    await wait_until(lambda: _stored(nc, SHADOW_SIGNAL_STREAM, 5), what="the old CIO's five promotions recorded")
    until = datetime.now(UTC) + timedelta(seconds=1)
    promoted = await recorded_promotions(nc, SHADOW_SIGNAL_STREAM, since, until)
    decisions = [DecisionRecord.of(r.event, r.subject, r.payload, r.link) for r in audited]
    report = compare(decisions, promoted, since, until)
    assert report.shadow_decisions == 6 and report.promoted_signals == 5
    assert dict(report.outcomes) == {BOTH: 2, SERVING_ONLY: 2, SHADOW_ONLY: 1, NEITHER: 1, UNSEEN: 1}
    assert report.outcomes[SERVING_ONLY_UNDECIDED] == 0
    assert dict(report.blocking_reasons) == {C.CONFIDENCE_TOO_LOW: 2}
    assert report.by_strategy[strategy_key("momentum-2")] == {UNSEEN: 1}
    assert report.by_strategy[strategy_key("momentum-1")] == {BOTH: 2, SERVING_ONLY: 2, SHADOW_ONLY: 1, NEITHER: 1}
    assert [e.outcome for e in report.examples] == [SHADOW_ONLY, SERVING_ONLY, SERVING_ONLY, UNSEEN]
    assert {e.intent_id for e in report.examples if e.outcome == SERVING_ONLY} == {"blocks-1", "blocks-2"}

    # Nothing the shadow gate decided left it but its audit events: every reply came from the old CIO, the only
    # signals are the old CIO's, no envelope on the decision subjects, no promotion notice, and it never beats.
    assert await shadow.heartbeat_step() is False and await shadow.fleet_heartbeat_step() is False
    assert [m.data for m in await after_step(shadow, replies, "_INBOX.strategy.marker")] == [b'{"old_cio": true}'] * 6
    signals = await after_step(shadow, watched["signals.trading.>"], "signals.trading.marker")
    assert len(signals) == 5 and all("meta" not in orjson.loads(m.data) for m in signals)
    for subject in ("cio.decision.>", subjects.GATE_PROMOTION, subjects.GATE_HEARTBEAT):
        marker = subject.replace(">", "marker")
        assert await after_step(shadow, watched[subject], marker) == [], subject
    assert await after_step(shadow, fleet_beats, subjects.FLEET_HEARTBEAT) == []
    assert await redis.exists(f"{GATE_HEARTBEAT_KEY_PREFIX}shadow-1") == 0


async def _stored(nc: nats.NATS, stream: str, count: int) -> bool:
    return (await nc.jetstream().stream_info(stream)).state.messages >= count


async def test_a_shadow_gate_holds_its_own_latch_trips_alone(make_gate, redis, nc) -> None:
    """A drawdown breach latches the shadow's own decisions, but is never stored in Redis nor announced: no serving
    gate inherits a latch only a risk officer could release, tripped by a gate nothing depends on."""
    shadow = await make_gate(gate_shadow=True, gate_id="shadow-1")
    await activate(redis, nc, SPEC, 1)
    await wait_for_policy(shadow, 1)
    notices = await collect(nc, subjects.RISK_LATCH)
    snapshot = make_snapshot({}, drawdown=0.25, ts=time.time())
    await nc.publish(subjects.PORTFOLIO_SNAPSHOT, snapshot.model_dump_json().encode())
    await wait_until(lambda: shadow.state.latches.get(DRAWDOWN) is not None, what="the shadow's latch tripped")
    await shadow.latch_refresh_step()  # where a serving gate stores and announces its trips
    await shadow.latch_refresh_step()  # and adopts Redis's latches: the shadow's own still holds
    assert shadow.state.latches.get(DRAWDOWN).active
    assert (await read_latches(redis, GATES_KEY, POLICY_KEY)).records.get(DRAWDOWN) is None
    assert await redis.hlen(LATCHES_KEY) == 0
    assert await after_step(shadow, notices, subjects.RISK_LATCH) == []
