"""The Strategist under the shipped least-privilege configuration (deploy/access.py rendered into real servers):
the listener hears its inputs under its own NATS and Redis identities, a Celery worker runs a full cycle with the
`celery` identity as its broker and the `strategist` identity for its keys, and neither can touch what is not
theirs."""

from datetime import UTC, datetime

import orjson
import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError

from cio_kernel.policy.document import ACTIVE_POLICY_KEY
from cio_kernel.redis_keys import LATCHES_KEY
from strategist import cycle_requests
from strategist.inputs import REGIME_KEY
from strategist.listener import Listener
from strategist.lock import CycleLock
from strategist.models import Cycle, Outcome
from strategist.tasks import run_cycle
from strategist.triggers import MANUAL
from tests.audit.ingest_helpers import wait_for
from tests.celery_processes import celery_env, start_worker
from tests.integration.helpers import wait_until
from tests.strategist.helpers import LISTENER_SETTINGS, regime

pytestmark = pytest.mark.e2e


async def test_the_listener_hears_its_inputs_and_nothing_else(secured):
    listener_nc = await secured.connect("strategist")
    marketdata = await secured.connect("marketdata")
    client = aioredis.Redis.from_url(secured.redis_url("strategist"))
    requested = []

    async def enqueue(trigger):
        requested.append(trigger)

    try:
        listener = Listener(client, enqueue, LISTENER_SETTINGS)
        await listener.subscribe(listener_nc)
        await listener_nc.flush()
        body = {"ts": datetime.now(UTC).isoformat(), "symbol": "BTCUSDT", "volatility": 0.3}
        await marketdata.publish("cio.market.regime", orjson.dumps(body))
        await marketdata.flush()
        # The message crosses a real server and the listener's first Redis connection; a loaded CI box is slow.
        try:
            await wait_until(lambda: listener.counters["regime"], 20.0, "the listener hearing the regime update")
        except AssertionError as exc:  # a callback that raised shows up here, not as a silent miss
            stored = await client.hget(REGIME_KEY, "BTCUSDT")
            raise AssertionError(
                f"{exc}; the listener's errors: {secured.errors.get('strategist')}; its counters: "
                f"{dict(listener.counters)}; triggers: {requested}; regime stored: {stored is not None}"
            ) from None
        assert listener.counters["regime"] == 1 and [t.kind for t in requested] == ["regime_shift"]
        assert await client.hget(REGIME_KEY, "BTCUSDT") is not None
        await listener_nc.publish("signals.trading.x", b"{}")  # it may publish nothing at all
        await listener_nc.flush()
        await wait_until(lambda: secured.violations("strategist"), 20.0, "the server logging the violation")
        assert secured.violations("strategist")
        with pytest.raises(NoPermissionError):
            await client.set(ACTIVE_POLICY_KEY, b"{}")
        with pytest.raises(NoPermissionError):
            await client.hgetall(LATCHES_KEY)
    finally:
        await client.aclose()
        for nc in secured.clients:
            await nc.close()


def test_the_cycle_lock_works_under_the_strategist_identity(secured):
    client = redis.Redis.from_url(secured.redis_url("strategist"))
    lock = CycleLock(client, ttl_s=5)
    assert lock.acquire()
    assert not CycleLock(client, ttl_s=5).acquire()
    lock.release()
    again = CycleLock(client, ttl_s=5)
    assert again.acquire()
    again.release()
    celery = redis.Redis.from_url(secured.redis_url("celery"))
    with pytest.raises(NoPermissionError):
        celery.get("strategist:cycle_lock")  # the broker's identity sees only the broker's keys
    with pytest.raises(NoPermissionError):
        celery.get(ACTIVE_POLICY_KEY)


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_a_cycle_with_the_broker_and_strategist_identities(
    live_policy, secured, settings, users, tmp_path, broker
):
    regime(redis.Redis.from_url(secured.redis_url("strategist")), "BTCUSDT", 0.07)

    env = celery_env(settings, secured.redis_url("celery"), tmp_path)
    env.update(REDIS_URL=secured.redis_url("strategist"), CIO_STRATEGIST_REDIS_URL=secured.redis_url("strategist"))
    from cio_site.celery import app

    app.conf.broker_url, app._pool, app.amqp._producer_pool = secured.redis_url("celery"), None, None
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        asked = cycle_requests.record(MANUAL, {}, via=cycle_requests.ADMIN, by=users["officer1"])
        run_cycle.apply_async(kwargs={"trigger": MANUAL, "request": asked})
        cycle = wait_for(lambda: Cycle.objects.first(), 60, "the cycle under least privilege")
    finally:
        worker.stop()
    assert cycle.outcome == Outcome.PROPOSED and cycle.proposal.version == 2
    assert cycle.request.requested_by == users["officer1"]
    assert cycle.trigger_detail == {"via": "admin", "by": "officer1"}
    assert "NOPERM" not in worker.log() and "NoPermission" not in worker.log()
