"""Values others control — a strategy's id, the symbols it names, the reason codes and titles its decisions and
incidents carry, a producer's alert text — made fit to show a model as data, never as instructions.

A strategy chooses its own id and whatever free text it sends, and all of it can reach the audit store, the
decision statistics and the incidents a cycle looks at. So before any of it enters a context (and so a prompt):
- ids are canonical or they are not shown: `strategy_key` / `symbol_key`, at most `MAX_ID` characters, and
  respellings of one strategy merged under its key; what they refuse is counted under one
  `"other (N ids)"` entry, never shown;
- reason codes are the gate's own (`ReasonCode`) or counted under `"other (N codes)"`;
- free text is one line, without control characters, at most `MAX_TEXT` characters;
- everything is a JSON value in the prompt (quoted by the encoder), and the system prompt says it is data.
"""

import re
from collections.abc import Callable, Mapping
from typing import Any

from cio_kernel.contracts.identity import IdentityError, strategy_key, symbol_key
from cio_kernel.reason_codes import ReasonCode

MAX_ID = 64
MAX_TEXT = 200
MAX_DESCRIPTION = 1000
NONE = "(none)"  # the statistics' own label for decisions without a strategy or symbol; never a canonical id

_CODES = frozenset(ReasonCode)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]+")
_SPACES = re.compile(r"\s+")


def text(value: object, limit: int = MAX_TEXT) -> str:
    """One line of at most `limit` characters: control, bidi and zero-width characters become spaces."""
    flat = _SPACES.sub(" ", _CONTROL.sub(" ", str(value))).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _key_or_none(key_of: Callable[[object], str], raw: object) -> str | None:
    try:
        key = key_of(raw)
    except IdentityError:
        return None
    return key if len(key) <= MAX_ID else None


def strategy(raw: object) -> str | None:
    """The strategy's key when `raw` is a strategy id fit to show, else None."""
    return _key_or_none(strategy_key, raw)


def symbol(raw: object) -> str | None:
    return _key_or_none(symbol_key, raw)


def code(raw: object) -> str | None:
    return raw if isinstance(raw, str) and raw in _CODES else None


def _merge(target: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, Mapping):
        bucket = target.setdefault(key, {})
        for k, n in value.items():
            bucket[k] = bucket.get(k, 0) + n
    else:
        target[key] = target.get(key, 0) + value


def counts(table: Mapping[str, Any], key_of: Callable[[object], str | None], what: str = "ids") -> dict[str, Any]:
    """`table` ({name: count} or {name: {decision: count}}) with each name replaced by its key; names without
    one (refused, too long) summed under `other (N ids)`, where N is how many distinct names went there."""
    shown: dict[str, Any] = {}
    other: dict[str, Any] = {}
    refused: set[str] = set()
    for name, value in table.items():
        key = NONE if name == NONE else key_of(name)
        if key is None:
            refused.add(name)
            _merge(other, "other", value)
        else:
            _merge(shown, key, value)
    if refused:
        shown[f"other ({len(refused)} {what})"] = other["other"]
    return shown


def strategy_counts(table: Mapping[str, Any]) -> dict[str, Any]:
    return counts(table, strategy)


def symbol_counts(table: Mapping[str, Any]) -> dict[str, Any]:
    return counts(table, symbol)


def code_counts(table: Mapping[str, Any]) -> dict[str, Any]:
    return counts(table, code, "codes")


def scalar(name: str, value: Any) -> Any:
    """A trigger detail's value as data: a symbol canonical (else dropped), a string one bounded line."""
    if name == "symbol":
        return symbol(value)
    if isinstance(value, str):
        return text(value)
    return value


def detail(values: Mapping[str, Any]) -> dict[str, Any]:
    """A trigger's detail: scalars as `scalar`, and small tables keyed by symbol (concentration) with canonical
    keys only. Key names are the detectors' own (`strategist/triggers.py`), bounded all the same."""
    plain: dict[str, Any] = {}
    for raw_name, value in values.items():
        name = text(raw_name, MAX_ID)
        if isinstance(value, Mapping):
            plain[name] = {k: v for k, v in counts(value, symbol).items() if not isinstance(v, Mapping)}
        else:
            kept = scalar(name, value)
            if kept is not None or value is None:
                plain[name] = kept
    return plain
