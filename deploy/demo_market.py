"""A market-data stand-in for `make up`: publishes `cio.market.regime` for a few symbols every few seconds, with
volatilities that drift slowly through the Strategist's bands (calm, normal, volatile, extreme and back), so its
triggers and proposals can be watched, and BTC jumps into the extreme band during the demo schedule's
`volatility_spike` (deploy/demo_schedule.py). Runs under the `marketdata` identity (it may publish only there)."""

import argparse
import asyncio
import contextlib
import math
import os
import signal
from datetime import UTC, datetime

import nats

from cio_kernel.contracts.regime import RegimeUpdate
from cio_kernel.defaults import LOCAL_NATS_URL
from cio_kernel.log_format import configure_logging
from cio_kernel.nats_credentials import nats_credentials
from cio_kernel.subjects import MARKET_REGIME
from deploy import demo_schedule

# symbol: (baseline volatility, swing, period in seconds, phase): ETH swings through every band every 8 minutes.
PATHS = {
    "BTCUSDT": (0.03, 0.01, 600.0, 0.0),
    "ETHUSDT": (0.055, 0.05, 480.0, math.pi),
    "SOLUSDT": (0.015, 0.004, 300.0, 0.0),
}


# The spike's volatility: the Strategist's extreme band starts at 10 % (strategist/bands.py).
SPIKE = {"BTCUSDT": 0.14}


def volatility(symbol: str, t: float, spike: bool = False) -> float:
    if spike and symbol in SPIKE:
        return SPIKE[symbol]
    base, swing, period, phase = PATHS[symbol]
    return round(max(0.0, base + swing * math.sin(2 * math.pi * t / period + phase)), 5)


def label(value: float, trend: float) -> str:
    if value >= 0.05:
        return "volatile"
    return "trending" if abs(trend) > 0.5 else "ranging"


async def run(nats_url: str, every_s: float, duration: float | None) -> None:
    nc = await nats.connect(nats_url, **nats_credentials(), name="demo-market", max_reconnect_attempts=-1)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = loop.time()
    schedule = demo_schedule.Clock.from_env()
    spiking = False
    print(f"demo market: regime for {', '.join(PATHS)} on {MARKET_REGIME} every {every_s:g} s", flush=True)
    while not stop.is_set() and (duration is None or loop.time() - started < duration):
        t = loop.time() - started
        spike = schedule.playing("volatility_spike")
        if spike != spiking:
            print(f"demo schedule: volatility_spike {'starts' if spike else 'ends'}", flush=True)
            spiking = spike
        shown = []
        for symbol in PATHS:
            value = volatility(symbol, t, spike)
            trend = round(math.sin(2 * math.pi * t / 900.0), 3)
            update = RegimeUpdate(
                ts=datetime.now(UTC), symbol=symbol, volatility=value, trend=trend, regime=label(value, trend)
            )
            await nc.publish(MARKET_REGIME, update.model_dump_json().encode())
            shown.append(f"{symbol} {value:.1%}")
        if int(t) % 60 < every_s:
            print("demo market: " + ", ".join(shown), flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
    await nc.drain()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", LOCAL_NATS_URL))
    parser.add_argument("--every", type=float, default=5.0, help="seconds between reports")
    parser.add_argument("--duration", type=float, default=None)
    args = parser.parse_args()
    asyncio.run(run(args.nats_url, args.every, args.duration))


if __name__ == "__main__":
    configure_logging("demo-market")  # a timestamp on every line, text or JSON (docs/logging.md)
    main()
