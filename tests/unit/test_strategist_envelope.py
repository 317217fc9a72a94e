"""The envelope around Strategist proposals: ceilings on the global scope (unset is unlimited), the confidence
floor, forbidden states, and releases refused whatever the envelope says."""

from cio_kernel.policy.envelope import StrategistEnvelope, envelope_breaches
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
