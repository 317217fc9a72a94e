"""A deterministic feature embedding for incidents: no model, no download, the same vector on every machine.

An incident is described by features — its kind, strategy, symbol, reason codes, the words of its title and a
few bucketed magnitudes from its detail — and each feature is hashed into one of `DIMENSIONS` signed slots (the
"hashing trick"), weighted, then the vector is scaled to unit length. Two incidents are similar when they share
features: the same kind of event on the same strategy, for the same reasons, at a similar size.

Limits, stated plainly: it knows no synonyms or meaning ("drawdown" and "loss" are unrelated words to it), a
feature it has not seen counts like any other, and with 64 slots unrelated features sometimes collide (a small
similarity between incidents that share nothing). It is a search aid for "what looked like this before", not a
classifier. A pip-shipped sentence model could replace `embed` without changing the stores (same length, unit
vectors, cosine).
"""

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DIMENSIONS = 64
_WORD = re.compile(r"[a-z0-9_]{3,}")

# How much each kind of feature counts: what happened and to whom matter most; the wording least.
_WEIGHTS = {"kind": 3.0, "reason": 2.0, "strategy": 2.0, "symbol": 1.5, "size": 1.0, "word": 0.5}


def features(
    kind: str,
    title: str = "",
    strategy_id: str | None = None,
    symbol: str | None = None,
    reason_codes: Iterable[str] = (),
    detail: Mapping[str, Any] | None = None,
) -> list[tuple[str, float]]:
    found = [(f"kind:{kind}", _WEIGHTS["kind"])]
    if strategy_id:
        found.append((f"strategy:{strategy_id.lower()}", _WEIGHTS["strategy"]))
    if symbol:
        found.append((f"symbol:{symbol.upper()}", _WEIGHTS["symbol"]))
    found += [(f"reason:{code}", _WEIGHTS["reason"]) for code in sorted(set(reason_codes))]
    found += [(f"word:{word}", _WEIGHTS["word"]) for word in sorted(set(_WORD.findall(title.lower())))]
    for key, value in sorted((detail or {}).items()):
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
            # Orders of magnitude, so "a burst of 40" is near "a burst of 55" and far from "a burst of 4,000".
            found.append((f"size:{key}:{math.floor(math.log10(value) * 2)}", _WEIGHTS["size"]))
    return found


def embed(weighted: Sequence[tuple[str, float]]) -> tuple[float, ...]:
    vector = [0.0] * DIMENSIONS
    for name, weight in weighted:
        digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
        slot = int.from_bytes(digest[:4], "big") % DIMENSIONS
        sign = 1.0 if digest[4] & 1 else -1.0
        vector[slot] += sign * weight
    norm = math.sqrt(sum(x * x for x in vector))
    return tuple(round(x / norm, 12) for x in vector) if norm else tuple(vector)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """The cosine of two vectors, computed the same way for every backend (so scores and order agree)."""
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return round(dot / norm, 12) if norm else 0.0
