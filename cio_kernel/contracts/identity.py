"""One identity per symbol and per strategy, so no respelling escapes a limit (docs/contracts.md, "Identities").

- A symbol is canonical or refused: upper-case letters, digits and `_` (`BTCUSDT`, `BTCUSD_PERP`). `btcusdt`,
  `LUNA/USDT` or `BTC-USDT` are `VAL_ERR` with the canonical spelling in the message: the gate never rewrites
  an order, and a policy keyed on `LUNAUSDT` must not miss `LUNA/USDT`.
- A strategy id keeps its spelling on the wire (display names with spaces exist), but the policy and the
  stateful controls know it by `canonical_strategy`: case-folded, whitespace collapsed. A policy may not hold two
  ids with one canonical form, and an id may hold no control, format (bidi) or quote characters.
"""

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9_]{0,39}$")
_NOT_SYMBOL = re.compile(r"[^A-Za-z0-9_]")
_QUOTES = frozenset("\"'`\u2018\u2019\u201c\u201d")


def is_canonical_symbol(value: str) -> bool:
    return _SYMBOL.match(value) is not None


def canonical_symbol(raw: str) -> str:
    """The canonical spelling a producer most likely meant (for messages; the gate never substitutes it)."""
    return _NOT_SYMBOL.sub("", raw).upper()


def _symbol(value: str) -> str:
    if not _SYMBOL.match(value):
        hint = canonical_symbol(value)
        suggestion = f" ({value!r} would be {hint!r})" if hint and _SYMBOL.match(hint) else ""
        raise ValueError(f"a symbol is upper-case letters, digits and '_', at most 40{suggestion}")
    return value


def canonical_strategy(strategy_id: str) -> str:
    return " ".join(strategy_id.split()).casefold()


def _strategy_id(value: str) -> str:
    if not value.strip():
        raise ValueError("a strategy id cannot be blank")
    for char in value:
        if char in _QUOTES or unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            raise ValueError(f"a strategy id may not contain {unicodedata.name(char, hex(ord(char)))}")
    return value


_UNSAFE_TOKEN = re.compile(r"[^A-Za-z0-9_-]")
STRATEGY_SUBJECT_PREFIX = "cio.intent.trading."
SYMBOL_SUBJECT_PREFIX = "intent.trading."


def subject_token(value: str) -> str:
    """A single NATS subject token: anything outside `A-Za-z0-9_-` becomes `_` (strategy ids contain spaces)."""
    return _UNSAFE_TOKEN.sub("_", value) or "_"


def subject_identity(subject: str) -> tuple[str, str] | None:
    """What an intake subject says about its publisher: ("strategy", token), ("symbol", token), or None."""
    if subject.startswith(STRATEGY_SUBJECT_PREFIX):
        return "strategy", subject[len(STRATEGY_SUBJECT_PREFIX) :]
    if subject.startswith(SYMBOL_SUBJECT_PREFIX):
        return "symbol", subject[len(SYMBOL_SUBJECT_PREFIX) :]
    return None


Symbol = Annotated[str, AfterValidator(_symbol)]  # an intent's: the error names the canonical spelling
SymbolKey = Annotated[str, StringConstraints(pattern=_SYMBOL.pattern)]  # a policy's: checked in pydantic-core
StrategyId = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_strategy_id)]
