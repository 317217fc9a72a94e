"""One trace, end to end (docs/tracing.md): a strategy's span → the gate's decision span (a real `python -m gate`)
→ the trade-engine stand-in's span on the promoted signal → the audit record the ingest stores; and the control
plane's spans for an activation and a kill switch. Every process exports to one local OTLP/HTTP receiver."""

import asyncio
from typing import Any

import nats
import orjson
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from audit.ingest import AuditIngest
from audit.records import DecisionRecord
from audit.store.mongo import MongoAuditStore
from cio_kernel.contracts.envelope import DecisionEnvelope
from cio_kernel.trace_context import format_traceparent
from core import tracing as control_plane_tracing
from deploy import fake_tradeengine_signals as engine
from gate.runtime.telemetry import SPAN_NAME as GATE_SPAN
from tests.control_plane.helpers import _wait, body
from tests.control_plane.helpers import gate_version as _gate_version
from tests.factories import live_intent_body
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.e2e
STRATEGY = "test-strategy"
OFFICER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OFFICER_PARENT = "00f067aa0ba902b7"


@pytest.fixture
def exporting(otlp_receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every process from here on exports to the receiver: the gate inherits the environment, the control plane
    (this process) builds its provider on its next span. Asked for first, so the gate starts with it."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_receiver.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    yield otlp_receiver
    control_plane_tracing.control_plane.shutdown()


def _one(receiver: OtlpReceiver, name: str, service: str) -> ReceivedSpan:
    _wait(lambda: receiver.named(name, service), 20)  # batched: it arrives within the schedule delay
    [span] = receiver.named(name, service)
    return span


def _strategy_provider(receiver: OtlpReceiver) -> TracerProvider:
    """The strategy's own SDK, as a bot of the fleet runs it, exporting each span as it ends."""
    provider = TracerProvider(resource=Resource.create({"service.name": STRATEGY}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces")))
    return provider


async def _trade(nats_url: str, mongo_url: str, receiver: OtlpReceiver) -> tuple[Any, ...]:
    """A strategy sends one intent with its trace context in the body (as the fleet does); the stand-in hears the
    signal; the ingest stores the audit event."""
    store = MongoAuditStore.from_uri(mongo_url)
    store.ensure_schema()
    nc = await nats.connect(nats_url)
    standin = engine.SignalReceiver()
    await standin.subscribe(nc)
    ingest = AuditIngest(nc, store, fetch_timeout_s=0.2)
    strategy = _strategy_provider(receiver)
    try:
        with strategy.get_tracer("strategy").start_as_current_span("strategy.publish", kind=SpanKind.PRODUCER) as s:
            context = s.get_span_context()
            traceparent = format_traceparent(context.trace_id, context.span_id, int(context.trace_flags))
            intent = live_intent_body(_otel_trace_context={"traceparent": traceparent})
            reply = await nc.request("intent.trading.BTCUSDT", orjson.dumps(intent), timeout=5)
        envelope = DecisionEnvelope.model_validate_json(reply.data)
        await ingest.start()
        record: DecisionRecord | None = None
        for _ in range(100):  # each step waits for events up to its fetch timeout: this bounds a failing test
            await ingest.step()
            record = store.get_decision(envelope.data.decision_id)
            if record is not None and standin.received:
                break
        return envelope, reply.headers or {}, standin.received, record
    finally:
        strategy.shutdown()
        await ingest.close()
        await nc.close()
        store.close()


def test_one_trace_from_the_strategy_through_the_gate_to_the_engine_and_the_audit_store(
    exporting, active_v1, gate_process, api, stack, redis_client, mongo_url
):
    receiver: OtlpReceiver = exporting
    activation = _one(receiver, control_plane_tracing.ACTIVATE, control_plane_tracing.SERVICE_NAME)
    assert activation.attributes["cio.policy_version"] == active_v1.version == 1
    _wait(lambda: _gate_version(redis_client) == 1, 20)

    envelope, headers, received, record = asyncio.run(_trade(stack.NATS_URL, mongo_url, receiver))
    assert envelope.data.decision == "APPROVED"
    strategy = _one(receiver, "strategy.publish", STRATEGY)
    gate = _one(receiver, GATE_SPAN, "petrosa-cio-gate")
    standin = _one(receiver, engine.SPAN_NAME, engine.SERVICE_NAME)
    trace_id = strategy.trace_id
    # strategy → gate → engine: one trace id, each hop the child of the one before.
    assert (gate.trace_id, gate.parent_span_id) == (trace_id, strategy.span_id)
    assert (standin.trace_id, standin.parent_span_id) == (trace_id, gate.span_id)
    assert gate.attributes["cio.decision"] == "APPROVED"
    assert gate.attributes["cio.decision_id"] == standin.attributes["cio.decision_id"] == envelope.data.decision_id
    # What carried it: the reply's and the signal's headers and the signal's body name the gate's span.
    [signal] = received
    assert headers["traceparent"] == signal.headers["traceparent"] == signal.traceparent
    assert signal.traceparent is not None and signal.traceparent.startswith(f"00-{trace_id}-{gate.span_id}-")
    assert (signal.trace_id, signal.span_id) == (trace_id, standin.span_id)
    assert envelope.trace_id == trace_id
    # The audit record points at the gate's span.
    assert (record.trace_id, record.span_id) == (trace_id, gate.span_id)

    # The kill switch, asked for over REST inside a caller's trace: the span carries the envelope's trace id.
    response = api["officer1"].post(
        "/api/trading-state",
        {"scope": "global", "state": "halted", "reason": "drill"},
        format="json",
        HTTP_TRACEPARENT=f"00-{OFFICER_TRACE}-{OFFICER_PARENT}-01",
    )
    answer = body(response)
    assert answer["success"] and answer["trace_id"] == OFFICER_TRACE, answer
    halt = _one(receiver, control_plane_tracing.TRADING_STATE, control_plane_tracing.SERVICE_NAME)
    assert halt.trace_id == OFFICER_TRACE
    assert halt.attributes["cio.trading_state"] == "halted" and halt.attributes["cio.changed"] is True
    assert halt.attributes["cio.policy_version"] == answer["data"]["version"]
