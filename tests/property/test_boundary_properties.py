"""Every limit holds at its boundary (docs/policy.md, "Boundaries"), one property per control, on the pure decision.

For each control: a value at the limit, computed the way a producer computes it in floating point, passes; one
meaningful step beyond it (1e-6 of the limit; 2 µs for durations, whose resolution is 1 µs) is refused with the
control's code; and the refusal's message prints the value beyond its printed limit, never equal to it. The latched
limits trip when reached: at the limit (up to rounding) they trip and print a value no smaller than the limit, and
a step inside they do not trip.
"""

import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cio_kernel.contracts.intent import Intent
from cio_kernel.policy.spec import PolicySpec
from cio_kernel.reason_codes import ReasonCode as C
from gate.decision.bounds import below, exceeds, figures, rounded
from gate.decision.evaluate import Verdict, evaluate
from gate.decision.latches import trading_day_start, trip_latches
from gate.decision.state import GateState
from tests.factories import NOW, compile_spec, make_intent, make_snapshot, make_spec

BOUNDARY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STEP = 1e-6  # "really beyond": a millionth of the limit, a thousand times the tolerance
TIME_STEP_S = 2e-6  # durations: two microseconds, twice their tolerance

# Policy figures are short decimals, as officers write them.
prices = st.builds(lambda units, places: units / 10**places, st.integers(1, 10**8), st.integers(0, 4))
fractions = st.integers(1, 9_999).map(lambda k: k / 10_000)
usd = st.builds(lambda cents: cents / 100, st.integers(100_00, 10_000_000_00))
seconds = st.integers(1, 36_000).map(lambda tenths: tenths / 10)
ulps = st.integers(-3, 3)  # a producer's last-bit error on a figure it sends as it computed it


def nudge(value: float, steps: int) -> float:
    for _ in range(abs(steps)):
        value = math.nextafter(value, math.inf if steps > 0 else -math.inf)
    return value


def decide(intent: Intent, spec: PolicySpec, state: GateState | None = None, now: float = NOW) -> Verdict:
    return evaluate(intent, compile_spec(spec), state or GateState(), now)


def _figures(verdict: Verdict, code: str, pattern: str) -> tuple[Decimal, Decimal]:
    """The value and the limit the reason for `code` prints, as exact decimals."""
    reason = next(r for r in verdict.reasons if r.code == code)
    found = re.search(pattern, reason.message)
    assert found is not None, reason.message
    value, limit = (Decimal(text.replace(",", "").rstrip("%")) for text in found.groups())
    return value, limit


def refused_above(verdict: Verdict, code: str, pattern: str) -> None:
    """Refused with `code`, whose message prints a value greater than the printed maximum."""
    assert {r.code for r in verdict.reasons} == {code}, verdict.reasons
    value, limit = _figures(verdict, code, pattern)
    assert value > limit, verdict.reasons


def refused_below(verdict: Verdict, code: str, pattern: str) -> None:
    assert {r.code for r in verdict.reasons} == {code}, verdict.reasons
    value, limit = _figures(verdict, code, pattern)
    assert value < limit, verdict.reasons


def latched(verdict: Verdict, code: str, pattern: str) -> None:
    """A reached limit: refused with `code`, printing a value no smaller than the limit."""
    assert {r.code for r in verdict.reasons} == {code}, verdict.reasons
    value, limit = _figures(verdict, code, pattern)
    assert value >= limit, verdict.reasons


def passes(verdict: Verdict) -> None:
    assert verdict.promote, verdict.reasons


def at_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


# -- order-level maxima and minima ----------
@BOUNDARY_SETTINGS
@given(minimum=st.integers(1, 100).map(lambda k: k / 100), scale=st.integers(1, 1_000), error=ulps)
def test_min_confidence(minimum: float, scale: int, error: int) -> None:
    # The producer scales a score into [0, 1]: (minimum × scale) / scale, and carries its last-bit error.
    confidence = min(1.0, nudge(minimum * scale / scale, error))
    spec = make_spec(min_confidence=minimum)
    passes(decide(make_intent(confidence=confidence), spec))
    verdict = decide(make_intent(confidence=minimum * (1 - STEP)), spec)
    refused_below(verdict, C.CONFIDENCE_TOO_LOW, r"confidence (\S+) is below the minimum (\S+)$")


@BOUNDARY_SETTINGS
@given(maximum=prices.filter(lambda q: 1e-4 <= q <= 1e6), price=prices.filter(lambda p: p >= 0.01), error=ulps)
def test_max_order_quantity(maximum: float, price: float, error: int) -> None:
    quantity = nudge(maximum * price / price, error)  # sized from a notional the producer derived from the cap
    spec = make_spec(max_order_quantity=maximum)
    base = {"price": price, "current_price": price, "stop_loss": None, "stop_loss_pct": 0.01}
    passes(decide(make_intent(quantity=quantity, **base), spec))
    verdict = decide(make_intent(quantity=maximum * (1 + STEP), **base), spec)
    refused_above(verdict, C.ORDER_QUANTITY_EXCEEDED, r"quantity (\S+) exceeds the maximum (\S+)$")


@BOUNDARY_SETTINGS
@given(maximum=usd, price=prices.filter(lambda p: 0.01 <= p <= 1e6))
def test_max_order_notional(maximum: float, price: float) -> None:
    quantity = maximum / price  # the producer sizes its order to the cap; the gate multiplies back
    spec = make_spec(max_order_notional_usd=maximum)
    base = {"price": price, "current_price": price, "stop_loss": None, "stop_loss_pct": 0.01}
    passes(decide(make_intent(quantity=quantity, **base), spec))
    verdict = decide(make_intent(quantity=quantity * (1 + STEP), **base), spec)
    refused_above(verdict, C.ORDER_NOTIONAL_EXCEEDED, r"order notional (\S+) USD exceeds the maximum (\S+) USD")


@BOUNDARY_SETTINGS
@given(maximum=fractions.filter(lambda f: f <= 0.99), equity=usd, error=ulps)
def test_max_position_size_pct(maximum: float, equity: float, error: int) -> None:
    pct = nudge(maximum * equity / equity, error)  # a share of its balance, back as a fraction
    spec = make_spec(max_position_size_pct=maximum)
    passes(decide(make_intent(position_size_pct=pct), spec))
    verdict = decide(make_intent(position_size_pct=maximum * (1 + STEP)), spec)
    refused_above(verdict, C.POSITION_SIZE_EXCEEDED, r"position_size_pct (\S+) exceeds the maximum (\S+)$")


@BOUNDARY_SETTINGS
@given(maximum=st.integers(1, 124), field=st.sampled_from(["leverage", "recommended_leverage"]))
def test_max_leverage(maximum: int, field: str) -> None:
    spec = make_spec(max_leverage=maximum)
    passes(decide(make_intent(**{field: maximum}), spec))
    verdict = decide(make_intent(**{field: maximum + 1}), spec)  # whole numbers: the next one is the step
    refused_above(verdict, C.LEVERAGE_EXCEEDED, r"requested leverage (\d+)x exceeds the maximum (\d+)x")


@BOUNDARY_SETTINGS
@given(
    maximum=st.integers(1, 5_000).map(lambda k: k / 10_000),
    price=prices.filter(lambda p: p >= 1e-3),
    action=st.sampled_from(["buy", "sell"]),
    as_pct=st.booleans(),
)
def test_max_stop_distance(maximum: float, price: float, action: str, as_pct: bool) -> None:
    side = -1 if action == "buy" else 1

    def stop(distance: float) -> dict[str, Any]:
        if as_pct:
            return {"stop_loss": None, "stop_loss_pct": distance}
        return {"stop_loss": price * (1 + side * distance)}  # the realtime adapter's stop

    base = {"action": action, "price": price, "current_price": price, "quantity": 0.001}
    spec = make_spec(max_stop_distance_pct=maximum)
    passes(decide(make_intent(**base, **stop(maximum)), spec))
    verdict = decide(make_intent(**base, **stop(maximum * (1 + STEP))), spec)
    refused_above(verdict, C.STOP_LOSS_TOO_WIDE, r"stop distance (\S+) exceeds the maximum (\S+)$")


@BOUNDARY_SETTINGS
@given(
    collar=st.integers(1, 10_000).map(lambda k: k / 10),
    current=prices.filter(lambda p: p >= 1e-2),
    side=st.sampled_from([-1, 1]),
)
def test_price_collar(collar: float, current: float, side: int) -> None:
    def order(bps: float) -> Intent:
        price = current * (1 + side * bps / 10_000)  # a limit price the producer placed at the collar
        return make_intent(order_type="limit", price=price, current_price=current, stop_loss=None, stop_loss_pct=0.01)

    spec = make_spec(price_collar_bps=collar)
    passes(decide(order(collar), spec))
    verdict = decide(order(collar * (1 + STEP)), spec)
    refused_above(verdict, C.PRICE_COLLAR_BREACHED, r"is (\S+) bps from current_price \S+; the collar is (\S+) bps")


# -- time ----------
stamps = st.integers(0, 10**9).map(lambda us: NOW + us / 1e6)  # the producer's clock, to the microsecond


@BOUNDARY_SETTINGS
@given(maximum=seconds, stamped=stamps)
def test_max_intent_age(maximum: float, stamped: float) -> None:
    intent = make_intent(timestamp=at_time(stamped))
    sent = intent.timestamp.timestamp()
    spec = make_spec(max_intent_age_s=maximum)
    passes(decide(intent, spec, now=sent + maximum))
    verdict = decide(intent, spec, now=sent + maximum + max(maximum * STEP, TIME_STEP_S))
    refused_above(verdict, C.INTENT_STALE, r"intent is (\S+) s old; the maximum age is (\S+) s")


@BOUNDARY_SETTINGS
@given(skew=st.integers(0, 600).map(lambda tenths: tenths / 10), stamped=stamps)
def test_max_clock_skew(skew: float, stamped: float) -> None:
    intent = make_intent(timestamp=at_time(stamped))
    sent = intent.timestamp.timestamp()
    spec = make_spec(max_clock_skew_s=skew)
    passes(decide(intent, spec, now=sent - skew))
    verdict = decide(intent, spec, now=sent - skew - max(skew * STEP, TIME_STEP_S))
    refused_above(verdict, C.INTENT_FROM_FUTURE, r"is (\S+) s in the future; the allowed clock skew is (\S+) s")


@BOUNDARY_SETTINGS
@given(maximum=seconds, taken=stamps)
def test_max_snapshot_age(maximum: float, taken: float) -> None:
    state = GateState()
    state.apply_snapshot(make_snapshot({}, ts=taken))
    book_ts = state.book.ts if state.book is not None else 0.0
    spec = make_spec(max_snapshot_age_s=maximum, max_total_exposure_usd=1e12, max_intent_age_s=None)

    def at(now: float) -> Verdict:
        return decide(make_intent(timestamp=at_time(now)), spec, state, now)

    passes(at(book_ts + maximum))
    verdict = at(book_ts + maximum + max(maximum * STEP, TIME_STEP_S))
    refused_above(verdict, C.SNAPSHOT_STALE, r"snapshot is (\S+) s old; the maximum is (\S+) s")


@BOUNDARY_SETTINGS
@given(window=st.integers(1, 600).map(lambda tenths: tenths / 10), promoted=stamps)
def test_dedupe_window(window: float, promoted: float) -> None:
    """A minimum interval: the same strategy, symbol and action exactly `window` later passes."""
    spec = make_spec(dedupe_window_s=window, max_intent_age_s=None)
    state = GateState()
    state.record_promotion(make_intent(signal_id="first"), (), None, promoted)
    passes(decide(make_intent(signal_id="again"), spec, state, promoted + window))
    verdict = decide(make_intent(signal_id="again"), spec, state, promoted + window - max(window * STEP, TIME_STEP_S))
    refused_below(verdict, C.DUPLICATE_WINDOW, r"(\S+) s ago; the dedupe window is (\S+) s")


@BOUNDARY_SETTINGS
@given(unit=st.sampled_from(["second", "minute"]), promoted=stamps)
def test_rate_window_edge(unit: str, promoted: float) -> None:
    """Counts are whole numbers; the window's edge is a duration: a promotion exactly a window ago has left it."""
    window = 1.0 if unit == "second" else 60.0
    spec = make_spec(max_intent_age_s=None, **{f"max_intents_per_{unit}": 1})
    state = GateState()
    first = decide(make_intent(signal_id="first"), spec, state, promoted)
    state.record_promotion(make_intent(signal_id="first"), first.limits.rate_rules, first.notional_usd, promoted)
    passes(decide(make_intent(signal_id="next"), spec, state, promoted + window))
    verdict = decide(make_intent(signal_id="next"), spec, state, promoted + window - TIME_STEP_S)
    assert {r.code for r in verdict.reasons} == {C.RATE_LIMITED}
    counted, limit = _figures(verdict, C.RATE_LIMITED, r"already promoted (\d+) intents .*; the limit is (\d+)/")
    assert counted >= limit


# -- exposure ----------
exposure_cases = {
    "maximum": usd,
    "held_share": st.integers(0, 90).map(lambda k: k / 100),
    "price": prices.filter(lambda p: 0.01 <= p <= 1e6),
}


def _exposure_at_the_boundary(maximum: float, held_share: float, price: float, gross: bool) -> None:
    held = maximum * held_share
    # The order is sized to the room left under the limit; gross exposure counts another symbol's position too.
    state = GateState()
    state.apply_snapshot(make_snapshot({"ETHUSDT" if gross else "BTCUSDT": (1.0, held)}))
    spec = make_spec(**({"max_total_exposure_usd": maximum} if gross else {"max_symbol_exposure_usd": maximum}))
    base = {"price": price, "current_price": price, "stop_loss": None, "stop_loss_pct": 0.01}

    def sized_to(limit: float) -> Intent:
        return make_intent(quantity=(limit - held) / price, **base)

    passes(decide(sized_to(maximum), spec, state))
    verdict = decide(sized_to(maximum * (1 + STEP)), spec, state)
    code = C.TOTAL_EXPOSURE_EXCEEDED if gross else C.SYMBOL_EXPOSURE_EXCEEDED
    refused_above(verdict, code, r"exposure (\S+) USD exceeds the limit (\S+) USD")


@BOUNDARY_SETTINGS
@given(**exposure_cases)
def test_max_symbol_exposure(maximum: float, held_share: float, price: float) -> None:
    _exposure_at_the_boundary(maximum, held_share, price, gross=False)


@BOUNDARY_SETTINGS
@given(**exposure_cases)
def test_max_total_exposure(maximum: float, held_share: float, price: float) -> None:
    _exposure_at_the_boundary(maximum, held_share, price, gross=True)


# -- latched limits: they trip when reached ----------
@BOUNDARY_SETTINGS
@given(maximum=st.integers(1, 99).map(lambda k: k / 100), peak=usd)
def test_max_drawdown_trips_when_reached(maximum: float, peak: float) -> None:
    def drawdown(limit: float) -> float:
        return (peak - peak * (1 - limit)) / peak  # from the book's equity and its peak

    spec = make_spec(max_drawdown_pct=maximum)
    inside = GateState()
    inside.apply_snapshot(make_snapshot({}, drawdown=drawdown(maximum * (1 - STEP))))
    passes(decide(make_intent(), spec, inside))
    snapshot = make_snapshot({}, drawdown=drawdown(maximum))
    state = GateState()
    state.apply_snapshot(snapshot)
    pattern = r"portfolio drawdown (\S+) reached the (\S+) limit"
    latched(decide(make_intent(), spec, state), C.DRAWDOWN_REDUCING, pattern)
    # Once stored, the latch prints what it recorded, in the same terms.
    assert trip_latches(state.latches, snapshot, spec, NOW, "gate-a")
    latched(decide(make_intent(), spec, state), C.DRAWDOWN_REDUCING, r"observed (\S+) against the limit (\S+)\)")


def _day_book(**fields: Any) -> GateState:
    state = GateState()
    state.apply_snapshot(make_snapshot({}, pnl_since=trading_day_start(NOW, "00:00"), **fields))
    return state


@BOUNDARY_SETTINGS
@given(maximum=usd, realised_share=st.integers(0, 100).map(lambda k: k / 100))
def test_max_daily_loss_usd_trips_when_reached(maximum: float, realised_share: float) -> None:
    def pnl(loss: float) -> float:
        return -(loss * realised_share) - (loss * (1 - realised_share))  # realised + unrealised

    spec = make_spec(max_daily_loss_usd=maximum)
    passes(decide(make_intent(), spec, _day_book(daily_pnl=pnl(maximum * (1 - STEP)))))
    verdict = decide(make_intent(), spec, _day_book(daily_pnl=pnl(maximum)))
    latched(verdict, C.DAILY_LOSS_REDUCING, r"the book lost (\S+) USD today; the limit is (\S+) USD")


@BOUNDARY_SETTINGS
@given(maximum=fractions, start_equity=usd)
def test_max_daily_loss_pct_trips_when_reached(maximum: float, start_equity: float) -> None:
    spec = make_spec(max_daily_loss_pct=maximum)

    def book(share: float) -> GateState:
        return _day_book(daily_pnl=-(share * start_equity), day_start_equity=start_equity)

    passes(decide(make_intent(), spec, book(maximum * (1 - STEP))))
    pattern = r"the book lost (\S+) of the day's starting equity today; the limit is (\S+)\)"
    latched(decide(make_intent(), spec, book(maximum)), C.DAILY_LOSS_REDUCING, pattern)


@BOUNDARY_SETTINGS
@given(maximum=usd, realised_share=st.integers(0, 100).map(lambda k: k / 100))
def test_strategy_max_daily_loss_trips_when_reached(maximum: float, realised_share: float) -> None:
    def book(loss: float) -> GateState:
        pnl = -(loss * realised_share) - (loss * (1 - realised_share))
        return _day_book(strategy_pnl={"momentum_1": pnl})

    spec = make_spec(strategies={"momentum_1": {"max_daily_loss_usd": maximum}})
    passes(decide(make_intent(), spec, book(maximum * (1 - STEP))))
    verdict = decide(make_intent(), spec, book(maximum))
    latched(verdict, C.DAILY_LOSS_REDUCING, r"momentum_1 lost (\S+) USD today; the limit is (\S+) USD")


# -- the printed figures themselves ----------
@settings(max_examples=300, deadline=None)
@given(
    limit=st.one_of(fractions, usd, seconds, st.floats(1e-6, 1e9)),
    beyond=st.one_of(st.integers(1, 10**6).map(lambda k: k * 1e-9), st.floats(1e-9, 10.0)),
    kind=st.sampled_from([("g", 6), ("%", 4), ("%", 2), (",f", 2), ("f", 3), ("f", 1)]),
    maximum=st.booleans(),
)
def test_a_refusal_never_prints_its_value_as_its_limit(
    limit: float, beyond: float, kind: tuple[str, int], maximum: bool
) -> None:
    """However little a value is beyond its limit (past the tolerance), the printed figures show which side it is."""
    value = limit * (1 + beyond) if maximum else limit * (1 - min(beyond, 0.5))
    if not (exceeds(value, limit) if maximum else below(value, limit)):
        return
    shown, bound = (Decimal(text.replace(",", "").rstrip("%")) for text in figures(value, limit, *kind))
    assert shown > bound if maximum else shown < bound
    observed = rounded(value, limit, kind[1])
    assert observed > limit if maximum else observed < limit
