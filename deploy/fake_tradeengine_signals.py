"""The trade-engine stand-in's signal consumer (the HTTP side is deploy/fake_tradeengine.py): it hears promoted
signals on `signals.trading.*` as the engine does and continues their trace with a span of its own, so a trace
followed from a strategy through the gate reaches the engine's hop. Never for production.

Like the engine (SPEC §2), it reads the trace context from the signal's body (`_otel_trace_context.traceparent`),
not from the NATS headers: a gate that put it only in the headers would break the trace here, as it would there.
"""

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from opentelemetry.trace import SpanKind

from cio_kernel.trace_context import valid_traceparent
from cio_kernel.tracing import ProcessTracer, span_ids

SERVICE_NAME = "petrosa-tradeengine-standin"
SPAN_NAME = "tradeengine.signal.receive"
SIGNALS = "signals.trading.*"


@dataclass(frozen=True)
class ReceivedSignal:
    subject: str
    body: dict[str, Any]
    headers: dict[str, str]  # kept to compare, never read for the trace (the engine does not)
    traceparent: str | None  # what the body carried (None: no valid one)
    trace_id: str | None = None  # the stand-in's own span, when one was recorded
    span_id: str | None = None


@dataclass
class SignalReceiver:
    tracer: ProcessTracer = field(default_factory=lambda: ProcessTracer(SERVICE_NAME, "tradeengine.standin"))
    # The latest signals (bounded: under `make up` the demo fleet feeds it for as long as the stack runs).
    received: deque[ReceivedSignal] = field(default_factory=lambda: deque(maxlen=10_000))

    async def subscribe(self, nc: NATS, subject: str = SIGNALS, queue: str = "") -> Subscription:
        return await nc.subscribe(subject, queue=queue, cb=self.on_signal)

    async def on_signal(self, msg: Msg) -> None:
        body = orjson.loads(msg.data)  # the engine: `Signal(**json.loads(msg.data))`
        carrier = body.get("_otel_trace_context") if isinstance(body, dict) else None
        traceparent = valid_traceparent(carrier.get("traceparent")) if isinstance(carrier, dict) else None
        attributes = {"messaging.system": "nats", "messaging.destination.name": msg.subject}
        if isinstance(body, dict) and isinstance(body.get("decision_id"), str):
            attributes["cio.decision_id"] = body["decision_id"]
        with self.tracer.span(SPAN_NAME, traceparent=traceparent, kind=SpanKind.CONSUMER, attributes=attributes) as s:
            self.received.append(ReceivedSignal(msg.subject, body, msg.headers or {}, traceparent, **span_ids(s)))
