"""One envelope on every surface: what an agent may not propose over MCP it may not propose over REST or in admin
either, against the running ASGI app (uvicorn) on the test's database, Redis and NATS. Risk officers are not
bound by it; the envelope itself is seeded from the officers' baseline the first time it is read."""

import re
from typing import Any

import httpx2
import orjson
import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from policies import services
from policies.models import PolicyVersion
from strategist.models import StrategistSettings
from tests.factories import make_spec
from tests.mcp.results import error

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

BASELINE = {
    "min_confidence": 0.5,
    "max_order_notional_usd": 50_000,
    "max_leverage": 5,
    "denied_symbols": ["LUNAUSDT"],
}


@pytest.fixture
def baseline(stack: Any, users: dict[str, Any]) -> PolicyVersion:
    policy = services.propose(
        spec=make_spec(**BASELINE).model_dump(mode="json", by_alias=True), by=users["officer1"], rationale="desk"
    )
    services.approve(policy, by=users["officer2"])
    return services.activate(policy, by=users["officer2"])


def _variant(live: dict[str, Any], **changes: Any) -> dict[str, Any]:
    spec = {**live, "global": {**live["global"], **changes}}
    return spec


CASES = {
    "a release": ({"trading_state": "active"}, "global.trading_state: halted → active is a release"),
    "notional 1e9": ({"max_order_notional_usd": 1e9}, "max_order_notional_usd 1e+09 is above the envelope's 50000"),
    "leverage 125": ({"max_leverage": 125}, "max_leverage 125 is above the envelope's 5"),
    "an empty deny list": ({"denied_symbols": []}, "denied_symbols [] is looser than the officers' baseline"),
    "minimum confidence 0": ({"min_confidence": 0.0}, "min_confidence 0 is below the floor 0.5"),
}


def _admin_propose(web: str, user: Any, spec: dict[str, Any]) -> str:
    """The admin's "add policy version" form (its JSON view), over HTTP as a browser would post it; returns the
    page."""
    client = Client()
    client.force_login(user)
    cookies = {"sessionid": client.cookies["sessionid"].value}
    url = f"{web}/admin/policies/policyversion/add/?view=json"
    with httpx2.Client(cookies=cookies, timeout=30) as http:
        form = http.get(url)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        page = http.post(
            url,
            data={
                "csrfmiddlewaretoken": token,
                "view": "json",
                "spec": orjson.dumps(spec).decode(),
                "rationale": "room",
            },
            headers={"Referer": url},
        )
    return page.text


async def test_an_agent_meets_the_same_envelope_on_rest_mcp_and_admin(web, connect, tokens, baseline, users):
    rest = httpx2.AsyncClient(base_url=web, timeout=30)
    agent = {"Authorization": f"Token {tokens['agent']}"}
    officer = {"Authorization": f"Token {tokens['officer1']}"}
    halt = {"scope": "global", "state": "halted", "reason": "runaway losses"}
    assert (await rest.post("/api/trading-state", json=halt, headers=agent)).status_code == 201
    live = (await rest.get("/api/policy", headers=agent)).json()["data"]["spec"]
    before = await sync_to_async(PolicyVersion.objects.count)()

    for name, (changes, message) in CASES.items():
        spec = _variant(live, **changes)
        over_rest = await rest.post("/api/policy/propose", json={"spec": spec, "rationale": "room"}, headers=agent)
        body = over_rest.json()
        assert over_rest.status_code == 403 and body["error"]["code"] == "OUTSIDE_ENVELOPE", (name, body)
        assert message in body["error"]["message"], (name, body)
        async with connect("agent") as mcp:
            refused = error(await mcp.call_tool("propose_policy_change", {"rationale": "room", "spec": spec}))
        assert refused.startswith("OUTSIDE_ENVELOPE: outside the envelope") and message in refused, (name, refused)
        page = await sync_to_async(_admin_propose)(web, users["agent"], spec)
        assert "OUTSIDE_ENVELOPE" in page and message.replace("'", "&#x27;") in page, name
    assert await sync_to_async(PolicyVersion.objects.count)() == before  # nothing was recorded anywhere

    # inside the envelope the same agent proposes on every surface; an officer is not bound by it at all
    inside = _variant(live, min_confidence=0.6)
    assert (await rest.post("/api/policy/propose", json={"spec": inside, "rationale": "x"}, headers=agent)).is_success
    loose = _variant(live, max_leverage=125)
    by_officer = await rest.post("/api/policy/propose", json={"spec": loose, "rationale": "x"}, headers=officer)
    assert by_officer.status_code == 201 and by_officer.json()["data"]["status"] == "proposed"
    await rest.aclose()

    row = await sync_to_async(StrategistSettings.current)()
    assert row.seeded_from_version is not None and row.max_order_notional_usd == 50_000 and row.max_leverage == 5
