"""A human-readable diff between two policy specs: one line per changed setting, by dotted path, each marked with
the way it moves risk.

The mark is not a second opinion: it is the project's one exact tightening check
(`cio_kernel.policy.tightening.loosenings`, the check behind auto-approval) run both ways and attributed to the
lines it names. A line **loosens** when the check finds its field looser in the new policy; it **tightens** when
the check, run from the new policy back to the old, finds going back looser; it is **neutral** when neither (the
description, the schema version, a scope's setting that equals what an absent scope means). A field the check
cannot order (the trading day's start) is looser both ways: it loosens. So a diff has a line marked "loosens"
exactly when the check refuses to call the new policy a pure tightening (tests/unit/test_diff_direction.py)."""

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cio_kernel.policy.fields import FIELDS
from cio_kernel.policy.spec import PolicySpec
from cio_kernel.policy.tightening import loosenings

_MISSING = object()
# The pseudo-field the check reports when naming a strategy admits it (`only_listed_strategies`): it belongs to
# every line of that strategy's scope.
_LISTED = "listed"
_SCOPE_OF_SECTION = {"strategies": "strategy", "symbols": "symbol"}


class Direction(StrEnum):
    TIGHTENS = "tightens"
    LOOSENS = "loosens"
    NEUTRAL = "neutral"


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any
    direction: Direction = Direction.NEUTRAL

    @property
    def kind(self) -> str:
        if self.before is _MISSING:
            return "added"
        if self.after is _MISSING:
            return "removed"
        return "changed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "before": None if self.before is _MISSING else self.before,
            "after": None if self.after is _MISSING else self.after,
            "direction": self.direction.value,
        }

    def __str__(self) -> str:
        if self.kind == "added":
            line = f"+ {self.path}: {_show(self.after)}"
        elif self.kind == "removed":
            line = f"- {self.path}: {_show(self.before)}"
        else:
            line = f"~ {self.path}: {_show(self.before)} → {_show(self.after)}"
        return f"{line} ({self.direction})"


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return "unset" if value is None else str(value)


def _flatten(value: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    # Keyed by the path's parts, not its dotted text: a strategy key may itself contain a dot.
    if isinstance(value, dict):
        out: dict[tuple[str, ...], Any] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], (*prefix, str(key))))
        return out
    if isinstance(value, list):
        return {prefix: sorted(value, key=str)}
    return {prefix: value}


def _normalised(spec: PolicySpec) -> dict[tuple[str, ...], Any]:
    # exclude_none: an unset limit and an absent one mean the same thing.
    return _flatten(spec.model_dump(mode="json", by_alias=True, exclude_none=True))


def _scope_field(parts: tuple[str, ...]) -> tuple[str, str] | None:
    """The check's (scope, field) for a diff path: ("global", f), ("strategy:<key>", f), ("symbol:<SYM>", f);
    None for what the check does not classify (description, schema_version)."""
    if len(parts) == 2 and parts[0] == "global":
        return "global", parts[1]
    if len(parts) == 3 and parts[0] in _SCOPE_OF_SECTION:
        return f"{_SCOPE_OF_SECTION[parts[0]]}:{parts[1]}", parts[2]
    return None


def _direction(parts: tuple[str, ...], looser: set[tuple[str, str]], stricter: set[tuple[str, str]]) -> Direction:
    found = _scope_field(parts)
    if found is None or found[1] not in FIELDS:
        return Direction.NEUTRAL
    scope, _ = found
    if found in looser or (scope, _LISTED) in looser:
        return Direction.LOOSENS
    if found in stricter or (scope, _LISTED) in stricter:
        return Direction.TIGHTENS
    return Direction.NEUTRAL


def diff_specs(before: PolicySpec | None, after: PolicySpec) -> list[Change]:
    """Every changed setting from `before` to `after`, marked. With no `before` (nothing active, so every gate
    refuses everything) any policy admits more: each policy field's line loosens."""
    old = _normalised(before) if before is not None else {}
    new = _normalised(after)
    if before is not None:
        looser = {(x.scope, x.field) for x in loosenings(before, after)}
        stricter = {(x.scope, x.field) for x in loosenings(after, before)}
    else:
        looser = {found for parts in new if (found := _scope_field(parts)) is not None}
        stricter = set()
    changes = []
    for parts in sorted(old.keys() | new.keys()):
        a, b = old.get(parts, _MISSING), new.get(parts, _MISSING)
        if a != b:
            changes.append(Change(".".join(parts), a, b, _direction(parts, looser, stricter)))
    return changes


def count_directions(changes: list[Change]) -> dict[str, int]:
    """How many lines of each mark: {"tightens": n, "loosens": n, "neutral": n} (every key present)."""
    counted = Counter(c.direction for c in changes)
    return {d.value: counted[d] for d in Direction}


_PLURAL = {Direction.TIGHTENS: "tighten", Direction.LOOSENS: "loosen", Direction.NEUTRAL: "neutral"}


def summarise(changes: list[Change]) -> str:
    """The counts in words, for people: "3 tighten, 1 loosens" (kinds with none left out; "no changes")."""
    counted = Counter(c.direction for c in changes)
    words = [f"{counted[d]} {d.value if counted[d] == 1 else _PLURAL[d]}" for d in Direction if counted[d]]
    return ", ".join(words) or "no changes"


def described(changes: list[Change]) -> dict[str, Any]:
    """The counts, as numbers and in words: what REST and MCP add to every diff they show."""
    return {"counts": count_directions(changes), "summary": summarise(changes)}
