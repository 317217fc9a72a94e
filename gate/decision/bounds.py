"""Limits hold at their boundary: the one comparison every maximum and minimum the gate checks goes through.

A value equal to its limit is within it. Producers compute the figures the gate recomputes (a stop 5% below the
price, a quantity for a notional), and both sides work in binary floating point, so "equal" has to mean "equal up
to floating-point error": a stop exactly 5% away reads back as 0.050000000000000024. So a value is beyond its limit
only when it is beyond it by more than the tolerance

    max(REL_TOL × |limit|, floor)     REL_TOL = 1e-9, floor = ABS_TOL (1e-12) or, for durations, TIME_TOL_S (1 µs)

Why these figures: a double carries 2.2e-16 relative error per operation, and recomputing a ratio such as a stop
distance magnifies the producer's rounding by at most the inverse of the ratio (20× at 5%, 10,000× at one basis
point), so real rounding stays below 1e-11 of the limit; 1e-9 covers it with margin and is far below any step that
means something (a cent in 25,000 USD is 4e-7, one satoshi in 0.5 BTC 2e-8). The absolute floor only matters for
limits of 0. Durations (intent age, clock skew, snapshot age, the dedupe and rate windows) are differences of Unix
timestamps near 1.8e9 s, whose spacing is 2.4e-7 s, so their error is absolute, not relative to the limit; the
timestamps carry whole microseconds, so 1 µs is their floor.

The latched limits (drawdown, daily loss) trip when the value *reaches* the limit: `reaches` is the same equality,
so a drawdown equal to its limit up to the tolerance trips the latch, as one exactly at it does.

Every function is plain float arithmetic. Callers on the decision path compare first (`value > limit and
exceeds(value, limit)`): a value inside its limit, nearly every one, then costs one comparison and no call.
"""

REL_TOL = 1e-9
ABS_TOL = 1e-12
TIME_TOL_S = 1e-6


def tolerance(limit: float, floor: float = ABS_TOL) -> float:
    """How far a value may lie beyond `limit` and still equal it."""
    scaled = abs(limit) * REL_TOL
    return scaled if scaled > floor else floor


# The three comparisons spell the tolerance out rather than call `tolerance`: the latches' check runs on every
# decision with the value well inside (so past the first comparison), and a nested call would double its cost.
def exceeds(value: float, limit: float, floor: float = ABS_TOL) -> bool:
    """Whether `value` is above the maximum `limit` by more than the tolerance."""
    if value <= limit:
        return False
    scaled = abs(limit) * REL_TOL
    return value - limit > (scaled if scaled > floor else floor)


def below(value: float, limit: float, floor: float = ABS_TOL) -> bool:
    """Whether `value` is under the minimum `limit` by more than the tolerance."""
    if value >= limit:
        return False
    scaled = abs(limit) * REL_TOL
    return limit - value > (scaled if scaled > floor else floor)


def reaches(value: float, limit: float, floor: float = ABS_TOL) -> bool:
    """Whether `value` is at or above the trip level `limit` (equal up to the tolerance counts as at)."""
    if value >= limit:
        return True
    scaled = abs(limit) * REL_TOL
    return limit - value <= (scaled if scaled > floor else floor)


# -- what a refusal prints ---------------------------------------------------------------------------------------
# A refusal shows the value and the limit in one format; when the usual precision would print them alike (the value
# is beyond by less than the last printed digit), more digits are printed until the figures differ. Decimal
# rounding is monotonic, so figures that differ always differ in the right direction.
_MAX_EXTRA_DIGITS = 20


def figures(value: float, limit: float, kind: str = "g", precision: int = 6) -> tuple[str, str]:
    """`value` and `limit` as text, formatted `{:<grouping>.<precision><type>}` (`kind` is the type, optionally
    preceded by `,`: "g", "f", ",f", "%"), with the precision raised until they differ. Figures equal up to the
    tolerance (a latch that was reached, not exceeded) print as the limit for both."""
    if not exceeds(value, limit) and not below(value, limit):
        value = limit
    for digits in range(precision, precision + _MAX_EXTRA_DIGITS):
        spec = f"{kind[:-1]}.{digits}{kind[-1]}"
        shown, bound = format(value, spec), format(limit, spec)
        if shown != bound or value == limit:
            return shown, bound
    return repr(value), repr(limit)


def rounded(value: float, limit: float, digits: int) -> float:
    """`round(value, digits)` for a reason's `observed`, with more digits where rounding would land on the limit or
    past it: a refused value never reads as within its limit, in the message or in the field."""
    beyond_max = value > limit
    for places in range(digits, digits + _MAX_EXTRA_DIGITS):
        shown = round(value, places)
        if shown != limit and (shown > limit) == beyond_max:
            return shown
    return value
