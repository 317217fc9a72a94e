"""The decision function: pure and synchronous, (intent, policy, state, now) → verdict with every reason."""

from typing import NamedTuple

from cio_kernel.contracts.envelope import Reason
from cio_kernel.contracts.intent import Intent
from cio_kernel.reason_codes import ReasonCode
from gate.decision.book import Book
from gate.decision.bounds import TIME_TOL_S, exceeds
from gate.decision.context import DecisionContext
from gate.decision.controls import ALL_CONTROLS
from gate.decision.reducing import is_reducing
from gate.decision.state import StateView
from gate.decision.trading_state import halt_reason
from gate.policy.compiled import CompiledPolicy
from gate.policy.resolve import EffectiveLimits


class Verdict(NamedTuple):  # not a frozen dataclass, for the reason `DecisionContext` gives
    promote: bool
    reasons: tuple[Reason, ...]
    limits: EffectiveLimits
    notional_usd: float | None


def order_notional_usd(intent: Intent, limits: EffectiveLimits, state: StateView) -> float | None:
    """USD notional, or None when it cannot be known (docs/policy.md, "Engine-sized orders").

    quantity × entry price when the order carries a quantity. With quantity 0 the trade engine sizes it: as
    position_size_pct × its available balance × confidence when a percentage is given (bounded here by
    position_size_pct × equity), otherwise at about the exchange's minimum notional, capped by its
    max_position_size_usd — which the policy states as `engine_sized_notional_usd`.
    """
    if intent.quantity > 0:
        entry = intent.entry_price
        return intent.quantity * entry if entry > 0 else None
    if intent.position_size_pct is not None:
        book = state.book
        return intent.position_size_pct * book.snapshot.equity_usd if book is not None else None
    return limits.engine_sized_notional_usd


def known_position(symbol: str, book: Book | None, max_age_s: float, now: float) -> float | None:
    """The net position from a fresh snapshot; None when unknown (a stale book cannot prove an order reduces)."""
    if book is None or (now - book.ts > max_age_s and exceeds(now - book.ts, max_age_s, TIME_TOL_S)):
        return None
    held = book.snapshot.positions.get(symbol)
    return held.quantity if held is not None else 0.0


def evaluate(
    intent: Intent, policy: CompiledPolicy, state: StateView, now: float, subject: str | None = None
) -> Verdict:
    limits = policy.limits_for(intent.strategy_key, intent.symbol)
    if intent.action == "hold":
        reason = Reason(code=ReasonCode.HOLD_NOT_PROMOTED, message="hold intents are recorded, never promoted")
        return Verdict(False, (reason,), limits, None)
    halted = halt_reason(intent, limits, state)
    if halted is not None:
        return Verdict(False, (halted,), limits, None)

    book, rules = state.book, policy.global_rules
    position_qty = known_position(intent.symbol, book, rules.max_snapshot_age_s, now)
    ctx = DecisionContext(
        intent=intent,
        limits=limits,
        global_rules=rules,
        state=state,
        book=book,
        now=now,
        reducing=is_reducing(intent, position_qty),
        notional_usd=order_notional_usd(intent, limits, state),
        subject=subject,
    )
    reasons: list[Reason] = []
    for control in ALL_CONTROLS:
        reasons += control(ctx)
    return Verdict(not reasons, tuple(reasons), limits, ctx.notional_usd)
