"""One identity per symbol and per strategy, over arbitrary Unicode: a string is either refused or maps to the one
key every control uses, and no control that holds a key can be walked around by respelling it.

The respellings run through the gate's real intake (bytes → validation → decision → envelope, signal and audit
event) on the subject a producer would publish them on, under policies and notices that hold the canonical key.
"""

import contextlib
import re
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cio_kernel.contracts.audit_event import AuditEvent
from cio_kernel.contracts.heartbeat import GateCounters
from cio_kernel.contracts.identity import IdentityError, strategy_key, subject_token, symbol_key
from cio_kernel.contracts.promotion import PromotionNotice
from cio_kernel.policy.spec import PolicySpec, TradingState
from gate.config import GateSettings
from gate.decision.state import GateState
from gate.runtime.pipeline import DecisionPipeline, FixedPolicy
from gate.runtime.telemetry import DecisionTracer
from tests.factories import compile_spec, live_intent_body, make_intent, make_snapshot, make_spec

PROPS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9_]{0,39}")

# Every kind of character: control characters, line breaks, format characters, surrogates excluded (not UTF-8).
any_text = st.text(st.characters(codec="utf-8"), max_size=30)
# Characters that read like ASCII letters and digits, and the invisible or spacing ones a person does not see.
LOOKALIKES = {
    "a": ["а", "ɑ", "ａ"],
    "e": ["е", "ｅ"],
    "o": ["о", "ο", "０", "ｏ"],
    "c": ["с"],
    "p": ["р"],
    "i": ["і", "ı", "ｉ"],
    "l": ["ӏ", "１", "ｌ"],
    "u": ["υ", "ｕ"],
    "s": ["ѕ", "ｓ"],
    "n": ["ո"],
    "t": ["т"],
    "m": ["ｍ", "ṃ"],
    "1": ["１", "¹", "𝟏"],
    "_": ["＿", "‗"],
    "B": ["Β", "Ｂ", "в"],
    "T": ["Τ", "Ｔ"],
    "U": ["Ｕ", "Ս"],
    "S": ["Ѕ", "Ｓ"],
    "D": ["Ｄ"],
    "L": ["Ｌ", "Ꮮ"],
    "N": ["Ν", "Ｎ"],
    "A": ["А", "Α", "Ａ"],
    "C": ["С", "Ｃ"],
}
EDGES = ["", " ", "\n", "\r\n", "\r", "\t", "\u200b", "\u00a0", "\x00", "\u2028", "_", "-", ".", "\ufeff"]
SEPARATORS = ["_", " ", "-", ".", "__", " - ", "\t", "/", ":", "\u3000"]


@st.composite
def respelled(draw: Any, canonical: str) -> str:
    """`canonical` as an adversary might respell it: case, separators, edges, look-alikes, inserted text."""
    chars = list(canonical)
    for i, char in enumerate(chars):
        if char.isalpha() and draw(st.booleans()):
            chars[i] = char.swapcase()
        if char == "_" and draw(st.booleans()):
            chars[i] = draw(st.sampled_from(SEPARATORS))
        if char in LOOKALIKES and draw(st.integers(0, 9)) == 0:
            chars[i] = draw(st.sampled_from(LOOKALIKES[char]))
    text = "".join(chars)
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(any_text) + text[at:]
    return draw(st.sampled_from(EDGES)) + text + draw(st.sampled_from(EDGES))


# -- the two functions -------------------------------------------------------------------------------------------
@PROPS
@given(st.one_of(any_text, respelled("iceberg_order_detector"), respelled("momentum_pulse")))
def test_a_strategy_id_is_refused_or_has_one_key_that_every_spelling_and_its_subject_share(raw):
    try:
        key = strategy_key(raw)
    except IdentityError:
        with pytest.raises(ValidationError):
            make_intent(strategy_id=raw)
        return
    assert KEY.fullmatch(key) and raw.isascii() and "\n" not in raw
    assert strategy_key(key) == key  # a key is its own key
    assert strategy_key(subject_token(raw)) == key  # two ids that reach one signals subject are one strategy
    assert strategy_key(raw.upper()) == strategy_key(raw.lower()) == key  # so are two that differ in case
    assert make_intent(strategy_id=raw).strategy_key == key


@PROPS
@given(st.one_of(any_text, respelled("BTC_USDT"), respelled("LUNAUSDT")))
def test_a_symbol_is_refused_or_is_its_own_key_on_every_side(raw):
    try:
        key = symbol_key(raw)
    except IdentityError:
        with pytest.raises(ValidationError):
            make_intent(symbol=raw)
        with pytest.raises(ValidationError):  # the policy refuses exactly what the intake refuses
            PolicySpec.parse({"global": {"denied_symbols": [raw]}})
        return
    assert key == raw and SYMBOL.fullmatch(raw)
    assert make_intent(symbol=raw).symbol == raw
    assert PolicySpec.parse({"global": {"denied_symbols": [raw]}}).global_rules.denied_symbols == {raw}


@PROPS
@given(st.lists(st.one_of(any_text, respelled("llm_swing")), min_size=2, max_size=6))
def test_a_policy_holds_at_most_one_scope_per_strategy(spellings):
    valid = []
    for raw in spellings:
        try:
            valid.append((raw, strategy_key(raw)))
        except IdentityError:
            continue
    strategies = {raw: {} for raw, _ in valid}
    try:
        spec = PolicySpec.parse({"strategies": strategies})
    except ValidationError:
        assert any(raw != key for raw, key in valid)  # refused only because a key was not written as a key
        return
    assert all(raw == key for raw, key in valid) and len(spec.strategies) == len({k for _, k in valid})


# -- no control escaped by respelling, through the gate's real intake ---------------------------------------------
def _pipeline(spec: PolicySpec, state: GateState | None = None) -> DecisionPipeline:
    settings_ = GateSettings(gate_id="identity-props", max_intent_bytes=16_384)
    return DecisionPipeline(
        settings_, FixedPolicy(compile_spec(spec)), state or GateState(), DecisionTracer(None), GateCounters()
    )


def _decide(pipeline: DecisionPipeline, subject: str, body: dict[str, Any]) -> tuple[str, set[str], AuditEvent]:
    outcome = pipeline.process(subject, orjson.dumps(body), None, "_INBOX.props.1")
    audit = AuditEvent.model_validate_json(outcome.audit_payload)
    if outcome.signal is not None:
        signal = orjson.loads(outcome.signal.payload)
        # whatever was promoted carries exactly the canonical identities the controls compared
        assert signal["symbol"] == symbol_key(signal["symbol"])
        assert strategy_key(signal["strategy_id"]) == audit.strategy_key
    return outcome.decision, {r.code for r in audit.reasons}, audit


def _subjects(strategy_id: str, symbol: str) -> list[str]:
    return [
        f"cio.intent.trading.{subject_token(strategy_id)}",
        f"intent.trading.{subject_token(symbol)}",
        "cio.nurse.audit",
        "cio.intent.trading",
    ]


def _held_policies() -> list[tuple[str, PolicySpec, GateState | None, str]]:
    """Policies (and notices) that each hold one key, with the reason code that key must keep producing."""
    halted_by_notice = GateState()
    halted_by_notice.override_state("strategy", "llm_swing", TradingState.HALTED, 99)
    symbol_by_notice = GateState()
    symbol_by_notice.override_state("symbol", "LUNAUSDT", TradingState.HALTED, 99)
    return [
        ("strategy halted", make_spec(strategies={"llm_swing": {"trading_state": "halted"}}), None, "TRADING_HALTED"),
        ("strategy cap", make_spec(strategies={"llm_swing": {"max_order_quantity": 0.001}}), None,
         "ORDER_QUANTITY_EXCEEDED"),
        ("strategy halted by notice", make_spec(), halted_by_notice, "TRADING_HALTED"),
        ("symbol denied", make_spec(denied_symbols=["LUNAUSDT"]), None, "SYMBOL_DENIED"),
        ("symbol halted", make_spec(symbols={"LUNAUSDT": {"trading_state": "halted"}}), None, "TRADING_HALTED"),
        ("symbol reducing", make_spec(symbols={"LUNAUSDT": {"trading_state": "reducing"}}), None, "TRADING_REDUCING"),
        ("symbol cap", make_spec(symbols={"LUNAUSDT": {"max_order_quantity": 0.001}}), None, "ORDER_QUANTITY_EXCEEDED"),
        ("symbol halted by notice", make_spec(), symbol_by_notice, "TRADING_HALTED"),
        ("unlisted", make_spec(only_listed_strategies=True, strategies={"momentum_1": {}}), None, "STRATEGY_UNLISTED"),
    ]  # fmt: skip


HELD = _held_policies()


@PROPS
@given(
    held=st.sampled_from(range(len(HELD))),
    strategy_id=respelled("llm_swing"),
    symbol=respelled("LUNAUSDT"),
    subject_pick=st.integers(0, 3),
)
def test_no_control_that_holds_a_key_is_escaped_by_respelling_it(held, strategy_id, symbol, subject_pick):
    _, spec, state, code = HELD[held]
    pipeline = _pipeline(spec, state)
    body = live_intent_body(
        strategy_id=strategy_id, symbol=symbol, quantity=1.0, price=0.5, current_price=0.5, stop_loss=0.49
    )
    subject = _subjects(strategy_id, symbol)[subject_pick]
    decision, codes, audit = _decide(pipeline, subject, body)
    assert decision != "APPROVED"
    if "VAL_ERR" in codes:
        return  # refused at intake: not an identity
    assert code in codes
    assert audit.strategy_key == "llm_swing" and audit.symbol == "LUNAUSDT"


def test_the_canonical_spellings_pass_an_open_policy_so_the_property_above_can_fail():
    pipeline = _pipeline(make_spec(strategies={"llm_swing": {}}))
    body = live_intent_body(
        strategy_id="LLM Swing", symbol="LUNAUSDT", quantity=1.0, price=0.5, current_price=0.5, stop_loss=0.49
    )
    decision, codes, audit = _decide(pipeline, "cio.intent.trading.LLM_Swing", body)
    assert (decision, codes, audit.strategy_key) == ("APPROVED", set(), "llm_swing")


@PROPS
@given(strategy_id=respelled("llm_swing"))
def test_respelling_does_not_reset_counters_shared_with_peers(strategy_id):
    """What one gate promotes counts for its peers under the same key, however either intent spelled it."""
    # Inserted text can name another strategy (`0llm_swing`); a spelling refused at intake still has the property.
    with contextlib.suppress(IdentityError):
        assume(strategy_key(strategy_id) == "llm_swing")
    spec = make_spec(dedupe_window_s=60, strategies={"llm_swing": {"max_intents_per_minute": 1}})
    first = _pipeline(spec)
    decision, _, audit = _decide(first, "cio.nurse.audit", live_intent_body(strategy_id="llm-swing", signal_id="a"))
    assert decision == "APPROVED"
    peer_state = GateState()
    notice = PromotionNotice(
        gate_id="g1", ts=audit.ts.timestamp(), strategy_id="llm-swing", strategy_key=audit.strategy_key,
        symbol="BTCUSDT", action="buy", intent_id="a", notional_usd=500.0, policy_version=1,
    )  # fmt: skip
    rules = compile_spec(spec).limits_for(notice.strategy_key, notice.symbol).rate_rules
    peer_state.record(notice.strategy_key, notice.symbol, notice.action, notice.intent_id, rules, 500.0, notice.ts)
    peer = _pipeline(spec, peer_state)
    decision, codes, _ = _decide(peer, "cio.nurse.audit", live_intent_body(strategy_id=strategy_id, signal_id="a"))
    assert decision != "APPROVED"
    assert "VAL_ERR" in codes or {"DUPLICATE_INTENT", "DUPLICATE_WINDOW", "RATE_LIMITED"} <= codes


def test_a_snapshot_key_is_an_identity_too():
    """Exposure limits read positions by symbol key: a snapshot that spells a symbol otherwise is refused (the
    gate then has no fresh snapshot and fails closed) rather than hiding that position from the limits."""
    with pytest.raises(ValidationError):
        make_snapshot({"BTCUSDT\n": (1.0, 50_000.0)})
