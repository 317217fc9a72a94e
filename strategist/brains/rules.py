"""The rule brain: deterministic, no network, explicit rules (docs/strategist.md, "The rule brain").

Every governed limit is moved to a *target* that is a pure function of two things: the baseline (the last policy
a person made active) and the conditions now. So the same conditions always give the same proposal (a cycle that
runs again proposes nothing new), tightening happens when conditions worsen, and a limit returns to its baseline
value when they ease (a loosening, which only a risk officer can approve). Trading states are only ever
tightened: a person releases them.

Rules:
1. Volatility (per symbol with a fresh regime report): volatile scales the symbol's order notional to 50 % of its
   baseline limit, extreme to 25 % and also sets the symbol `reducing`; calm or normal restore the baseline.
2. Concentration (per symbol): a symbol holding at least half of the gross exposure is scaled to 50 % too.
3. Drawdown (the book): at or above half of the policy's `max_drawdown_pct` (10 % when the policy sets none),
   the global minimum confidence rises by 0.10 (at most 0.95) and the global order notional falls to 75 % of the
   baseline; below it, both return to the baseline.
"""

import math
from typing import Any

from cio_kernel.policy.spec import LimitSet, PolicySpec, TradingState
from strategist.bands import EXTREME, VOLATILE, band
from strategist.brains.base import PatchCheck, Thinking
from strategist.changes import Change
from strategist.context import CycleContext

MODEL = "rules-v1"
NOTIONAL_FACTOR = {VOLATILE: 0.5, EXTREME: 0.25}
CONCENTRATION_SHARE = 0.5
CONCENTRATION_FACTOR = 0.5
DRAWDOWN_WARNING = 0.5  # of the policy's max_drawdown_pct
DRAWDOWN_REFERENCE = 0.10  # when the policy sets no max_drawdown_pct
DRAWDOWN_NOTIONAL_FACTOR = 0.75
DRAWDOWN_CONFIDENCE_STEP = 0.10
MAX_CONFIDENCE = 0.95


def significant(value: float, digits: int = 3) -> float:
    """Round down to `digits` significant figures (a scaled limit never ends up above its exact target)."""
    if value <= 0:
        return value
    exponent = math.floor(math.log10(value)) - digits + 1
    step = 10.0**exponent
    return round(math.floor(value / step + 1e-9) * step, max(0, -exponent))


def _symbol_value(spec: PolicySpec, symbol: str, name: str) -> Any:
    rules = spec.symbols.get(symbol)
    return getattr(rules, name) if rules is not None else None


def _tightest(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


class RuleBrain:
    name = "rules"
    model = MODEL

    def think(self, context: CycleContext, check: PatchCheck) -> Thinking:
        active, baseline = context.active_spec(), context.baseline_spec()
        changes: list[Change] = []
        reasons: list[str] = []

        def target(scope: str, key: str | None, name: str, value: Any, current: Any, why: str) -> None:
            if value != current:
                changes.append(Change(scope=scope, key=key, field=name, value=value))  # type: ignore[arg-type]
                reasons.append(f"{why}: {scope}{'' if key is None else ' ' + key}.{name} {current!r} → {value!r}")

        for symbol in sorted(set(context.regime) | set(context.concentration)):
            entry = context.regime.get(symbol)
            share = context.concentration.get(symbol, 0.0)
            symbol_band = band(entry.volatility) if entry is not None else None
            factor, why = 1.0, []
            if symbol_band in NOTIONAL_FACTOR:
                factor = NOTIONAL_FACTOR[symbol_band]
                why.append(f"{symbol} volatility {entry.volatility:.1%} is {symbol_band}")  # type: ignore[union-attr]
            if share >= CONCENTRATION_SHARE:
                factor = min(factor, CONCENTRATION_FACTOR)
                why.append(f"{symbol} holds {share:.0%} of gross exposure")
            own = _symbol_value(baseline, symbol, "max_order_notional_usd")
            current = _symbol_value(active, symbol, "max_order_notional_usd")
            if factor < 1.0:
                reference = _tightest(baseline.global_rules.max_order_notional_usd, own)
                if reference is None:
                    reasons.append(f"{'; '.join(why)}, but the policy sets no order notional limit to scale")
                else:
                    target(
                        "symbol",
                        symbol,
                        "max_order_notional_usd",
                        significant(reference * factor),
                        current,
                        "; ".join(why),
                    )
            elif entry is not None or share > 0:
                calm = f"{symbol} is {symbol_band or 'unconcentrated'}: back to the baseline"
                target("symbol", symbol, "max_order_notional_usd", own, current, calm)
            state = _symbol_value(active, symbol, "trading_state")
            if symbol_band == EXTREME and (state is None or state == TradingState.ACTIVE):
                target(
                    "symbol",
                    symbol,
                    "trading_state",
                    TradingState.REDUCING.value,
                    state and state.value,
                    f"{symbol} volatility is extreme: only reducing intents",
                )

        portfolio = context.portfolio
        if portfolio is not None:
            self._drawdown(portfolio.drawdown_pct, active.global_rules, baseline.global_rules, target)
        problems = check(changes)
        if problems:  # a rule produced something the schema refuses: a bug here, never a proposal
            raise AssertionError(f"the rule brain made an invalid patch: {problems}")
        rationale = "\n".join(reasons) if reasons else "No change: " + _quiet(context)
        return Thinking(changes=changes, rationale=rationale, model=MODEL, raw_output=rationale)

    @staticmethod
    def _drawdown(drawdown: float, active: LimitSet, baseline: LimitSet, target: Any) -> None:
        reference = getattr(baseline, "max_drawdown_pct", None) or DRAWDOWN_REFERENCE
        stressed = drawdown >= DRAWDOWN_WARNING * reference
        why = (
            f"drawdown {drawdown:.1%} is at least half of {reference:.0%}"
            if stressed
            else f"drawdown {drawdown:.1%} is below half of {reference:.0%}: back to the baseline"
        )
        confidence = baseline.min_confidence
        notional = baseline.max_order_notional_usd
        if stressed:
            confidence = min(MAX_CONFIDENCE, round((confidence or 0.0) + DRAWDOWN_CONFIDENCE_STEP, 6))
            notional = significant(notional * DRAWDOWN_NOTIONAL_FACTOR) if notional is not None else None
        target("global", None, "min_confidence", confidence, active.min_confidence, why)
        target("global", None, "max_order_notional_usd", notional, active.max_order_notional_usd, why)


def _quiet(context: CycleContext) -> str:
    regime = ", ".join(f"{s} {band(e.volatility)}" for s, e in context.regime.items()) or "no fresh regime reports"
    book = f"drawdown {context.portfolio.drawdown_pct:.1%}" if context.portfolio is not None else "no fresh portfolio"
    return f"every governed limit is at its target ({regime}; {book})"
