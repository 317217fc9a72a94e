"""The LLM brain against a real local server speaking the chat-completions protocol: good answers, answers that
need asking again, and every way it can fail (each falls back to the rule brain, and the thought says why)."""

import orjson
import pytest

from audit.store import get_store
from deploy.fake_openai import Step, answer
from policies.models import Status
from strategist import cycle as cycles
from strategist.budget import TokenBudget
from strategist.models import Outcome, StrategistSettings
from strategist.triggers import SCHEDULE, Trigger
from tests.strategist.helpers import llm_config, regime

pytestmark = pytest.mark.django_db(transaction=True)

TIGHTEN = [{"scope": "global", "key": None, "field": "min_confidence", "value": 0.6}]


def run(redis_client, server, **config):
    return cycles.run_cycle(
        Trigger(SCHEDULE, {}), client=redis_client, llm_config=llm_config(server, **config), use_env_llm=False
    )


def test_a_valid_answer_becomes_the_proposal(active_policy, redis_client, fake_llm):
    fake_llm.then(
        Step(
            content=answer(rationale="confidence up a notch", changes=TIGHTEN),
            usage={"prompt_tokens": 900, "completion_tokens": 40},
        )
    )
    cycle = run(redis_client, fake_llm)

    assert cycle.brain == "llm" and cycle.model == "test-model" and cycle.fallback_reason == ""
    assert cycle.outcome == Outcome.PROPOSED
    assert cycle.proposal.parsed_spec.global_rules.min_confidence == 0.6
    assert cycle.proposal.rationale.startswith("confidence up a notch")
    [request] = fake_llm.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test-llm-key-0123456789"
    body = request.json()
    assert body["model"] == "test-model" and body["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "sk-test-llm-key" not in request.body.decode()
    thought = get_store().get_thought(cycle.cycle_id)
    assert (thought.prompt_tokens, thought.completion_tokens) == (900, 40)
    assert thought.prompt_hash and len(thought.prompt_hash) == 64
    assert orjson.loads(thought.output["raw"])["changes"] == TIGHTEN
    assert TokenBudget(redis_client, 10**9).spent(cycle.started_at) == 940


def test_an_invalid_answer_is_asked_again_with_the_problems(active_policy, redis_client, fake_llm):
    bad_field = [{"scope": "global", "field": "max_notional", "value": 5}]
    fake_llm.then(Step(content=answer(changes=bad_field)), Step(content=answer(changes=TIGHTEN)))
    cycle = run(redis_client, fake_llm)
    assert cycle.brain == "llm" and cycle.outcome == Outcome.PROPOSED
    retry = fake_llm.requests[1].json()["messages"]
    assert [m["role"] for m in retry] == ["system", "user", "assistant", "user"]
    assert "'max_notional' is not a field of the global scope" in retry[-1]["content"]
    assert get_store().get_thought(cycle.cycle_id).output["attempts"] == 2


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        ([Step(content="this is not json"), Step(content='{"decision": "maybe"}')], "invalid_output"),
        ([Step(raw=b'{"choices": [', status=200)], "invalid_output"),
        ([Step(refusal="I can't help with trading decisions.")], "refusal"),
        ([Step(content="", finish_reason="content_filter")], "refusal"),
        ([Step(status=500, raw=b'{"error": {"message": "overloaded"}}')], "http_error"),
        ([Step(content=answer(changes=TIGHTEN), delay_s=5)], "timeout"),
    ],
    ids=["malformed-twice", "truncated-response", "refusal", "content-filter", "http-500", "timeout"],
)
def test_a_failing_llm_falls_back_to_the_rule_brain(active_policy, redis_client, fake_llm, steps, reason):
    regime(redis_client, "BTCUSDT", 0.07)  # the rule brain has something to say
    fake_llm.then(*steps)
    cycle = run(redis_client, fake_llm, timeout_s=0.5)

    assert cycle.brain == "rules" and cycle.model == "rules-v1"
    assert cycle.fallback_reason.startswith(reason)
    assert cycle.outcome == Outcome.PROPOSED  # the rule brain's volatility rule
    assert cycle.proposal.parsed_spec.symbols["BTCUSDT"].max_order_notional_usd == 10_000
    thought = get_store().get_thought(cycle.cycle_id)
    assert thought.fallback_reason.startswith(reason) and thought.output["llm_attempt"]["reason"] == reason
    assert thought.prompt_hash is not None  # what the failed call was sent, for the record


def test_the_daily_budget_stops_calls_before_they_are_made(active_policy, redis_client, fake_llm):
    TokenBudget(redis_client, 5_000).spend(4_500, cycles.timezone.now())
    cycle = run(redis_client, fake_llm, daily_token_budget=5_000)
    assert fake_llm.requests == []
    assert cycle.brain == "rules" and cycle.fallback_reason.startswith("budget")


def test_a_proposal_outside_the_envelope_is_refused_with_reasons(active_policy, redis_client, fake_llm, users):
    settings_row = StrategistSettings.current()
    settings_row.max_order_notional_usd = 30_000
    settings_row.forbidden_states = ["halted"]
    settings_row.save()
    loosen = [
        {"scope": "global", "field": "max_order_notional_usd", "value": 50_000},
        {"scope": "symbol", "key": "ETHUSDT", "field": "trading_state", "value": "halted"},
    ]
    fake_llm.then(Step(content=answer(rationale="more room", changes=loosen)))
    cycle = run(redis_client, fake_llm)

    assert cycle.brain == "llm" and cycle.outcome == Outcome.OUTSIDE_ENVELOPE
    refused = cycle.proposal
    assert refused.status == Status.REJECTED and refused.decided_by is None
    assert "max_order_notional_usd 50000 is above the envelope's 30000" in refused.decision_reason
    assert "symbol:ETHUSDT.trading_state: the Strategist may not set halted" in refused.decision_reason
    thought = get_store().get_thought(cycle.cycle_id)
    assert len(thought.validation["envelope"]) == 2 and thought.validation["only_tightens"] is False


def test_no_change_answer(active_policy, redis_client, fake_llm):
    cycle = run(redis_client, fake_llm)  # the server's default answer is no_change
    assert cycle.brain == "llm" and cycle.outcome == Outcome.NO_CHANGE and cycle.proposal is None
