"""The thought log on every backend: a Strategist thought is kept once, with every field."""

from audit.records import Thought
from audit.store.thoughts import ThoughtLog
from tests.audit.records import T0


def test_every_backend_keeps_the_thought_log(audit_store):
    assert isinstance(audit_store, ThoughtLog)


def test_thoughts_are_stored_once(audit_store):
    thought = Thought("th-1", T0, "fake-llm-1", {"regime": "risk-off"}, {"max_order_notional_usd": 2e4}, "calmer", 4)
    assert audit_store.put_thought(thought)
    assert not audit_store.put_thought(thought)
    stored = audit_store.get_thought("th-1")
    assert stored is not None and stored.inputs_summary == {"regime": "risk-off"} and stored.proposed_version == 4
    assert audit_store.get_thought("th-2") is None


def test_a_strategist_thought_keeps_every_field(audit_store):
    thought = Thought(
        "th-9",
        T0,
        "gpt-test",
        {"trigger": "regime_shift", "regime": {"BTCUSDT": {"volatility": 0.07}}},
        {"changes": [{"scope": "global", "field": "min_confidence", "value": 0.6}], "raw": "{}", "attempts": 2},
        "tighter",
        7,
        trigger="regime_shift",
        brain="llm",
        trace_id="ab" * 16,
        prompt_hash="cd" * 32,
        prompt_tokens=1234,
        completion_tokens=56,
        validation={"schema": "ok", "only_tightens": True, "envelope": "inside", "outcome": "proposed"},
        fallback_reason=None,
        duration_ms=812,
    )
    assert audit_store.put_thought(thought)
    stored = audit_store.get_thought("th-9")
    assert stored is not None
    assert (stored.trigger, stored.brain, stored.trace_id, stored.prompt_hash) == (
        "regime_shift",
        "llm",
        "ab" * 16,
        "cd" * 32,
    )
    assert (stored.prompt_tokens, stored.completion_tokens, stored.duration_ms) == (1234, 56, 812)
    assert stored.validation == thought.validation and stored.output == thought.output
    assert stored.ts.replace(tzinfo=None) == T0.replace(tzinfo=None)
