"""The human-set envelope around what the Strategist may propose: hard ceilings and floors on the effective
policy, and trading states it may never set. A proposal outside it is refused automatically, with one reason
per breach (the Strategist issue wires it in; risk officers edit the envelope).

Ceilings bind the *global* scope, because layering makes it the loosest any intent can see: a strategy or
symbol scope can only tighten it further. A ceiling the proposal leaves unset globally is "unlimited", a breach."""

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cio_kernel.policy.spec import Fraction, NonNegativeFloat, PolicySpec, PositiveFloat, PositiveInt, TradingState

CEILINGS = (  # the envelope's ceilings, each on the global scope's field of the same name
    "max_order_notional_usd",
    "max_order_quantity",
    "max_symbol_exposure_usd",
    "max_total_exposure_usd",
    "max_leverage",
    "max_daily_loss_usd",
    "max_drawdown_pct",
)


class StrategistEnvelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)

    max_order_notional_usd: PositiveFloat | None = None
    max_order_quantity: PositiveFloat | None = None
    max_symbol_exposure_usd: NonNegativeFloat | None = None
    max_total_exposure_usd: NonNegativeFloat | None = None
    max_leverage: PositiveInt | None = None
    max_daily_loss_usd: PositiveFloat | None = None
    max_drawdown_pct: Fraction | None = None
    min_confidence_floor: Fraction | None = None  # the global minimum confidence may not go below this
    # States the Strategist may never set anywhere. Moving a scope back to a less severe state (a release) is
    # refused whatever this says: only a person may release (SPEC: agents and the Strategist tighten, never release).
    forbidden_states: frozenset[TradingState] = Field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Breach:
    field: str
    scope: str
    message: str


def envelope_breaches(
    proposal: PolicySpec, envelope: StrategistEnvelope, active: PolicySpec | None = None
) -> list[Breach]:
    found = []
    g = proposal.global_rules
    for name in CEILINGS:
        ceiling = getattr(envelope, name)
        if ceiling is None:
            continue
        value = getattr(g, name)
        if value is None:
            found.append(Breach(name, "global", f"{name} is unlimited; the envelope allows at most {ceiling:g}"))
        elif value > ceiling:
            found.append(Breach(name, "global", f"{name} {value:g} is above the envelope's {ceiling:g}"))
    floor = envelope.min_confidence_floor
    if floor is not None and (g.min_confidence or 0.0) < floor:
        found.append(
            Breach("min_confidence", "global", f"min_confidence {g.min_confidence or 0:g} is below the floor {floor:g}")
        )
    for scope, state in _states(proposal):
        if state in envelope.forbidden_states:
            found.append(Breach("trading_state", scope, f"the Strategist may not set {state.value}"))
    if active is not None:
        before = dict(_states(active))
        for scope, state in _states(proposal):
            old = before.get(scope)
            if old is not None and state.severity < old.severity:
                found.append(
                    Breach("trading_state", scope, f"{old.value} → {state.value} is a release: only a person may")
                )
        for scope, old in before.items():
            if scope not in dict(_states(proposal)) and old is not TradingState.ACTIVE:
                found.append(Breach("trading_state", scope, f"dropping {old.value} is a release: only a person may"))
    return found


def _states(spec: PolicySpec) -> list[tuple[str, Any]]:
    states = [("global", spec.global_rules.trading_state)]
    states += [(f"strategy:{k}", r.trading_state) for k, r in spec.strategies.items() if r.trading_state]
    states += [(f"symbol:{k}", r.trading_state) for k, r in spec.symbols.items() if r.trading_state]
    return states
