"""The broker's identity alone can keep the Strategist from running (it drops the cycle tasks) and drop a warning's
deliveries (only critical alerts have the bridge's direct email). So the watch's first overdue alert is a warning
and every reminder while the Strategist stays overdue is critical: someone hears of it whatever the broker drops."""

import asyncio
from datetime import timedelta

import orjson
import pytest

from tests.strategist.helpers import schedule_every_minute_since

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_strategist_still_overdue_at_the_reminder_is_a_critical_alert(secured, watch, settings, users):
    settings.CIO_STRATEGIST_OVERDUE_ALERT_EVERY_S = 0  # remind on every pass
    schedule_every_minute_since(timedelta(hours=1))

    async def scenario() -> list[dict]:
        oncall = await secured.connect("alerting")
        heard = await oncall.subscribe("cio.alert.>")
        await oncall.flush()
        alerts = []
        for _ in range(3):
            await asyncio.to_thread(watch.step)
            alerts.append(orjson.loads((await heard.next_msg(timeout=20)).data))
        await secured.close_clients()
        return alerts

    first, second, third = asyncio.run(scenario())
    assert all(a["detail"]["key"] == "strategist_overdue" and a["source"] == "control-plane" for a in (first, second))
    assert [a["severity"] for a in (first, second, third)] == ["warning", "critical", "critical"]
