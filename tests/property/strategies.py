"""Hypothesis strategies: random policies, their tightenings, intents and portfolio states; the settings the
properties run with, and a gate state built from a snapshot and past promotions."""

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from cio_kernel.contracts.intent import Intent
from cio_kernel.contracts.portfolio import StrategyBook
from cio_kernel.policy.spec import PolicySpec
from gate.decision.latches import trading_day_start
from gate.decision.state import GateState
from gate.policy.resolve import RateRule
from tests.factories import NOW, make_snapshot

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
STRATEGIES = ["alpha", "beta"]
ACTIONS = ["buy", "sell", "close", "hold"]
MODES = ["deterministic", "ml_light", "llm_reasoning"]
ORDER_TYPES = ["market", "limit", "stop"]
STATES = ["active", "reducing", "halted"]

PROPERTY_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly unset: random policies must approve often enough for the properties to mean something."""
    return st.one_of(st.none(), st.none(), strategy)


def rarely(value: Any, otherwise: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(value), st.just(value), st.just(value), otherwise)


prices = st.sampled_from([0.0, 0.5, 99.0, 100.0, 101.0, 150.0, 3_000.0])


_LIMIT_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "trading_state": st.sampled_from(STATES),
    "allowed_actions": st.sets(st.sampled_from(ACTIONS), min_size=1).map(sorted),
    "allowed_strategy_modes": st.sets(st.sampled_from(MODES), min_size=1).map(sorted),
    "allowed_order_types": st.sets(st.sampled_from(ORDER_TYPES), min_size=1).map(sorted),
    "min_confidence": st.sampled_from([0.0, 0.3, 0.5, 0.9]),
    "max_order_quantity": st.sampled_from([0.5, 1.0, 10.0]),
    "max_order_notional_usd": st.sampled_from([50.0, 1_000.0, 100_000.0]),
    "max_position_size_pct": st.sampled_from([0.01, 0.1, 1.0]),
    "require_stop_loss": st.booleans(),
    "max_stop_distance_pct": st.sampled_from([0.01, 0.05, 0.5]),
    "price_collar_bps": st.sampled_from([0.0, 50.0, 500.0]),
    "max_symbol_exposure_usd": st.sampled_from([100.0, 10_000.0]),
    "max_intents_per_second": st.sampled_from([1, 3]),
    "max_intents_per_minute": st.sampled_from([2, 10]),
    "max_leverage": st.sampled_from([1, 5, 20]),
    "engine_sized_notional_usd": st.sampled_from([20.0, 1_000.0]),
}
# Settings that exist only at global and strategy scope.
_BOOK_LIMITS: dict[str, st.SearchStrategy[Any]] = {"max_daily_loss_usd": st.sampled_from([100.0, 5_000.0])}


def _limit_set(draw: Any) -> dict[str, Any]:
    """A scope that sets a few limits (0 to 4) and leaves the rest unconstrained."""
    chosen = draw(st.sets(st.sampled_from(sorted(_LIMIT_VALUES)), max_size=4))
    return {name: (draw(_LIMIT_VALUES[name]) if name in chosen else None) for name in _LIMIT_VALUES}


@st.composite
def policy_dicts(draw: Any) -> dict[str, Any]:
    glob = _limit_set(draw)
    glob["trading_state"] = draw(rarely("active", st.sampled_from(STATES)))
    glob.update(
        allowed_symbols=draw(rarely(None, st.sets(st.sampled_from(SYMBOLS)).map(sorted))),
        denied_symbols=draw(rarely([], st.sets(st.sampled_from(SYMBOLS)).map(sorted))),
        require_timestamp=draw(st.booleans()),
        max_intent_age_s=draw(maybe(st.sampled_from([1.0, 30.0]))),
        max_clock_skew_s=draw(st.sampled_from([0.0, 2.0])),
        dedupe_window_s=draw(st.sampled_from([0.0, 5.0])),
        max_total_exposure_usd=draw(rarely(None, st.sampled_from([500.0, 50_000.0]))),
        max_drawdown_pct=draw(rarely(None, st.sampled_from([0.05, 0.2]))),
        max_snapshot_age_s=draw(st.sampled_from([5.0, 60.0])),
        max_daily_loss_usd=draw(maybe(_BOOK_LIMITS["max_daily_loss_usd"])),
        max_daily_loss_pct=draw(rarely(None, st.sampled_from([0.01, 0.1]))),
        trading_day_start_utc=draw(st.sampled_from(["00:00", "22:00"])),
    )
    strategies = {}
    for name in draw(st.sets(st.sampled_from(STRATEGIES))):
        rules = _limit_set(draw)
        rules["max_daily_loss_usd"] = draw(maybe(_BOOK_LIMITS["max_daily_loss_usd"]))
        rules["allowed_symbols"] = draw(rarely(None, st.sets(st.sampled_from(SYMBOLS)).map(sorted)))
        rules["denied_symbols"] = draw(rarely([], st.sets(st.sampled_from(SYMBOLS)).map(sorted)))
        strategies[name] = rules
    symbols = {name: _limit_set(draw) for name in draw(st.sets(st.sampled_from(SYMBOLS)))}
    return {"global": glob, "strategies": strategies, "symbols": symbols}


def _tighter_number(draw: Any, value: float | None, lower_is_tighter: bool, candidates: list[float]) -> Any:
    if lower_is_tighter:
        options = [c for c in candidates if value is None or c <= value]
    else:
        options = [c for c in candidates if value is None or c >= value]
    keep = [value] if value is not None else [None]
    return draw(st.sampled_from(keep + options))


_SEVERITY = {None: -1, "active": 0, "reducing": 1, "halted": 2}


def _tighten_limits(draw: Any, rules: dict[str, Any]) -> dict[str, Any]:
    out = dict(rules)
    state = rules.get("trading_state")
    out["trading_state"] = draw(st.sampled_from([s for s in [None, *STATES] if _SEVERITY[s] >= _SEVERITY[state]]))
    if state is not None and out["trading_state"] is None:
        out["trading_state"] = state
    for name, universe in (
        ("allowed_actions", ACTIONS),
        ("allowed_strategy_modes", MODES),
        ("allowed_order_types", ORDER_TYPES),
    ):
        current = rules.get(name)
        base = current if current is not None else universe
        subset = draw(st.sets(st.sampled_from(base)).map(sorted)) if base else []
        out[name] = draw(st.sampled_from([current, subset])) if current is not None else draw(maybe(st.just(subset)))
    out["min_confidence"] = _tighter_number(draw, rules.get("min_confidence"), False, [0.0, 0.3, 0.5, 0.9, 1.0])
    for name, candidates in (
        ("max_order_quantity", [0.1, 0.5, 1.0, 10.0]),
        ("max_order_notional_usd", [10.0, 50.0, 1_000.0, 100_000.0]),
        ("max_position_size_pct", [0.0, 0.01, 0.1, 1.0]),
        ("max_stop_distance_pct", [0.0, 0.01, 0.05, 0.5]),
        ("price_collar_bps", [0.0, 50.0, 500.0]),
        ("max_symbol_exposure_usd", [0.0, 100.0, 10_000.0]),
        ("max_intents_per_second", [1, 3]),
        ("max_intents_per_minute", [1, 2, 10]),
        ("max_leverage", [1, 2, 5, 20]),
    ):
        out[name] = _tighter_number(draw, rules.get(name), True, candidates)
    # A larger assumed notional for engine-sized orders is the stricter assumption; none at all is stricter still
    # (such orders cannot be priced, so a notional limit refuses them), so an unset one stays unset.
    if rules.get("engine_sized_notional_usd") is not None:
        out["engine_sized_notional_usd"] = _tighter_number(
            draw, rules["engine_sized_notional_usd"], False, [20.0, 1_000.0, 50_000.0]
        )
    if rules.get("require_stop_loss"):
        out["require_stop_loss"] = True
    else:
        out["require_stop_loss"] = draw(maybe(st.booleans()))
    return out


@st.composite
def tightened(draw: Any, policy: dict[str, Any]) -> dict[str, Any]:
    """A policy at least as strict as `policy` in every field and scope (it may add scopes)."""
    glob = _tighten_limits(draw, policy["global"])
    if glob["trading_state"] is None:
        glob["trading_state"] = policy["global"]["trading_state"]
    g = policy["global"]
    allowed = g["allowed_symbols"]
    pool = allowed if allowed is not None else SYMBOLS
    glob["allowed_symbols"] = draw(st.sets(st.sampled_from(pool)).map(sorted)) if pool else []
    if allowed is None:
        glob["allowed_symbols"] = draw(st.sampled_from([None, glob["allowed_symbols"]]))
    glob["denied_symbols"] = sorted(set(g["denied_symbols"]) | draw(st.sets(st.sampled_from(SYMBOLS))))
    glob["require_timestamp"] = g["require_timestamp"] or draw(st.booleans())
    glob["max_intent_age_s"] = _tighter_number(draw, g["max_intent_age_s"], True, [0.5, 1.0, 30.0])
    glob["max_clock_skew_s"] = _tighter_number(draw, g["max_clock_skew_s"], True, [0.0, 2.0])
    glob["dedupe_window_s"] = _tighter_number(draw, g["dedupe_window_s"], False, [0.0, 5.0, 10.0])
    glob["max_total_exposure_usd"] = _tighter_number(draw, g["max_total_exposure_usd"], True, [0.0, 500.0, 50_000.0])
    glob["max_drawdown_pct"] = _tighter_number(draw, g["max_drawdown_pct"], True, [0.0, 0.05, 0.2])
    glob["max_snapshot_age_s"] = _tighter_number(draw, g["max_snapshot_age_s"], True, [1.0, 5.0, 60.0])
    glob["max_daily_loss_usd"] = _tighter_number(draw, g["max_daily_loss_usd"], True, [50.0, 100.0, 5_000.0])
    glob["max_daily_loss_pct"] = _tighter_number(draw, g["max_daily_loss_pct"], True, [0.005, 0.01, 0.1])
    glob["trading_day_start_utc"] = g["trading_day_start_utc"]
    strategies = {}
    for name in STRATEGIES:
        base = policy["strategies"].get(name)
        if base is None and not draw(st.booleans()):
            continue
        base = base or {"allowed_symbols": None, "denied_symbols": []}
        rules = _tighten_limits(draw, base)
        allowed = base.get("allowed_symbols")
        if allowed is not None:
            rules["allowed_symbols"] = draw(st.sets(st.sampled_from(allowed)).map(sorted)) if allowed else []
        else:
            rules["allowed_symbols"] = draw(maybe(st.sets(st.sampled_from(SYMBOLS)).map(sorted)))
        rules["denied_symbols"] = sorted(set(base.get("denied_symbols", [])) | draw(st.sets(st.sampled_from(SYMBOLS))))
        rules["max_daily_loss_usd"] = _tighter_number(
            draw, base.get("max_daily_loss_usd"), True, [50.0, 100.0, 5_000.0]
        )
        strategies[name] = rules
    symbols = {}
    for name in SYMBOLS:
        base = policy["symbols"].get(name)
        if base is None and not draw(st.booleans()):
            continue
        symbols[name] = _tighten_limits(draw, base or {})
    return {"global": glob, "strategies": strategies, "symbols": symbols}


@st.composite
def intents(draw: Any) -> Intent:
    price = draw(rarely(100.0, prices))
    current = draw(rarely(100.0, st.just(0.0)))
    return Intent.model_validate(
        {
            "strategy_id": draw(st.sampled_from(STRATEGIES)),
            "symbol": draw(st.sampled_from(SYMBOLS)),
            "action": draw(st.sampled_from(["buy", "buy", "sell", "sell", "close", "hold"])),
            "confidence": draw(st.sampled_from([0.0, 0.3, 0.5, 0.95, 1.0])),
            "price": price,
            "quantity": draw(rarely(0.5, st.sampled_from([0.0, 0.1, 1.0, 20.0]))),
            "current_price": current,
            "source": "prop",
            "strategy": "prop",
            "signal_id": draw(maybe(st.sampled_from(["a", "b"]))),
            "strategy_mode": draw(maybe(st.sampled_from(MODES))),
            "order_type": draw(maybe(st.sampled_from(ORDER_TYPES))),
            "position_size_pct": draw(maybe(st.sampled_from([0.0, 0.05, 0.5]))),
            "stop_loss": draw(st.one_of(st.none(), st.sampled_from([0.0, 90.0, 99.5, 110.0]))),
            "stop_loss_pct": draw(maybe(st.sampled_from([0.0, 0.02, 0.2]))),
            "take_profit": draw(maybe(st.sampled_from([0.0, 90.0, 104.0, 110.0]))),
            "take_profit_pct": draw(maybe(st.sampled_from([0.0, 0.04]))),
            "recommended_leverage": draw(maybe(st.sampled_from([1, 3, 10, 50]))),
            "leverage": draw(maybe(st.sampled_from([2, 25]))),
            "timestamp": draw(
                rarely(NOW, st.sampled_from([None, NOW - 0.7, NOW - 10, NOW + 1, NOW + 5])).map(
                    lambda t: None if t is None else datetime.fromtimestamp(t, UTC).isoformat()
                )
            ),
        }
    )


@st.composite
def snapshots(draw: Any) -> Any:
    if draw(rarely(False, st.just(True))):
        return None
    positions = {
        s: (q, abs(q) * 100.0)
        for s in draw(st.sets(st.sampled_from(SYMBOLS)))
        for q in [draw(st.sampled_from([-1.0, -0.1, 0.5, 2.0]))]
    }
    snapshot = make_snapshot(
        positions,
        equity=draw(rarely(100_000.0, st.sampled_from([0.0, 1_000.0]))),
        drawdown=draw(st.sampled_from([0.0, 0.1, 0.3])),
        ts=NOW - draw(rarely(0.0, st.sampled_from([10.0, 100.0]))),
    )
    if not draw(st.booleans()):
        return snapshot
    # Daily PnL for today's window (or, sometimes, another one), for the book and some strategies.
    window = draw(st.sampled_from(["00:00", "00:00", "22:00"]))
    pnl = st.sampled_from([-10_000.0, -150.0, -60.0, 0.0, 500.0])
    return snapshot.model_copy(
        update={
            "pnl_since": datetime.fromtimestamp(trading_day_start(NOW, window), UTC),
            "daily_pnl_usd": draw(maybe(pnl)),
            "day_start_equity_usd": draw(maybe(st.sampled_from([1_000.0, 100_000.0]))),
            "strategies": {
                name: StrategyBook(daily_pnl_usd=draw(pnl)) for name in draw(st.sets(st.sampled_from(STRATEGIES)))
            },
        }
    )


def spec_of(policy: dict[str, Any]) -> PolicySpec:
    return PolicySpec.parse(policy)


def state_after(snapshot: Any, history: list[Intent]) -> GateState:
    """A gate's state holding `snapshot` (if any) and one promotion of each intent in `history`, just before NOW."""
    state = GateState()
    if snapshot is not None:
        state.apply_snapshot(snapshot)
    for i, past in enumerate(history):
        rules = (
            RateRule("global", "*", 1, 1),
            RateRule("strategy", past.strategy_id, 1, 1),
            RateRule("symbol", past.symbol, 1, 1),
        )
        notional = past.quantity * past.entry_price if past.quantity > 0 else None
        state.record_promotion(past, rules, notional, NOW - 0.5 + i * 0.1)
    return state
