"""The brake on guessing bearer tokens at `/mcp`, over real HTTP against the running ASGI app: the same brake as
REST (tests/control_plane/test_brakes.py), answered 429 RATE_LIMITED in the bearer-error shape the SDK uses for
401, and never in the way of a valid token from the same address."""

import httpx2
import pytest
from django.conf import settings

from tests.mcp.results import data

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

LIMIT = settings.CIO_AUTH_FAILURES_PER_MINUTE
LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
HEADERS = {"Accept": "application/json, text/event-stream"}


async def bearer(http: httpx2.AsyncClient, web: str, token: str, forwarded_for: str | None = None) -> httpx2.Response:
    headers = {**HEADERS, "Authorization": f"Bearer {token}"}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    return await http.post(f"{web}/mcp", json=LIST_TOOLS, headers=headers)


async def test_failed_bearer_tokens_from_a_shared_address_never_refuse_a_valid_one(connect, web, active_v1):
    async with httpx2.AsyncClient(timeout=30) as http:
        # Spoofed X-Forwarded-For buys nothing: the server trusts no proxy, so all of this is one address.
        answers = [await bearer(http, web, f"guess-{i:04d}", f"203.0.113.{i}") for i in range(50)]
        assert [a.status_code for a in answers] == [401] * LIMIT + [429] * (50 - LIMIT)
        refused = answers[-1]
        assert refused.json()["error"] == "RATE_LIMITED" and int(refused.headers["retry-after"]) >= 1
        assert "retry in" in refused.json()["error_description"]

    async with connect("officer1") as officer:
        halted = data(await officer.call_tool("set_trading_state", {"state": "halted", "reason": "under attack"}))
        assert halted["changed"] is True
    async with connect("agent") as agent:
        active = data(await agent.call_tool("get_active_policy", {}))
        assert active["spec"]["global"]["trading_state"] == "halted"

    async with httpx2.AsyncClient(timeout=30) as http:
        assert (await bearer(http, web, "guess-again")).status_code == 429


async def test_rest_and_mcp_share_one_brake(web, tokens):
    async with httpx2.AsyncClient(timeout=30) as http:
        for i in range(LIMIT):
            failed = await http.get(f"{web}/api/gate", headers={"Authorization": f"Token guess-{i:04d}"})
            assert failed.status_code == 401
        assert (await bearer(http, web, "guess-at-mcp")).status_code == 429
        assert (await bearer(http, web, tokens["viewer"])).status_code == 200
        assert (
            await http.get(f"{web}/api/gate", headers={"Authorization": f"Token {tokens['viewer']}"})
        ).status_code == 200


async def test_another_address_is_not_braked(web):
    async with (
        httpx2.AsyncClient(timeout=30) as http,
        httpx2.AsyncClient(timeout=30, transport=httpx2.AsyncHTTPTransport(local_address="127.0.0.2")) as other,
    ):
        assert [(await bearer(http, web, f"guess-{i:04d}")).status_code for i in range(LIMIT + 1)][-1] == 429
        assert (await bearer(other, web, "mistyped")).status_code == 401
