"""The listener over real NATS and Redis: what it keeps of each input (allow-listed fields only), which messages
become triggers, and that triggers are debounced across listeners. Starting the cycle is the one thing replaced:
`enqueue` records instead of sending to Celery (test_celery.py covers the broker)."""

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
import redis.asyncio as aioredis

from cio_kernel.audit_stream import AUDIT_SUBJECT_PREFIX
from strategist.inputs import PORTFOLIO_KEY, REGIME_KEY
from strategist.listener import Listener, ListenerSettings
from strategist.triggers import ALERT, PORTFOLIO_BREACH, REGIME_SHIFT, REJECTION_BURST
from tests.strategist.helpers import LISTENER_SETTINGS


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def listening(nc, redis_url):
    started = []

    async def start(settings: ListenerSettings = LISTENER_SETTINGS):
        requested = []

        async def enqueue(trigger):
            requested.append(trigger)

        client = aioredis.Redis.from_url(redis_url)
        listener = Listener(client, enqueue, settings, clock=Clock())
        await listener.subscribe(nc)
        await nc.flush()
        started.append(client)
        return listener, requested

    yield start
    for client in started:
        await client.aclose()


async def settle(nc, listener, subject, count):
    """Wait until the listener has handled `count` messages in all (it runs in this event loop)."""
    for _ in range(500):
        if sum(v for k, v in listener.counters.items() if not k.startswith(("triggered", "debounced"))) >= count:
            return
        await asyncio.sleep(0)  # yield to the subscription's callbacks; no wall-clock wait
        await nc.flush()
    raise AssertionError(f"listener saw {dict(listener.counters)}")


def regime_body(symbol, volatility, **extra):
    return orjson.dumps({"ts": datetime.now(UTC).isoformat(), "symbol": symbol, "volatility": volatility, **extra})


async def test_regime_inputs_keep_only_allow_listed_fields_and_shifts_trigger_once(nc, redis, listening):
    listener, requested = await listening()
    poisoned = {"api_key": "AKIA-REGIME-SECRET", "note": "password=hunter2", "regime": "volatile"}
    await nc.publish("cio.market.regime", regime_body("BTCUSDT", 0.01))
    await nc.publish("cio.market.regime", regime_body("BTCUSDT", 0.07, **poisoned))
    await nc.publish("cio.market.regime", regime_body("BTCUSDT", 0.2))  # another shift, inside the debounce window
    await nc.publish("cio.market.regime", b'{"symbol": "btc/usdt", "volatility": -1}')  # invalid: ignored
    await settle(nc, listener, "cio.market.regime", 4)

    kept = orjson.loads(await redis.hget(REGIME_KEY, "BTCUSDT"))
    assert set(kept) == {"entry", "source", "stored_at", "seal"} and kept["source"] == "cio.market.regime"
    stored = kept["entry"]
    assert set(stored) == {"ts", "volatility", "trend", "label", "window"} and stored["volatility"] == 0.2
    assert b"AKIA" not in await redis.hget(REGIME_KEY, "BTCUSDT")
    assert [t.kind for t in requested] == [REGIME_SHIFT]
    assert requested[0].detail["to_band"] == "volatile"
    assert listener.counters["debounced_regime_shift"] == 1
    assert listener.counters["invalid_cio.market.regime"] == 1


async def test_a_second_listener_respects_the_first_ones_debounce(nc, listening):
    first, first_requests = await listening()
    second, second_requests = await listening()
    volatilities = (0.01, 0.07, 0.2, 0.01, 0.07, 0.2)  # shift after shift, split between the two by the queue group
    for volatility in volatilities:
        await nc.publish("cio.market.regime", regime_body("ETHUSDT", volatility))
    for _ in range(500):
        if first.counters["regime"] + second.counters["regime"] == len(volatilities):
            break
        await asyncio.sleep(0)
        await nc.flush()
    assert first.counters["regime"] + second.counters["regime"] == len(volatilities)
    assert len(first_requests) + len(second_requests) == 1  # one cycle, whichever listener saw the shift first


async def test_portfolio_breach_and_summary(nc, redis, listening):
    listener, requested = await listening()
    snapshot = {
        "ts": datetime.now(UTC).isoformat(),
        "equity_usd": 90_000,
        "drawdown_pct": 0.06,
        "positions": {
            "BTCUSDT": {"quantity": 1, "notional_usd": 70_000},
            "ETHUSDT": {"quantity": 2, "notional_usd": 30_000},
        },
        "exchange_api_secret": "should-never-be-kept",
    }
    await nc.publish("cio.portfolio.snapshot", orjson.dumps(snapshot))
    await settle(nc, listener, "cio.portfolio.snapshot", 1)
    stored = orjson.loads(await redis.get(PORTFOLIO_KEY))["entry"]
    assert stored["drawdown_pct"] == 0.06 and stored["exposure_usd"] == {"BTCUSDT": 70_000, "ETHUSDT": 30_000}
    assert "exchange_api_secret" not in stored
    [trigger] = requested
    assert trigger.kind == PORTFOLIO_BREACH
    assert trigger.detail == {"drawdown_pct": 0.06, "concentration": {"BTCUSDT": 0.7}}


async def test_rejection_bursts_and_alerts(nc, listening):
    listener, requested = await listening()
    for _ in range(3):
        await nc.publish(f"{AUDIT_SUBJECT_PREFIX}.rejected", b"{}")
    await nc.publish(f"{AUDIT_SUBJECT_PREFIX}.approved", b"{}")  # not listened to
    alert = {
        "alert_id": "a1",
        "ts": datetime.now(UTC).isoformat(),
        "severity": "critical",
        "source": "gate",
        "title": "audit backlog near its limit",
    }
    await nc.publish("cio.alert.critical", orjson.dumps(alert))
    await settle(nc, listener, "", 4)
    # Each subscription delivers in its own task: the two triggers may come in either order.
    by_kind = {t.kind: t for t in requested}
    assert len(requested) == 2 and set(by_kind) == {REJECTION_BURST, ALERT}
    assert by_kind[ALERT].detail["title"] == "audit backlog near its limit"
    assert by_kind[REJECTION_BURST].detail["events"] == 3
