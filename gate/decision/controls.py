"""Pre-trade controls: each a small pure function of the decision context returning the reasons it fails.

All controls run and all failures are reported; only HALTED short-circuits (see `evaluate`).
"""

from collections.abc import Callable

from cio_kernel.contracts.envelope import Reason
from cio_kernel.contracts.identity import IdentityError, strategy_key, strategy_subject, subject_identity, subject_token
from cio_kernel.contracts.intent import Intent
from cio_kernel.reason_codes import ReasonCode as C
from gate.decision.bounds import TIME_TOL_S, below, exceeds, figures, rounded, tolerance
from gate.decision.context import DecisionContext
from gate.decision.latches import daily_pnl_window_matches
from gate.decision.trading_state import reducing_reasons
from gate.policy.resolve import RateRule

Control = Callable[[DecisionContext], list[Reason]]
NONE: list[Reason] = []
# `Reason(**fields)` is this call behind a Python-level `__init__`; called directly, a refusal's reason is built in
# two thirds of the time (the same validation, the same model), which counts when a flood is refused intent by intent.
_reason = Reason.__pydantic_validator__.validate_python


def _reject(
    code: C, message: str, observed: float | str | None = None, limit: float | str | None = None
) -> list[Reason]:
    return [_reason({"code": code, "message": message, "observed": observed, "limit": limit})]


def _subject_names(kind: str, rest: str, intent: Intent) -> bool:
    """Does the subject's remainder name the intent's strategy (by key) or symbol (exactly)?"""
    if kind == "symbol":
        return rest == intent.symbol
    try:
        return strategy_key(rest) == intent.strategy_key
    except IdentityError:
        return False


def publisher_identity(ctx: DecisionContext) -> list[Reason]:
    """The intent speaks for the strategy (or symbol) its subject names, by key: respelling cannot borrow
    another's limits. A strategy with an identity of its own is admitted only on its own subject, the one its
    identity may publish on and nobody else may (docs/access.md). Subjects without a strategy prove nothing;
    `require_identity_subject` refuses them. In-process callers without a subject skip this control."""
    if ctx.subject is None:
        return NONE
    intent, named = ctx.intent, subject_identity(ctx.subject)
    key = intent.strategy_key
    if named is not None and not _subject_names(named[0], named[1], intent):
        kind = named[0]
        expected = key if kind == "strategy" else intent.symbol
        return _reject(
            C.IDENTITY_MISMATCH,
            f"published on {ctx.subject} but the intent's {kind} is {expected!r}: an intent speaks only for "
            f"the {kind} its subject names",
            named[1][:200],
            expected,
        )
    if ctx.limits.strategy_own_identity and ctx.subject != (own_subject := strategy_subject(key)):
        return _reject(
            C.IDENTITY_UNVERIFIED,
            f"strategy {key!r} publishes with an identity of its own: its intents are admitted only on "
            f"{own_subject}, not {ctx.subject}",
            ctx.subject[:200],
            own_subject,
        )
    if ctx.global_rules.require_identity_subject and (named is None or named[0] != "strategy"):
        return _reject(
            C.IDENTITY_UNVERIFIED,
            f"{ctx.subject} does not name the publishing strategy and the policy requires it: publish on "
            f"cio.intent.trading.{subject_token(intent.strategy_id)}",
            ctx.subject[:200],
        )
    return NONE


def strategy_admission(ctx: DecisionContext) -> list[Reason]:
    """With `only_listed_strategies`, a strategy the policy does not name may not trade at all (not even close:
    positions are per symbol, so an unknown bot's close would unwind the fleet's)."""
    if ctx.global_rules.only_listed_strategies and not ctx.limits.strategy_listed:
        key = ctx.intent.strategy_key
        return _reject(
            C.STRATEGY_UNLISTED,
            f"strategy {key!r} is not named in the policy, which admits only the strategies it names: a risk "
            "officer admits it by adding it under `strategies`",
            key,
        )
    return NONE


def trading_state(ctx: DecisionContext) -> list[Reason]:
    """Reducing-only scopes: the policy's `reducing` state and the drawdown and daily-loss latches."""
    return reducing_reasons(ctx)


def symbol_access(ctx: DecisionContext) -> list[Reason]:
    symbol = ctx.intent.symbol
    reasons: list[Reason] = []
    if ctx.limits.symbol_denied_by is not None:
        reasons += _reject(C.SYMBOL_DENIED, f"{symbol} is on the {ctx.limits.symbol_denied_by} deny list", symbol)
    # A reducing intent on a symbol that left the allow list still passes, so positions can be unwound.
    if ctx.limits.symbol_not_allowed_by is not None and not ctx.reducing:
        reasons += _reject(
            C.SYMBOL_NOT_ALLOWED,
            f"{symbol} is not on the {ctx.limits.symbol_not_allowed_by} allow list",
            symbol,
        )
    return reasons


def order_shape(ctx: DecisionContext) -> list[Reason]:
    intent, limits = ctx.intent, ctx.limits
    reasons: list[Reason] = []
    if limits.allowed_actions is not None and intent.action not in limits.allowed_actions:
        allowed = ",".join(sorted(limits.allowed_actions)) or "none"
        reasons += _reject(C.ACTION_NOT_ALLOWED, f"action '{intent.action}' is not allowed", intent.action, allowed)
    mode = intent.effective_strategy_mode
    if limits.allowed_strategy_modes is not None and mode not in limits.allowed_strategy_modes:
        allowed = ",".join(sorted(limits.allowed_strategy_modes)) or "none"
        reasons += _reject(C.STRATEGY_MODE_NOT_ALLOWED, f"strategy mode '{mode}' is not allowed", mode, allowed)
    order_type = intent.effective_order_type
    if limits.allowed_order_types is not None and order_type not in limits.allowed_order_types:
        allowed = ",".join(sorted(limits.allowed_order_types)) or "none"
        reasons += _reject(C.ORDER_TYPE_NOT_ALLOWED, f"order type '{order_type}' is not allowed", order_type, allowed)
    return reasons


def confidence(ctx: DecisionContext) -> list[Reason]:
    minimum = ctx.limits.min_confidence
    if minimum is not None and ctx.intent.confidence < minimum and below(ctx.intent.confidence, minimum):
        shown, bound = figures(ctx.intent.confidence, minimum)
        return _reject(
            C.CONFIDENCE_TOO_LOW,
            f"confidence {shown} is below the minimum {bound}",
            ctx.intent.confidence,
            minimum,
        )
    return NONE


def reference_prices(ctx: DecisionContext) -> list[Reason]:
    reasons: list[Reason] = []
    if ctx.intent.current_price <= 0:
        reasons += _reject(C.NO_REFERENCE_PRICE, "current_price must be positive to check the order", 0.0)
    if ctx.intent.is_priced_order and ctx.intent.price <= 0 and ctx.intent.action != "close":
        reasons += _reject(
            C.ORDER_PRICE_MISSING, f"a {ctx.intent.effective_order_type} order needs a positive price", 0.0
        )
    return reasons


def _exposure_limited(ctx: DecisionContext) -> bool:
    return ctx.limits.max_symbol_exposure_usd is not None or ctx.global_rules.max_total_exposure_usd is not None


def order_size_known(ctx: DecisionContext) -> list[Reason]:
    """An order's notional must be known wherever a limit needs it; the reason names the setting that fixes it."""
    intent = ctx.intent
    if not intent.opens_or_adds or ctx.notional_usd is not None:
        return NONE
    needs_notional = ctx.limits.max_order_notional_usd is not None or (not ctx.reducing and _exposure_limited(ctx))
    # A missing reference price is reported by `reference_prices`.
    if not needs_notional or intent.entry_price <= 0:
        return NONE
    if intent.position_size_pct is None:
        return _reject(
            C.ORDER_SIZE_UNKNOWN,
            "quantity is 0, so the trade engine sizes the order, and no policy scope states what such an order "
            "is worth: set engine_sized_notional_usd (global, strategy or symbol) for the notional and exposure "
            "limits to use",
        )
    return _reject(
        C.ORDER_SIZE_UNKNOWN,
        f"quantity is 0 and position_size_pct is {intent.position_size_pct:g}, but no portfolio snapshot gives "
        "the equity it is a share of, so the notional and exposure limits cannot be checked",
    )


def leverage(ctx: DecisionContext) -> list[Reason]:
    """Requested leverage above the scope's maximum is rejected, never clamped (`close` carries no leverage)."""
    maximum, requested = ctx.limits.max_leverage, ctx.intent.requested_leverage
    if maximum is None or requested is None or not ctx.intent.opens_or_adds:
        return NONE
    if requested <= maximum or not exceeds(requested, maximum):  # whole numbers: exact, but one rule everywhere
        return NONE
    return _reject(
        C.LEVERAGE_EXCEEDED,
        f"requested leverage {requested}x exceeds the maximum {maximum}x",
        requested,
        maximum,
    )


def order_size(ctx: DecisionContext) -> list[Reason]:
    """Fat-finger limits. `close` is exempt: it can only shrink risk."""
    intent, limits = ctx.intent, ctx.limits
    if not intent.opens_or_adds:
        return NONE
    reasons: list[Reason] = []
    max_quantity = limits.max_order_quantity
    if max_quantity is not None and intent.quantity > max_quantity and exceeds(intent.quantity, max_quantity):
        shown, bound = figures(intent.quantity, max_quantity)
        reasons += _reject(
            C.ORDER_QUANTITY_EXCEEDED,
            f"quantity {shown} exceeds the maximum {bound}",
            intent.quantity,
            max_quantity,
        )
    notional, max_notional = ctx.notional_usd, limits.max_order_notional_usd
    if (
        max_notional is not None
        and notional is not None
        and notional > max_notional
        and exceeds(notional, max_notional)
    ):
        shown, bound = figures(notional, max_notional, ",f", 2)
        reasons += _reject(
            C.ORDER_NOTIONAL_EXCEEDED,
            f"order notional {shown} USD exceeds the maximum {bound} USD",
            rounded(notional, max_notional, 2),
            max_notional,
        )
    pct, max_pct = intent.position_size_pct, limits.max_position_size_pct
    if max_pct is not None and pct is not None and pct > max_pct and exceeds(pct, max_pct):
        shown, bound = figures(pct, max_pct)
        reasons += _reject(
            C.POSITION_SIZE_EXCEEDED,
            f"position_size_pct {shown} exceeds the maximum {bound}",
            pct,
            max_pct,
        )
    return reasons


def _wrong_side(intent: Intent, level: float, entry: float, below_for_buy: bool) -> bool:
    """Whether `level` is on the wrong side of `entry`: a buy's stop (a sell's take-profit) must be below it."""
    if (intent.action == "buy") == below_for_buy:
        return level >= entry
    return level <= entry


def stop_loss(ctx: DecisionContext) -> list[Reason]:
    """Opening orders must carry a stop on the right side of the entry, within the maximum distance."""
    intent, limits = ctx.intent, ctx.limits
    if not intent.opens_or_adds or ctx.reducing:
        return NONE
    entry = intent.entry_price
    if intent.stop_loss is None and intent.stop_loss_pct is None:
        if limits.require_stop_loss:
            return _reject(C.STOP_LOSS_REQUIRED, "opening orders must carry stop_loss or stop_loss_pct")
        return NONE
    reasons: list[Reason] = []
    distances: list[float] = []
    if intent.stop_loss_pct is not None:
        if intent.stop_loss_pct == 0:
            reasons += _reject(C.STOP_LOSS_INVALID, "stop_loss_pct must be above 0", 0.0)
        distances.append(intent.stop_loss_pct)
    if intent.stop_loss is not None and entry > 0:
        if _wrong_side(intent, intent.stop_loss, entry, below_for_buy=True):
            side = "below" if intent.action == "buy" else "above"
            reasons += _reject(
                C.STOP_LOSS_INVALID,
                f"stop_loss {intent.stop_loss:g} must be {side} the entry price {entry:g} for a {intent.action}",
                intent.stop_loss,
                entry,
            )
        else:
            distances.append(abs(entry - intent.stop_loss) / entry)
    widest, maximum = max(distances) if distances else None, limits.max_stop_distance_pct
    # A stop exactly at the maximum distance reads back a few ulps wider (60000.5 and 57000.475: 0.050000000000000024).
    if maximum is not None and widest is not None and widest > maximum and exceeds(widest, maximum):
        shown, bound = figures(widest, maximum, "%", 4)
        reasons += _reject(
            C.STOP_LOSS_TOO_WIDE,
            f"stop distance {shown} exceeds the maximum {bound}",
            rounded(widest, maximum, 6),
            maximum,
        )
    return reasons


def take_profit(ctx: DecisionContext) -> list[Reason]:
    """A take-profit on the wrong side of the entry would fill at once: rejected like a wrong-side stop."""
    intent = ctx.intent
    if not intent.opens_or_adds or ctx.reducing:
        return NONE
    reasons: list[Reason] = []
    if intent.take_profit_pct == 0:
        reasons += _reject(C.TAKE_PROFIT_INVALID, "take_profit_pct must be above 0", 0.0)
    entry = intent.entry_price
    if intent.take_profit is not None and entry > 0 and _wrong_side(intent, intent.take_profit, entry, False):
        side = "above" if intent.action == "buy" else "below"
        reasons += _reject(
            C.TAKE_PROFIT_INVALID,
            f"take_profit {intent.take_profit:g} must be {side} the entry price {entry:g} for a {intent.action}",
            intent.take_profit,
            entry,
        )
    return reasons


def price_collar(ctx: DecisionContext) -> list[Reason]:
    """|price − current_price| / current_price, in bps, for every priced order type (both sides: see docs)."""
    intent, collar = ctx.intent, ctx.limits.price_collar_bps
    if collar is None or not intent.is_priced_order or intent.current_price <= 0 or intent.price <= 0:
        return NONE
    deviation_bps = abs(intent.price - intent.current_price) / intent.current_price * 10_000
    if deviation_bps > collar and exceeds(deviation_bps, collar):
        shown, bound = figures(deviation_bps, collar, "f", 1)
        return _reject(
            C.PRICE_COLLAR_BREACHED,
            f"price {intent.price:g} is {shown} bps from current_price {intent.current_price:g}; "
            f"the collar is {bound} bps",
            rounded(deviation_bps, collar, 2),
            collar,
        )
    return NONE


def freshness(ctx: DecisionContext) -> list[Reason]:
    rules, ts = ctx.global_rules, ctx.intent.timestamp_s
    if ts is None:
        if rules.require_timestamp:
            return _reject(C.TIMESTAMP_MISSING, "the intent carries no timestamp and the policy requires one")
        return NONE
    age, max_age, skew = ctx.now - ts, rules.max_intent_age_s, rules.max_clock_skew_s
    if max_age is not None and age > max_age and exceeds(age, max_age, TIME_TOL_S):
        shown, bound = figures(age, max_age, "f", 3)
        return _reject(
            C.INTENT_STALE,
            f"intent is {shown} s old; the maximum age is {bound} s",
            rounded(age, max_age, 3),
            max_age,
        )
    if -age > skew and exceeds(-age, skew, TIME_TOL_S):
        shown, bound = figures(-age, skew, "f", 3)
        return _reject(
            C.INTENT_FROM_FUTURE,
            f"intent timestamp is {shown} s in the future; the allowed clock skew is {bound} s",
            rounded(-age, skew, 3),
            skew,
        )
    return NONE


def duplicates(ctx: DecisionContext) -> list[Reason]:
    intent, reasons = ctx.intent, []
    intent_id = intent.intent_id
    if intent_id is not None and ctx.state.was_promoted(intent.strategy_key, intent_id, ctx.now):
        reasons += _reject(C.DUPLICATE_INTENT, f"intent '{intent_id}' was already promoted", intent_id)
    window = ctx.global_rules.dedupe_window_s
    if window > 0 and intent.action != "hold":
        last = ctx.state.last_promoted_at(intent.strategy_key, intent.symbol, intent.action)
        # The window is a minimum interval: a repeat exactly `window` seconds later is outside it.
        if last is not None and ctx.now - last < window and below(ctx.now - last, window, TIME_TOL_S):
            shown, bound = figures(ctx.now - last, window, "f", 3)
            reasons += _reject(
                C.DUPLICATE_WINDOW,
                f"{intent.strategy_key} promoted {intent.action} {intent.symbol} {shown} s ago; "
                f"the dedupe window is {bound} s",
                rounded(ctx.now - last, window, 3),
                window,
            )
    return reasons


# A rate window counts the promotions younger than it: one exactly a window old, up to the tolerance of durations,
# has left it. So each window is counted over its length less that tolerance (computed once, not per decision).
_SECOND_S = 1.0 - tolerance(1.0, TIME_TOL_S)
_MINUTE_S = 60.0 - tolerance(60.0, TIME_TOL_S)


def rate_limits(ctx: DecisionContext) -> list[Reason]:
    reasons: list[Reason] = []
    for rule in ctx.limits.rate_rules:
        if rule.per_second is not None:
            reasons += _rate_limited(ctx, rule, rule.per_second, _SECOND_S, "second")
        if rule.per_minute is not None:
            reasons += _rate_limited(ctx, rule, rule.per_minute, _MINUTE_S, "minute")
    return reasons


def _rate_limited(ctx: DecisionContext, rule: RateRule, limit: int, window: float, unit: str) -> list[Reason]:
    # Counts and limits are whole numbers: compared exactly.
    count = ctx.state.promoted_count(rule.scope, rule.key, window, ctx.now)
    if count + 1 > limit:
        return _reject(
            C.RATE_LIMITED,
            f"{rule.scope} '{rule.key}' already promoted {count} intents in the last {unit}; "
            f"the limit is {limit}/{unit}",
            count,
            limit,
        )
    return NONE


def _daily_loss_limited(ctx: DecisionContext) -> bool:
    rules = ctx.global_rules
    return (
        rules.max_daily_loss_usd is not None
        or rules.max_daily_loss_pct is not None
        or ctx.limits.strategy_max_daily_loss_usd is not None
    )


def _snapshot_needed(ctx: DecisionContext) -> bool:
    return ctx.global_rules.max_drawdown_pct is not None or _exposure_limited(ctx) or _daily_loss_limited(ctx)


def snapshot_freshness(ctx: DecisionContext) -> list[Reason]:
    """Exposure, drawdown and daily loss limits fail closed: without a fresh snapshot only reducing intents pass."""
    if ctx.reducing or not ctx.intent.opens_or_adds or not _snapshot_needed(ctx):
        return NONE
    book = ctx.book
    if book is None:
        return _reject(C.SNAPSHOT_MISSING, "no portfolio snapshot has been received; exposure cannot be checked")
    age, max_age = ctx.now - book.ts, ctx.global_rules.max_snapshot_age_s
    if age > max_age and exceeds(age, max_age, TIME_TOL_S):
        shown, bound = figures(age, max_age, "f", 1)
        return _reject(
            C.SNAPSHOT_STALE,
            f"the portfolio snapshot is {shown} s old; the maximum is {bound} s",
            rounded(age, max_age, 1),
            max_age,
        )
    return NONE


def daily_pnl_known(ctx: DecisionContext) -> list[Reason]:
    """A daily loss limit fails closed: a snapshot without today's PnL for the scope admits only reducing intents."""
    book = ctx.book
    if ctx.reducing or not ctx.intent.opens_or_adds or book is None or not _daily_loss_limited(ctx):
        return NONE
    rules, portfolio = ctx.global_rules, book.snapshot
    if not daily_pnl_window_matches(book, rules, ctx.now):
        since = portfolio.pnl_since.isoformat() if portfolio.pnl_since else "missing"
        return _reject(
            C.DAILY_PNL_UNKNOWN,
            f"a daily loss limit applies but the snapshot's PnL window (pnl_since {since}) is not the current "
            f"trading day (starting {rules.trading_day_start_utc} UTC)",
        )
    reasons: list[Reason] = []
    global_limited = rules.max_daily_loss_usd is not None or rules.max_daily_loss_pct is not None
    if global_limited and portfolio.daily_pnl_usd is None:
        reasons += _reject(C.DAILY_PNL_UNKNOWN, "a daily loss limit applies but the snapshot has no daily_pnl_usd")
    elif rules.max_daily_loss_pct is not None and not portfolio.day_start_equity_usd:
        reasons += _reject(
            C.DAILY_PNL_UNKNOWN, "max_daily_loss_pct applies but the snapshot has no day_start_equity_usd"
        )
    key = ctx.intent.strategy_key
    if ctx.limits.strategy_max_daily_loss_usd is not None and book.strategy(key) is None:
        reasons += _reject(
            C.DAILY_PNL_UNKNOWN,
            f"{key} has a daily loss limit but the snapshot reports no PnL for it",
            key,
        )
    return reasons


def exposure(ctx: DecisionContext) -> list[Reason]:
    book = ctx.book
    if ctx.reducing or not ctx.intent.opens_or_adds or book is None:
        return NONE
    symbol_limit = ctx.limits.max_symbol_exposure_usd
    total_limit = ctx.global_rules.max_total_exposure_usd
    if ctx.notional_usd is None:
        return NONE  # reported by `order_size_known` or `reference_prices`
    reasons: list[Reason] = []
    symbol = ctx.intent.symbol
    if symbol_limit is not None:
        held = book.snapshot.positions.get(symbol)
        projected = (held.notional_usd if held else 0.0) + ctx.state.pending_exposure_usd(symbol) + ctx.notional_usd
        if projected > symbol_limit and exceeds(projected, symbol_limit):
            shown, bound = figures(projected, symbol_limit, ",f", 2)
            reasons += _reject(
                C.SYMBOL_EXPOSURE_EXCEEDED,
                f"projected {symbol} exposure {shown} USD exceeds the limit {bound} USD",
                rounded(projected, symbol_limit, 2),
                symbol_limit,
            )
    if total_limit is not None:
        projected = book.gross_exposure_usd + ctx.state.pending_total_usd + ctx.notional_usd
        if projected > total_limit and exceeds(projected, total_limit):
            shown, bound = figures(projected, total_limit, ",f", 2)
            reasons += _reject(
                C.TOTAL_EXPOSURE_EXCEEDED,
                f"projected gross exposure {shown} USD exceeds the limit {bound} USD",
                rounded(projected, total_limit, 2),
                total_limit,
            )
    return reasons


ALL_CONTROLS: tuple[Control, ...] = (
    publisher_identity,
    strategy_admission,
    trading_state,
    symbol_access,
    order_shape,
    confidence,
    reference_prices,
    order_size_known,
    order_size,
    leverage,
    stop_loss,
    take_profit,
    price_collar,
    freshness,
    duplicates,
    rate_limits,
    snapshot_freshness,
    daily_pnl_known,
    exposure,
)
