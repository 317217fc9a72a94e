"""Every field of the risk policy, declared once: in which direction it restricts, how the gate combines the
scopes that set it, and what it means.

The tightening check (`cio_kernel.policy.tightening`), the auto-approval envelope, the gate's resolver
(`gate.policy.resolve`) and the field table of docs/policy.md (`make docs`) are all derived from `FIELDS`; tests
hold it to the policy models (a field without a declaration fails), to the tightening check (each direction is
honoured) and to the document. Which scopes a field exists in is the models' business (`cio_kernel.policy.spec`).

`python -m cio_kernel.policy.fields` prints the table; `--write docs/policy.md` puts it between the markers there.
"""

import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cio_kernel.policy.spec import SCOPE_MODELS


class Tighten(StrEnum):
    """Which way a field restricts. `None` on a limit means "this scope does not constrain it"."""

    UPPER = "upper"  # a ceiling: lower is stricter
    LOWER = "lower"  # a floor: higher is stricter
    SUBSET = "subset"  # an allow-list: fewer is stricter
    SUPERSET = "superset"  # a deny-list: more is stricter
    REQUIRE = "require"  # a requirement: on is stricter
    STATE = "state"  # a trading state: more severe is stricter
    # An assumption rather than a limit (the notional of engine-sized orders): unset is the strictest (such orders
    # cannot be priced, so a limit that needs a notional refuses them); once set, a higher assumption is stricter.
    ASSUMED = "assumed"
    FIXED = "fixed"  # not ordered: any change counts as a loosening


class Layering(StrEnum):
    """How the gate combines a field that several scopes (global, strategy, symbol) set: most restrictive wins."""

    MOST_SEVERE = "most severe"
    LOWEST = "lowest"
    HIGHEST = "highest"
    INTERSECTION = "intersection"
    UNION = "union"
    ANY = "any"
    PER_SCOPE = "per scope"  # not merged: each scope's own value applies to what that scope covers
    ONE_SCOPE = "one scope"  # the field exists in one scope only: nothing to combine


@dataclass(frozen=True, slots=True)
class PolicyField:
    tighten: Tighten
    layering: Layering
    doc: str


FIELDS: dict[str, PolicyField] = {
    # -- every scope ------------------------------------------------------------------------------------------------
    "trading_state": PolicyField(
        Tighten.STATE,
        Layering.MOST_SEVERE,
        "`active`; `reducing` admits only intents that shrink a position; `halted` only `close`",
    ),
    "allowed_actions": PolicyField(
        Tighten.SUBSET, Layering.INTERSECTION, "the actions admitted (`buy`, `sell`, `hold`, `close`)"
    ),
    "allowed_strategy_modes": PolicyField(
        Tighten.SUBSET, Layering.INTERSECTION, "the strategy modes admitted (an intent without one is `deterministic`)"
    ),
    "allowed_order_types": PolicyField(
        Tighten.SUBSET, Layering.INTERSECTION, "the order types admitted (an intent without one is `market`)"
    ),
    "min_confidence": PolicyField(
        Tighten.LOWER, Layering.HIGHEST, "an intent whose `confidence` is below it is refused (0-1)"
    ),
    "max_order_quantity": PolicyField(Tighten.UPPER, Layering.LOWEST, "the largest order quantity, in base units"),
    "max_order_notional_usd": PolicyField(Tighten.UPPER, Layering.LOWEST, "the largest order notional, in USD"),
    "max_position_size_pct": PolicyField(
        Tighten.UPPER, Layering.LOWEST, "the largest `position_size_pct` an intent may ask for (a fraction of equity)"
    ),
    "require_stop_loss": PolicyField(
        Tighten.REQUIRE, Layering.ANY, "an opening `buy`/`sell` must carry `stop_loss` or `stop_loss_pct`"
    ),
    "max_stop_distance_pct": PolicyField(
        Tighten.UPPER, Layering.LOWEST, "the widest stop an opening order may have, as a fraction of the entry"
    ),
    "price_collar_bps": PolicyField(
        Tighten.UPPER, Layering.LOWEST, "how far a priced order's `price` may be from `current_price`, in basis points"
    ),
    "max_symbol_exposure_usd": PolicyField(
        Tighten.UPPER, Layering.LOWEST, "projected gross exposure in the intent's symbol, in USD"
    ),
    "max_leverage": PolicyField(
        Tighten.UPPER,
        Layering.LOWEST,
        "the highest leverage an intent may request (`recommended_leverage`, `leverage`): above it refused, never "
        "clamped",
    ),
    "engine_sized_notional_usd": PolicyField(
        Tighten.ASSUMED,
        Layering.HIGHEST,
        "the notional assumed for an order the trade engine sizes itself (`quantity` 0, no `position_size_pct`); "
        "unset, such orders cannot be priced",
    ),
    "max_intents_per_second": PolicyField(
        Tighten.UPPER,
        Layering.PER_SCOPE,
        "promotions a second, each scope with its own counter (global: all; strategy: its own; symbol: that "
        "symbol's across strategies)",
    ),
    "max_intents_per_minute": PolicyField(
        Tighten.UPPER, Layering.PER_SCOPE, "promotions a minute, counted the same way"
    ),
    # -- global and strategy ----------------------------------------------------------------------------------------
    "allowed_symbols": PolicyField(
        Tighten.SUBSET, Layering.INTERSECTION, "the symbols admitted (a reducing intent passes all the same)"
    ),
    "denied_symbols": PolicyField(Tighten.SUPERSET, Layering.UNION, "symbols refused"),
    "max_daily_loss_usd": PolicyField(
        Tighten.UPPER,
        Layering.PER_SCOPE,
        "realised + unrealised loss since the trading day's start, in USD (latched): the global one the whole "
        "book's, a strategy's its own",
    ),
    # -- one scope --------------------------------------------------------------------------------------------------
    "own_identity": PolicyField(
        Tighten.REQUIRE,
        Layering.ONE_SCOPE,
        "the strategy publishes with an identity of its own: admitted only on `cio.intent.trading.<key>`",
    ),
    "require_timestamp": PolicyField(Tighten.REQUIRE, Layering.ONE_SCOPE, "an intent without a `timestamp` is refused"),
    "require_identity_subject": PolicyField(
        Tighten.REQUIRE,
        Layering.ONE_SCOPE,
        "intents on subjects that name no strategy (`cio.nurse.audit`, bare `cio.intent.trading`, "
        "`intent.trading.<SYMBOL>`) are refused",
    ),
    "only_listed_strategies": PolicyField(
        Tighten.REQUIRE, Layering.ONE_SCOPE, "strategies the policy does not name under `strategies` are refused"
    ),
    "max_intent_age_s": PolicyField(
        Tighten.UPPER, Layering.ONE_SCOPE, "the oldest an intent may be, by its `timestamp`"
    ),
    "max_clock_skew_s": PolicyField(
        Tighten.UPPER, Layering.ONE_SCOPE, "how far in the future an intent's `timestamp` may be"
    ),
    "dedupe_window_s": PolicyField(
        Tighten.LOWER, Layering.ONE_SCOPE, "the same strategy+symbol+action promoted less than this ago is refused"
    ),
    "max_total_exposure_usd": PolicyField(
        Tighten.UPPER, Layering.ONE_SCOPE, "projected gross exposure of the book, in USD"
    ),
    "max_drawdown_pct": PolicyField(
        Tighten.UPPER, Layering.ONE_SCOPE, "the book's drawdown that latches reducing-only (0-1)"
    ),
    "max_snapshot_age_s": PolicyField(
        Tighten.UPPER, Layering.ONE_SCOPE, "the oldest portfolio snapshot the exposure and loss limits may use"
    ),
    "max_daily_loss_pct": PolicyField(
        Tighten.UPPER,
        Layering.ONE_SCOPE,
        "the book's loss since the trading day's start, of that day's equity (latched)",
    ),
    "trading_day_start_utc": PolicyField(Tighten.FIXED, Layering.ONE_SCOPE, "when the trading day starts (HH:MM, UTC)"),
}

_STRICTER = {
    Tighten.UPPER: "lower",
    Tighten.LOWER: "higher",
    Tighten.SUBSET: "fewer entries",
    Tighten.SUPERSET: "more entries",
    Tighten.REQUIRE: "on",
    Tighten.STATE: "more severe",
    Tighten.ASSUMED: "unset, then higher",
    Tighten.FIXED: "— (any change loosens)",
}
_COMBINED = {
    Layering.MOST_SEVERE: "the most severe: `halted` > `reducing` > `active`",
    Layering.LOWEST: "the lowest",
    Layering.HIGHEST: "the highest",
    Layering.INTERSECTION: "the intersection",
    Layering.UNION: "the union",
    Layering.ANY: "required if any scope requires it",
    Layering.PER_SCOPE: "not merged: each scope's applies",
    Layering.ONE_SCOPE: "—",
}
BEGIN = "<!-- policy fields: generated from cio_kernel/policy/fields.py by `make docs` -->"
END = "<!-- end of policy fields -->"


def scopes_of(name: str) -> tuple[str, ...]:
    return tuple(scope for scope, model in SCOPE_MODELS.items() if name in model.model_fields)


def render_markdown() -> str:
    """The field table of docs/policy.md, generated so it can never drift from the declaration (a test checks)."""
    lines = ["| field | scopes | stricter when | several scopes | meaning |", "|---|---|---|---|---|"]
    for name, field in FIELDS.items():
        scopes = ", ".join(scopes_of(name))
        lines.append(
            f"| `{name}` | {scopes} | {_STRICTER[field.tighten]} | {_COMBINED[field.layering]} | {field.doc} |"
        )
    return "\n".join(lines) + "\n"


def splice(document: str) -> str:
    """`document` with the text between the markers replaced by the table."""
    head, begin, rest = document.partition(BEGIN + "\n")
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"the document has no {BEGIN!r} … {END!r} markers")
    return f"{head}{begin}{render_markdown()}{end}{tail}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"] and len(sys.argv) == 3:
        path = Path(sys.argv[2])
        path.write_text(splice(path.read_text()))
    else:
        print(render_markdown(), end="")
