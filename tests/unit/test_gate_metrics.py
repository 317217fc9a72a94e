"""The gate's metrics rendering and its probe server's refusals (gate/runtime/metrics.py, health_server.py)."""

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from cio_kernel.contracts.heartbeat import GateCounters
from cio_kernel.exposition import Exposition
from gate.runtime.health_server import HealthServer
from gate.runtime.metrics import COUNTER_METRICS, LATENCY_BOUNDS_US, DecisionMetrics


def test_every_heartbeat_counter_is_a_metric():
    assert set(COUNTER_METRICS) == set(GateCounters.model_fields)
    names = [name for name, _, _ in COUNTER_METRICS.values()]
    assert len(set(names)) == len(names)
    assert all(name.endswith("_total") == (kind == "counter") for name, kind, _ in COUNTER_METRICS.values())


def test_latency_lands_in_the_bucket_whose_bound_it_does_not_exceed_and_renders_cumulative():
    metrics = DecisionMetrics()
    for latency_us in (LATENCY_BOUNDS_US[0], LATENCY_BOUNDS_US[0] + 1, 10**9):
        metrics.observe("APPROVED", "", latency_us)
    metrics.observe("RETRY_SAFE", 'odd "reason"\n', 5)
    assert metrics.buckets[0] == 2 and metrics.buckets[1] == 1 and metrics.buckets[-1] == 1
    out = Exposition()
    out.histogram("h_seconds", "latency", [b / 1e6 for b in LATENCY_BOUNDS_US], metrics.buckets, metrics.sum_us / 1e6)
    out.labelled(
        "d_total",
        "counter",
        "by outcome",
        (({"decision": d, "reason": r}, n) for (d, r), n in metrics.by_outcome.items()),
    )
    [histogram, decisions] = text_string_to_metric_families(out.text())
    buckets = {s.labels["le"]: s.value for s in histogram.samples if s.name == "h_seconds_bucket"}
    assert buckets["0.00025"] == 2 and buckets["0.0005"] == 3 and buckets["1.0"] == 3 and buckets["+Inf"] == 4
    assert {s.labels["reason"]: s.value for s in decisions.samples} == {"": 3, 'odd "reason"\n': 1}


async def _exchange(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


async def test_the_probe_server_answers_get_only_on_its_routes_with_a_bounded_head():
    server = HealthServer("127.0.0.1", 0, {"/healthz/live": lambda: (200, "text/plain", b"ok")})
    await server.start()
    try:
        port = server.port
        assert port
        ok = await _exchange(port, b"GET /healthz/live?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200 OK\r\n") and ok.endswith(b"\r\n\r\nok")
        assert (await _exchange(port, b"PUT /healthz/live HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 405")
        assert (await _exchange(port, b"GET /nowhere HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 404")
        assert (await _exchange(port, b"GET /healthz/live\r\n\r\n")).startswith(b"HTTP/1.1 400")
        huge = b"GET /healthz/live HTTP/1.1\r\nX: " + b"a" * 10_000 + b"\r\n\r\n"
        assert (await _exchange(port, huge)).startswith(b"HTTP/1.1 431")
    finally:
        await server.stop()
    assert server.port is None
