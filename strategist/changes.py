"""A proposal as both brains express it: a list of field changes on the active policy, applied to a copy of its
spec and validated by `PolicySpec` (the gate's own schema). A patch is what an LLM can write reliably and cheaply,
and what a reviewing officer reads; the proposal itself is always the whole, validated spec."""

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cio_kernel.contracts.identity import IdentityError, scope_key
from cio_kernel.policy.spec import SCOPE_MODELS, PolicySpec, schema_problems

Scope = Literal["global", "strategy", "symbol"]
_SECTIONS = {"strategy": "strategies", "symbol": "symbols"}


class Change(BaseModel):
    """Set one field of one scope (`value` null removes the scope's own setting)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scope: Scope
    key: Annotated[str, Field(max_length=200)] | None = Field(
        default=None, description="the strategy id or symbol; null for global"
    )
    field: Annotated[str, Field(max_length=64)]
    value: Any = None

    def label(self) -> str:
        where = "global" if self.scope == "global" else f"{self.scope} {self.key}"
        return f"{where}.{self.field} = {self.value!r}"


class InvalidChangeError(ValueError):
    """The changes do not make a valid policy; `problems` says why, field by field, in words a model can act on."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def scope_fields(scope: Scope) -> tuple[str, ...]:
    return tuple(SCOPE_MODELS[scope].model_fields)


def apply_changes(spec: PolicySpec, changes: list[Change]) -> PolicySpec:
    document: dict[str, Any] = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    problems = []
    for index, change in enumerate(changes):
        if change.field not in SCOPE_MODELS[change.scope].model_fields:
            problems.append(f"changes[{index}]: {change.field!r} is not a field of the {change.scope} scope")
            continue
        if change.scope == "global":
            if change.key not in (None, ""):
                problems.append(f"changes[{index}]: the global scope takes no key")
                continue
            target = document.setdefault("global", {})
        elif not change.key:
            problems.append(f"changes[{index}]: a {change.scope} change needs the {change.scope} in `key`")
            continue
        else:
            try:  # the policy holds identities by key, however the brain spelled it
                key = scope_key(change.scope, change.key)
            except IdentityError as exc:
                problems.append(f"changes[{index}]: {exc}")
                continue
            target = document.setdefault(_SECTIONS[change.scope], {}).setdefault(key, {})
        if change.value is None:
            target.pop(change.field, None)
        else:
            target[change.field] = change.value
    if problems:
        raise InvalidChangeError(problems)
    # A scope left with no settings says nothing, so it goes; but a strategy the policy named stays named (with
    # `only_listed_strategies` the name is what admits it).
    document["symbols"] = {key: rules for key, rules in document.get("symbols", {}).items() if rules}
    document["strategies"] = {
        key: rules for key, rules in document.get("strategies", {}).items() if rules or key in spec.strategies
    }
    try:
        return PolicySpec.parse(document)
    except ValidationError as exc:
        raise InvalidChangeError(schema_problems(exc)) from exc


def patch_check(spec: PolicySpec) -> Callable[[list[Change]], list[str]]:
    """A brain's check for patches on `spec`: the problems that would keep them from making a valid policy."""

    def check(changes: list[Change]) -> list[str]:
        try:
            apply_changes(spec, changes)
        except InvalidChangeError as exc:
            return exc.problems
        return []

    return check
