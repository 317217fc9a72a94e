"""The risk officer's cockpit in chromium (docs/cockpit.md): it is where a login lands, a decision made by a real gate
shows without a reload, a policy change goes from one officer's proposal and impact preview to a second officer's
approval and activation (and the gate switches), a scope is halted from it (and the gate hears), and when its
websocket is cut the page says so, then recovers with a snapshot reload."""

import asyncio
import re
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
from tests.browser.traffic import decide_stored
from tests.control_plane.helpers import decide_buy

# The database is the module's (tests/browser/conftest.py `officers`): no test writes to it in this process,
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


# -- a policy change as two risk officers make it ---------------------------------------------------------------
# The first proposes on the per-field form, reads each change marked on the version page and runs the impact preview
# over what the gate approved; the second approves the reviewed version (its checksum carried by the confirmation
# page) and activates it; the gate switches, and its next decision names the new version on its trace page.
# On this module's stack rather than one of their own (starting one is most of the folder's time): the cockpit's
# tests after them read the policy's version from the page, never assume it.

DECIDED_BEFORE = 3  # intents the gate approves under v1 (a $500 BTCUSDT buy each), replayed by the preview
VERSIONS = "/admin/policies/policyversion/"
PROPOSE = VERSIONS + "add/"
TIGHTER_NOTIONAL = "250"  # BTCUSDT's max order notional: the candidate rejects those $500 orders


@pytest.fixture(scope="module")
def decided(browser_stack: Any, ingest: Any) -> list[dict[str, Any]]:
    return decide_stored(browser_stack.nats_url, *(f"flow-{i}" for i in range(DECIDED_BEFORE)))


@pytest.fixture(scope="module")
def flow() -> dict[str, Any]:
    """What one step leaves the next: the proposed version's number, primary key and checksum."""
    return {}


@pytest.fixture(scope="module")
def officer_a(web: Any, chromium: Any) -> Any:
    page = sign_in(chromium, web.url, "officer1", f"/admin/login/?next={PROPOSE}")
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def officer_b(web: Any, chromium: Any) -> Any:
    page = sign_in(chromium, web.url, "officer2", f"/admin/login/?next={VERSIONS}")
    yield page
    page.context.close()


def test_an_officer_proposes_on_the_form_and_the_version_page_marks_each_change(
    officer_a: Any, web: Any, decided: list[dict[str, Any]], flow: dict[str, Any]
) -> None:
    assert [d["decision"] for d in decided] == ["APPROVED"] * DECIDED_BEFORE, orjson.dumps(decided).decode()
    page = officer_a  # not the module's cockpit page: that one stays on the cockpit
    assert page.url == web.url + PROPOSE  # where the login led: the per-field form (the default view)
    expect(page.locator("#id_global-max_daily_loss_usd")).to_have_value("5000.0")  # pre-filled with the active v1
    expect(page.locator("#id_symbol-0-key")).to_have_value("BTCUSDT")
    page.fill("#id_symbol-0-max_order_notional_usd", TIGHTER_NOTIONAL)
    page.fill("#id_global-max_daily_loss_usd", "8000")
    page.fill("#id_rationale", "cap BTCUSDT orders at $250; more room for the daily loss")
    page.click("input[type=submit][value=Propose]")
    page.wait_for_load_state()
    expect(page.locator(".messagelist")).to_contain_text("(1 tightens, 1 loosens)")  # the version page
    flow["version"] = int(page.locator(".field-version .readonly").inner_text())
    flow["pk"] = int(page.url.rstrip("/").split("/")[-2])
    flow["checksum"] = page.locator(".field-checksum .readonly").inner_text().strip()
    diff = page.locator(".field-diff_to_active")
    expect(diff).to_contain_text("from active v1: 1 tightens, 1 loosens")
    expect(diff).to_contain_text(f"+ symbols.BTCUSDT.max_order_notional_usd: {TIGHTER_NOTIONAL}.0 (tightens)")
    expect(diff).to_contain_text("~ global.max_daily_loss_usd: 5000.0 → 8000.0 (loosens)")


def test_the_impact_preview_shows_the_approvals_the_change_would_reject(
    officer_a: Any, web: Any, browser_stack: Any, decided: list[dict[str, Any]], flow: dict[str, Any]
) -> None:
    page = officer_a  # not the module's cockpit page: that one stays on the cockpit
    panel = page.locator("#impact-preview")
    expect(panel.locator("#impact-status")).to_be_empty()  # no preview of this version yet
    page.click("#impact-start")  # a small window: replayed in the request, and the page reloads with the result
    expect(panel).to_contain_text(f"{DECIDED_BEFORE} approvals become rejections", timeout=WAIT_MS)
    expect(panel.locator("#impact-status")).to_have_text("done")
    expect(panel).to_contain_text(f"v{flow['version']} against active v1")
    rejected = panel.locator("table").first  # "Approvals that become rejections"
    expect(rejected.locator("tr").nth(1)).to_contain_text("ORDER_NOTIONAL_EXCEEDED")
    expect(rejected.locator("tr").nth(1).locator("td").nth(3)).to_have_text(str(DECIDED_BEFORE))
    shot(page, "policy-review", browser_stack)  # the README's: the review page with its preview
    sample = rejected.locator("a").first  # a sample decision: its page, as the gate decided it under v1
    sample.click()
    page.wait_for_load_state()
    assert page.url.rstrip("/").split("/")[-1] in {d["decision_id"] for d in decided}
    expect(page.locator("#content h2").first).to_have_text("APPROVED")
    expect(page.locator("#content")).to_contain_text("v1 (active)")  # the policy it was decided under


def _run_action(page: Any, web: Any, pk: int, action: str) -> Any:
    """Select version `pk` on the list and run `action`: returns the confirmation page's form."""
    if page.url != web.url + VERSIONS:  # where the login and each action land
        page.goto(web.url + VERSIONS)
    page.check(f"input.action-select[value='{pk}']")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")
    page.wait_for_load_state()
    return page.locator("#content form")


def test_a_second_officer_approves_the_reviewed_version_and_activates_it(
    officer_b: Any, page: Any, web: Any, browser_stack: Any, flow: dict[str, Any]
) -> None:
    pk, version = flow["pk"], flow["version"]
    done = re.compile(rf"v{version}: done", re.IGNORECASE)  # the admin's messages start with a capital
    confirm = _run_action(officer_b, web, pk, "approve_selected")
    expect(officer_b.locator(".risk-summary")).to_have_text("1 tightens, 1 loosens")
    expect(confirm.locator(f"input[name=checksum_{pk}]")).to_have_value(flow["checksum"])  # the one reviewed
    confirm.locator("input[name=confirm]").click()
    officer_b.wait_for_load_state()
    expect(officer_b.locator(".messagelist")).to_contain_text(done)
    _run_action(officer_b, web, pk, "activate_selected").locator("input[name=confirm]").click()
    officer_b.wait_for_load_state()
    expect(officer_b.locator(".messagelist")).to_contain_text(done)
    expect(officer_b.locator(".messagelist")).not_to_contain_text("ERR")
    # the cockpit open since the login: the gate runs the new version (it heard the activation's notice)
    expect(page.locator(f'#panel-gates tr[data-gate="{GATE_ID}"]')).to_contain_text(f"v{version}", timeout=WAIT_MS)
    client = redis.Redis.from_url(browser_stack.redis_url)
    try:
        assert orjson.loads(client.get(f"gate:heartbeat:{GATE_ID}"))["policy_version"] == version
    finally:
        client.close()


def test_the_gate_enforces_the_new_version_and_its_decision_traces_to_it(
    officer_b: Any, web: Any, browser_stack: Any, flow: dict[str, Any]
) -> None:
    (decision,) = decide_stored(browser_stack.nats_url, "flow-after")
    assert decision["decision"] == "REJECTED"
    officer_b.goto(f"{web.url}/admin/audit/decision/{decision['decision_id']}/")
    expect(officer_b.locator("#content h2").first).to_have_text("REJECTED: ORDER_NOTIONAL_EXCEEDED")
    policy = officer_b.locator("#content table").nth(2)  # the policy behind the decision (lineage)
    expect(policy).to_contain_text(f"v{flow['version']} (active)")
    expect(policy).to_contain_text("cap BTCUSDT orders at $250")
    expect(policy).to_contain_text("officer2")  # approved and activated by the second officer
    shot(officer_b, "decision-trace", browser_stack)  # the README's: a decision traced to the policy behind it


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
