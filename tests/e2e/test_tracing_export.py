"""Decision spans reach an OTLP/HTTP collector (a real local HTTP server standing in for the paid backend),
as children of the strategy's trace."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from deploy.servers import free_port
from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import activate, request

pytestmark = pytest.mark.e2e
TRACE = "5b8efff798038103d269b633813fc60c"
PARENT = "eee19b7ec3c1b174"


class _Collector(BaseHTTPRequestHandler):
    spans: list = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        for resource_spans in export.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append((service, span))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args) -> None:
        return None


@pytest.fixture
def collector():
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Collector)
    _Collector.spans = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", _Collector.spans
    server.shutdown()


async def test_decision_spans_are_exported_as_children_of_the_strategy_trace(collector, spawn_gate, redis, nc):
    endpoint, spans = collector
    await activate(redis, nc, make_spec(), 1)
    gate = await spawn_gate("gate-otel", OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_BSP_SCHEDULE_DELAY="100")
    envelope, _ = await request(nc, live_intent_body(), headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
    assert envelope.data.decision == "APPROVED"
    assert await gate.terminate() == 0  # shutdown flushes the span processor
    decided = [s for service, s in spans if service == "petrosa-cio-gate" and s.name == "cio.gate.decide"]
    assert len(decided) == 1
    span = decided[0]
    assert span.trace_id.hex() == TRACE and span.parent_span_id.hex() == PARENT
    attributes = {a.key: a.value.string_value for a in span.attributes}
    assert attributes["cio.decision"] == "APPROVED"
    assert attributes["cio.decision_id"] == envelope.data.decision_id
