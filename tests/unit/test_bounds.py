"""Limits hold at their boundary (docs/policy.md, "Boundaries"): the comparison helper, the realtime adapter's stop
exactly 5% away, and refusals whose printed figures never contradict the verdict."""

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from cio_kernel.policy.spec import PolicySpec
from cio_kernel.reason_codes import ReasonCode as C
from gate.decision.book import Book
from gate.decision.bounds import ABS_TOL, REL_TOL, TIME_TOL_S, below, exceeds, figures, reaches, rounded, tolerance
from gate.decision.evaluate import Verdict, evaluate
from gate.decision.latches import drawdown_breach, trading_day_start
from gate.decision.state import GateState
from tests.factories import NOW, compile_spec, make_intent, make_snapshot, make_spec

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "deploy" / "policies" / "example.json"

# What the realtime strategies send for a BTCUSDT market buy with their 5% stop: price and stop as computed there,
# in floating point (stop = price × (1 − 0.05)), and what the gate recomputes from them.
RT_PRICE = 60_000.5
RT_BUY_STOP = RT_PRICE * (1 - 0.05)  # 57000.475
RT_SELL_STOP = RT_PRICE * (1 + 0.05)  # 63000.525


def decide(intent, spec: PolicySpec, state: GateState | None = None, now: float = NOW) -> Verdict:
    return evaluate(intent, compile_spec(spec), state or GateState(), now)


def codes(verdict: Verdict) -> set[str]:
    return {r.code for r in verdict.reasons}


# -- the helper ----------
def test_a_value_equal_to_its_limit_up_to_rounding_is_within_it():
    assert not exceeds(0.050000000000000024, 0.05)
    assert exceeds(0.05 * (1 + 1e-6), 0.05)
    assert not below(0.55 - 1e-17, 0.55)
    assert below(0.55 * (1 - 1e-6), 0.55)
    assert reaches(0.15 - 1e-17, 0.15) and reaches(0.15, 0.15) and not reaches(0.15 * (1 - 1e-6), 0.15)


def test_the_tolerance_is_relative_with_a_floor():
    assert tolerance(25_000.0) == pytest.approx(25_000.0 * REL_TOL)
    assert tolerance(0.0) == ABS_TOL
    assert tolerance(30.0, TIME_TOL_S) == TIME_TOL_S
    assert not exceeds(ABS_TOL / 2, 0.0) and exceeds(ABS_TOL * 2, 0.0)
    # Durations: a second of 1.8e9 s timestamps is off by a few 1e-7 s; a microsecond is the timestamps' resolution.
    age = (NOW + 30.0) - NOW
    assert not exceeds(age + 4e-7, 30.0, TIME_TOL_S) and exceeds(30.000002, 30.0, TIME_TOL_S)


@pytest.mark.parametrize(
    ("value", "limit", "kind", "precision", "expected"),
    [
        (0.050000000833, 0.05, "%", 4, ("5.0000001%", "5.0000000%")),
        (0.07, 0.05, "%", 4, ("7.0000%", "5.0000%")),
        (25_000.0001, 25_000.0, ",f", 2, ("25,000.0001", "25,000.0000")),
        (0.5000001, 0.5, "g", 6, ("0.5000001", "0.5")),
        (0.549999, 0.55, "g", 6, ("0.549999", "0.55")),
        (0.15 - 1e-17, 0.15, "%", 2, ("15.00%", "15.00%")),  # reached, not exceeded: printed as the limit
    ],
)
def test_figures_differ_whenever_the_values_do(value, limit, kind, precision, expected):
    assert figures(value, limit, kind, precision) == expected


def test_observed_never_rounds_onto_its_limit():
    assert rounded(0.0500000004, 0.05, 6) > 0.05
    assert rounded(25_000.004, 25_000.0, 2) == 25_000.004
    assert rounded(4.9999994, 5.0, 3) < 5.0
    assert rounded(0.0712345, 0.05, 6) == 0.071235  # the usual rounding when it says what it should


# -- the realtime adapter's case (issue 18 §3) ----------
def test_the_naive_distance_of_the_realtime_stop_is_wider_than_5_percent():
    assert (RT_PRICE - RT_BUY_STOP) / RT_PRICE == 0.050000000000000024 > 0.05
    assert (RT_SELL_STOP - RT_PRICE) / RT_PRICE > 0.05


@pytest.mark.parametrize(("action", "stop"), [("buy", RT_BUY_STOP), ("sell", RT_SELL_STOP)])
def test_a_stop_exactly_5_percent_away_passes_a_5_percent_maximum(action, stop):
    intent = make_intent(action=action, price=RT_PRICE, current_price=RT_PRICE, quantity=0.001, stop_loss=stop)
    verdict = decide(intent, make_spec(max_stop_distance_pct=0.05))
    assert verdict.promote, verdict.reasons


def test_the_realtime_intent_passes_the_example_policy():
    """The whole example policy, with a book inside every limit: only the boundary was ever in the way."""
    spec = PolicySpec.parse(json.loads(EXAMPLE_POLICY.read_text()))
    assert spec.global_rules.max_stop_distance_pct == 0.05
    state = GateState()
    day_start = trading_day_start(NOW, spec.global_rules.trading_day_start_utc)
    state.apply_snapshot(make_snapshot({}, daily_pnl=0.0, pnl_since=day_start))
    body = {
        "strategy_id": "Iceberg Order Detector",
        "source": "realtime-strategies",
        "strategy": "iceberg_detector",
        "price": RT_PRICE,
        "current_price": RT_PRICE,
        "quantity": 0.001,
        "stop_loss": RT_BUY_STOP,
    }
    verdict = decide(make_intent(**body), spec, state)
    assert verdict.promote, verdict.reasons


def test_a_stop_really_beyond_the_maximum_is_refused_with_figures_that_show_it():
    stop = 57_000.47  # half a cent further: 5.0000083%, printed "5.00001%" against "5.00000%"
    verdict = decide(
        make_intent(price=RT_PRICE, current_price=RT_PRICE, stop_loss=stop), make_spec(max_stop_distance_pct=0.05)
    )
    assert codes(verdict) == {C.STOP_LOSS_TOO_WIDE}
    reason = verdict.reasons[0]
    shown, bound = re.fullmatch(r"stop distance (\S+)% exceeds the maximum (\S+)%", reason.message).groups()
    assert Decimal(shown) > Decimal(bound) == Decimal("5.0000000")
    assert reason.observed > reason.limit == 0.05


# -- boundaries elsewhere ----------
def test_intent_age_exactly_at_the_maximum_passes_and_a_millisecond_more_does_not():
    spec = make_spec(max_intent_age_s=30.0)
    assert decide(make_intent(), spec, now=NOW + 30.0).promote
    verdict = decide(make_intent(), spec, now=NOW + 30.001)
    assert codes(verdict) == {C.INTENT_STALE}
    assert verdict.reasons[0].message == "intent is 30.001 s old; the maximum age is 30.000 s"


def test_a_notional_sized_to_the_cap_passes():
    price = 20_000.17
    quantity = 25_000.0 / price  # the producer sizes its order to the cap; the gate multiplies back
    assert quantity * price > 25_000.0
    assert decide(
        make_intent(quantity=quantity, price=price, current_price=price, stop_loss=19_500.0),
        make_spec(max_order_notional_usd=25_000.0),
    ).promote


def test_a_drawdown_computed_at_the_limit_trips_the_latch():
    peak = 1_000_004.0
    drawdown = (peak - peak * (1 - 0.15)) / peak  # the producer's arithmetic: a hair under 0.15
    assert drawdown < 0.15
    snapshot = make_snapshot({}, drawdown=drawdown)
    breach = drawdown_breach(Book.of(snapshot), make_spec(max_drawdown_pct=0.15).global_rules)
    assert breach is not None and breach.description == "portfolio drawdown 15.00% reached the 15.00% limit"
    state = GateState()
    state.apply_snapshot(snapshot)
    verdict = decide(
        make_intent(timestamp=datetime.fromtimestamp(NOW, UTC).isoformat()), make_spec(max_drawdown_pct=0.15), state
    )
    assert codes(verdict) == {C.DRAWDOWN_REDUCING}


def test_a_snapshot_exactly_at_its_maximum_age_still_proves_a_reducing_order():
    """`known_position` and `snapshot_freshness` read one limit the same way: the book is fresh at exactly its age."""
    state = GateState()
    state.apply_snapshot(make_snapshot({"BTCUSDT": (0.5, 25_000.0)}, ts=NOW + 0.123456))
    assert state.book is not None
    book_ts = state.book.ts
    spec = make_spec(trading_state="reducing", max_snapshot_age_s=30.0, max_intent_age_s=None)
    sell = make_intent(action="sell", quantity=0.5, stop_loss=None)
    assert decide(sell, spec, state, now=book_ts + 30.0).promote
    assert codes(decide(sell, spec, state, now=book_ts + 30.001)) == {C.TRADING_REDUCING}
