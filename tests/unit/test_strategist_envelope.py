"""The envelope around Strategist proposals: ceilings on the global scope (unset is unlimited), the confidence
floor, forbidden states, and releases refused whatever the envelope says."""

from cio_kernel.policy.envelope import (
    AutoApprovalEnvelope,
    StrategistEnvelope,
    auto_approval_refusals,
    envelope_breaches,
)
from cio_kernel.policy.spec import PolicySpec, TradingState

ENVELOPE = StrategistEnvelope(
    max_order_notional_usd=50_000.0,
    max_leverage=5,
    min_confidence_floor=0.5,
    forbidden_states=frozenset({TradingState.HALTED}),
)


def _spec(glob: dict | None = None, **parts) -> PolicySpec:
    return PolicySpec.parse({"global": glob or {}, **parts})


def _fields(breaches) -> list[tuple[str, str]]:
    return [(b.field, b.scope) for b in breaches]


def test_a_proposal_inside_the_envelope_passes():
    inside = _spec({"max_order_notional_usd": 10_000.0, "max_leverage": 3, "min_confidence": 0.6})
    assert envelope_breaches(inside, ENVELOPE) == []


def test_each_breach_is_named():
    outside = _spec(
        {"max_order_notional_usd": 80_000.0, "min_confidence": 0.2}, strategies={"a": {"trading_state": "halted"}}
    )
    breaches = envelope_breaches(outside, ENVELOPE)
    assert _fields(breaches) == [
        ("max_order_notional_usd", "global"),
        ("max_leverage", "global"),  # unset globally: unlimited
        ("min_confidence", "global"),
        ("trading_state", "strategy:a"),
    ]
    assert "80000 is above the envelope's 50000" in breaches[0].message and "unlimited" in breaches[1].message


def test_a_release_is_refused_even_when_no_state_is_forbidden():
    active = _spec({"trading_state": "reducing"}, strategies={"a": {"trading_state": "halted"}})
    released = _spec({"trading_state": "active"})
    breaches = envelope_breaches(released, StrategistEnvelope(), active)
    assert _fields(breaches) == [("trading_state", "global"), ("trading_state", "strategy:a")]
    tightened = _spec({"trading_state": "halted"}, strategies={"a": {"trading_state": "halted"}})
    assert envelope_breaches(tightened, StrategistEnvelope(), active) == []


# -- the officers' baseline bounds what the envelope leaves open -------------------------------------------------
BASELINE = _spec(
    {"max_order_notional_usd": 20_000.0, "denied_symbols": ["LUNAUSDT"], "max_intents_per_second": 5},
    strategies={"momentum": {"allowed_symbols": ["BTCUSDT", "ETHUSDT"], "require_stop_loss": True}},
)


def test_loosening_past_the_officers_baseline_is_a_breach():
    proposal = _spec(
        {"max_order_notional_usd": 20_000.0, "denied_symbols": [], "max_intents_per_second": 50},
        strategies={"momentum": {"allowed_symbols": ["BTCUSDT", "ETHUSDT", "DOGEUSDT"]}},
    )
    breaches = envelope_breaches(proposal, StrategistEnvelope(), BASELINE, BASELINE)
    assert sorted(_fields(breaches)) == [
        ("allowed_symbols", "strategy:momentum"),
        ("denied_symbols", "global"),
        ("max_intents_per_second", "global"),
        ("require_stop_loss", "strategy:momentum"),
    ]
    deny = next(b for b in breaches if b.field == "denied_symbols")
    assert "denied_symbols [] is looser than the officers' baseline ([LUNAUSDT])" in deny.message


def test_loosening_back_towards_the_baseline_is_inside():
    tighter = _spec(
        {"max_order_notional_usd": 5_000.0, "denied_symbols": ["LUNAUSDT", "DOGEUSDT"], "max_intents_per_second": 2},
        strategies={"momentum": {"allowed_symbols": ["BTCUSDT"], "require_stop_loss": True}},
    )
    assert envelope_breaches(BASELINE, StrategistEnvelope(), tighter, BASELINE) == []  # all the way back: fine
    half_way = _spec(
        {"max_order_notional_usd": 10_000.0, "denied_symbols": ["LUNAUSDT"], "max_intents_per_second": 5},
        strategies={"momentum": {"allowed_symbols": ["BTCUSDT", "ETHUSDT"], "require_stop_loss": True}},
    )
    assert envelope_breaches(half_way, StrategistEnvelope(), tighter, BASELINE) == []


def test_a_ceiling_the_officers_set_replaces_the_baseline_for_its_field():
    wider = _spec(
        {"max_order_notional_usd": 40_000.0, "denied_symbols": ["LUNAUSDT"], "max_intents_per_second": 5},
        strategies={"momentum": {"allowed_symbols": ["BTCUSDT", "ETHUSDT"], "require_stop_loss": True}},
    )
    assert _fields(envelope_breaches(wider, StrategistEnvelope(), BASELINE, BASELINE)) == [
        ("max_order_notional_usd", "global")
    ]
    assert envelope_breaches(wider, StrategistEnvelope(max_order_notional_usd=50_000.0), BASELINE, BASELINE) == []
    assert _fields(
        envelope_breaches(wider, StrategistEnvelope(max_order_notional_usd=30_000.0), BASELINE, BASELINE)
    ) == [("max_order_notional_usd", "global")]


def test_what_the_live_policy_already_allows_is_not_a_new_breach():
    looser_live = _spec(
        {"max_order_notional_usd": 20_000.0, "denied_symbols": [], "max_intents_per_second": 5},
        strategies={"momentum": {"allowed_symbols": ["BTCUSDT", "ETHUSDT"], "require_stop_loss": True}},
    )  # an officer approved dropping the deny list
    assert envelope_breaches(looser_live, StrategistEnvelope(), looser_live, BASELINE) == []


# -- auto-approval: narrower still --------------------------------------------------------------------------------
AUTO = AutoApprovalEnvelope(min_fraction_of_baseline=0.5, max_min_confidence=0.8)
ACTIVE = _spec(
    {"max_order_notional_usd": 20_000.0, "min_confidence": 0.5, "allowed_symbols": ["BTCUSDT", "ETHUSDT"]},
    symbols={"BTCUSDT": {"max_order_quantity": 2.0}},
)


def _auto(proposal: PolicySpec) -> list[str]:
    return auto_approval_refusals(ACTIVE, proposal, ACTIVE, AUTO)


def _with(glob: dict | None = None, symbols: dict | None = None) -> PolicySpec:
    raw = ACTIVE.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["global"].update(glob or {})
    raw["symbols"].update(symbols or {})
    return PolicySpec.parse(raw)


def test_auto_approval_covers_moderate_cuts_and_reducing_a_symbol():
    moderate = _with(
        {"max_order_notional_usd": 10_000.0, "min_confidence": 0.6}, {"ETHUSDT": {"trading_state": "reducing"}}
    )
    assert _auto(moderate) == []


def test_auto_approval_never_covers_a_global_state_or_a_list():
    assert _auto(_with({"trading_state": "halted"})) == [
        "global.trading_state: a change of the global trading state is never approved unseen"
    ]
    assert _auto(_with({"trading_state": "reducing"}))[0].startswith("global.trading_state")
    assert _auto(_with({"allowed_symbols": ["BTCUSDT"]})) == [
        "global.allowed_symbols: shrinking or emptying an allow list is never approved unseen"
    ]
    assert "emptying" in _auto(_with({"allowed_symbols": []}))[0]
    assert _auto(_with({"denied_symbols": ["ETHUSDT"]})) == [
        "global.denied_symbols: changing a deny list is never approved unseen"
    ]


def test_auto_approval_refuses_deep_cuts_high_floors_and_other_states():
    assert _auto(_with({"max_order_notional_usd": 5_000.0})) == [
        "global.max_order_notional_usd: 5000 is below 0.5 of the officers' baseline (20000)"
    ]
    assert _auto(_with(symbols={"BTCUSDT": {"max_order_quantity": 0.5}}))[0].startswith(
        "symbol:BTCUSDT.max_order_quantity: 0.5 is below"
    )
    # a symbol's notional is measured against the global limit it lives under
    assert _auto(_with(symbols={"ETHUSDT": {"max_order_notional_usd": 9_000.0}}))[0].startswith(
        "symbol:ETHUSDT.max_order_notional_usd: 9000 is below 0.5 of the officers' baseline (20000)"
    )
    assert "above the auto-approval envelope's 0.8" in _auto(_with({"min_confidence": 0.95}))[0]
    assert "outside the auto-approval envelope" in _auto(_with(symbols={"ETHUSDT": {"trading_state": "halted"}}))[0]
    assert "nothing to measure the cut against" in _auto(_with({"max_leverage": 1}))[0]
    assert _auto(_with({"require_stop_loss": True})) == ["global.require_stop_loss: not a field auto-approval covers"]
