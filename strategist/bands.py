"""Volatility bands: how the Strategist names a symbol's regime from its realised volatility (a fraction of
price over the producer's window). Shared by the triggers (a change of band is a regime shift) and the rule
brain (the band sets how far a symbol's order notional is scaled down). Documented in docs/strategist.md."""

CALM, NORMAL, VOLATILE, EXTREME = "calm", "normal", "volatile", "extreme"
# Upper bounds (exclusive): below 2 % calm, below 5 % normal, below 10 % volatile, from 10 % extreme.
BOUNDS = ((0.02, CALM), (0.05, NORMAL), (0.10, VOLATILE))


def band(volatility: float) -> str:
    for bound, name in BOUNDS:
        if volatility < bound:
            return name
    return EXTREME


def is_stressed(name: str) -> bool:
    return name in (VOLATILE, EXTREME)
