"""Shadow mode's records for the report's tests: decisions audited by a real gate pipeline (shadow or serving), and
the serving CIO's promotions recorded in a real JetStream stream, as a shadow gate records them."""

import asyncio
from datetime import datetime

import nats
import orjson

from audit.records import DecisionRecord
from cio_kernel.contracts.heartbeat import GateCounters
from cio_kernel.shadow import SHADOW_SIGNAL_STREAM, shadow_signal_stream_config
from gate.config import GateSettings
from gate.decision.state import GateState
from gate.runtime.pipeline import DecisionPipeline, FixedPolicy
from gate.runtime.telemetry import DecisionTracer
from tests.factories import compile_spec, live_intent_body, make_spec


def decided(shadow: bool, at: datetime | None = None, **fields: object) -> DecisionRecord:
    """What a gate (`shadow-1`, or the serving `serving-1`) audits for an intent with `fields`, under a policy that
    rejects confidence below 0.7; decided `at` that time when given (the event says so, as its gate would write
    it then)."""
    settings = GateSettings(gate_id="shadow-1" if shadow else "serving-1", gate_shadow=shadow)
    source = FixedPolicy(compile_spec(make_spec(min_confidence=0.7)))
    pipeline = DecisionPipeline(settings, source, GateState(), DecisionTracer(None), GateCounters())
    outcome = pipeline.process("cio.nurse.audit", orjson.dumps(live_intent_body(**fields)), None, None)
    payload = outcome.audit_payload
    if at is not None:
        payload = orjson.dumps({**orjson.loads(payload), "ts": at.isoformat()})
    return DecisionRecord.from_message(outcome.audit_subject, payload, None)


async def record_promotions(nats_url: str, *signal_ids: str) -> None:
    """The serving CIO promoting intents with these signal ids, recorded in `CIO_SHADOW_SIGNALS`."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(shadow_signal_stream_config(SHADOW_SIGNAL_STREAM, "signals.trading"))
        for signal_id in signal_ids:
            await nc.publish("signals.trading.momentum-1", orjson.dumps(live_intent_body(signal_id=signal_id)))
        await nc.flush()
        while (await js.stream_info(SHADOW_SIGNAL_STREAM)).state.messages < len(signal_ids):
            await asyncio.sleep(0.01)  # the stream (a separate server) is still storing them
    finally:
        await nc.close()
