"""Real local servers standing in for the paid alert channels: an HTTP server speaking Grafana's annotations
route and an OTLP/HTTP receiver (traces, logs, metrics, protobuf). Each records what it received and can be told
to fail (an HTTP status) or to hang; `stop()` takes it off the network mid-test."""

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from deploy.servers import free_port


@dataclass
class Receiver:
    status: int = 200
    hang_s: float = 0.0
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.hang_s:
                    receiver._release.wait(receiver.hang_s)
                receiver.requests.append((self.path, dict(self.headers.items()), body))
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Type", self.headers.get("Content-Type", "application/json"))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass

        self.port = self.port or free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        # A short poll: `stop()` waits for the loop to notice, and every test using a receiver pays for it.
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]


def annotations(grafana: Receiver) -> list[dict[str, Any]]:
    return [orjson.loads(body) for path, _, body in grafana.requests if path == "/api/annotations"]


def otlp(receiver: Receiver) -> dict[str, list[Any]]:
    """What the receiver took, decoded: spans (with their events), log records, metric names."""
    found: dict[str, list[Any]] = {"spans": [], "logs": [], "metrics": []}
    for path, _, body in receiver.requests:
        if path == "/v1/traces":
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            found["spans"] += [s for r in request.resource_spans for sc in r.scope_spans for s in sc.spans]
        elif path == "/v1/logs":
            request = ExportLogsServiceRequest()
            request.ParseFromString(body)
            found["logs"] += [lr for r in request.resource_logs for sc in r.scope_logs for lr in sc.log_records]
        elif path == "/v1/metrics":
            request = ExportMetricsServiceRequest()
            request.ParseFromString(body)
            found["metrics"] += [m for r in request.resource_metrics for sc in r.scope_metrics for m in sc.metrics]
    return found
