"""Every reason code the gate can put in a decision, in one place.

Codes are UPPER_SNAKE and stable: strategies, dashboards and the audit store key on them.
Add new codes; never rename or reuse one. `docs/reason-codes.md` is generated from `DESCRIPTIONS`.
"""

from enum import StrEnum


class ReasonCode(StrEnum):
    # Input that could not be checked at all.
    VAL_ERR = "VAL_ERR"
    # The gate could not decide; nothing was promoted and the strategy may retry.
    NO_POLICY = "NO_POLICY"
    POLICY_STALE = "POLICY_STALE"
    DECISION_TIMEOUT = "DECISION_TIMEOUT"
    OVERLOADED = "OVERLOADED"
    STRATEGY_OVER_BUDGET = "STRATEGY_OVER_BUDGET"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    GATE_INTERNAL_ERROR = "GATE_INTERNAL_ERROR"
    INTAKE_EXPIRED = "INTAKE_EXPIRED"
    # Acknowledged but never promoted.
    HOLD_NOT_PROMOTED = "HOLD_NOT_PROMOTED"
    # Who the intent speaks for.
    IDENTITY_MISMATCH = "IDENTITY_MISMATCH"
    IDENTITY_UNVERIFIED = "IDENTITY_UNVERIFIED"
    STRATEGY_UNLISTED = "STRATEGY_UNLISTED"
    # Trading states and the kill switch.
    TRADING_HALTED = "TRADING_HALTED"
    TRADING_REDUCING = "TRADING_REDUCING"
    DRAWDOWN_REDUCING = "DRAWDOWN_REDUCING"
    DAILY_LOSS_REDUCING = "DAILY_LOSS_REDUCING"
    # Instrument and order-shape controls.
    SYMBOL_DENIED = "SYMBOL_DENIED"
    SYMBOL_NOT_ALLOWED = "SYMBOL_NOT_ALLOWED"
    ACTION_NOT_ALLOWED = "ACTION_NOT_ALLOWED"
    STRATEGY_MODE_NOT_ALLOWED = "STRATEGY_MODE_NOT_ALLOWED"
    ORDER_TYPE_NOT_ALLOWED = "ORDER_TYPE_NOT_ALLOWED"
    CONFIDENCE_TOO_LOW = "CONFIDENCE_TOO_LOW"
    NO_REFERENCE_PRICE = "NO_REFERENCE_PRICE"
    ORDER_PRICE_MISSING = "ORDER_PRICE_MISSING"
    ORDER_SIZE_UNKNOWN = "ORDER_SIZE_UNKNOWN"
    ORDER_QUANTITY_EXCEEDED = "ORDER_QUANTITY_EXCEEDED"
    ORDER_NOTIONAL_EXCEEDED = "ORDER_NOTIONAL_EXCEEDED"
    POSITION_SIZE_EXCEEDED = "POSITION_SIZE_EXCEEDED"
    LEVERAGE_EXCEEDED = "LEVERAGE_EXCEEDED"
    STOP_LOSS_REQUIRED = "STOP_LOSS_REQUIRED"
    STOP_LOSS_INVALID = "STOP_LOSS_INVALID"
    STOP_LOSS_TOO_WIDE = "STOP_LOSS_TOO_WIDE"
    TAKE_PROFIT_INVALID = "TAKE_PROFIT_INVALID"
    PRICE_COLLAR_BREACHED = "PRICE_COLLAR_BREACHED"
    # Time.
    TIMESTAMP_MISSING = "TIMESTAMP_MISSING"
    INTENT_STALE = "INTENT_STALE"
    INTENT_FROM_FUTURE = "INTENT_FROM_FUTURE"
    # Stateful controls.
    DUPLICATE_INTENT = "DUPLICATE_INTENT"
    DUPLICATE_WINDOW = "DUPLICATE_WINDOW"
    RATE_LIMITED = "RATE_LIMITED"
    SNAPSHOT_MISSING = "SNAPSHOT_MISSING"
    SNAPSHOT_STALE = "SNAPSHOT_STALE"
    DAILY_PNL_UNKNOWN = "DAILY_PNL_UNKNOWN"
    SYMBOL_EXPOSURE_EXCEEDED = "SYMBOL_EXPOSURE_EXCEEDED"
    TOTAL_EXPOSURE_EXCEEDED = "TOTAL_EXPOSURE_EXCEEDED"


DESCRIPTIONS: dict[ReasonCode, str] = {
    ReasonCode.VAL_ERR: "The message is not a valid intent (not JSON, wrong types, missing fields, "
    "non-finite or absurd numbers, oversized payload). `data.field_errors` lists each problem. Never promoted. "
    "Size and shape are checked on the raw bytes before parsing: more than `CIO_MAX_INTENT_BYTES` bytes "
    "(`too_large`), nested deeper than `CIO_MAX_INTENT_DEPTH` (`too_deep`), more than `CIO_MAX_INTENT_MEMBERS` "
    "keys, array elements and containers (`too_many_members`), or a string longer than "
    "`CIO_MAX_INTENT_STRING_BYTES` (`string_too_long`).",
    ReasonCode.NO_POLICY: "The gate holds no active policy (none in Redis, Redis unreachable at start-up, a "
    "brand-new gate still learning its version floor, or Redis holding only a version below it). "
    "Decision is RETRY_SAFE.",
    ReasonCode.POLICY_STALE: "The gate could not confirm its policy against Redis for longer than "
    "`CIO_POLICY_MAX_AGE_S`. Decision is RETRY_SAFE.",
    ReasonCode.DECISION_TIMEOUT: "The decision could not be made inside the budget (`CIO_DECISION_BUDGET_MS`, "
    "200 ms by default), counting the time the intent waited in the gate's queue (an overloaded gate sheds "
    "load this way). Decision is RETRY_SAFE.",
    ReasonCode.OVERLOADED: "The gate is overloaded: the intent waited longer than `CIO_SHED_AFTER_MS` in its "
    "queue and was answered without being parsed or decided, so the gate keeps answering every request within "
    "its budget. Decision is RETRY_SAFE; retry with backoff.",
    ReasonCode.INTAKE_EXPIRED: "A plain-published intent (no reply wanted) was not decided while fresh "
    "(`CIO_INTAKE_FRESH_S` after the intake stream stored it: no policy, overload, or no gate running), so it is "
    "recorded once and never promoted, whatever the policy would say now. Nothing happened; the strategy may send "
    "a new intent.",
    ReasonCode.STRATEGY_OVER_BUDGET: "The strategy used up its share of this gate (`CIO_STRATEGY_BUDGET_PER_S` "
    "work units a second, at most `CIO_STRATEGY_BUDGET_BURST` at once; an intent costs one unit plus one per 512 "
    "bytes): the intent was answered without being parsed or decided, so one strategy's flood cannot slow the "
    "others. Decision is RETRY_SAFE; retry with backoff.",
    ReasonCode.INTERNAL_ERROR: "An unexpected error while deciding. Fail closed: RETRY_SAFE, never promoted.",
    ReasonCode.GATE_INTERNAL_ERROR: "An unexpected error in the gate around the decision (taking the request in, "
    "the decision pipeline itself, or handing its messages over): the request is answered and audited with this "
    "code instead of being left to time out. Nothing of its decision leaves the gate, so no trade was promoted. "
    "Decision is RETRY_SAFE; retrying is safe.",
    ReasonCode.HOLD_NOT_PROMOTED: "`hold` intents are decided and audited but never promoted to the trade engine.",
    ReasonCode.IDENTITY_MISMATCH: "The intake subject names another strategy (`cio.intent.trading.<token>`, "
    "compared by strategy key) or another symbol (`intent.trading.<SYMBOL>`) than the intent: an intent speaks "
    "only for the identity it was published under.",
    ReasonCode.IDENTITY_UNVERIFIED: "The subject cannot prove who sent the intent: its strategy publishes with an "
    "identity of its own (`own_identity`) and the intent did not come on exactly `cio.intent.trading.<key>`, or "
    "`require_identity_subject` is set and the subject names no strategy (`cio.nurse.audit`, bare "
    "`cio.intent.trading`, `intent.trading.<SYMBOL>`).",
    ReasonCode.STRATEGY_UNLISTED: "The policy admits only the strategies it names (`only_listed_strategies`) and "
    "does not name this one (by its key): a risk officer admits it by adding it under `strategies`.",
    ReasonCode.TRADING_HALTED: "The effective trading state (global, strategy or symbol) is `halted`: "
    "only `close` is admitted. Other checks are skipped.",
    ReasonCode.TRADING_REDUCING: "The effective trading state is `reducing` and the intent does not shrink "
    "an existing position without flipping it.",
    ReasonCode.DRAWDOWN_REDUCING: "Portfolio drawdown reached `max_drawdown_pct`: the drawdown latch holds the "
    "gate reducing-only until a risk officer releases it, and the intent does not shrink a position.",
    ReasonCode.DAILY_LOSS_REDUCING: "The book's (global) or the strategy's loss since the start of the trading "
    "day reached `max_daily_loss_usd` / `max_daily_loss_pct`: that scope is reducing-only until the next "
    "trading day or a risk officer's release, and the intent does not shrink a position.",
    ReasonCode.SYMBOL_DENIED: "The symbol is on a deny list (global or the strategy's).",
    ReasonCode.SYMBOL_NOT_ALLOWED: "An allow list applies (global or the strategy's) and the symbol is not on it.",
    ReasonCode.ACTION_NOT_ALLOWED: "The action is outside `allowed_actions` for this strategy/symbol.",
    ReasonCode.STRATEGY_MODE_NOT_ALLOWED: "The strategy mode is outside `allowed_strategy_modes`.",
    ReasonCode.ORDER_TYPE_NOT_ALLOWED: "The order type is outside `allowed_order_types`.",
    ReasonCode.CONFIDENCE_TOO_LOW: "Confidence is below `min_confidence`.",
    ReasonCode.NO_REFERENCE_PRICE: "`current_price` is zero, so no notional, collar or stop check can be made.",
    ReasonCode.ORDER_PRICE_MISSING: "A priced order type (limit, stop, ...) carries no positive `price`.",
    ReasonCode.ORDER_SIZE_UNKNOWN: "`quantity` is 0 (sized by the trade engine), a notional or exposure limit "
    "applies, and the order's notional cannot be derived: no `engine_sized_notional_usd` in the policy (for "
    "orders without `position_size_pct`), or no portfolio equity (for orders with one).",
    ReasonCode.ORDER_QUANTITY_EXCEEDED: "Quantity is above `max_order_quantity` (base units).",
    ReasonCode.ORDER_NOTIONAL_EXCEEDED: "Order notional (price × quantity, USD) is above `max_order_notional_usd`.",
    ReasonCode.POSITION_SIZE_EXCEEDED: "`position_size_pct` is above `max_position_size_pct`.",
    ReasonCode.LEVERAGE_EXCEEDED: "`recommended_leverage` or `leverage` is above `max_leverage` (rejected, never "
    "clamped).",
    ReasonCode.STOP_LOSS_REQUIRED: "An opening order carries neither `stop_loss` nor `stop_loss_pct`.",
    ReasonCode.STOP_LOSS_INVALID: "The stop loss is on the wrong side of the entry price.",
    ReasonCode.STOP_LOSS_TOO_WIDE: "The stop distance from the entry price is above `max_stop_distance_pct`.",
    ReasonCode.TAKE_PROFIT_INVALID: "The take-profit is on the wrong side of the entry price (below it for a "
    "buy, above it for a sell), or `take_profit_pct` is 0.",
    ReasonCode.PRICE_COLLAR_BREACHED: "A priced order's `price` is further from `current_price` than "
    "`price_collar_bps`.",
    ReasonCode.TIMESTAMP_MISSING: "The intent carries no timestamp and the policy requires one "
    "(the gate never substitutes 'now').",
    ReasonCode.INTENT_STALE: "The intent's timestamp is older than `max_intent_age_s`.",
    ReasonCode.INTENT_FROM_FUTURE: "The intent's timestamp is more than `max_clock_skew_s` in the future.",
    ReasonCode.DUPLICATE_INTENT: "An intent with the same `signal_id`/`intent_id`/`id`/`client_order_id` from this "
    "strategy was already promoted.",
    ReasonCode.DUPLICATE_WINDOW: "The same strategy+symbol+action was promoted less than `dedupe_window_s` ago.",
    ReasonCode.RATE_LIMITED: "Promoting this intent would exceed a per-second or per-minute rate limit "
    "(strategy, symbol or global counter). Over-limit intents are rejected, never queued.",
    ReasonCode.SNAPSHOT_MISSING: "An exposure, drawdown or daily loss limit applies but no `cio.portfolio.snapshot` "
    "has been received.",
    ReasonCode.SNAPSHOT_STALE: "An exposure, drawdown or daily loss limit applies and the latest portfolio snapshot is "
    "older than `max_snapshot_age_s`.",
    ReasonCode.DAILY_PNL_UNKNOWN: "A daily loss limit applies but the snapshot's PnL does not cover the current "
    "trading day (no `daily_pnl_usd`/`pnl_since`, another day's window, no `day_start_equity_usd` for a "
    "percentage limit, or no entry for the strategy). Only reducing intents pass.",
    ReasonCode.SYMBOL_EXPOSURE_EXCEEDED: "Projected exposure in the symbol (snapshot + promoted since + this "
    "order) would exceed `max_symbol_exposure_usd`.",
    ReasonCode.TOTAL_EXPOSURE_EXCEEDED: "Projected gross exposure across all symbols would exceed "
    "`max_total_exposure_usd`.",
}

RETRY_SAFE_CODES = frozenset(
    {
        ReasonCode.NO_POLICY,
        ReasonCode.POLICY_STALE,
        ReasonCode.DECISION_TIMEOUT,
        ReasonCode.OVERLOADED,
        ReasonCode.STRATEGY_OVER_BUDGET,
        ReasonCode.INTERNAL_ERROR,
        ReasonCode.GATE_INTERNAL_ERROR,
        ReasonCode.INTAKE_EXPIRED,
    }
)


def render_markdown() -> str:
    """docs/reason-codes.md, generated so the table can never drift from the code (a test checks it)."""
    lines = [
        "# Reason codes",
        "",
        "Every rejection (and every RETRY_SAFE) carries one or more of these codes in `data.reasons[].code`;",
        "`error.code` is the first of them. Generated from `cio_kernel/reason_codes.py` by `make docs`.",
        "",
        "| code | decision | meaning |",
        "|---|---|---|",
    ]
    for code in ReasonCode:
        decision = "RETRY_SAFE" if code in RETRY_SAFE_CODES else "REJECTED"
        lines.append(f"| `{code}` | {decision} | {DESCRIPTIONS[code]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
