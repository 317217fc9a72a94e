"""A demo bot for `make up` built on the fleet's fail-safe client (`cio_client`): it submits an intent every
few seconds, and when the gate's heartbeat stops it switches to its hard-coded conservative logic (here: it only
says so and sends no new positions) until the heartbeats return. Stop the gate to watch it
(`kill $(cat .cio/gate.pid)`; `make up` restarts the gate after a while)."""

import argparse
import asyncio
import contextlib
import os
import signal
import uuid
from datetime import UTC, datetime

import nats

from cio_client import ConservativeModeError, GateClient, GateUnavailableError
from cio_kernel.defaults import LOCAL_NATS_URL
from cio_kernel.log_format import configure_logging
from cio_kernel.nats_credentials import nats_credentials

STRATEGY = "momentum_pulse"  # a strategy with its own identity (deploy/access.py): it speaks only for itself


def intent() -> dict[str, object]:
    return {
        "strategy_id": STRATEGY,
        "strategy": STRATEGY,
        "symbol": "SOLUSDT",
        "action": "buy",
        "confidence": 0.8,
        "price": 240.0,
        "current_price": 240.0,
        "quantity": 1.0,
        "stop_loss": 235.0,
        "source": "demo-bot",
        "signal_id": uuid.uuid4().hex[:12],
        "timestamp": datetime.now(UTC).isoformat(),
    }


async def run(nats_url: str, every_s: float) -> None:
    inbox = os.environ.get("CIO_NATS_INBOX_PREFIX", f"_INBOX.strategy-{STRATEGY}")  # its identity's own inbox
    nc = await nats.connect(
        nats_url,
        **nats_credentials(),
        name="demo-bot",
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        inbox_prefix=inbox,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def conservative() -> None:
        print(
            "bot: CONSERVATIVE MODE: no gate heartbeat; running the hard-coded conservative logic (no new positions)",
            flush=True,
        )

    def recovered() -> None:
        print("bot: RECOVERED: gate heartbeats are back; normal trading resumes", flush=True)

    client = await GateClient(nc, on_conservative=conservative, on_recovered=recovered).start()
    print(f"bot: {STRATEGY} submits through cio_client every {every_s:g} s", flush=True)
    while not stop.is_set():
        try:
            envelope = await client.submit(intent())
            print(
                f"bot: {envelope.data.decision} {', '.join(r.code for r in envelope.data.reasons)}".rstrip(), flush=True
            )
        except ConservativeModeError as exc:
            print(f"bot: held back: {exc}", flush=True)
        except GateUnavailableError as exc:
            print(f"bot: gate unavailable: {exc}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
    await client.stop()
    await nc.drain()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", LOCAL_NATS_URL))
    parser.add_argument("--every", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(run(args.nats_url, args.every))


if __name__ == "__main__":
    configure_logging("demo-bot")  # a timestamp on every line, text or JSON (docs/logging.md)
    main()
