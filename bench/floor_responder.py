"""A second baseline: a responder that sends exactly the messages the gate sends per intent (a JetStream audit
event with its PubAck, the signal, the promotion notice, the reply, the decision on `cio.decision.<key>` and the
request's claim (docs/contracts.md, "Producers that never listen"), through the gate's own `NatsWriter`),
and decides nothing. The gate's CPU above this floor is the cost of deciding; the floor above the echo is the
cost of the messages themselves."""

import asyncio
import signal
import sys

import nats
from nats.aio.msg import Msg
from nats.js.api import StreamConfig

from gate.runtime.wire import NatsWriter, traceparent_header

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
PROMOTION = (
    b'{"gate_id":"floor","ts":1.0,"strategy_id":"s","symbol":"BTCUSDT","action":"buy","intent_id":null,'
    b'"notional_usd":1.0,"policy_version":1}'
)

CLAIM = b'{"gate_id":"floor"}'


async def main(url: str) -> None:
    nc = await nats.connect(url, no_echo=True)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="BENCH_FLOOR", subjects=["bench.floor.audit"]))
    writer = NatsWriter(nc)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    inbox = nc.new_inbox()
    seq = 0
    header = traceparent_header(TRACEPARENT)

    async def on_ack(msg: Msg) -> None:
        return None

    async def on_request(msg: Msg) -> None:
        nonlocal seq
        seq += 1
        audit_header = b"NATS/1.0\r\nNats-Msg-Id: %d\r\n\r\n" % seq
        writer.add("bench.floor.audit", msg.data, audit_header, f"{inbox}.{seq}")
        writer.add("bench.floor.signal", msg.data, header)
        writer.add("bench.floor.promotion", PROMOTION)
        writer.add(msg.reply, msg.data, header)
        writer.add("bench.floor.decision", msg.data, header)
        writer.add("bench.floor.claim", CLAIM)
        await writer.flush()

    await nc.subscribe(f"{inbox}.*", cb=on_ack, pending_msgs_limit=1_000_000)
    await nc.subscribe("bench.floor", cb=on_request, pending_msgs_limit=200_000, pending_bytes_limit=256 * 1024 * 1024)
    await nc.flush()
    print("floor responder ready", flush=True)
    await stop.wait()
    await nc.drain()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
