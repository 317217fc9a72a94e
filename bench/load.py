"""Open-loop load over real NATS: requests are sent on a fixed schedule whatever the responder does, and
latency is measured from each request's *scheduled* time (no coordinated omission)."""

import asyncio
import contextlib
import time
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg


@dataclass
class LoadResult:
    offered_rate: float
    duration_s: float
    sent: int
    received: int
    duplicates: int
    latencies_us: list[float]

    @property
    def lost(self) -> int:
        return self.sent - self.received

    @property
    def achieved_rate(self) -> float:
        return self.received / self.duration_s

    def percentile(self, p: float) -> float:
        if not self.latencies_us:
            return float("nan")
        ordered = sorted(self.latencies_us)
        return ordered[min(len(ordered) - 1, int(p / 100.0 * len(ordered)))]


async def run_load(
    nc: NATS, subject: str, payloads: list[bytes], rate: float, duration_s: float, drain_s: float = 3.0
) -> LoadResult:
    """Send `rate` requests/s for `duration_s`, cycling through `payloads` (each must be unique if the
    responder deduplicates), and collect replies on one wildcard inbox."""
    inbox = nc.new_inbox()
    total = int(rate * duration_s)
    scheduled = [0.0] * total
    seen = bytearray(total)
    latencies: list[float] = []
    duplicates = 0
    done = asyncio.Event()
    received = 0

    async def on_reply(msg: Msg) -> None:
        nonlocal duplicates, received
        now = time.perf_counter()
        index = int(msg.subject.rsplit(".", 1)[1])
        if seen[index]:
            duplicates += 1
            return
        seen[index] = 1
        received += 1
        latencies.append((now - scheduled[index]) * 1e6)
        if received == total:
            done.set()

    sub = await nc.subscribe(f"{inbox}.*", cb=on_reply, pending_msgs_limit=1_000_000, pending_bytes_limit=1 << 30)
    await nc.flush()
    start = time.perf_counter()
    interval = 1.0 / rate
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - start) / interval) + 1)
        while sent < due:
            scheduled[sent] = start + sent * interval
            await nc.publish(subject, payloads[sent % len(payloads)], reply=f"{inbox}.{sent}")
            sent += 1
        await asyncio.sleep(0.0005)
    await nc.flush()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), drain_s)
    await sub.unsubscribe()
    return LoadResult(rate, duration_s, sent, received, duplicates, latencies)
