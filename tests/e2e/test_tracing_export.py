"""Decision spans reach an OTLP/HTTP collector (a real local HTTP server standing in for the paid backend),
as children of the strategy's trace."""

import pytest

from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import activate, request

pytestmark = pytest.mark.e2e
TRACE = "5b8efff798038103d269b633813fc60c"
PARENT = "eee19b7ec3c1b174"


async def test_decision_spans_are_exported_as_children_of_the_strategy_trace(otlp_receiver, spawn_gate, redis, nc):
    await activate(redis, nc, make_spec(), 1)
    gate = await spawn_gate("gate-otel", OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.url, OTEL_BSP_SCHEDULE_DELAY="100")
    envelope, _ = await request(nc, live_intent_body(), headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
    assert envelope.data.decision == "APPROVED"
    assert await gate.terminate() == 0  # shutdown flushes the span processor
    decided = otlp_receiver.named("cio.gate.decide", "petrosa-cio-gate")
    assert len(decided) == 1
    span = decided[0]
    assert span.trace_id == TRACE and span.parent_span_id == PARENT
    assert span.attributes["cio.decision"] == "APPROVED"
    assert span.attributes["cio.decision_id"] == envelope.data.decision_id
