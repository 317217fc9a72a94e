"""The risk officer's cockpit in chromium (docs/cockpit.md): it is where a login lands, a decision made by a real gate
shows without a reload, a scope is halted from it (and the gate hears), and when its websocket is cut the page says
so, then recovers with a snapshot reload."""

import asyncio
from typing import Any

import orjson
import pytest
import redis
from channels_redis.core import RedisChannelLayer
from playwright.sync_api import expect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from audit.live_feed import GROUP
from tests.browser.harness import ALERT_ID, GATE_ID, INCIDENT_ID, off_loop, screenshot, sign_in
from tests.control_plane.helpers import decide_buy

# The database is the module's (tests/browser/conftest.py `officers`): nothing in a test touches it in this process,
# and the flush after each transactional test is limited to an app without tables, so the module's data stays.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, available_apps=["cockpit"])]
WAIT_MS = 20_000  # bounds a failing wait only; nothing here asserts a speed


def shot(page: Any, name: str, stack: Any) -> None:
    assert screenshot(page, name, stack.tmp / "screenshots").stat().st_size > 0


@pytest.fixture(scope="module")
def page(web: Any, ingest: Any, chromium: Any) -> Any:
    """officer1 signed in through the admin's login form, without asking for any page: the login lands here."""
    signed_in = sign_in(chromium, web.url)
    yield signed_in
    signed_in.context.close()


def test_the_login_lands_on_the_cockpit_with_every_panel(page: Any, web: Any) -> None:
    assert page.url == web.url + "/"
    expect(page.locator("#live-state")).to_have_text("connected", timeout=WAIT_MS)
    trading = page.locator("#panel-trading")
    expect(trading.locator('tr[data-scope="global"] td.state')).to_have_text("active")
    expect(trading.locator('tr[data-scope="symbol"][data-key="BTCUSDT"]')).to_be_visible()
    expect(page.locator(f'#panel-gates tr[data-gate="{GATE_ID}"]')).to_be_visible(timeout=WAIT_MS)
    # 30 000 of the symbol's own 40 000 limit, and 39 000 of the 100 000 total, from the stored snapshot
    expect(page.locator('#panel-book [data-symbol="BTCUSDT"]')).to_contain_text("$30,000 of $40,000")
    expect(page.locator('#panel-book [data-symbol="total"]')).to_contain_text("$39,000 of $100,000")
    expect(page.locator("#panel-book")).to_contain_text("$1,200 of $5,000")
    for panel in ("trading", "gates", "book", "decisions", "alerts", "strategist"):
        expect(page.locator(f"#panel-{panel} .panel-error")).to_be_hidden()
    expect(page.locator("#banner")).to_be_hidden()


def test_an_officer_acknowledges_an_alert_and_an_incident_from_the_cockpit(page: Any) -> None:
    alert = page.locator(f'#panel-alerts tr[data-alert="{ALERT_ID}"]')
    expect(alert).to_contain_text("drawdown latch tripped")
    alert.locator("button").click()
    expect(page.locator("#alerts-result")).to_contain_text("acknowledged", timeout=WAIT_MS)
    expect(alert).to_have_count(0, timeout=WAIT_MS)  # no longer open: escalation stops
    incident = page.locator(f'#panel-alerts tr[data-incident="{INCIDENT_ID}"]')
    expect(incident.locator("td.status")).to_have_text("open")
    incident.locator("button").click()
    expect(incident.locator("td.status")).to_have_text("acknowledged (officer1)", timeout=WAIT_MS)  # its owner now


def test_a_decision_made_by_the_gate_shows_without_a_reload(page: Any, browser_stack: Any) -> None:
    page.evaluate("window.sameDocument = true")  # gone if the page were reloaded
    reply = off_loop(decide_buy, browser_stack.nats_url)
    decision_id = reply["data"]["decision_id"]
    live = page.locator(f'#live-decisions tr[data-via="live"][data-decision-id="{decision_id}"]')
    expect(live).to_be_visible(timeout=WAIT_MS)
    assert page.evaluate("window.sameDocument") is True


def test_halting_a_symbol_from_the_cockpit_reaches_the_gate(page: Any, browser_stack: Any) -> None:
    row = page.locator('#panel-trading tr[data-scope="symbol"][data-key="BTCUSDT"]')
    page.fill("#trading-reason", "drill: halting BTCUSDT from the cockpit")
    row.locator("button.halt").click()
    expect(page.locator("#trading-result")).to_contain_text("trading state set", timeout=WAIT_MS)
    expect(row.locator("td.state")).to_have_text("halted", timeout=WAIT_MS)
    version = int(page.locator("#trading-result").inner_text().split("; v")[1].split(" ")[0])
    client = redis.Redis.from_url(browser_stack.redis_url)
    try:  # the gate took the new version by its NATS notice (it does not poll Redis during the test)
        expect(page.locator(f'#panel-gates tr[data-gate="{GATE_ID}"]')).to_contain_text(f"v{version}", timeout=WAIT_MS)
        assert orjson.loads(client.get(f"gate:heartbeat:{GATE_ID}"))["policy_version"] == version
    finally:
        client.close()
    shot(page, "cockpit", browser_stack)  # a decision in the chart, a symbol halted
    row.locator("button.release").click()  # a symbol: one risk officer may release it
    expect(row.locator("td.state")).to_have_text("active", timeout=WAIT_MS)
    page.select_option("#other-scope", "symbol")  # a scope the policy did not name: halted, and listed from now on
    page.fill("#other-key", "SOLUSDT")
    page.click("#other-halt")
    added = page.locator('#panel-trading tr[data-scope="symbol"][data-key="SOLUSDT"] td.state')
    expect(added).to_have_text("halted", timeout=WAIT_MS)


def test_releasing_the_global_state_from_the_cockpit_takes_a_second_officer(page: Any) -> None:
    glob = page.locator('#panel-trading tr[data-scope="global"]')
    page.fill("#trading-reason", "drill: global halt")
    glob.locator("button.halt").click()
    expect(glob.locator("td.state")).to_have_text("halted", timeout=WAIT_MS)
    page.fill("#trading-reason", "drill over")
    glob.locator("button.release").click()
    expect(page.locator("#trading-result")).to_contain_text("release requested", timeout=WAIT_MS)
    expect(page.locator("#panel-trading")).to_contain_text("waiting for a second officer", timeout=WAIT_MS)
    expect(glob.locator("td.state")).to_have_text("halted")  # one officer's release changes nothing yet


def test_a_cut_socket_shows_the_banner_and_the_page_recovers_with_a_snapshot(
    page: Any, web: Any, browser_stack: Any
) -> None:
    expect(page.locator("#live-state")).to_have_text("connected", timeout=WAIT_MS)
    loads = int(page.locator("#snapshot-loads").inner_text())
    web.stop()  # the server goes: every socket it held is closed
    banner = page.locator("#banner")
    expect(banner).to_be_visible(timeout=WAIT_MS)
    expect(banner).to_contain_text("Live updates are down")
    expect(page.locator("#panel-trading tr").first).to_be_visible()  # the last figures stay, never a blank page
    shot(page, "cockpit-disconnected", browser_stack)
    web.start()
    expect(banner).to_be_hidden(timeout=WAIT_MS)
    expect(page.locator("#snapshot-note")).to_contain_text("reconnected", timeout=WAIT_MS)
    assert int(page.locator("#snapshot-loads").inner_text()) > loads


async def _socket_under_attack(url: str, redis_url: str, cookie: str) -> list[dict[str, Any]]:
    """Open the cockpit's socket as the officer, plant messages in the channel layer (as whoever holds the feed's
    Redis identity can), and collect what the page is sent until the gap is passed on."""
    ws_url = url.replace("http://", "ws://") + "/ws/cockpit/"
    with pytest.raises((ConnectionClosed, InvalidStatus)):  # nobody signed in: closed at once
        async with connect(ws_url, origin=url) as anonymous:
            await asyncio.wait_for(anonymous.recv(), 10)
    received = []
    async with connect(ws_url, additional_headers={"Cookie": cookie}, origin=url) as ws:
        received.append(orjson.loads(await asyncio.wait_for(ws.recv(), 10)))
        layer = RedisChannelLayer(hosts=[redis_url])
        try:
            await layer.group_send(GROUP, {"type": "send.json", "content": {"type": "decisions", "decisions": []}})
            await layer.group_send(GROUP, {"type": "websocket.disconnect", "code": 1000})
            await layer.group_send(GROUP, {"type": "decisions", "ids": ["planted-1"], "origin": "planted", "seq": 1})
            await layer.group_send(GROUP, {"type": "decisions", "ids": ["planted-2"], "origin": "planted", "seq": 3})
        finally:
            await layer.close_pools()
        while received[-1]["type"] != "gap":
            received.append(orjson.loads(await asyncio.wait_for(ws.recv(), 10)))
        received.append(orjson.loads(await asyncio.wait_for(ws.recv(), 10)))  # still open after the gap
    return received


def test_the_cockpit_socket_is_staff_only_numbered_and_takes_layer_messages_as_hints(
    page: Any, web: Any, browser_stack: Any
) -> None:
    session = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    received = off_loop(asyncio.run, _socket_under_attack(web.url, browser_stack.redis_url, f"sessionid={session}"))
    assert received[0]["type"] == "hello"
    assert [m["seq"] for m in received] == list(range(1, len(received) + 1))  # numbered, none missing
    assert {m["type"] for m in received} <= {"hello", "panels", "gap"}  # the planted ids: no such records
    assert [m["type"] for m in received].count("gap") == 1  # seq 1 then 3 from one origin: one lost between


def test_a_backend_away_degrades_its_panels_alone(page: Any, browser_stack: Any) -> None:
    browser_stack.redis.stop()  # the last test of the module: Redis does not come back
    for panel in ("gates", "book"):
        expect(page.locator(f"#panel-{panel} .panel-error")).to_contain_text("unavailable", timeout=WAIT_MS)
    expect(page.locator("#backend-banner")).to_contain_text("Redis (gate heartbeats)")
    expect(page.locator("#panel-trading .panel-error")).to_be_hidden()  # the database is still there
    expect(page.locator('#panel-trading tr[data-scope="global"]')).to_be_visible()
    shot(page, "cockpit-degraded", browser_stack)
