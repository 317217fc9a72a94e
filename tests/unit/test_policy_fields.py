"""The declaration of the policy's fields (`cio_kernel.policy.fields`) against what is derived from it: the models
it must cover, the tightening check that must honour every direction, the resolver that must combine every field
as declared, and the table in docs/policy.md."""

import typing
from enum import Enum
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from cio_kernel.policy.fields import BEGIN, END, FIELDS, Layering, Tighten, render_markdown, splice
from cio_kernel.policy.spec import SCOPE_MODELS, LimitSet, PolicySpec
from cio_kernel.policy.tightening import loosenings
from gate.policy.resolve import MERGED_FIELDS, EffectiveLimits, resolve_limits

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
SCOPE_NAMES = {"global": "global", "strategy": "strategy:alpha", "symbol": "symbol:BTCUSDT"}
# The way each direction restricts, as the resolver must take it where several scopes set the field.
AGREES = {
    Tighten.UPPER: {Layering.LOWEST, Layering.PER_SCOPE, Layering.ONE_SCOPE},
    Tighten.LOWER: {Layering.HIGHEST, Layering.ONE_SCOPE},
    Tighten.SUBSET: {Layering.INTERSECTION},
    Tighten.SUPERSET: {Layering.UNION},
    Tighten.REQUIRE: {Layering.ANY, Layering.ONE_SCOPE},
    Tighten.STATE: {Layering.MOST_SEVERE},
    Tighten.ASSUMED: {Layering.HIGHEST},
    Tighten.FIXED: {Layering.ONE_SCOPE},
}
FIELD_SCOPES = [(name, scope) for name in FIELDS for scope, model in SCOPE_MODELS.items() if name in model.model_fields]


def test_every_field_of_every_scope_is_declared_and_nothing_else():
    fields = {name for model in SCOPE_MODELS.values() for name in model.model_fields}
    assert set(FIELDS) == fields


def test_every_field_is_documented():
    for name, field in FIELDS.items():
        assert field.doc.strip() and "|" not in field.doc, name


def test_a_field_in_one_scope_only_is_declared_so_and_no_other():
    for name, field in FIELDS.items():
        in_one = sum(name in model.model_fields for model in SCOPE_MODELS.values()) == 1
        assert in_one == (field.layering is Layering.ONE_SCOPE), name


@pytest.mark.parametrize("name", list(FIELDS))
def test_direction_and_layering_agree(name):
    """Layering keeps the strictest value, so it must be strictest in the field's own direction."""
    assert FIELDS[name].layering in AGREES[FIELDS[name].tighten]


# -- the tightening check honours every direction -------------------------------------------------------------------
def _element_values(model: type[BaseModel], name: str) -> list[str]:
    """Three valid members of a set-valued field: its literals', its enum's, or symbols."""

    def members(annotation: Any) -> list[str] | None:
        if typing.get_origin(annotation) is typing.Literal:
            return [str(v) for v in typing.get_args(annotation)]
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            return [m.value for m in annotation]
        for arg in typing.get_args(annotation):
            found = members(arg)
            if found is not None:
                return found
        return None

    return (members(model.model_fields[name].annotation) or SYMBOLS)[:3]


def _valid(model: type[BaseModel], name: str, value: Any) -> bool:
    try:
        model.model_validate_json(orjson.dumps({name: value}))
    except ValidationError:
        return False
    return True


def _cases(direction: Tighten, model: type[BaseModel], name: str) -> tuple[Any, list[Any], list[Any]]:
    """(a value, values strictly tighter than it, values looser than it), as JSON."""
    if direction in (Tighten.UPPER, Tighten.LOWER, Tighten.ASSUMED):
        low, mid, high = (0.25, 0.5, 0.75) if _valid(model, name, 0.25) else (1, 2, 3)
        unset = [None] if _valid(model, name, None) else []
        if direction is Tighten.UPPER:
            return mid, [low], [high, *unset]
        if direction is Tighten.LOWER:
            return mid, [high], [low, *unset]
        return mid, [high, *unset], [low]
    if direction in (Tighten.SUBSET, Tighten.SUPERSET):
        a, b, c = _element_values(model, name)
        fewer, more = [[a]], [[a, b, c]]
        if direction is Tighten.SUBSET:
            return [a, b], [*fewer, []], [*more, *([None] if _valid(model, name, None) else [])]
        return [a, b], more, [*fewer, []]
    if direction is Tighten.REQUIRE:
        return True, [], [False, *([None] if _valid(model, name, None) else [])]  # on is the strictest there is
    if direction is Tighten.STATE:
        return "reducing", ["halted"], ["active"]
    if direction is Tighten.FIXED:
        return "08:00", [], ["09:00", "00:00"]  # not ordered: any change loosens
    raise AssertionError(f"no sample values for the direction {direction}: add them here")


def _spec(scope: str, name: str, value: Any) -> PolicySpec:
    rules = {name: value}
    return PolicySpec.parse(
        {
            "global": rules if scope == "global" else {},
            "strategies": {"alpha": rules} if scope == "strategy" else {},
            "symbols": {"BTCUSDT": rules} if scope == "symbol" else {},
        }
    )


@pytest.mark.parametrize(("name", "scope"), FIELD_SCOPES)
def test_the_tightening_check_honours_the_declared_direction(name, scope):
    direction = FIELDS[name].tighten
    value, tighter, looser = _cases(direction, SCOPE_MODELS[scope], name)
    old = _spec(scope, name, value)
    assert loosenings(old, old) == []
    for new in tighter:
        assert loosenings(old, _spec(scope, name, new)) == [], f"{name}: {value!r} → {new!r} is a tightening"
        assert [(x.scope, x.field) for x in loosenings(_spec(scope, name, new), old)] == [(SCOPE_NAMES[scope], name)]
    for new in looser:
        assert [(x.scope, x.field) for x in loosenings(old, _spec(scope, name, new))] == [(SCOPE_NAMES[scope], name)]
    if direction is Tighten.REQUIRE:  # the requirement switched on, from off or unset
        assert loosenings(_spec(scope, name, False), old) == []


# -- the resolver combines every field as declared ------------------------------------------------------------------
_APART = {"trading_state", "max_intents_per_second", "max_intents_per_minute"}  # resolved with more than a value


def test_the_resolver_merges_every_limit_a_scope_may_set():
    merged = {name for name, _ in MERGED_FIELDS}
    assert merged | _APART == set(LimitSet.model_fields)
    assert not merged & _APART
    assert merged <= set(EffectiveLimits.__dataclass_fields__)
    assert {FIELDS[name].layering for name in _APART} == {Layering.MOST_SEVERE, Layering.PER_SCOPE}


@pytest.mark.parametrize("name", sorted(name for name, _ in MERGED_FIELDS))
def test_the_resolver_takes_the_declared_value_where_two_scopes_set_a_limit(name):
    layering = FIELDS[name].layering
    if layering is Layering.ANY:
        pairs = {(False, True): True, (True, False): True, (False, False): False}
    elif layering is Layering.INTERSECTION:
        a, b, c = _element_values(LimitSet, name)
        pairs = {((a, b), (b, c)): frozenset({b}), ((a,), (b,)): frozenset()}
    else:
        low, high = (0.25, 0.75) if _valid(LimitSet, name, 0.25) else (1, 3)
        pairs = {(low, high): low, (high, low): low} if layering is Layering.LOWEST else {(low, high): high}
    for (global_value, symbol_value), expected in pairs.items():
        spec = PolicySpec.parse(
            {"global": {name: _plain(global_value)}, "symbols": {"BTCUSDT": {name: _plain(symbol_value)}}}
        )
        assert getattr(resolve_limits(spec, "alpha", "BTCUSDT"), name) == expected, (name, global_value, symbol_value)
        alone = PolicySpec.parse({"symbols": {"BTCUSDT": {name: _plain(symbol_value)}}})
        assert getattr(resolve_limits(alone, "alpha", "BTCUSDT"), name) == _plain_set(symbol_value)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _plain_set(value: Any) -> Any:
    return frozenset(value) if isinstance(value, tuple) else value


# -- the document ---------------------------------------------------------------------------------------------------
def test_the_published_table_is_the_declaration():
    document = (ROOT / "docs" / "policy.md").read_text()
    assert document.count(BEGIN) == 1 and document.count(END) == 1
    assert splice(document) == document, "run `make docs`"
    assert f"{BEGIN}\n{render_markdown()}{END}" in document
    for name in FIELDS:
        assert f"| `{name}` |" in render_markdown()
