"""A human-readable diff between two policy specs: one line per changed setting, by dotted path."""

from dataclasses import dataclass
from typing import Any

from cio_kernel.policy.spec import PolicySpec

_MISSING = object()


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any

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
        }

    def __str__(self) -> str:
        if self.kind == "added":
            return f"+ {self.path}: {_show(self.after)}"
        if self.kind == "removed":
            return f"- {self.path}: {_show(self.before)}"
        return f"~ {self.path}: {_show(self.before)} → {_show(self.after)}"


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return "unset" if value is None else str(value)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list):
        return {prefix: sorted(value, key=str)}
    return {prefix: value}


def _normalised(spec: PolicySpec) -> dict[str, Any]:
    # exclude_none: an unset limit and an absent one mean the same thing.
    return _flatten(spec.model_dump(mode="json", by_alias=True, exclude_none=True))


def diff_specs(before: PolicySpec | None, after: PolicySpec) -> list[Change]:
    old = _normalised(before) if before is not None else {}
    new = _normalised(after)
    changes = []
    for path in sorted(old.keys() | new.keys()):
        a, b = old.get(path, _MISSING), new.get(path, _MISSING)
        if a != b:
            changes.append(Change(path, a, b))
    return changes
