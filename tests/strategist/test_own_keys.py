"""The Strategist's own keys against an attacker holding only the `strategist` Redis identity (the password the
listener and the worker use; not the control plane's secret key). It can write every `strategist:*` key, so:

- a cycle lock or debounce key it plants without an expiry, with a long one, or with a value of its own is broken
  by the next reader and counted, never waited on;
- a regime or portfolio entry it writes or edits is refused when read (the thought says why), a cycle that met one
  is never auto-approved, and a stale entry of ours is left out without being taken for an attack."""

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import redis.asyncio as aioredis

from cio_kernel.contracts.regime import RegimeUpdate
from strategist import anomalies
from strategist.inputs import PORTFOLIO_KEY, REGIME, REGIME_KEY, RegimeEntry, sealed
from strategist.listener import DEBOUNCE_KEY_PREFIX, Listener
from strategist.lock import LOCK_KEY, CycleBusyError, CycleLock
from strategist.models import Outcome, StrategistSettings
from strategist.triggers import REGIME_SHIFT, Trigger
from tests.strategist.helpers import LISTENER_SETTINGS, regime, run_scheduled_cycle

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    "plant",
    [
        {"value": "held-forever"},  # no expiry (PTTL -1)
        {"value": "held-for-a-day", "px": 86_400_000},  # an expiry far beyond the lock's time to live
        {"value": "0" * 24 + ".99999999999999.forged", "px": 4_000},  # a plausible expiry, a token we never sealed
    ],
    ids=["no-expiry", "long-expiry", "unsealed-token"],
)
def test_a_planted_cycle_lock_is_broken_counted_and_the_cycle_runs(live_policy, strategist, attacker, plant):
    attacker.set(LOCK_KEY, plant["value"], px=plant.get("px"))
    cycle = run_scheduled_cycle(strategist)
    assert cycle is not None and cycle.outcome == Outcome.NO_CHANGE
    assert anomalies.count(anomalies.LOCK_ILLEGITIMATE) == 1
    assert strategist.get(LOCK_KEY) is None  # released by the cycle that broke it


def test_a_legitimate_lock_is_waited_on_not_broken(live_policy, strategist):
    holder = CycleLock(strategist, ttl_s=5)
    assert holder.acquire()
    try:
        with pytest.raises(CycleBusyError):
            run_scheduled_cycle(strategist)
    finally:
        holder.release()
    assert anomalies.count(anomalies.LOCK_ILLEGITIMATE) == 0
    held = CycleLock(strategist, ttl_s=5)
    assert held.acquire()  # and the key an acquired lock writes always expires
    assert 0 < strategist.pttl(LOCK_KEY) <= 5000
    held.release()


def test_a_planted_debounce_key_is_broken_and_the_trigger_fires(live_policy, secured):
    async def scenario():
        attacker = aioredis.Redis.from_url(secured.redis_url("strategist"))
        listener_redis = aioredis.Redis.from_url(secured.redis_url("strategist"))
        requested = []

        async def enqueue(trigger):
            requested.append(trigger)

        key = f"{DEBOUNCE_KEY_PREFIX}{REGIME_SHIFT}"
        try:
            await attacker.set(key, "silenced")  # no expiry: every regime shift would be debounced forever
            listener = Listener(listener_redis, enqueue, LISTENER_SETTINGS)
            trigger = Trigger(REGIME_SHIFT, {"symbol": "BTCUSDT", "to_band": "extreme", "volatility": 0.2})
            assert await listener.fire(trigger)
            window_ms = int(LISTENER_SETTINGS.debounce_s * 1000)
            assert 0 < await listener_redis.pttl(key) <= window_ms  # ours, expiring with the window
            assert not await listener.fire(trigger)  # a legitimate window is respected
            await attacker.set(key, "silenced", px=window_ms * 100)  # a long expiry is broken too
            assert await listener.fire(trigger)
            return listener.counters, requested
        finally:
            await attacker.aclose()
            await listener_redis.aclose()

    counters, requested = asyncio.run(scenario())
    assert len(requested) == 2 and counters["debounce_broken"] == 2 and counters["debounced_regime_shift"] == 1
    assert anomalies.count(anomalies.DEBOUNCE_ILLEGITIMATE) == 2


def test_forged_and_edited_inputs_are_refused_and_never_auto_approved(live_policy, strategist, attacker, users):
    row = StrategistSettings.current()
    row.auto_approve_tightening, row.auto_approve_authorised_by = True, users["officer2"]
    row.save()
    regime(strategist, "ETHUSDT", 0.01)  # ours, calm
    now = datetime.now(UTC)
    # A fake "extreme" BTCUSDT written without the seal; ETH's sealed entry copied to SOLUSDT; ETH's own edited.
    fake = RegimeEntry(ts=now, volatility=0.5).model_dump(mode="json")
    attacker.hset(REGIME_KEY, "BTCUSDT", orjson.dumps(fake))
    attacker.hset(REGIME_KEY, "SOLUSDT", attacker.hget(REGIME_KEY, "ETHUSDT"))
    edited = orjson.loads(attacker.hget(REGIME_KEY, "ETHUSDT"))
    edited["entry"]["volatility"] = 0.3
    attacker.hset(REGIME_KEY, "ETHUSDT", orjson.dumps(edited))
    forged_book = {"entry": {"drawdown_pct": 0.9}, "source": "x", "stored_at": now.isoformat(), "seal": "0"}
    attacker.set(PORTFOLIO_KEY, orjson.dumps(forged_book))
    # A stale entry of ours: left out, not an attack.
    old = RegimeUpdate(ts=now - timedelta(hours=2), symbol="XRPUSDT", volatility=0.2)
    strategist.hset(REGIME_KEY, "XRPUSDT", sealed(REGIME, "XRPUSDT", RegimeEntry.of(old), now - timedelta(hours=2)))

    cycle = run_scheduled_cycle(strategist)
    summary = cycle.thought["inputs_summary"]
    assert summary["regime"] == {} and summary["portfolio"] is None
    problems = summary["input_problems"]
    assert "regime BTCUSDT: not a sealed entry (refused)" in problems
    assert "regime SOLUSDT: its seal does not verify: not written by the listener (refused)" in problems
    assert "regime ETHUSDT: its seal does not verify: not written by the listener (refused)" in problems
    assert "portfolio: its seal does not verify: not written by the listener (refused)" in problems
    assert any(p.startswith("regime XRPUSDT: stale") and p.endswith("(not used)") for p in problems)
    assert anomalies.count(anomalies.INPUT_REFUSED) == 1  # one per cycle that met refused inputs
    assert cycle.outcome in (Outcome.NO_CHANGE, Outcome.PROPOSED) and cycle.outcome != Outcome.AUTO_APPROVED

    # With our own volatile entry back, a pure tightening comes, and a cycle that met a forgery is not approved unseen.
    regime(strategist, "BTCUSDT", 0.07)
    tightening = run_scheduled_cycle(strategist)
    assert tightening.outcome == Outcome.PROPOSED and tightening.proposal.decided_by is None
    assert tightening.thought["validation"]["auto_approval"] == [
        "3 cached input(s) refused as not ours or out of bounds"
    ]


def test_what_makes_a_held_key_illegitimate():
    from strategist import owned_keys

    good = owned_keys.token("cycle_lock", 60_000)
    assert owned_keys.illegitimate("cycle_lock", good, 5_000, 5_000) is None
    assert owned_keys.illegitimate("cycle_lock", good, -1, 5_000) == "it never expires"
    assert "beyond its maximum" in owned_keys.illegitimate("cycle_lock", good, 60_000, 5_000)
    assert owned_keys.illegitimate("debounce", good, 5_000, 5_000) == "its value is not a token we sealed"  # purpose
    expired = owned_keys.token("cycle_lock", -10_000)  # a real token whose holder's deadline has passed
    assert owned_keys.illegitimate("cycle_lock", expired, 5_000, 5_000) == "its holder's deadline has passed"
    nonce, deadline, mark = good.split(".")
    stretched = f"{nonce}.{int(deadline) + 3_600_000}.{mark}"  # a copied token with its deadline pushed out
    assert owned_keys.illegitimate("cycle_lock", stretched, 5_000, 5_000) == "its value is not a token we sealed"
    # Respelled: "١" digits, a "²", a seal holding a non-ASCII character (`hmac.compare_digest` raised on that one).
    arabic = deadline.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    for planted in (f"{nonce}.{arabic}.{mark}", f"{nonce}.²{deadline}.{mark}", f"{nonce}.{deadline}.{mark[:-1]}é"):
        assert owned_keys.illegitimate("cycle_lock", planted, 5_000, 5_000) == "its value is not a token we sealed"


def test_a_forged_previous_regime_cannot_hide_a_shift_from_the_listener(secured):
    from tests.integration.helpers import wait_until

    async def scenario():
        attacker = aioredis.Redis.from_url(secured.redis_url("strategist"))
        listener_redis = aioredis.Redis.from_url(secured.redis_url("strategist"))
        listener_nc = await secured.connect("strategist")
        marketdata = await secured.connect("marketdata")
        requested = []

        async def enqueue(trigger):
            requested.append(trigger)

        try:
            # "Already extreme": were it believed, the real extreme report below would be no shift at all.
            fake = RegimeEntry(ts=datetime.now(UTC), volatility=0.5).model_dump(mode="json")
            await attacker.hset(REGIME_KEY, "BTCUSDT", orjson.dumps(fake))
            listener = Listener(listener_redis, enqueue, LISTENER_SETTINGS)
            await listener.subscribe(listener_nc)
            await listener_nc.flush()
            body = {"ts": datetime.now(UTC).isoformat(), "symbol": "BTCUSDT", "volatility": 0.2}
            await marketdata.publish("cio.market.regime", orjson.dumps(body))
            await marketdata.flush()
            await wait_until(lambda: listener.counters["regime"], 20.0, "the listener hearing the report")
            return listener.counters, requested
        finally:
            await attacker.aclose()
            await listener_redis.aclose()
            await secured.close_clients()

    counters, requested = asyncio.run(scenario())
    assert counters["refused_regime"] == 1
    assert [(t.kind, t.detail["to_band"], t.detail["from_band"]) for t in requested] == [
        (REGIME_SHIFT, "extreme", None)
    ]
    assert anomalies.count(anomalies.INPUT_REFUSED) == 1
