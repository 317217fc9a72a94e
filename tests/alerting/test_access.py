"""The alerting bridge under the shipped least-privilege configuration: it hears every alert and can publish
nothing; its Redis identity holds only the deduplication windows; gates and the audit ingest may raise alerts."""

import pytest
import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError

from cio_kernel.nats_flush import flush_ordered
from tests.integration.helpers import wait_until


async def test_gates_and_the_ingest_raise_alerts_the_bridge_hears_and_nothing_else(secured):
    bridge = await secured.connect("alerting")
    heard = []

    async def on_alert(msg):
        heard.append(msg.subject)

    await bridge.subscribe("cio.alert.>", cb=on_alert)
    await flush_ordered(bridge)
    for role in ("gate", "audit"):
        raiser = await secured.connect(role)
        await raiser.publish(f"cio.alert.{'critical' if role == 'gate' else 'warning'}", b"{}")
        await flush_ordered(raiser)
    await wait_until(lambda: len(heard) == 2, what="both alerts heard")
    assert sorted(heard) == ["cio.alert.critical", "cio.alert.warning"]
    assert not secured.violations("gate") and not secured.violations("audit")
    strategy = await secured.connect("strategy")
    await strategy.publish("cio.alert.critical", b"{}")  # a strategy cannot raise alerts
    await bridge.publish("signals.trading.x", b"{}")  # the bridge publishes nothing
    await flush_ordered(strategy)
    await flush_ordered(bridge)
    await wait_until(lambda: secured.violations("strategy") and secured.violations("alerting"), what="both refused")
    await flush_ordered(bridge)  # anything routed to the bridge before this point has been delivered
    assert len(heard) == 2
    redis = aioredis.Redis.from_url(secured.redis_url("alerting"))
    try:
        assert await redis.set("alerting:dedup:abc", "a1", nx=True, px=1000)
        with pytest.raises(NoPermissionError):
            await redis.get("policy:active")
    finally:
        await redis.aclose()
        for client in secured.clients:
            await client.close()
