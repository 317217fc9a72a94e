"""One identity per symbol and per strategy: no respelling escapes a limit, no subject speaks for another."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from cio_kernel.contracts.identity import IdentityError, strategy_key, subject_token, symbol_key
from cio_kernel.contracts.trading_state_notice import TradingStateNotice
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
    ("sent", "hint"),
    [("lunausdt", "LUNAUSDT"), ("LUNA/USDT", "LUNAUSDT"), ("btc-usdt", "BTCUSDT"), ("BTCUSDT\n", "BTCUSDT")],
)
def test_a_non_canonical_symbol_is_refused_with_the_canonical_spelling(sent, hint):
    with pytest.raises(ValidationError) as info:
        make_intent(symbol=sent)
    [error] = info.value.errors()
    assert error["loc"] == ("symbol",) and hint in error["msg"]


@pytest.mark.parametrize(
    "sent", ["BTCUSDT\n", "BTCUSDT\r\n", " BTCUSDT", "BTC\u0055SDT\u200b", "ＢＴＣＵＳＤＴ", "BTCUSDT\x00"]
)
def test_a_symbol_is_matched_as_a_whole_string(sent):
    with pytest.raises(IdentityError):
        symbol_key(sent)
    with pytest.raises(ValidationError):
        make_intent(symbol=sent)
    with pytest.raises(ValidationError):  # the policy side refuses exactly what the intake side refuses
        PolicySpec.parse({"global": {"denied_symbols": [sent]}})


def test_canonical_symbols_the_venues_use_are_accepted():
    for symbol in ("BTCUSDT", "BTCUSD_PERP", "ETHUSDT_251226", "1000PEPEUSDT"):
        assert make_intent(symbol=symbol).symbol == symbol == symbol_key(symbol)


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        ("Iceberg Order Detector", "iceberg_order_detector"),
        ("Iceberg_Order_Detector", "iceberg_order_detector"),
        ("iceberg-order.detector", "iceberg_order_detector"),
        ("  ICEBERG   order__detector ", "iceberg_order_detector"),
        ("momentum_pulse", "momentum_pulse"),
        ("llm-swing", "llm_swing"),
        ("market_logic_Spread Liquidity Monitor", "market_logic_spread_liquidity_monitor"),
    ],
)
def test_spellings_a_person_reads_as_one_strategy_have_one_key(spelling, key):
    assert (
        strategy_key(spelling)
        == key
        == strategy_key(subject_token(spelling))
        == make_intent(strategy_id=spelling).strategy_key
    )


@pytest.mark.parametrize(
    "spelling",
    [
        "momentum\n",
        "momentum_1\r",
        "mоmentum_1",  # Cyrillic о
        "momentum\u200b1",  # zero-width space
        "ｍｏｍｅｎｔｕｍ",  # full-width
        "evil\u202espoof",
        'quote"d',
        "tab\there",
        "a/b",
        "---",
        "",
        "x" * 201,
    ],
)
def test_anything_outside_the_strategy_alphabet_is_refused(spelling):
    with pytest.raises(IdentityError):
        strategy_key(spelling)
    with pytest.raises(ValidationError):
        make_intent(strategy_id=spelling)


@pytest.mark.parametrize(
    "policy",
    [
        {"symbols": {"lunausdt": {}}},
        {"symbols": {"BTCUSDT\n": {}}},
        {"global": {"denied_symbols": ["LUNA/USDT"]}},
        {"strategies": {"llm-swing": {}}},
        {"strategies": {"LLM_Swing": {}}},
        {"strategies": {"  ": {}}},
        {"strategies": {"evil\u202espoof": {}}},
        {"strategies": {'quote"d': {}}},
        {"strategies": {"tab\there": {}}},
    ],
)
def test_policy_keys_must_be_keys(policy):
    with pytest.raises(ValidationError):
        PolicySpec.parse(policy)


def test_a_policy_key_error_names_the_key_to_write():
    with pytest.raises(ValidationError) as info:
        PolicySpec.parse({"strategies": {"Iceberg Order Detector": {}}})
    assert "'iceberg_order_detector'" in str(info.value)


def test_a_strategy_cannot_escape_its_limits_by_respelling_its_id():
    spec = make_spec(min_confidence=0.55, strategies={"llm_swing": {"min_confidence": 0.7}})
    for spelling in ("llm-swing", "LLM-swing", "LLM_SWING", " llm.swing ", "llm swing"):
        verdict = evaluate(make_intent(strategy_id=spelling, confidence=0.6), compile_spec(spec), GateState(), NOW)
        assert codes(verdict) == {C.CONFIDENCE_TOO_LOW}, spelling


def test_respelling_does_not_reset_duplicate_and_rate_counters():
    spec = make_spec(dedupe_window_s=10, strategies={"llm_swing": {"max_intents_per_minute": 1}})
    policy, state = compile_spec(spec), GateState()
    first = make_intent(strategy_id="llm-swing", signal_id="s-1")
    verdict = evaluate(first, policy, state, NOW)
    assert verdict.promote
    state.record_promotion(first, verdict.limits.rate_rules, verdict.notional_usd, NOW)
    again = evaluate(make_intent(strategy_id="LLM Swing", signal_id="s-1"), policy, state, NOW + 1)
    assert {C.DUPLICATE_INTENT, C.DUPLICATE_WINDOW, C.RATE_LIMITED} <= codes(again)
    assert RateRule("strategy", "llm_swing", None, 1) in verdict.limits.rate_rules


def test_a_strategys_daily_loss_latch_holds_however_it_is_spelled():
    spec = make_spec(strategies={"llm_swing": {"max_daily_loss_usd": 100.0}})
    state = GateState()
    snapshot = make_snapshot({}, strategy_pnl={"LLM-Swing": -150.0})
    state.apply_snapshot(snapshot)
    [record] = trip_latches(state.latches, snapshot, spec, NOW, "g")
    assert record.key == "llm_swing"
    verdict = evaluate(make_intent(strategy_id="llm.SWING"), compile_spec(spec), state, NOW)
    assert codes(verdict) == {C.DAILY_LOSS_REDUCING}


def test_a_snapshot_that_spells_one_strategy_twice_or_a_symbol_otherwise_is_refused():
    with pytest.raises(ValidationError):
        make_snapshot({}, strategy_pnl={"llm-swing": -150.0, "LLM_Swing": 10.0})
    with pytest.raises(ValidationError):
        make_snapshot({"btcusdt": (1.0, 50_000.0)})


def test_a_halt_notice_holds_for_every_spelling_of_the_strategy_it_names():
    state = GateState()
    notice = TradingStateNotice(
        version=2, scope="strategy", key="Momentum 1", state="halted", reason="r", by="o", at=datetime.now(UTC)
    )
    assert state.override_state(notice.scope, notice.scope_key, notice.state, notice.version)
    for spelling in ("momentum-1", "MOMENTUM_1", "momentum.1"):
        verdict = evaluate(make_intent(strategy_id=spelling), compile_spec(make_spec()), state, NOW)
        assert codes(verdict) == {C.TRADING_HALTED}, spelling


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [
        ("cio.intent.trading.momentum-1", {}, set()),
        ("cio.intent.trading.momentum-1", {"strategy_id": "llm-swing"}, {C.IDENTITY_MISMATCH}),
        ("cio.intent.trading.Iceberg_Order_Detector", {"strategy_id": "Iceberg Order Detector"}, set()),
        ("cio.intent.trading.LLM-swing", {"strategy_id": "llm-swing"}, set()),  # one strategy, one key
        ("cio.intent.trading.llm.swing", {"strategy_id": "llm-swing"}, set()),
        ("cio.intent.trading.llm-swing-2", {"strategy_id": "llm-swing"}, {C.IDENTITY_MISMATCH}),
        ("intent.trading.BTCUSDT", {}, set()),
        ("intent.trading.ETHUSDT", {}, {C.IDENTITY_MISMATCH}),
        ("cio.nurse.audit", {}, set()),
    ],
)
def test_an_intent_speaks_only_for_the_identity_it_was_published_under(subject, body, expected):
    verdict = evaluate(make_intent(**body), compile_spec(make_spec()), GateState(), NOW, subject)
    assert codes(verdict) == expected


@pytest.mark.parametrize(
    ("subject", "strategy_id", "admitted"),
    [
        ("cio.intent.trading.momentum_pulse", "momentum_pulse", True),
        ("cio.intent.trading.momentum_pulse", "Momentum Pulse", True),  # its own subject, its own key
        ("cio.intent.trading.Momentum_Pulse", "momentum_pulse", False),  # not the subject only it may use
        ("cio.intent.trading.momentum-pulse", "momentum_pulse", False),
        ("cio.intent.trading.momentum.pulse", "momentum_pulse", False),
        ("intent.trading.BTCUSDT", "momentum_pulse", False),
        ("cio.nurse.audit", "momentum_pulse", False),
        ("cio.intent.trading", "momentum_pulse", False),
    ],
)
def test_a_strategy_with_its_own_identity_is_admitted_only_on_its_own_subject(subject, strategy_id, admitted):
    spec = make_spec(strategies={"momentum_pulse": {"own_identity": True}})
    verdict = evaluate(make_intent(strategy_id=strategy_id), compile_spec(spec), GateState(), NOW, subject)
    assert codes(verdict) == (set() if admitted else {C.IDENTITY_UNVERIFIED})


def test_a_policy_can_refuse_strategies_it_does_not_name():
    spec = make_spec(only_listed_strategies=True, strategies={"momentum_1": {}})
    policy = compile_spec(spec)
    assert evaluate(make_intent(strategy_id="Momentum-1"), policy, GateState(), NOW).promote
    for action in ("buy", "sell", "close"):
        verdict = evaluate(make_intent(strategy_id="momentum-2", action=action), policy, GateState(), NOW)
        assert C.STRATEGY_UNLISTED in codes(verdict) and not verdict.promote, action
    assert evaluate(make_intent(strategy_id="momentum-2"), compile_spec(make_spec()), GateState(), NOW).promote


@pytest.mark.parametrize("subject", ["cio.nurse.audit", "cio.intent.trading", "intent.trading.BTCUSDT"])
def test_a_policy_can_require_subjects_that_name_the_strategy(subject):
    spec = make_spec(require_identity_subject=True)
    assert codes(evaluate(make_intent(), compile_spec(spec), GateState(), NOW, subject)) == {C.IDENTITY_UNVERIFIED}
    assert evaluate(make_intent(), compile_spec(spec), GateState(), NOW, "cio.intent.trading.momentum-1").promote


def _only_reason(verdict):
    [reason] = verdict.reasons
    return reason


@pytest.mark.parametrize("rest", ["momentum$1", "***", "m" * 201, "момент"])
def test_a_subject_naming_no_valid_strategy_speaks_for_none(rest):
    """A subject remainder that is no strategy id at all (outside the alphabet, too long) names nobody: the intent
    is refused as a mismatch, never taken as the strategy's own subject."""
    subject = f"cio.intent.trading.{rest}"
    reason = _only_reason(evaluate(make_intent(), compile_spec(make_spec()), GateState(), NOW, subject))
    assert reason.code == C.IDENTITY_MISMATCH
    assert reason.observed == rest[:200] and reason.limit == "momentum_1"


def test_what_the_identity_reasons_tell_the_officer():
    """Each identity refusal names what it saw and what it expected, in its message and in observed/limit (the
    audit trail and the admin show both)."""
    policy = compile_spec(make_spec())
    mismatch = _only_reason(
        evaluate(make_intent(strategy_id="llm-swing"), policy, GateState(), NOW, "cio.intent.trading.momentum-1")
    )
    assert (mismatch.observed, mismatch.limit) == ("momentum-1", "llm_swing")
    assert mismatch.message == (
        "published on cio.intent.trading.momentum-1 but the intent's strategy is 'llm_swing': an intent speaks only "
        "for the strategy its subject names"
    )
    symbol = _only_reason(evaluate(make_intent(), policy, GateState(), NOW, "intent.trading.ETHUSDT"))
    assert (symbol.observed, symbol.limit) == (
        "ETHUSDT",
        "BTCUSDT",
    ) and "intent's symbol is 'BTCUSDT'" in symbol.message

    own = compile_spec(make_spec(strategies={"momentum_pulse": {"own_identity": True}}))
    unverified = _only_reason(
        evaluate(make_intent(strategy_id="momentum_pulse"), own, GateState(), NOW, "intent.trading.BTCUSDT")
    )
    assert unverified.code == C.IDENTITY_UNVERIFIED
    assert (unverified.observed, unverified.limit) == ("intent.trading.BTCUSDT", "cio.intent.trading.momentum_pulse")
    assert "admitted only on cio.intent.trading.momentum_pulse, not intent.trading.BTCUSDT" in unverified.message

    required = compile_spec(make_spec(require_identity_subject=True))
    anonymous = _only_reason(
        evaluate(make_intent(strategy_id="Iceberg Order Detector"), required, GateState(), NOW, "cio.nurse.audit")
    )
    assert anonymous.code == C.IDENTITY_UNVERIFIED and anonymous.observed == "cio.nurse.audit"
    assert anonymous.message.endswith("publish on cio.intent.trading.Iceberg_Order_Detector")

    listed_only = compile_spec(make_spec(only_listed_strategies=True, strategies={"llm_swing": {}}))
    unlisted = _only_reason(evaluate(make_intent(strategy_id="Momentum 1"), listed_only, GateState(), NOW))
    assert unlisted.code == C.STRATEGY_UNLISTED and unlisted.observed == "momentum_1"
    assert unlisted.message == (
        "strategy 'momentum_1' is not named in the policy, which admits only the strategies it names: a risk officer "
        "admits it by adding it under `strategies`"
    )


def test_a_long_subject_is_reported_by_its_first_200_characters():
    subject = "cio.nurse." + "a" * 250
    own = compile_spec(make_spec(strategies={"momentum_pulse": {"own_identity": True}}))
    required = compile_spec(make_spec(require_identity_subject=True))
    for policy, strategy_id in ((own, "momentum_pulse"), (required, "momentum-1")):
        reason = _only_reason(evaluate(make_intent(strategy_id=strategy_id), policy, GateState(), NOW, subject))
        assert (reason.code, reason.observed) == (C.IDENTITY_UNVERIFIED, subject[:200])
