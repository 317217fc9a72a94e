"""One identity per symbol and per strategy: the only two functions any control compares keys with.

Every control that holds a key — the policy's scopes, deny and allow lists, trading states and their notices,
kill switches, latches, rate and duplicate counters, subject checks, promotion notices, audit records and their
statistics — compares `symbol_key(...)` and `strategy_key(...)` values and nothing else, so no respelling
escapes a limit (docs/contracts.md, "Identities"). Matching is always whole-string (`fullmatch`): a pattern
anchored with `$` also accepts a final line break, which is how a symbol once walked around a deny list.

- A **symbol** is upper-case ASCII letters, digits and `_`, starting with a letter or digit, at most 40
  (`BTCUSDT`, `BTCUSD_PERP`, `1000PEPEUSDT`). Anything else is refused, with the canonical spelling suggested
  when there is one (`btcusdt`, `LUNA/USDT`): the gate never rewrites an order, so the signal always carries
  exactly the canonical symbol.
- A **strategy id** may keep a display spelling on the wire (`Iceberg Order Detector`), drawn from ASCII letters,
  digits, space, `_`, `-` and `.`; anything else (other Unicode that reads the same, control characters, line
  breaks, quotes, other punctuation) is refused. Its key is lower-case with every run of separators (space,
  `_`, `-`, `.`) folded to one `_` and none at either end: `Iceberg Order Detector`, `iceberg_order_detector`
  and `ICEBERG-ORDER.DETECTOR` are one strategy. Every id that reaches a signals subject (where anything
  outside `A-Za-z0-9_-` becomes `_`) has the key of that subject's token, so two ids that share a subject are
  always the same strategy; a person reading two ids as the same (case, separators) gets the same key too.
"""

import functools
import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

SYMBOL_MAX = 40
STRATEGY_ID_MAX = 200
# The documented alphabets (docs/contracts.md): nothing outside them is an identity.
SYMBOL_ALPHABET = "A-Z, 0-9 and '_' (not first)"
STRATEGY_ID_ALPHABET = "ASCII letters, digits, space, '_', '-' and '.'"

_SYMBOL = re.compile(rf"[A-Z0-9][A-Z0-9_]{{0,{SYMBOL_MAX - 1}}}")
_STRATEGY_ID = re.compile(rf"[A-Za-z0-9 _.\-]{{1,{STRATEGY_ID_MAX}}}")
_STRATEGY_KEY = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
_SEPARATORS = re.compile(r"[ _.\-]+")
_NOT_SYMBOL = re.compile(r"[^A-Za-z0-9_]")
_UNSAFE_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


class IdentityError(ValueError):
    """A string that is no symbol or strategy id; the message says why and, when it can, what was meant."""

    def __init__(self, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion


# -- symbols --------------------------------------------------------------------------------------------------
def _symbol_suggestion(raw: str) -> str | None:
    hint = _NOT_SYMBOL.sub("", raw).upper() if raw.isascii() else ""
    return hint if hint and hint != raw and _SYMBOL.fullmatch(hint) else None


def symbol_key(raw: object) -> str:
    """The canonical symbol `raw` is, or `IdentityError` (never a rewrite: the suggestion is only a message)."""
    if isinstance(raw, str) and _SYMBOL.fullmatch(raw) is not None:
        return raw
    text = raw if isinstance(raw, str) else ""
    hint = _symbol_suggestion(text)
    suggestion = f" ({text[:60]!r} would be {hint!r})" if hint else ""
    raise IdentityError(f"a symbol is {SYMBOL_ALPHABET}, at most {SYMBOL_MAX} characters{suggestion}", hint)


def is_canonical_symbol(value: object) -> bool:
    return isinstance(value, str) and _SYMBOL.fullmatch(value) is not None


# -- strategies -----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8192)  # ids repeat on every intent; only valid ones are cached (errors raise)
def _key_of(raw: str) -> str:
    if _STRATEGY_ID.fullmatch(raw) is None:
        bad = next((c for c in raw if _STRATEGY_ID.fullmatch(c) is None), None)
        what = f"{bad!r} (U+{ord(bad):04X})" if bad is not None else f"more than {STRATEGY_ID_MAX} characters"
        raise IdentityError(f"a strategy id is {STRATEGY_ID_ALPHABET}, at most {STRATEGY_ID_MAX}: found {what}")
    key = _SEPARATORS.sub("_", raw.lower()).strip("_")
    if not key:
        raise IdentityError("a strategy id needs at least one letter or digit")
    return key


def strategy_key(raw: object) -> str:
    """The key every control knows a strategy by, or `IdentityError` when `raw` is no strategy id."""
    if not isinstance(raw, str) or not raw:
        raise IdentityError("a strategy id is a non-empty string")
    return _key_of(raw)


def is_strategy_key(value: object) -> bool:
    return isinstance(value, str) and _STRATEGY_KEY.fullmatch(value) is not None and len(value) <= STRATEGY_ID_MAX


def scope_key(scope: str, raw: str) -> str:
    """The key a trading-state scope names: "" for global, else `strategy_key` or `symbol_key` of `raw`."""
    if scope == "global":
        return ""
    if scope == "strategy":
        return strategy_key(raw)
    if scope == "symbol":
        return symbol_key(raw)
    raise IdentityError(f"a scope is global, strategy or symbol, not {scope[:40]!r}")


# -- NATS subjects --------------------------------------------------------------------------------------------
STRATEGY_SUBJECT_PREFIX = "cio.intent.trading."
SYMBOL_SUBJECT_PREFIX = "intent.trading."


def subject_token(value: str) -> str:
    """A single NATS subject token: anything outside `A-Za-z0-9_-` becomes `_` (SPEC §2; ids contain spaces).
    `strategy_key(subject_token(x)) == strategy_key(x)` for every strategy id `x`."""
    return _UNSAFE_TOKEN.sub("_", value) or "_"


def subject_identity(subject: str) -> tuple[str, str] | None:
    """What an intake subject says about its publisher: ("strategy", rest), ("symbol", rest), or None. `rest` is
    everything after the prefix, as sent (it may hold several tokens)."""
    if subject.startswith(STRATEGY_SUBJECT_PREFIX):
        return "strategy", subject[len(STRATEGY_SUBJECT_PREFIX) :]
    if subject.startswith(SYMBOL_SUBJECT_PREFIX):
        return "symbol", subject[len(SYMBOL_SUBJECT_PREFIX) :]
    return None


def strategy_subject(key: str) -> str:
    """The intake subject a strategy with an identity of its own publishes on (docs/access.md)."""
    return f"{STRATEGY_SUBJECT_PREFIX}{key}"


# -- pydantic types -------------------------------------------------------------------------------------------
def _valid_strategy_id(value: str) -> str:
    strategy_key(value)
    return value


def _canonical_strategy_key(value: str) -> str:
    key = strategy_key(value)
    if key != value:
        raise IdentityError(f"a policy names a strategy by its key: write {key!r}", key)
    return value


# An intent's symbol and every symbol a policy, snapshot or regime names: canonical or refused.
Symbol = Annotated[str, AfterValidator(symbol_key)]
SymbolKey = Symbol
# An intent's strategy id: any spelling of the alphabet, kept as sent; controls use `strategy_key` of it.
StrategyId = Annotated[
    str, StringConstraints(min_length=1, max_length=STRATEGY_ID_MAX), AfterValidator(_valid_strategy_id)
]
# A strategy as a policy or a control names it: the key itself.
StrategyKey = Annotated[
    str, StringConstraints(min_length=1, max_length=STRATEGY_ID_MAX), AfterValidator(_canonical_strategy_key)
]
