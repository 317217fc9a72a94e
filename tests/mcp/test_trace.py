"""From a decision to the thought behind its policy, over MCP: a Strategist cycle proposes v2 (with its thought),
officers approve and activate it, a gate decides under v2, and an agent follows the decision's id to the version,
the thought and the officers."""

import pytest
from asgiref.sync import sync_to_async

from audit.records import DecisionRecord
from audit.store import get_store
from policies import services
from strategist import cycle as cycles
from strategist.inputs import store_regime
from strategist.triggers import SCHEDULE, Trigger
from tests.audit.records import event
from tests.mcp.results import data

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def _strategist_version(settings, redis_url, redis_client, users) -> int:
    from datetime import UTC, datetime

    from cio_kernel.contracts.regime import RegimeUpdate

    settings.CIO_STRATEGIST_REDIS_URL = redis_url
    store_regime(redis_client, RegimeUpdate(ts=datetime.now(UTC), symbol="BTCUSDT", volatility=0.2))
    cycle = cycles.run_cycle(Trigger(SCHEDULE, {}), client=redis_client, use_env_llm=False)
    version = cycle.proposal
    services.approve(version, by=users["officer1"], reason="sensible")
    services.activate(version, by=users["officer2"])
    decided = event(0, policy_version=version.version, policy_checksum=version.checksum, decision_id="dec-under-v2")
    payload = decided.model_dump_json().encode()
    get_store().insert_decisions([DecisionRecord.of(decided, "cio.audit.decision.approved", payload, None)])
    return version.version


async def test_an_agent_follows_a_decision_to_the_thought_and_the_officers(
    connect, active_v1, settings, redis_url, redis_client, users
):
    version = await sync_to_async(_strategist_version)(settings, redis_url, redis_client, users)
    async with connect("agent") as agent:
        chain = data(await agent.call_tool("get_decision_trace", {"decision_id": "dec-under-v2"}))
    [decision] = chain["decisions"]
    policy = decision["policy"]
    assert decision["decision_id"] == "dec-under-v2" and policy["version"] == version
    assert policy["checksum_matches_decision"] is True
    assert policy["proposer_kind"] == "strategist" and policy["approved_by"] == "officer1"
    assert policy["activated_by"] == "officer2"
    thought = policy["thought"]
    assert thought["thought_id"] == policy["thought_id"] and thought["brain"] == "rules"
    assert thought["proposed_version"] == version and "extreme" in thought["rationale"]
