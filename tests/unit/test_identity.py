"""One identity per symbol and per strategy: no respelling escapes a limit, no subject speaks for another."""

import pytest
from pydantic import ValidationError

from cio_kernel.contracts.identity import canonical_strategy
from cio_kernel.policy.spec import PolicySpec
from cio_kernel.reason_codes import ReasonCode as C
from gate.decision.evaluate import evaluate
from gate.decision.latches import trip_latches
from gate.decision.state import GateState
from gate.policy.resolve import RateRule
from tests.factories import NOW, compile_spec, make_intent, make_snapshot, make_spec


def codes(verdict) -> set[str]:
    return {r.code for r in verdict.reasons}


@pytest.mark.parametrize(
    ("sent", "hint"), [("lunausdt", "LUNAUSDT"), ("LUNA/USDT", "LUNAUSDT"), ("btc-usdt", "BTCUSDT")]
)
def test_a_non_canonical_symbol_is_refused_with_the_canonical_spelling(sent, hint):
    with pytest.raises(ValidationError) as info:
        make_intent(symbol=sent)
    [error] = info.value.errors()
    assert error["loc"] == ("symbol",) and hint in error["msg"]


def test_canonical_symbols_the_venues_use_are_accepted():
    for symbol in ("BTCUSDT", "BTCUSD_PERP", "ETHUSDT_251226", "1000PEPEUSDT"):
        assert make_intent(symbol=symbol).symbol == symbol


@pytest.mark.parametrize(
    "policy",
    [
        {"symbols": {"lunausdt": {}}},
        {"global": {"denied_symbols": ["LUNA/USDT"]}},
        {"strategies": {"llm-swing": {}, "LLM-Swing": {}}},
        {"strategies": {"  ": {}}},
        {"strategies": {"evil\u202espoof": {}}},
        {"strategies": {'quote"d': {}}},
        {"strategies": {"tab\there": {}}},
    ],
)
def test_policy_keys_must_be_identities(policy):
    with pytest.raises(ValidationError):
        PolicySpec.parse(policy)


def test_a_strategy_cannot_escape_its_limits_by_respelling_its_id():
    spec = make_spec(min_confidence=0.55, strategies={"llm-swing": {"min_confidence": 0.7}})
    for spelling in ("llm-swing", "LLM-swing", "LLM-SWING", " llm-swing "):
        assert canonical_strategy(spelling) == "llm-swing"
        verdict = evaluate(make_intent(strategy_id=spelling, confidence=0.6), compile_spec(spec), GateState(), NOW)
        assert codes(verdict) == {C.CONFIDENCE_TOO_LOW}, spelling


def test_respelling_does_not_reset_duplicate_and_rate_counters():
    spec = make_spec(dedupe_window_s=10, strategies={"llm-swing": {"max_intents_per_minute": 1}})
    policy, state = compile_spec(spec), GateState()
    first = make_intent(strategy_id="llm-swing", signal_id="s-1")
    verdict = evaluate(first, policy, state, NOW)
    assert verdict.promote
    state.record_promotion(first, verdict.limits.rate_rules, verdict.notional_usd, NOW)
    again = evaluate(make_intent(strategy_id="LLM-Swing", signal_id="s-1"), policy, state, NOW + 1)
    assert {C.DUPLICATE_INTENT, C.DUPLICATE_WINDOW, C.RATE_LIMITED} <= codes(again)
    assert RateRule("strategy", "llm-swing", None, 1) in verdict.limits.rate_rules


def test_a_strategys_daily_loss_latch_holds_however_it_is_spelled():
    spec = make_spec(strategies={"LLM-Swing": {"max_daily_loss_usd": 100.0}})
    state = GateState()
    snapshot = make_snapshot({}, strategy_pnl={"llm-swing": -150.0})
    state.apply_snapshot(snapshot)
    assert trip_latches(state.latches, snapshot, spec, NOW, "g")
    verdict = evaluate(make_intent(strategy_id="llm-SWING"), compile_spec(spec), state, NOW)
    assert codes(verdict) == {C.DAILY_LOSS_REDUCING}


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [
        ("cio.intent.trading.momentum-1", {}, set()),
        ("cio.intent.trading.momentum-1", {"strategy_id": "llm-swing"}, {C.IDENTITY_MISMATCH}),
        ("cio.intent.trading.Iceberg_Order_Detector", {"strategy_id": "Iceberg Order Detector"}, set()),
        ("cio.intent.trading.LLM-swing", {"strategy_id": "llm-swing"}, {C.IDENTITY_MISMATCH}),
        ("intent.trading.BTCUSDT", {}, set()),
        ("intent.trading.ETHUSDT", {}, {C.IDENTITY_MISMATCH}),
        ("cio.nurse.audit", {}, set()),
    ],
)
def test_an_intent_speaks_only_for_the_identity_it_was_published_under(subject, body, expected):
    verdict = evaluate(make_intent(**body), compile_spec(make_spec()), GateState(), NOW, subject)
    assert codes(verdict) == expected


@pytest.mark.parametrize("subject", ["cio.nurse.audit", "cio.intent.trading", "intent.trading.BTCUSDT"])
def test_a_policy_can_require_subjects_that_name_the_strategy(subject):
    spec = make_spec(require_identity_subject=True)
    assert codes(evaluate(make_intent(), compile_spec(spec), GateState(), NOW, subject)) == {C.IDENTITY_UNVERIFIED}
    assert evaluate(make_intent(), compile_spec(spec), GateState(), NOW, "cio.intent.trading.momentum-1").promote
