"""PolicySpec: the single, versioned schema of the risk policy, shared by the gate and the control plane.

Layering (global ← strategy ← symbol) is "most restrictive wins" for every limit, so tightening any scope can
never loosen the effective policy. What each field means, which way it restricts and how its scopes combine is
declared once, in `cio_kernel.policy.fields` (a test holds it to these models).
"""

from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, ValidationError

from cio_kernel.contracts.identity import StrategyKey, SymbolKey
from cio_kernel.contracts.intent import Action, OrderType, StrategyMode

SCHEMA_VERSION = 1


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}

# Every model here validates with `allow_inf_nan=False`: no Python-level finiteness check per field is needed
# (a policy naming thousands of symbols is validated by pydantic-core alone).
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
PositiveInt = Annotated[int, Field(gt=0)]
# Sets dump as sorted lists: the canonical form the checksum is taken over, written by pydantic-core itself.
SortedSet = PlainSerializer(sorted, return_type=list, when_used="json")
Actions = Annotated[frozenset[Action], SortedSet]
StrategyModes = Annotated[frozenset[StrategyMode], SortedSet]
OrderTypes = Annotated[frozenset[OrderType], SortedSet]
Symbols = Annotated[frozenset[SymbolKey], SortedSet]
TimeOfDay = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class _Rules(BaseModel):
    # Strict: `true` is not 1, `"yes"` is not true and `"25000"` is not 25000.0; a policy means what it says.
    # Validate JSON (`PolicySpec.parse`): JSON lists are sets and JSON strings are states there, nothing else is.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)


class LimitSet(_Rules):
    """Limits that can be set at any scope. `None` means "this scope does not constrain it". What each field of
    every scope means, which way it tightens and how the scopes combine: `cio_kernel.policy.fields`."""

    trading_state: TradingState | None = None
    allowed_actions: Actions | None = None
    allowed_strategy_modes: StrategyModes | None = None
    allowed_order_types: OrderTypes | None = None
    min_confidence: Fraction | None = None
    max_order_quantity: PositiveFloat | None = None
    max_order_notional_usd: PositiveFloat | None = None
    max_position_size_pct: Fraction | None = None
    require_stop_loss: bool | None = None
    max_stop_distance_pct: Fraction | None = None
    price_collar_bps: NonNegativeFloat | None = None
    max_symbol_exposure_usd: NonNegativeFloat | None = None
    max_leverage: PositiveInt | None = None
    engine_sized_notional_usd: PositiveFloat | None = None
    max_intents_per_second: PositiveInt | None = None
    max_intents_per_minute: PositiveInt | None = None


class StrategyRules(LimitSet):
    allowed_symbols: Symbols | None = None
    denied_symbols: Symbols = frozenset()
    max_daily_loss_usd: PositiveFloat | None = None
    # `cio.intent.trading.<key>` is the one subject the strategy's own NATS identity may publish on and nobody
    # else may (docs/access.md).
    own_identity: bool = False


class SymbolRules(LimitSet):
    pass


class GlobalRules(LimitSet):
    trading_state: TradingState = TradingState.ACTIVE
    allowed_symbols: Symbols | None = None
    denied_symbols: Symbols = frozenset()
    require_timestamp: bool = True
    # With one NATS identity per strategy, a subject that names the strategy proves who sent the intent.
    require_identity_subject: bool = False
    # A new or misnamed bot trades only once an officer admits it.
    only_listed_strategies: bool = False
    max_intent_age_s: PositiveFloat | None = 30.0
    max_clock_skew_s: NonNegativeFloat = 2.0
    dedupe_window_s: NonNegativeFloat = 0.0
    max_total_exposure_usd: NonNegativeFloat | None = None
    max_drawdown_pct: Fraction | None = None
    max_snapshot_age_s: PositiveFloat = 30.0
    max_daily_loss_usd: PositiveFloat | None = None
    max_daily_loss_pct: Fraction | None = None
    trading_day_start_utc: TimeOfDay = "00:00"


# The model of each scope, by the name proposals and documents give it.
SCOPE_MODELS: dict[str, type[LimitSet]] = {"global": GlobalRules, "strategy": StrategyRules, "symbol": SymbolRules}


class PolicySpec(_Rules):
    """The whole policy. Serialised with the key `global` for the global scope."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, serialize_by_alias=True, allow_inf_nan=False, strict=True
    )

    schema_version: Literal[1] = SCHEMA_VERSION
    description: Annotated[str, Field(max_length=10_000)] = ""
    global_rules: GlobalRules = Field(default_factory=GlobalRules, alias="global")
    # Keyed by `strategy_key` and `symbol_key` (cio_kernel/contracts/identity.py): one spelling per identity, so
    # a lookup with an intent's key finds the scope or there is none.
    strategies: dict[StrategyKey, StrategyRules] = Field(default_factory=dict)
    symbols: dict[SymbolKey, SymbolRules] = Field(default_factory=dict)

    @classmethod
    def parse(cls, raw: "str | bytes | dict[str, Any]") -> "PolicySpec":
        """Validate a policy as JSON, whatever form it arrives in (the one way to build a spec from input)."""
        return cls.model_validate_json(raw if isinstance(raw, str | bytes) else orjson.dumps(raw))

    def strategy_rules(self, key: str) -> "StrategyRules | None":
        """The rules for a strategy, by its key (`strategy_key` of whatever spelling an intent used)."""
        return self.strategies.get(key)


def schema_problems(exc: ValidationError, root: str = "spec") -> list[str]:
    """Each error as `dotted.path: message`: the wording officers, agents and models are shown."""
    return [
        f"{'.'.join(str(p) for p in err['loc']) or root}: {err['msg']}"
        for err in exc.errors(include_url=False, include_input=False)
    ]
