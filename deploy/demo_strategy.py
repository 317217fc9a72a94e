"""A small demo fleet for `make up`: publishes a mix of intents the example policy approves and rejects (a
well-behaved strategy, oversized orders, stale timestamps, an unknown strategy, ...), floods during the demo
schedule's `flood` (deploy/demo_schedule.py), and counts the promoted signals in the trade engine's place. The
portfolio feed is no longer here: like the real engine, the stand-in (`deploy/fake_tradeengine.py`) serves its
book on `GET /state`, and the snapshot bridge (`bridges/engine_state`) publishes `cio.portfolio.snapshot` from
it."""

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import orjson
from nats.aio.msg import Msg

from cio_kernel.contracts.envelope import DecisionEnvelope
from cio_kernel.defaults import LOCAL_NATS_URL
from cio_kernel.log_format import configure_logging
from cio_kernel.nats_credentials import nats_credentials
from deploy import access, demo_schedule
from deploy.fake_tradeengine_signals import SignalReceiver

ENGINE_INBOX = access.NATS_ROLES["tradeengine"].inbox_prefix
STRATEGY_INBOX = os.environ.get("CIO_NATS_INBOX_PREFIX", access.NATS_ROLES["strategy"].inbox_prefix)
# Not the real engine's `tradeengine-workers`: on a shared NATS a queue group of that name would take real signals
# away from the real engine (each message goes to one member of a group).
DEMO_ENGINE_QUEUE = "cio-demo-engine"
PRICES = {"BTCUSDT": 97_000.0, "ETHUSDT": 3_400.0, "SOLUSDT": 240.0, "DOGEUSDT": 0.4, "LUNAUSDT": 0.0001}


def _intent(strategy_id: str, symbol: str, action: str, quantity: float, **extra: Any) -> dict[str, Any]:
    price = PRICES[symbol]
    body: dict[str, Any] = {
        "strategy_id": strategy_id,
        "strategy": strategy_id.split("-")[0],
        "symbol": symbol,
        "action": action,
        "confidence": 0.8,
        "price": price,
        "current_price": price,
        "quantity": quantity,
        "source": "demo-fleet",
        "signal_id": uuid.uuid4().hex[:12],
        "stop_loss": price * (0.98 if action == "buy" else 1.02),
        "timestamp": datetime.now(UTC).isoformat(),
    }
    body.update(extra)
    return body


def _ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


def _ta_bot(symbol: str, action: str) -> dict[str, Any]:
    """The TA bot's shape: quantity 0.0 and null sizing (the trade engine sizes it), naive timestamp, trace
    context in the body; it publishes on `cio.intent.trading.<strategy_id>`."""
    price = PRICES[symbol]
    buy = action == "buy"
    return _intent(
        "band_fade_reversal",
        symbol,
        action,
        0.0,
        source="ta_bot",
        strategy="band_fade_reversal",
        position_size_pct=None,
        stop_loss=price * (0.98 if buy else 1.02),
        take_profit=price * (1.04 if buy else 0.96),
        timestamp=datetime.now(UTC).replace(tzinfo=None).isoformat(),
        signal_id=None,
        _otel_trace_headers={"traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"},
    )


# Each scenario: (what a reader should expect, a builder of the payload).
SCENARIOS: list[tuple[str, Callable[[], dict[str, Any] | bytes]]] = [
    ("approved", lambda: _intent("momentum-1", "BTCUSDT", "buy", 0.02)),
    ("approved (TA bot, engine-sized)", lambda: _ta_bot("ETHUSDT", "buy")),
    ("LEVERAGE_EXCEEDED", lambda: _intent("llm-swing", "BTCUSDT", "buy", 0.01, confidence=0.9, leverage=5)),
    (
        "CONFIDENCE_TOO_LOW",
        lambda: _intent("llm-swing", "ETHUSDT", "buy", 0.5, confidence=0.6, strategy_mode="llm_reasoning"),
    ),
    ("size limits", lambda: _intent("momentum-1", "BTCUSDT", "buy", 1.0)),
    ("approved", lambda: _intent("mean-revert", "SOLUSDT", "sell", 5.0)),
    ("STOP_LOSS_REQUIRED", lambda: _intent("mean-revert", "SOLUSDT", "buy", 5.0, stop_loss=None)),
    ("SYMBOL_DENIED", lambda: _intent("Iceberg Order Detector", "LUNAUSDT", "buy", 1_000.0)),
    ("HOLD_NOT_PROMOTED", lambda: _intent("momentum-1", "ETHUSDT", "hold", 0.0)),
    # A producer whose clock (or queue) lags: ten minutes old, past the policy's max_intent_age_s.
    ("INTENT_STALE", lambda: _intent("mean-revert", "SOLUSDT", "buy", 2.0, timestamp=_ago(600))),
    (
        "PRICE_COLLAR_BREACHED",
        lambda: _intent(
            "llm-swing", "BTCUSDT", "buy", 0.01, order_type="limit", price=PRICES["BTCUSDT"] * 1.03, confidence=0.9
        ),
    ),
    ("TRADING_REDUCING", lambda: _intent("momentum-1", "DOGEUSDT", "buy", 1_000.0)),
    ("approved (close)", lambda: _intent("ta-bot", "ETHUSDT", "close", 0.0, stop_loss=None)),
    ("STRATEGY_UNLISTED", lambda: _intent("new-bot", "BTCUSDT", "buy", 0.01)),
    # The shared identity speaking for a strategy with an identity of its own (deploy/demo_bot.py).
    ("IDENTITY_UNVERIFIED", lambda: _intent("Momentum Pulse", "SOLUSDT", "buy", 1.0)),
    ("VAL_ERR", lambda: b'{"symbol": "BTCUSDT", "action": "buy", "quantity": "lots"}'),
]


FLOOD_STRATEGY = "llm_swing"  # the example policy holds it to 30 intents a minute
FLOOD_RATE = 25.0
# The gate promotes one intent per (strategy, symbol, action) per dedupe window: a flood of one kind of order
# would meet DUPLICATE_WINDOW, never the throttle. Four kinds in turn pass the dedupe window often enough to
# reach the strategy's rate limit within the phase.
FLOOD_ORDERS = (("BTCUSDT", "buy"), ("ETHUSDT", "sell"), ("BTCUSDT", "sell"), ("ETHUSDT", "buy"))
FLOOD_QUANTITY = {"BTCUSDT": 0.01, "ETHUSDT": 0.2}  # within llm_swing's order notional cap


def flood_intent(n: int) -> dict[str, Any]:
    """The n-th intent of a flood: the strategy's kinds of order in turn, each one it may send."""
    symbol, action = FLOOD_ORDERS[n % len(FLOOD_ORDERS)]
    return _intent(FLOOD_STRATEGY, symbol, action, FLOOD_QUANTITY[symbol], confidence=0.9)


def outcome(envelope: DecisionEnvelope) -> str:
    data = envelope.data
    return data.decision if not data.reasons else f"{data.decision} {data.reasons[0].code}"


async def flood(nc: nats.NATS, schedule: demo_schedule.Clock, stop: asyncio.Event) -> None:
    """The `flood` phase: FLOOD_RATE intents a second from one strategy, reported as one line a second."""
    sent = 0
    counts: Counter[str] = Counter()
    last_report = time.monotonic()
    while not stop.is_set():
        if not schedule.playing("flood"):
            if counts:
                print(f"flood over: {FLOOD_STRATEGY}: {dict(counts)}", flush=True)
                counts.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            continue
        try:
            intent = flood_intent(sent)
            reply = await nc.request(f"intent.trading.{intent['symbol']}", orjson.dumps(intent), timeout=2)
            counts[outcome(DecisionEnvelope.model_validate_json(reply.data))] += 1
        except Exception as exc:
            counts[f"no reply ({type(exc).__name__})"] += 1
        sent += 1
        if time.monotonic() - last_report >= 1.0:
            print(f"flood: {FLOOD_STRATEGY} at {FLOOD_RATE:g} intents/s so far: {dict(counts)}", flush=True)
            last_report = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0 / FLOOD_RATE)


def describe(payload: dict[str, Any] | bytes, envelope: DecisionEnvelope) -> str:
    data = envelope.data
    if isinstance(payload, dict):
        what = f"{payload['strategy_id'][:22]:<22} {payload['action']:<5} {payload['symbol']:<9}"
    else:
        what = f"{'(malformed payload)':<38}"
    if data.decision == "APPROVED":
        return f"{data.decision:<10} {what} -> {data.signal_subject}"
    first = data.reasons[0]
    more = f" (+{len(data.reasons) - 1} more)" if len(data.reasons) > 1 else ""
    return f"{data.decision:<10} {what} {first.code}: {first.message}{more}"


async def wait_for_gate(nc: nats.NATS, stop: asyncio.Event) -> None:
    """Start trading only once a gate beats with a policy, as a real bot would after start-up (a strategy's
    identity may read heartbeats but not ping: deploy/access.py)."""
    ready = asyncio.Event()

    async def on_beat(msg: Msg) -> None:
        if orjson.loads(msg.data).get("policy_version") is not None:
            ready.set()

    sub = await nc.subscribe("cio.gate.heartbeat", cb=on_beat)
    while not stop.is_set() and not ready.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 2.0)
        if not ready.is_set():
            print("waiting for a gate's heartbeat on cio.gate.heartbeat ...", flush=True)
    await sub.unsubscribe()


async def run(nats_url: str, engine_url: str, rate: float, duration: float | None) -> None:
    # Two identities, as in production: the strategies (intents only) and the trade engine (signals).
    # Replies arrive in the shared strategy identity's own inbox; no identity may read another's (docs/access.md).
    nc = await nats.connect(
        nats_url, **nats_credentials(), name="demo-fleet", max_reconnect_attempts=-1, inbox_prefix=STRATEGY_INBOX
    )
    engine = await nats.connect(
        engine_url, name="demo-trade-engine", max_reconnect_attempts=-1, inbox_prefix=ENGINE_INBOX
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    counts: Counter[str] = Counter()
    promoted = Counter[str]()

    standin = SignalReceiver()  # continues each signal's trace when OTEL_EXPORTER_OTLP_ENDPOINT is set

    async def on_signal(msg: Msg) -> None:
        promoted[msg.subject] += 1
        await standin.on_signal(msg)

    await engine.subscribe("signals.trading.*", queue=DEMO_ENGINE_QUEUE, cb=on_signal)
    await wait_for_gate(nc, stop)
    schedule = demo_schedule.Clock.from_env()
    if schedule.enabled:
        print("demo schedule (each ten minutes, from make up's start):", flush=True)
        for line in demo_schedule.timeline():
            print(f"  {line}", flush=True)
    flooding = asyncio.create_task(flood(nc, schedule, stop))
    started = time.monotonic()
    scenario = itertools.cycle(SCENARIOS)
    last_summary = 0.0
    print(f"demo fleet: {rate:g} intents/s on intent.trading.<SYMBOL>", flush=True)
    while not stop.is_set() and (duration is None or time.monotonic() - started < duration):
        now = time.monotonic()
        _, build = next(scenario)
        payload = build()
        symbol = payload["symbol"] if isinstance(payload, dict) else "BTCUSDT"
        subject = f"intent.trading.{symbol}"
        if isinstance(payload, dict) and payload["source"] == "ta_bot":
            subject = f"cio.intent.trading.{payload['strategy_id']}"  # where the real TA bot publishes
        raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        try:
            reply = await nc.request(subject, raw, timeout=2)
            envelope = DecisionEnvelope.model_validate_json(reply.data)
            counts[envelope.data.decision] += 1
            print(describe(payload, envelope), flush=True)
        except Exception as exc:
            counts["no reply"] += 1
            print(f"{'NO REPLY':<10} {type(exc).__name__}: is the gate running?", flush=True)
        if now - last_summary >= 15.0:
            print(
                f"summary: {dict(counts)}; signals received by the trade-engine stand-in: {sum(promoted.values())}",
                flush=True,
            )
            last_summary = now
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0 / rate)
    print(
        f"summary: {dict(counts)}; signals received by the trade-engine stand-in: {sum(promoted.values())}", flush=True
    )
    stop.set()
    await flooding
    await nc.drain()
    await engine.drain()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", LOCAL_NATS_URL))
    parser.add_argument(
        "--engine-nats-url",
        default=os.environ.get("CIO_DEMO_TRADEENGINE_NATS_URL") or os.environ.get("NATS_URL", LOCAL_NATS_URL),
        help="the trade-engine stand-in's own identity (it hears promoted signals)",
    )
    parser.add_argument("--rate", type=float, default=float(os.environ.get("CIO_DEMO_RATE", "2")))
    parser.add_argument("--duration", type=float, default=None)
    args = parser.parse_args()
    asyncio.run(run(args.nats_url, args.engine_nats_url, args.rate, args.duration))


if __name__ == "__main__":
    configure_logging("demo-fleet")  # a timestamp on every line, text or JSON (docs/logging.md)
    main()
