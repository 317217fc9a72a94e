"""Whether an intent provably shrinks an existing position (docs/policy.md, The controls).

Reducing means |after| < |before| with no flip: a sell of at most the long quantity, a buy of at most the
short quantity, or a `close`. A quantity of 0 (sized by the trade engine) is never provably reducing.
"""

from cio_kernel.contracts.intent import Intent


def is_reducing(intent: Intent, position_qty: float | None) -> bool:
    if intent.action == "close":
        return True
    if position_qty is None or position_qty == 0 or intent.quantity <= 0:
        return False
    if intent.action == "sell":
        return position_qty > 0 and intent.quantity <= position_qty
    if intent.action == "buy":
        return position_qty < 0 and intent.quantity <= -position_qty
    return False
