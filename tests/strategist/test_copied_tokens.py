"""Genuine values copied by whoever holds only the `strategist` Redis identity (it can read every key it can write):
a debounce token moved to another kind's window, the cycle lock's token written back after its cycle ended, and
an earlier sealed regime entry written back to hide a shift from the listener. No token may hold a key longer than
the window or the lock's time to live it was made for, and no earlier entry may stand for "before"."""

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import redis
import redis.asyncio as aioredis

from strategist import anomalies
from strategist.inputs import REGIME, REGIME_KEY, RegimeEntry, sealed
from strategist.listener import DEBOUNCE_KEY_PREFIX, Listener
from strategist.lock import LOCK_KEY, CycleLock
from strategist.triggers import ALERT, REGIME_SHIFT, Trigger
from tests.audit.ingest_helpers import wait_for
from tests.integration.helpers import wait_until
from tests.strategist.helpers import LISTENER_SETTINGS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_debounce_token_copied_to_another_kinds_window_is_broken(secured):
    async def scenario():
        attacker = aioredis.Redis.from_url(secured.redis_url("strategist"))
        listener_redis = aioredis.Redis.from_url(secured.redis_url("strategist"))
        requested = []

        async def enqueue(trigger):
            requested.append(trigger)

        try:
            listener = Listener(listener_redis, enqueue, LISTENER_SETTINGS)
            alert = Trigger(ALERT, {"severity": "critical", "source": "gate:g1", "title": "gate lost Redis"})
            assert await listener.fire(alert)  # a genuine window: its token is readable with this password
            genuine = await attacker.get(f"{DEBOUNCE_KEY_PREFIX}{ALERT}")
            pttl = await attacker.pttl(f"{DEBOUNCE_KEY_PREFIX}{ALERT}")
            # Copied over the regime shift's window, with an expiry inside the window: were it believed, the
            # edge-triggered shift below would be swallowed.
            await attacker.set(f"{DEBOUNCE_KEY_PREFIX}{REGIME_SHIFT}", genuine, px=pttl)
            shift = Trigger(REGIME_SHIFT, {"symbol": "BTCUSDT", "to_band": "extreme", "volatility": 0.2})
            assert await listener.fire(shift)
            assert not await listener.fire(alert)  # the alert's own window still holds
            return listener.counters, requested
        finally:
            await attacker.aclose()
            await listener_redis.aclose()

    counters, requested = asyncio.run(scenario())
    assert [t.kind for t in requested] == [ALERT, REGIME_SHIFT]
    assert counters["debounce_broken"] == 1 and counters["debounced_alert"] == 1
    assert anomalies.count(anomalies.DEBOUNCE_ILLEGITIMATE) == 1


def test_a_lock_token_copied_back_after_its_cycle_holds_no_longer_than_one_time_to_live(secured):
    """The lock's value is readable while a cycle runs. Written back after the cycle (and again every time it would
    lapse), it must stop counting within one time to live, not at the longest hold (900 s here)."""
    holder_client = redis.Redis.from_url(secured.redis_url("strategist"))
    attacker = redis.Redis.from_url(secured.redis_url("strategist"))
    broken: list[str] = []
    try:
        holder = CycleLock(holder_client, ttl_s=1.5, max_hold_s=900)
        assert holder.acquire()
        first = attacker.get(LOCK_KEY)
        wait_for(lambda: attacker.get(LOCK_KEY) not in (first, None), 30, "the holder renewing with a fresh token")
        assert not CycleLock(holder_client, ttl_s=1.5).acquire()  # a renewing holder is waited on, not broken
        copied = attacker.get(LOCK_KEY)
        holder.release()

        def contender_takes_it() -> bool:
            attacker.set(LOCK_KEY, copied, px=1500)  # kept alive within the lock's time to live
            contender = CycleLock(holder_client, ttl_s=1.5, on_broken=broken.append)
            if contender.acquire():
                contender.release()
                return True
            time.sleep(0.2)
            return False

        wait_for(contender_takes_it, 60, "the copied token to stop counting")
    finally:
        holder_client.close()
        attacker.close()
    assert broken == ["its holder's deadline has passed"]


def test_an_earlier_sealed_regime_written_back_does_not_hide_a_shift(secured):
    """Deleting the previous entry hides nothing (a stressed first report fires), so the attacker writes back an
    earlier genuine "extreme" entry: were it taken as "before", the real extreme report would be no shift."""
    config = dataclasses.replace(LISTENER_SETTINGS, debounce_s=0.001, regime_max_age_s=900)

    async def scenario():
        attacker = aioredis.Redis.from_url(secured.redis_url("strategist"))
        listener_redis = aioredis.Redis.from_url(secured.redis_url("strategist"))
        listener_nc = await secured.connect("strategist")
        marketdata = await secured.connect("marketdata")
        requested = []

        async def enqueue(trigger):
            requested.append(trigger)

        async def report(volatility: float) -> None:
            heard = listener.counters["regime"]
            body = {"ts": datetime.now(UTC).isoformat(), "symbol": "BTCUSDT", "volatility": volatility}
            await marketdata.publish("cio.market.regime", orjson.dumps(body))
            await marketdata.flush()
            await wait_until(lambda: listener.counters["regime"] > heard, 20.0, "the listener hearing the report")

        try:
            listener = Listener(listener_redis, enqueue, config)
            await listener.subscribe(listener_nc)
            await listener_nc.flush()
            # An entry the listener sealed two hours ago (kept by the attacker): past any age a cycle would use.
            hours_ago = datetime.now(UTC) - timedelta(hours=2)
            old = sealed(REGIME, "BTCUSDT", RegimeEntry(ts=hours_ago, volatility=0.5), hours_ago)
            await attacker.hset(REGIME_KEY, "BTCUSDT", old)
            await report(0.2)  # extreme now: a shift from nothing current
            await report(0.2)  # the same band again: no shift (the listener's own entry is "before")
            recent = await attacker.hget(REGIME_KEY, "BTCUSDT")  # a fresh genuine extreme entry, saved
            await report(0.01)  # calm
            await attacker.hset(REGIME_KEY, "BTCUSDT", recent)  # written back over the calm one
            await report(0.2)  # extreme again: a shift from calm, whatever Redis says now
            return listener.counters, requested
        finally:
            await attacker.aclose()
            await listener_redis.aclose()
            await secured.close_clients()

    counters, requested = asyncio.run(scenario())
    shifts = [(t.detail.get("from_band"), t.detail["to_band"]) for t in requested]
    assert shifts == [(None, "extreme"), ("extreme", "calm"), (None, "extreme")]
    assert counters["refused_regime"] == 1  # the rollback is an anomaly (alerted); a merely old entry is not
    assert anomalies.count(anomalies.INPUT_REFUSED) == 1
