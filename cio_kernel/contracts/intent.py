"""The Intent: the fleet's existing Signal contract (petrosa-tradeengine `contracts/signal.py`), validated strictly.

Compatibility decisions (see docs/contracts.md):
- Unknown fields are kept and passed through to the promoted signal.
- `timestamp` accepts ISO 8601 (a naive value is read as UTC) or Unix time; a number above 1e11 is read as
  milliseconds (1e11 s is the year 5138). An unparseable timestamp is a VAL_ERR; a missing one stays missing
  (the gate never substitutes "now").
- `quantity` 0 is valid: the TA bot sends 0.0 to let the trade engine size the order (see docs/policy.md,
  "Engine-sized orders").
- `recommended_leverage` (the fleet's contract) and `leverage` are both typed integers ≥ 1, so the
  maximum-leverage control sees whichever a strategy asks for. The trade engine reads neither from a signal (it
  levers from its own configuration): the control guards the producer's request, not an engine field.
- Non-finite numbers, negative sizes/prices and absurd magnitudes are VAL_ERR.
"""

import math
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from cio_kernel.contracts.identity import StrategyId, Symbol, strategy_key

Action = Literal["buy", "sell", "hold", "close"]
# The actions that carry a size and can add risk (`close` only shrinks a position, `hold` does nothing).
OPENING_ACTIONS: frozenset[str] = frozenset({"buy", "sell"})
StrategyMode = Literal["deterministic", "ml_light", "llm_reasoning"]
OrderType = Literal[
    "market",
    "limit",
    "stop",
    "stop_limit",
    "take_profit",
    "take_profit_limit",
    "conditional_limit",
    "conditional_stop",
]
# Every order type but `market` names its own price (or trigger): derived, so a new type is priced by default.
PRICED_ORDER_TYPES: frozenset[str] = frozenset(get_args(OrderType)) - {"market"}

MAX_PRICE = 1e12
MAX_QUANTITY = 1e15
MILLISECONDS_THRESHOLD = 1e11


def finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


# `Intent` validates with `allow_inf_nan=False`, so these need no Python-level finiteness check (one per field
# per intent on the hot path); models that reuse them without that setting add `finite` themselves.
Price = Annotated[float, Field(ge=0, le=MAX_PRICE)]
Quantity = Annotated[float, Field(ge=0, le=MAX_QUANTITY)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Leverage = Annotated[int, Field(ge=1, le=1000)]
ShortText = Annotated[str, StringConstraints(max_length=200)]


def _parse_timestamp(value: Any) -> Any:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, bool):
        raise ValueError("timestamp must be an ISO 8601 string or Unix time, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            raise ValueError("timestamp must be a positive, finite Unix time")
        seconds = value / 1000.0 if value > MILLISECONDS_THRESHOLD else float(value)
        if seconds > 4102444800:  # 2100-01-01: anything later is a unit mistake, not a time
            raise ValueError("timestamp is beyond the year 2100")
        return datetime.fromtimestamp(seconds, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        if len(text) >= 10 and text[4] == "-":  # extended ISO 8601 (the fleet's usual form): no number looks so
            try:
                return datetime.fromisoformat(text)
            except ValueError as exc:
                raise ValueError("timestamp is neither ISO 8601 nor Unix time") from exc
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None:
            return _parse_timestamp(number)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError as exc:
            raise ValueError("timestamp is neither ISO 8601 nor Unix time") from exc
        return parsed
    raise ValueError("timestamp must be an ISO 8601 string or Unix time")


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


Timestamp = Annotated[datetime | None, BeforeValidator(_parse_timestamp), AfterValidator(_as_utc)]


# Where a producer's id for its intent is read, first found wins: `signal_id` (the Signal contract), `intent_id`
# (the TA bot's, which always sends `signal_id: null`), `id`, `client_order_id` (docs/contracts.md).
INTENT_ID_FIELDS = ("signal_id", "intent_id", "id", "client_order_id")
_FLEET_ID = "intent_id"  # not a declared field: `Intent.intent_id` is the id found by the order above


class Intent(BaseModel):
    """A strategy's request to trade. Field names and meanings are the fleet's Signal contract."""

    model_config = ConfigDict(extra="allow", frozen=True, protected_namespaces=(), allow_inf_nan=False)

    strategy_id: StrategyId
    symbol: Symbol
    action: Action
    confidence: Fraction
    price: Price
    quantity: Quantity
    current_price: Price
    source: ShortText
    strategy: ShortText

    id: Identifier | None = None
    signal_id: Identifier | None = None
    strategy_mode: StrategyMode | None = None
    signal_type: Action | None = None
    strength: Literal["weak", "medium", "strong", "extreme"] | None = None
    target_price: Price | None = None
    timeframe: ShortText | None = None
    order_type: OrderType | None = None
    time_in_force: Literal["GTC", "IOC", "FOK", "GTX"] | None = None
    position_size_pct: Fraction | None = None
    quote_quantity: Quantity | None = None
    stop_loss: Price | None = None
    stop_loss_pct: Fraction | None = None
    take_profit: Price | None = None
    take_profit_pct: Fraction | None = None
    conditional_price: Price | None = None
    conditional_direction: Literal["above", "below"] | None = None
    conditional_timeout: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    iceberg_quantity: Quantity | None = None
    recommended_leverage: Leverage | None = None
    leverage: Leverage | None = None
    client_order_id: Identifier | None = None
    model_confidence: Fraction | None = None
    model_features: dict[str, Any] | None = None
    llm_reasoning: str | None = None
    llm_alternatives: list[dict[str, Any]] | None = None
    indicators: dict[str, Any] | None = None
    rationale: str | None = None
    metadata: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None
    timestamp: Timestamp = None

    @cached_property  # read by several controls per decision; computed once per (frozen, never copied) intent
    def strategy_key(self) -> str:
        """The key every control knows this intent's strategy by (`strategy_id` keeps the producer's spelling)."""
        return strategy_key(self.strategy_id)

    @model_validator(mode="after")
    def _fleet_intent_id_is_an_identifier(self) -> "Intent":
        extra = self.__pydantic_extra__
        value = extra.get(_FLEET_ID) if extra else None
        if value is not None and not (isinstance(value, str) and 1 <= len(value) <= 200):
            raise ValueError("intent_id must be a string of 1 to 200 characters (or null)")
        return self

    # The derived values below are cached like `strategy_key`: the controls read them many times per decision, and
    # the impact preview judges each intent under two policies (the model is frozen and never copied).
    @cached_property
    def intent_id(self) -> str | None:
        """The producer's identifier for this intent, if it sent one (`INTENT_ID_FIELDS`, first found)."""
        extra = self.__pydantic_extra__
        return self.signal_id or (extra.get(_FLEET_ID) if extra else None) or self.id or self.client_order_id

    @cached_property
    def effective_order_type(self) -> str:
        return self.order_type or "market"

    @cached_property
    def effective_strategy_mode(self) -> str:
        return self.strategy_mode or "deterministic"

    @cached_property
    def is_priced_order(self) -> bool:
        return self.effective_order_type in PRICED_ORDER_TYPES

    @cached_property
    def requested_leverage(self) -> int | None:
        """The leverage the order asks for: the higher of the two fields the fleet uses, if either is set."""
        if self.leverage is None:
            return self.recommended_leverage
        if self.recommended_leverage is None:
            return self.leverage
        return max(self.leverage, self.recommended_leverage)

    @cached_property
    def opens_or_adds(self) -> bool:
        """`buy` or `sell`: the actions that carry a size and can add risk (`close` only shrinks it)."""
        return self.action in OPENING_ACTIONS

    @cached_property
    def entry_price(self) -> float:
        """The price the order would trade at: its own price when priced, else the market reference."""
        return self.price if self.is_priced_order else self.current_price

    @cached_property
    def timestamp_s(self) -> float | None:
        """`timestamp` as Unix seconds (what the freshness control compares), None when the intent carries none."""
        return self.timestamp.timestamp() if self.timestamp is not None else None
