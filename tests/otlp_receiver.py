"""A local OTLP/HTTP trace receiver standing in for the fleet's collector (Grafana Alloy on 4318): a real HTTP
server taking `POST /v1/traces` (protobuf `ExportTraceServiceRequest`, as the SDK's exporter sends it) and keeping
every span with the `service.name` of the process that sent it. Point `OTEL_EXPORTER_OTLP_ENDPOINT` at `url`;
the `otlp_receiver` fixture (tests/plugins/otlp.py) starts one per test."""

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from deploy.servers import free_port


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    span: ProtoSpan

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    @property
    def span_id(self) -> str:
        return self.span.span_id.hex()

    @property
    def parent_span_id(self) -> str:
        return self.span.parent_span_id.hex()  # "" for a root span

    @property
    def attributes(self) -> dict[str, Any]:
        return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in self.span.attributes}


@dataclass
class OtlpReceiver:
    port: int = 0
    spans: list[ReceivedSpan] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "OtlpReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v1/traces":
                    self.send_response(404)
                else:
                    export = ExportTraceServiceRequest()
                    export.ParseFromString(body)
                    receiver._keep(export)
                    self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.port = self.port or free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        # A short poll: `stop()` waits for the loop to notice, and every test using the receiver pays for it.
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def _keep(self, export: ExportTraceServiceRequest) -> None:
        with self._lock:
            for resource_spans in export.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    self.spans += [ReceivedSpan(attributes.get("service.name", ""), s) for s in scope.spans]

    def named(self, name: str, service: str | None = None) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self.spans if s.name == name and (service is None or s.service == service)]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
