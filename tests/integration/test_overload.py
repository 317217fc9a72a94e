"""Overload: an intent that waited longer than `shed_after_ms` in the gate's queue is answered at once,
RETRY_SAFE/OVERLOADED, without being parsed; every request is still answered and audited, nothing shed is
promoted. The gate's clock is stepped (each read 30 ms later than the last), so "waited too long" is
deterministic: no machine is too fast or too slow for this test."""

import asyncio
import time

import orjson

from cio_kernel.contracts.audit_event import AuditEvent
from cio_kernel.contracts.envelope import DecisionEnvelope
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.reason_codes import ReasonCode as C
from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import activate, audit_events, collect, wait_for_policy

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class SteppingClock:
    """Real wall time; a monotonic clock that advances 30 ms at every read, as if each intent took that long."""

    def __init__(self) -> None:
        self._now = 0.0

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        self._now += 0.030
        return self._now


async def test_a_backlog_is_answered_overloaded_without_deciding_and_fully_audited(redis, nc, gate_settings):
    from gate.runtime.service import Gate

    # The stepped clock runs fast: keep the policy fresh and the decision budget wide for the whole test (the
    # budget is read on the same clock; here only the wait before a decision is under test).
    settings = gate_settings.model_copy(
        update={"shed_after_ms": 50.0, "decision_budget_ms": 10_000.0, "policy_max_age_s": 3600.0}
    )
    gate = Gate(settings, clock=SteppingClock())
    await gate.start()
    try:
        await activate(redis, nc, make_spec(max_intent_age_s=None), 1)
        await wait_for_policy(gate, 1)
        signals = await collect(nc, "signals.trading.>")
        replies: dict[int, DecisionEnvelope] = {}
        total = 300
        done = asyncio.Event()

        async def on_reply(msg) -> None:
            replies[int(msg.subject.rpartition(".")[2])] = DecisionEnvelope.model_validate_json(msg.data)
            if len(replies) == total:
                done.set()

        inbox = nc.new_inbox()
        await nc.subscribe(f"{inbox}.*", cb=on_reply)
        body = {"_otel_trace_context": {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}}
        for i in range(total):  # one burst: the gate reads it in a few large chunks
            payload = orjson.dumps(live_intent_body(signal_id=f"b{i}", strategy_id=f"s{i}", **body))
            await nc.publish("intent.trading.BTCUSDT", payload, reply=f"{inbox}.{i}")
        await flush_ordered(nc)
        await asyncio.wait_for(done.wait(), 30)

        shed = {i: r for i, r in replies.items() if r.data.reasons and r.data.reasons[0].code == C.OVERLOADED}
        decided = {i: r for i, r in replies.items() if i not in shed}
        assert len(replies) == total, "every request is answered"
        assert 0 in decided, "the head of a burst never waited"
        assert len(shed) > total // 2, "with 30 ms per intent, all but the first few of each chunk waited > 50 ms"
        for envelope in shed.values():
            assert envelope.success is False and envelope.data.decision == "RETRY_SAFE"
            assert envelope.data.policy_version is None and envelope.data.intent_id is None  # never parsed
            assert envelope.trace_id == TRACE  # trace context found without parsing the body
        assert all(r.data.decision == "APPROVED" for r in decided.values())
        events = await audit_events(nc, expected=total)
        assert len(events) == total and len({e.event.decision_id for e in events}) == total
        shed_ids = {r.data.decision_id for r in shed.values()}
        audited_shed = [e.event for e in events if e.event.decision_id in shed_ids]
        assert len(audited_shed) == len(shed)
        assert all(isinstance(e, AuditEvent) and e.intent is None and e.decision == "RETRY_SAFE" for e in audited_shed)
        await signals.wait_for(len(decided))
        promoted = {orjson.loads(m.data)["signal_id"] for m in signals.messages}
        assert promoted == {f"b{i}" for i in decided}  # nothing shed was promoted
        assert gate.counters.shed == len(shed)
    finally:
        await gate.stop()
