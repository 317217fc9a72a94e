"""The MCP tools driven by the SDK's client over real HTTP against the running ASGI app: the tool list an LLM
sees, each tool with good and bad arguments, the permissions of each role, and the audit record of every call."""

import pytest
from asgiref.sync import sync_to_async

from audit.store import get_store, tool_call_log
from policies.models import PolicyVersion, Status
from tests.audit.records import chain_of
from tests.mcp.results import data, error

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

EXPECTED_TOOLS = {
    "get_active_policy",
    "list_policy_versions",
    "get_policy_version",
    "diff_policy_versions",
    "propose_policy_change",
    "preview_policy_impact",
    "get_policy_impact",
    "approve_policy_version",
    "activate_policy_version",
    "set_trading_state",
    "get_gate_status",
    "query_decisions",
    "get_decision_trace",
    "search_similar_incidents",
    "get_recent_alerts",
    "get_trading_config",
    "propose_trading_config_change",
    "list_trading_config_changes",
    "approve_trading_config_change",
}


async def test_the_tool_list_describes_every_tool_with_a_schema(connect, active_v1):
    async with connect("viewer") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == EXPECTED_TOOLS
    for tool in tools.values():
        assert len(tool.description or "") > 40, tool.name
        assert tool.input_schema["type"] == "object"
    propose = tools["propose_policy_change"].input_schema
    assert "rationale" in propose["required"] and "changes" in propose["properties"]
    assert set(tools["set_trading_state"].input_schema["properties"]["state"]["enum"]) == {
        "active",
        "reducing",
        "halted",
    }


async def test_every_rooms_tool_is_served_once_in_the_rooms_order():
    """The SDK keeps the first of two tools with one name (and only logs): a tool added to one room under a name
    another room already uses would be lost without this."""
    from cio_site.mcp.server import ROOMS, build_server

    declared = [fn.__name__ for room in ROOMS for fn, _ in room.tools]
    served = [tool.name for tool in await build_server().list_tools()]
    assert served == declared and set(served) == EXPECTED_TOOLS


async def test_a_call_without_a_valid_token_is_refused(connect, web):
    import httpx2

    async with httpx2.AsyncClient(timeout=10) as http:
        bare = await http.post(f"{web}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        wrong = await http.post(
            f"{web}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Authorization": "Bearer not-a-token"},
        )
    assert bare.status_code == 401 and wrong.status_code == 401
    assert "resource_metadata" in bare.headers.get("www-authenticate", "")


async def test_an_agent_reads_and_proposes_but_cannot_approve_or_activate(connect, active_v1, users):
    async with connect("agent") as agent:
        active = data(await agent.call_tool("get_active_policy", {}))
        assert active["version"] == 1 and active["status"] == "active"
        proposed = data(
            await agent.call_tool(
                "propose_policy_change",
                {
                    "rationale": "tighter in a volatile week",
                    "changes": [{"scope": "global", "key": None, "field": "min_confidence", "value": 0.65}],
                },
            )
        )
        assert proposed["status"] == "proposed" and proposed["summary"] == "1 tightens"
        assert proposed["changes"] == ["~ global.min_confidence: 0.5 → 0.65 (tightens)"]
        version = proposed["version"]
        assert proposed["created"] is True
        # The same policy again, as a whole spec this time: the agent's open proposal, not a second version.
        spec = (await sync_to_async(PolicyVersion.objects.get)(version=version)).spec
        again = data(await agent.call_tool("propose_policy_change", {"rationale": "once more", "spec": spec}))
        assert again == {**proposed, "created": False}
        keyed = {
            "rationale": "keyed",
            "idempotency_key": "mcp-1",
            "changes": [{"scope": "global", "field": "min_confidence", "value": 0.7}],
        }
        first_keyed = data(await agent.call_tool("propose_policy_change", keyed))
        assert first_keyed["created"] is True and first_keyed["version"] != version
        assert data(await agent.call_tool("propose_policy_change", keyed)) == {**first_keyed, "created": False}
        keyed["changes"][0]["value"] = 0.75
        reused = error(await agent.call_tool("propose_policy_change", keyed))
        assert reused.startswith("IDEMPOTENCY_KEY_REUSED:")
        refused = error(await agent.call_tool("activate_policy_version", {"version": version}))
        assert refused.startswith("PERMISSION_DENIED: agent may not activate policies")
        assert error(await agent.call_tool("approve_policy_version", {"version": version})).startswith(
            "PERMISSION_DENIED"
        )
    stored = await sync_to_async(PolicyVersion.objects.select_related("proposed_by").get)(version=version)
    assert stored.status == Status.PROPOSED and stored.proposed_by == users["agent"]
    assert stored.proposer_kind == "agent" and stored.rationale == "tighter in a volatile week"

    async with connect("officer1") as officer:
        assert data(await officer.call_tool("approve_policy_version", {"version": version}))["status"] == "approved"
        assert data(await officer.call_tool("activate_policy_version", {"version": version}))["status"] == "active"

    calls = await sync_to_async(get_store().recent_tool_calls)(user="agent")
    by_tool = {c.tool: c for c in calls}
    assert by_tool["activate_policy_version"].outcome == "error"
    assert by_tool["activate_policy_version"].error_code == "PERMISSION_DENIED"
    assert by_tool["propose_policy_change"].outcome == "ok"
    assert by_tool["propose_policy_change"].arguments["rationale"] == "tighter in a volatile week"
    assert len(by_tool["propose_policy_change"].trace_id) == 32


async def test_bad_proposals_come_back_with_problems_an_agent_can_act_on(connect, active_v1):
    async with connect("agent") as agent:
        bad_field = error(
            await agent.call_tool(
                "propose_policy_change",
                {"rationale": "x", "changes": [{"scope": "global", "field": "max_notional", "value": 1}]},
            )
        )
        assert bad_field.startswith("VAL_ERR:") and "'max_notional' is not a field of the global scope" in bad_field
        out_of_range = error(
            await agent.call_tool(
                "propose_policy_change",
                {"rationale": "x", "changes": [{"scope": "global", "field": "min_confidence", "value": 3}]},
            )
        )
        assert "global.min_confidence" in out_of_range
        both = error(await agent.call_tool("propose_policy_change", {"rationale": "x", "changes": [], "spec": {}}))
        assert "not both" in both
        schema_error = await agent.call_tool("propose_policy_change", {"changes": []})  # no rationale
        assert schema_error.is_error


async def test_the_envelope_binds_agents(connect, active_v1):
    from strategist.models import StrategistSettings

    await sync_to_async(StrategistSettings.objects.update_or_create)(id=1, defaults={"max_order_notional_usd": 10_000})
    async with connect("agent") as agent:
        refused = error(
            await agent.call_tool(
                "propose_policy_change",
                {
                    "rationale": "more room",
                    "changes": [{"scope": "global", "field": "max_order_notional_usd", "value": 50_000}],
                },
            )
        )
    assert "outside the envelope" in refused and "above the envelope's 10000" in refused
    assert await sync_to_async(PolicyVersion.objects.count)() == 1


async def test_trading_states_agents_tighten_officers_release(connect, active_v1):
    async with connect("agent") as agent:
        halted = data(await agent.call_tool("set_trading_state", {"state": "halted", "reason": "runaway losses"}))
        assert halted["changed"] is True
        release = error(await agent.call_tool("set_trading_state", {"state": "active", "reason": "looks fine"}))
        assert release.startswith("PERMISSION_DENIED")
    async with connect("officer2") as officer:
        request = data(await officer.call_tool("set_trading_state", {"state": "active", "reason": "checked"}))
        assert request["status"] == "proposed" and "second risk officer" in request["note"]
    async with connect("officer1") as officer:
        released = data(await officer.call_tool("set_trading_state", {"state": "active", "reason": "agreed"}))
        assert released["status"] == "active" and released["version"] == request["version"]


NUL_ARGUMENTS = {
    "get_decision_trace": {"decision_id": "dec\x00x"},
    "search_similar_incidents": {"incident_id": "inc\x00x"},
    "query_decisions": {"symbol": "BTC\x00USDT"},
    "get_trading_config": {"symbol": "BTC\x00USDT"},
}


async def test_reads_of_gates_decisions_incidents_alerts_and_versions(connect, active_v1):
    async with connect("viewer") as viewer:
        gates = data(await viewer.call_tool("get_gate_status", {}))
        assert gates["active_policy_version"] == 1 and gates["gates"] == [] and gates["unverified_gates"] == []
        assert data(await viewer.call_tool("query_decisions", {"limit": 5})) == {"decisions": [], "next_cursor": None}
        bad_time = error(await viewer.call_tool("query_decisions", {"since": "yesterday"}))
        assert bad_time.startswith("VAL_ERR: since")
        # A shadow gate's decision is shown marked, and the `shadow` filter tells serving from shadow.
        serving, shadow = chain_of(2), chain_of(1, gate_id="gate-s", start=2, shadow=True)
        await sync_to_async(get_store().insert_decisions)(serving + shadow)
        marked = data(await viewer.call_tool("query_decisions", {"shadow": True}))["decisions"]
        assert [(d["decision_id"], d["shadow"]) for d in marked] == [(shadow[0].decision_id, True)]
        unmarked = data(await viewer.call_tool("query_decisions", {"shadow": False}))["decisions"]
        assert {d["decision_id"] for d in unmarked} == {r.decision_id for r in serving}
        assert not any(d["shadow"] for d in unmarked)
        missing = error(await viewer.call_tool("get_decision_trace", {"trace_id": "ab" * 16}))
        assert missing.startswith("NOT_FOUND")
        neither = error(await viewer.call_tool("get_decision_trace", {}))
        assert neither.startswith("VAL_ERR: give either")
        assert data(await viewer.call_tool("search_similar_incidents", {"text": "drawdown halt"})) == {"incidents": []}
        assert data(await viewer.call_tool("get_recent_alerts", {})) == {"alerts": []}
        versions = data(await viewer.call_tool("list_policy_versions", {}))["versions"]
        assert [v["version"] for v in versions] == [1]
        assert data(await viewer.call_tool("diff_policy_versions", {"version": 1}))["changes"] == []
        assert error(await viewer.call_tool("get_policy_version", {"version": 9})).startswith("NOT_FOUND")
        denied = error(await viewer.call_tool("propose_policy_change", {"rationale": "x", "changes": []}))
        assert denied.startswith("PERMISSION_DENIED")
        # PostgreSQL refuses text holding NUL: a decision id "dec\x00x" answered INTERNAL_ERROR there, and the
        # call went unrecorded (its arguments were refused too). One refusal for every tool, on both databases.
        for tool, arguments in NUL_ARGUMENTS.items():
            [name] = arguments
            refused = error(await viewer.call_tool(tool, arguments))
            assert refused == f"VAL_ERR: {name}: null characters are not allowed", tool
    calls = await sync_to_async(tool_call_log().recent_tool_calls)(limit=50, user="viewer")
    for tool, arguments in NUL_ARGUMENTS.items():
        [(name, value)] = arguments.items()
        spelled = value.replace("\x00", "\\x00")  # as recorded: text the database can store
        assert spelled in [c.arguments[name] for c in calls if c.tool == tool and c.error_code == "VAL_ERR"], tool


async def test_nobody_without_a_role_reads_anything(connect, active_v1):
    async with connect("nobody") as nobody:
        assert error(await nobody.call_tool("get_active_policy", {})).startswith("PERMISSION_DENIED")


async def test_trading_config_round_trips_through_the_engine(connect, engine):
    async with connect("agent") as agent:
        config = data(await agent.call_tool("get_trading_config", {"symbol": "BTCUSDT", "side": "LONG"}))
        assert config["parameters"]["leverage"] == 10 and config["symbol"] == "BTCUSDT"
        change = data(
            await agent.call_tool(
                "propose_trading_config_change",
                {"parameters": {"leverage": 4}, "rationale": "de-risk BTC longs", "symbol": "BTCUSDT", "side": "LONG"},
            )
        )
        assert change["status"] == "proposed" and change["before"] == {"leverage": 10}
        assert error(
            await agent.call_tool("propose_trading_config_change", {"parameters": {"leverage": 400}, "rationale": "x"})
        ).startswith("VAL_ERR: parameters.leverage")
        assert error(await agent.call_tool("approve_trading_config_change", {"change_id": change["id"]})).startswith(
            "PERMISSION_DENIED"
        )
        assert engine.overrides == {}
    async with connect("officer2") as officer:
        applied = data(await officer.call_tool("approve_trading_config_change", {"change_id": change["id"]}))
        assert applied["status"] == "applied"
        listed = data(await officer.call_tool("list_trading_config_changes", {"status": "applied"}))["changes"]
        assert [c["id"] for c in listed] == [change["id"]]
    assert engine.overrides[("BTCUSDT", "LONG")] == {"leverage": 4}


async def test_an_agent_checks_a_change_before_proposing_it(connect, active_v1):
    """An unsaved patch (or spec) is replayed against the active policy over the audited intents: nothing is
    proposed, the difference comes back, and a viewer may read the preview but not start one."""
    import time

    from tests.factories import audit_record

    await sync_to_async(get_store().insert_decisions)([audit_record(0, time.time() - 5)])
    patch = [{"scope": "global", "key": None, "field": "min_confidence", "value": 0.9}]
    async with connect("agent") as agent, connect("viewer") as viewer:
        checked = data(await agent.call_tool("preview_policy_impact", {"changes": patch, "window_hours": 1}))
        assert (checked["state"], checked["candidate_version"], checked["active_version"]) == ("done", None, 1)
        [cell] = checked["result"]["cells"]
        assert (cell["direction"], cell["reason_code"], cell["samples"][0]["decision_id"]) == (
            "approved_to_rejected",
            "CONFIDENCE_TOO_LOW",
            "d-0000",
        )
        polled = data(await viewer.call_tool("get_policy_impact", {"preview_id": checked["id"]}))
        assert polled["result"] == checked["result"]
        assert error(await viewer.call_tool("preview_policy_impact", {"changes": patch})).startswith(
            "PERMISSION_DENIED"
        )
        both = await agent.call_tool("preview_policy_impact", {"version": 1, "changes": patch})
        assert error(both).startswith("VAL_ERR")
    assert await sync_to_async(PolicyVersion.objects.count)() == 1  # nothing was proposed
