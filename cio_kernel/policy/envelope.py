"""The human-set envelope around what anyone who may not approve (agents, the Strategist) may propose, and the
narrower one inside it that auto-approval may use. A proposal outside the first is refused, with one reason per
breach, on every surface (`policies.extensions.proposal_breaches`, called by `services.propose`).

The envelope is:
- **ceilings** on the *global* scope, because layering makes it the loosest any intent can see: a strategy or
  symbol scope can only tighten it further. A ceiling the proposal leaves unset globally is "unlimited", a breach;
- a **confidence floor** under the global `min_confidence`;
- **forbidden states**, and never a release (a state made less severe, or a non-active state dropped);
- **the officers' baseline** (the last version a person made active) for everything the first two do not bound:
  a proposal may loosen a field only back towards what the officers set, never past it (emptying a deny list,
  dropping a stop-loss requirement, raising a rate limit beyond the baseline's are breaches).

The auto-approval envelope (`AutoApprovalEnvelope`) bounds what an officer's standing authority may approve
unseen, among proposals that already only tighten: never a global trading-state change, never a change to an allow
or deny list, no limit cut below a fraction of the officers' baseline, no confidence floor above a maximum, and
only the states it names on a strategy or symbol."""

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from cio_kernel.contracts.identity import IdentityError, strategy_key
from cio_kernel.policy.fields import FIELDS, Tighten
from cio_kernel.policy.spec import (
    Fraction,
    GlobalRules,
    LimitSet,
    NonNegativeFloat,
    PolicySpec,
    PositiveFloat,
    PositiveInt,
    StrategyRules,
    SymbolRules,
    TradingState,
)
from cio_kernel.policy.tightening import Loosening, loosenings

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
    proposal: PolicySpec,
    envelope: StrategistEnvelope,
    active: PolicySpec | None = None,
    baseline: PolicySpec | None = None,
) -> list[Breach]:
    """Every way `proposal` leaves the envelope. `active` (the live policy) finds releases; `baseline` (the
    officers' last) bounds the fields the envelope itself leaves open."""
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
    if baseline is not None:
        found += _past_baseline(proposal, envelope, active, baseline)
    return found


def _bounded_by_envelope(envelope: StrategistEnvelope, scope: str, field: str) -> bool:
    """Fields the envelope bounds explicitly on the global scope: there the envelope, not the baseline, is the
    limit (officers widen it on purpose)."""
    if scope != "global":
        return False
    if field == "min_confidence":
        return envelope.min_confidence_floor is not None
    return field in CEILINGS and getattr(envelope, field) is not None


def _scope_id(scope: str) -> str:
    """A scope name with its strategy key canonical, so two spellings of one strategy compare equal."""
    kind, _, key = scope.partition(":")
    if kind != "strategy":
        return scope
    try:
        return f"strategy:{strategy_key(key)}"
    except IdentityError:
        return scope


def _past_baseline(
    proposal: PolicySpec, envelope: StrategistEnvelope, active: PolicySpec | None, baseline: PolicySpec
) -> list[Breach]:
    """Loosenings that go past the officers' baseline. Only new ones count (looser than the live policy too): a
    field the live policy already leaves that loose was approved that way by an officer."""
    newly = {(_scope_id(x.scope), x.field) for x in loosenings(active, proposal)} if active is not None else None
    found = []
    for loose in loosenings(baseline, proposal):
        if loose.field == "trading_state" or _bounded_by_envelope(envelope, loose.scope, loose.field):
            continue  # states: the release check above; bounded fields: the ceilings and floor above
        if newly is not None and (_scope_id(loose.scope), loose.field) not in newly:
            continue
        found.append(Breach(loose.field, loose.scope, _past_baseline_message(loose)))
    return found


def _past_baseline_message(loose: Loosening) -> str:
    return (
        f"{loose.field} {_shown(loose.new)} is looser than the officers' baseline ({_shown(loose.old)}): only a risk "
        "officer may propose that"
    )


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, frozenset | set | list | tuple):
        return "[" + ", ".join(sorted(str(v) for v in value)) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _states(spec: PolicySpec) -> list[tuple[str, Any]]:
    states = [("global", spec.global_rules.trading_state)]
    states += [(f"strategy:{k}", r.trading_state) for k, r in spec.strategies.items() if r.trading_state]
    states += [(f"symbol:{k}", r.trading_state) for k, r in spec.symbols.items() if r.trading_state]
    return states


# -- auto-approval --------------------------------------------------------------------------------------------------
class AutoApprovalEnvelope(BaseModel):
    """What an officer's standing authority may approve unseen, among proposals that only tighten (narrower than
    the envelope: a proposal must be inside both)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)

    # No ceiling-type limit (a max_*) may be cut below this fraction of the officers' baseline for its scope.
    min_fraction_of_baseline: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    max_min_confidence: Fraction = 0.9  # no min_confidence above this
    states: frozenset[TradingState] = frozenset({TradingState.REDUCING})  # on a strategy or symbol; never global


def auto_approval_refusals(
    active: PolicySpec, proposal: PolicySpec, baseline: PolicySpec, auto: AutoApprovalEnvelope
) -> list[str]:
    """Why `proposal` may not be approved unseen (empty: it may). Every field it changes must be one auto-approval
    covers, moved within the auto-approval envelope; anything else waits for a person."""
    found = []
    for scope, old, new in _scope_pairs(active, proposal):
        for field in type(new).model_fields:
            before, after = getattr(old, field), getattr(new, field)
            if before != after:
                problem = _auto_problem(scope, field, after, baseline, auto)
                if problem:
                    found.append(f"{scope}.{field}: {problem}")
    return found


def _scope_pairs(active: PolicySpec, proposal: PolicySpec) -> list[tuple[str, LimitSet, LimitSet]]:
    pairs: list[tuple[str, LimitSet, LimitSet]] = [("global", active.global_rules, proposal.global_rules)]
    strategies = {_scope_id(f"strategy:{k}"): k for k in [*active.strategies, *proposal.strategies]}
    for scope, key in sorted(strategies.items()):
        old, new = active.strategy_rules(key), proposal.strategy_rules(key)
        pairs.append((scope, old or StrategyRules(), new or StrategyRules()))
    for key in sorted({*active.symbols, *proposal.symbols}):
        old_s, new_s = active.symbols.get(key), proposal.symbols.get(key)
        pairs.append((f"symbol:{key}", old_s or SymbolRules(), new_s or SymbolRules()))
    return pairs


def _auto_problem(scope: str, field: str, after: Any, baseline: PolicySpec, auto: AutoApprovalEnvelope) -> str:
    direction = FIELDS[field].tighten
    if field == "trading_state":
        if scope == "global":
            return "a change of the global trading state is never approved unseen"
        if after is not None and TradingState(after) not in auto.states:
            allowed = ", ".join(sorted(s.value for s in auto.states)) or "none"
            return f"{after} is outside the auto-approval envelope (states it may set: {allowed})"
        return ""
    if direction is Tighten.SUBSET:
        return "shrinking or emptying an allow list is never approved unseen"
    if direction is Tighten.SUPERSET:
        return "changing a deny list is never approved unseen"
    if field == "min_confidence":
        if after is None or after > auto.max_min_confidence:
            return f"{_shown(after)} is above the auto-approval envelope's {auto.max_min_confidence:g}"
        return ""
    if direction is Tighten.UPPER:
        reference = _baseline_value(baseline, scope, field)
        if after is None:
            return "removing a limit is never approved unseen"
        if reference is None:
            return "the officers' baseline sets no such limit here, so there is nothing to measure the cut against"
        floor = auto.min_fraction_of_baseline * reference
        if after < floor:
            return (
                f"{_shown(after)} is below {auto.min_fraction_of_baseline:g} of the officers' baseline "
                f"({_shown(float(reference))})"
            )
        return ""
    return "not a field auto-approval covers"


def _baseline_value(baseline: PolicySpec, scope: str, field: str) -> float | None:
    """The limit the officers' baseline puts on `field` in `scope`: the tighter of its own setting there and the
    global one (layering is most-restrictive-wins)."""
    kind, _, key = scope.partition(":")
    values = []
    if field in GlobalRules.model_fields:
        values.append(getattr(baseline.global_rules, field))
    if kind == "strategy":
        rules: LimitSet | None = baseline.strategy_rules(key)
    elif kind == "symbol":
        rules = baseline.symbols.get(key)
    else:
        rules = None
    if rules is not None and field in type(rules).model_fields:
        values.append(getattr(rules, field))
    present = [v for v in values if v is not None]
    return min(present) if present else None
