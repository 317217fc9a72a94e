"""The Strategist watched from outside, over real NATS with the shipped permissions: the control plane's watch
(`reconcile_policies`, under the `control` identity) alerts when no cycle completed within the schedule and when
anomalies were counted. The Strategist's own NATS identity may publish nothing, alerts included, so a Strategist
kept from running or kept quiet cannot be the one that has to say so."""

import asyncio
from datetime import timedelta

import orjson
import pytest
import redis

from strategist import anomalies
from strategist import cycle as cycles
from strategist.triggers import SCHEDULE, Trigger
from tests.integration.helpers import wait_until
from tests.strategist.helpers import schedule_every_minute_since

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_overdue_strategist_and_its_anomalies_are_alerted_by_the_control_plane(secured, watch, users):
    schedule_every_minute_since(timedelta(hours=1))  # no cycle for an hour, on a schedule of one a minute

    async def scenario():
        oncall = await secured.connect("alerting")
        heard = await oncall.subscribe("cio.alert.>")
        await oncall.flush()

        async def step() -> None:
            await asyncio.to_thread(watch.step)  # one pass of the watch `make up` runs every 5 s
            await oncall.flush()

        await step()
        overdue = orjson.loads((await heard.next_msg(timeout=20)).data)
        assert overdue["severity"] == "warning" and overdue["source"] == "control-plane"
        assert overdue["title"] == "Strategist: no cycle completed within its schedule"
        assert overdue["detail"]["key"] == "strategist_overdue" and overdue["detail"]["late_s"] > 3000

        # A cycle completes (here, in process): no longer overdue. Then two refused tasks are counted.
        client = redis.Redis.from_url(secured.redis_url("strategist"))
        await asyncio.to_thread(cycles.run_cycle, Trigger(SCHEDULE, {}, verified=True), client=client)
        await asyncio.to_thread(anomalies.record, anomalies.TRIGGER_REFUSED, {"reason": "no request row named"})
        await asyncio.to_thread(anomalies.record, anomalies.TRIGGER_REFUSED, {"reason": "no request row named"})
        await step()
        forged = orjson.loads((await heard.next_msg(timeout=20)).data)
        assert forged["severity"] == "critical" and forged["title"] == anomalies.TITLES[anomalies.TRIGGER_REFUSED]
        assert forged["detail"]["new"] == 2 and forged["detail"]["key"] == "strategist_trigger_refused"

        # Nothing new: the next pass is silent, and the next alert is the next new count's.
        await step()
        await asyncio.to_thread(anomalies.record, anomalies.LOCK_ILLEGITIMATE, {"reason": "it never expires"})
        await step()
        lock = orjson.loads((await heard.next_msg(timeout=20)).data)
        assert lock["title"] == anomalies.TITLES[anomalies.LOCK_ILLEGITIMATE] and lock["detail"]["new"] == 1

        # The Strategist's own identity cannot raise (or fake) any of these.
        strategist = await secured.connect("strategist")
        await strategist.publish("cio.alert.critical", b"{}")
        await strategist.flush()
        await wait_until(lambda: secured.violations("strategist"), 20.0, "the server refusing the publish")
        client.close()
        await secured.close_clients()

    asyncio.run(scenario())
