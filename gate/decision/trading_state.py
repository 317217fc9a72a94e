"""The trading-state gateway: every reason an intent's scope is closed to it, in one place.

Sources, most severe first: a `halted` policy state (only `close` passes; nothing else is checked), then the
reducing-only sources — a `reducing` policy state, a drawdown latch, a daily-loss latch (global or the
intent's strategy). A latch counts from the moment a snapshot shows the breach, before `latch_sync` has stored
it, and until a human releases it (docs/policy.md, "Latched limits").
"""

from cio_kernel.contracts.envelope import Reason
from cio_kernel.contracts.intent import Intent
from cio_kernel.contracts.latch import GLOBAL_KEY, latch_id
from cio_kernel.policy.spec import TradingState
from cio_kernel.reason_codes import ReasonCode as C
from gate.decision.bounds import figures
from gate.decision.context import DecisionContext
from gate.decision.latches import (
    Breach,
    drawdown_breach,
    global_daily_loss_breach,
    strategy_daily_loss_breach,
    trading_day,
)
from gate.decision.state import StateView
from gate.policy.resolve import EffectiveLimits

_DRAWDOWN_ID = latch_id("drawdown", "global")


def halt_reason(intent: Intent, limits: EffectiveLimits, state: StateView) -> Reason | None:
    if intent.action == "close":
        return None
    if limits.trading_state is TradingState.HALTED:
        scope = f"{limits.state_scope} scope"
    else:
        override = state.state_override(intent.strategy_key, intent.symbol)
        if override is None or override[0] is not TradingState.HALTED:
            return None
        scope = f"{override[1]} scope, by the control plane's signed notice"
    return Reason(
        code=C.TRADING_HALTED,
        message=f"trading is halted ({scope}): only close intents are admitted",
        observed=intent.action,
    )


def _latched(state: StateView, latch: str, live: Breach | None, snapshot_ts: float) -> tuple[str, str] | None:
    """(how, why) when the latch holds or a live breach is about to trip it; None when the scope is open."""
    record = state.latch(latch)
    if record is not None and record.active:
        shown, bound = figures(record.observed, record.limit)
        return "latched", f"observed {shown} against the limit {bound}"
    if live is None:
        return None
    if record is not None and record.released_at is not None and snapshot_ts <= record.released_at:
        return None  # released by a human after this snapshot was taken
    return "breached", live.description


def _latch_reason(code: C, what: str, latch: str, found: tuple[str, str]) -> Reason:
    how, why = found
    return Reason(
        code=code,
        message=f"{what} limit {how} ({why}): reducing-only until a risk officer releases latch '{latch}'",
        observed=latch,
    )


def reducing_reasons(ctx: DecisionContext) -> list[Reason]:
    """Why a non-reducing intent may not pass: empty when every source leaves its scope open."""
    if ctx.reducing:
        return []
    limits, rules, intent = ctx.limits, ctx.global_rules, ctx.intent
    reasons: list[Reason] = []
    override = ctx.state.state_override(intent.strategy_key, intent.symbol)
    if limits.trading_state is TradingState.REDUCING or override is not None:
        scope = limits.state_scope if limits.trading_state is TradingState.REDUCING else f"{override[1]}, by notice"
        reasons.append(
            Reason(
                code=C.TRADING_REDUCING,
                message=f"trading state is 'reducing' ({scope} scope): only intents that shrink an "
                f"open position without flipping it are admitted",
                observed=intent.action,
            )
        )
    # A latch is looked up by its id only when the gate holds any latch record or the snapshot breaches the limit:
    # nearly always neither, and then no id (a string per scope and day) is built.
    state, book, held = ctx.state, ctx.book, ctx.state.holds_latches
    snapshot_ts = book.ts if book is not None else 0.0
    live = drawdown_breach(book, rules) if book is not None else None
    if (live is not None or held) and (found := _latched(state, _DRAWDOWN_ID, live, snapshot_ts)) is not None:
        reasons.append(_latch_reason(C.DRAWDOWN_REDUCING, "drawdown", _DRAWDOWN_ID, found))
    live = global_daily_loss_breach(book, rules, ctx.now) if book is not None else None
    if live is not None or held:
        global_id = latch_id("daily_loss", "global", GLOBAL_KEY, trading_day(ctx.now, rules.trading_day_start_utc))
        if (found := _latched(state, global_id, live, snapshot_ts)) is not None:
            reasons.append(_latch_reason(C.DAILY_LOSS_REDUCING, "daily loss", global_id, found))
    key = intent.strategy_key
    strategy_limit = limits.strategy_max_daily_loss_usd
    live = None
    if book is not None and strategy_limit is not None:
        live = strategy_daily_loss_breach(book, key, strategy_limit, rules, ctx.now)
    if live is not None or held:
        strategy_latch = latch_id("daily_loss", "strategy", key, trading_day(ctx.now, rules.trading_day_start_utc))
        if (found := _latched(state, strategy_latch, live, snapshot_ts)) is not None:
            reasons.append(_latch_reason(C.DAILY_LOSS_REDUCING, f"{key}'s daily loss", strategy_latch, found))
    return reasons
