"""Open-loop load over real NATS: requests are sent on a fixed schedule whatever the responder does, and
latency is measured from each request's *scheduled* time (no coordinated omission). Replies are classified
without parsing (approved, shed as OVERLOADED or STRATEGY_OVER_BUDGET, anything else)."""

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from cio_kernel.nats_flush import flush_ordered

_APPROVED = b'"decision":"APPROVED"'
_OVERLOADED = b'"code":"OVERLOADED"'
# Answered without deciding because a strategy spent its share: not a decision either, so never "sustained".
_OVER_BUDGET = b'"code":"STRATEGY_OVER_BUDGET"'


@dataclass
class LoadResult:
    offered_rate: float
    duration_s: float
    sent: int
    received: int
    duplicates: int
    latencies_us: list[float]
    approved: int = 0
    shed: int = 0
    approved_late: int = 0  # approvals that arrived after the decision budget: must be zero
    send_lag_s: float = 0.0  # how far the generator itself fell behind its schedule
    latency_by_second: list[list[float]] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.sent - self.received

    @property
    def achieved_rate(self) -> float:
        return self.received / self.duration_s

    def percentile(self, p: float, values: list[float] | None = None) -> float:
        values = self.latencies_us if values is None else values
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(p / 100.0 * len(ordered)))]


async def run_load(
    nc: NATS,
    subject: str,
    payloads: list[bytes],
    rate: float,
    duration_s: float,
    drain_s: float = 3.0,
    budget_us: float = 200_000.0,
) -> LoadResult:
    """Send `rate` requests/s for `duration_s`, cycling through `payloads` (each must be unique if the
    responder deduplicates), and collect replies on one wildcard inbox."""
    inbox = nc.new_inbox()
    total = int(rate * duration_s)
    scheduled = [0.0] * total
    seen = bytearray(total)
    latencies: list[float] = []
    seconds: list[list[float]] = [[] for _ in range(int(duration_s) + 1)]
    counts = {"duplicates": 0, "received": 0, "approved": 0, "shed": 0, "late": 0}
    done = asyncio.Event()
    interval = 1.0 / rate

    async def on_reply(msg: Msg) -> None:
        now = time.perf_counter()
        index = int(msg.subject.rsplit(".", 1)[1])
        if seen[index]:
            counts["duplicates"] += 1
            return
        seen[index] = 1
        counts["received"] += 1
        latency = (now - scheduled[index]) * 1e6
        latencies.append(latency)
        seconds[min(int(index * interval), len(seconds) - 1)].append(latency)
        data = msg.data
        if _APPROVED in data:
            counts["approved"] += 1
            if latency > budget_us:
                counts["late"] += 1
        elif _OVERLOADED in data or _OVER_BUDGET in data:
            counts["shed"] += 1
        if counts["received"] == total:
            done.set()

    sub = await nc.subscribe(f"{inbox}.*", cb=on_reply, pending_msgs_limit=1_000_000, pending_bytes_limit=1 << 30)
    await flush_ordered(nc)
    start = time.perf_counter()
    sent = 0
    lag = 0.0
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - start) / interval) + 1)
        lag = max(lag, now - (start + sent * interval))
        while sent < due:
            scheduled[sent] = start + sent * interval
            await nc.publish(subject, payloads[sent % len(payloads)], reply=f"{inbox}.{sent}")
            sent += 1
        await asyncio.sleep(0.0005)
    await flush_ordered(nc)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), drain_s)
    await sub.unsubscribe()
    return LoadResult(
        rate,
        duration_s,
        sent,
        counts["received"],
        counts["duplicates"],
        latencies,
        approved=counts["approved"],
        shed=counts["shed"],
        approved_late=counts["late"],
        send_lag_s=lag,
        latency_by_second=seconds,
    )
