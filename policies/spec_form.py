"""The admin's per-field policy form: one input per field of every scope, generated from the `PolicySpec` models
themselves (`GlobalRules`, `StrategyRules`, `SymbolRules`), so a field added to a model appears here without an
edit, and a field of a type this module cannot show raises rather than going missing (a test builds every scope's
form).

The form only collects values: it builds the same policy document an expert would type in the JSON view and
submits it through the same validation (`policies.models.parse_spec`, then the proposal envelope), and puts each
problem that validation reports back next to the field it names.

Conventions (docs/policy.md): a blank input of a field that may be unset means unset (for the global age limit,
"no limit"); a blank input of a field that may not be unset means its default. A list is written comma- or
space-separated; `[]` is an empty list, which for an allow-list admits nothing. A strategy or symbol section with
a blank key and nothing filled in is ignored; "remove" drops a scope."""

import re
import types
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from django import forms
from django.core.exceptions import ValidationError
from pydantic import TypeAdapter
from pydantic import ValidationError as SpecValidationError

from cio_kernel.contracts.identity import StrategyKey, SymbolKey
from cio_kernel.policy.envelope import Breach
from cio_kernel.policy.fields import FIELDS
from cio_kernel.policy.spec import GlobalRules, LimitSet, PolicySpec, StrategyRules, SymbolRules
from policies import extensions
from policies.models import PolicyVersion, compact_spec, parse_spec

EMPTY_LIST = "[]"
_SPLIT = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True)
class Shape:
    """What a model field holds, as far as a form input is concerned."""

    kind: Literal["bool", "int", "float", "text", "choice", "list"]
    optional: bool  # may be unset (None)
    choices: tuple[str, ...] = ()  # for "choice", and for "list" of a closed set of values


def _strip_annotated(annotation: Any) -> Any:
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def shape_of(annotation: Any) -> Shape:
    """The input a field's annotation calls for; TypeError for a type no input here can edit."""
    optional = False
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"a union of several types: {annotation!r}")
        optional, annotation = len(members) < len(get_args(annotation)), members[0]
    annotation = _strip_annotated(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return Shape("choice", optional, tuple(m.value for m in annotation))
    if annotation in (bool, int, float):
        return Shape(annotation.__name__, optional)  # type: ignore[arg-type]
    if annotation is str:
        return Shape("text", optional)
    if get_origin(annotation) is frozenset:
        item = _strip_annotated(get_args(annotation)[0])
        if get_origin(item) is Literal:
            return Shape("list", optional, tuple(get_args(item)))
        if item is str:
            return Shape("list", optional)
    raise TypeError(f"no form input for {annotation!r}")


class ListField(forms.CharField):
    """A set, written comma- or space-separated; blank is None (unset), `[]` the empty list."""

    def __init__(self, *, choices: tuple[str, ...], **kwargs: Any) -> None:
        self.allowed = choices
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[str] | None:
        text = (value or "").strip()
        if not text:
            return None
        if text == EMPTY_LIST:
            return []
        items = sorted({item for item in _SPLIT.split(text.strip("[]")) if item})
        unknown = [item for item in items if self.allowed and item not in self.allowed]
        if unknown:
            raise ValidationError(f"not one of {', '.join(self.allowed)}: {', '.join(unknown)}")
        return items

    def prepare_value(self, value: Any) -> str:
        if value is None or isinstance(value, str):
            return value or ""
        return ", ".join(sorted(value)) if value else EMPTY_LIST


_BOOLEAN_CHOICES = [("true", "yes"), ("false", "no")]


def _form_field(name: str, shape: Shape, default: Any) -> forms.Field:
    doc = FIELDS[name].doc if name in FIELDS else ""
    blank = "blank: unset" if shape.optional else f"blank: the default ({_shown(default)})"
    help_text = f"{doc} ({blank})" if doc else blank
    common: dict[str, Any] = {"required": False, "help_text": help_text, "label": name}
    if shape.kind == "bool":
        blank_choice = ("", "unset") if shape.optional else ("", f"default ({_shown(default)})")
        return forms.TypedChoiceField(
            choices=[blank_choice, *_BOOLEAN_CHOICES], coerce=lambda v: v == "true", empty_value=None, **common
        )
    if shape.kind == "choice":
        return forms.ChoiceField(choices=[("", "—"), *((c, c) for c in shape.choices)], **common)
    if shape.kind == "int":
        return forms.IntegerField(**common)
    if shape.kind == "float":
        return forms.FloatField(**common)
    if shape.kind == "list":
        if shape.choices:
            common["help_text"] += f"; of {', '.join(shape.choices)}"
        return ListField(choices=shape.choices, widget=forms.TextInput(attrs={"size": 60}), **common)
    return forms.CharField(**common)


def _shown(value: Any) -> str:
    if isinstance(value, frozenset):
        return ", ".join(sorted(value)) or EMPTY_LIST
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value.value if isinstance(value, Enum) else value)


class ScopeForm(forms.Form):
    """One scope's fields; subclasses are generated per model (`scope_form`)."""

    model: type[LimitSet] = LimitSet
    heading = ""
    keyed = False  # strategies and symbols carry their key (and a remove box); global does not
    key_type: Any = None

    def values(self) -> dict[str, Any]:
        """The scope as the policy document holds it: unset optional fields as null, blank others left out."""
        out: dict[str, Any] = {}
        for name, field in self.model.model_fields.items():
            value = self.cleaned_data.get(name)
            if value in (None, "") and not shape_of(field.annotation).optional:
                continue
            out[name] = None if value == "" else value
        return out

    def filled(self) -> bool:
        return any(self.cleaned_data.get(name) not in (None, "") for name in self.model.model_fields)

    def canonical_key(self) -> str | None:
        """The scope's key in its one canonical spelling; None when blank (an error on the key when invalid)."""
        raw = (self.cleaned_data.get("key") or "").strip()
        if not raw:
            return None
        try:
            return str(TypeAdapter(self.key_type).validate_python(raw))
        except SpecValidationError as exc:
            self.add_error("key", "; ".join(e["msg"] for e in exc.errors(include_url=False)))
            return None


@cache
def scope_form(model: type[LimitSet]) -> type[ScopeForm]:
    """The form of one scope: a field per model field, in the model's order (after the key, where there is one)."""
    attrs: dict[str, Any] = {"model": model}
    if model is not GlobalRules:
        noun = "strategy id" if model is StrategyRules else "symbol"
        attrs |= {
            "keyed": True,
            "key_type": StrategyKey if model is StrategyRules else SymbolKey,
            "key": forms.CharField(required=False, max_length=200, label="key", help_text=noun),
            "remove": forms.BooleanField(required=False, label="remove this scope"),
        }
    for name, field in model.model_fields.items():
        attrs[name] = _form_field(name, shape_of(field.annotation), field.default)
    return type(f"{model.__name__}Form", (ScopeForm,), attrs)


class ProposalHeadForm(forms.Form):
    """What is not a scope: the proposal's rationale, the policy's description and how many sections were shown."""

    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 110}))
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "cols": 110}), required=False, max_length=10_000
    )
    strategy_sections = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    symbol_sections = forms.IntegerField(min_value=0, widget=forms.HiddenInput)


_SECTION = {"strategies": StrategyRules, "symbols": SymbolRules}
_PREFIX = {"strategies": "strategy", "symbols": "symbol"}
BLANK_SECTIONS = 1  # one empty section of each kind to add a scope; more at once in the JSON view
MAX_SECTIONS = 1_000  # of each kind a POST may ask for (a request carries fewer inputs than that anyway)


def inputs_needed(spec: PolicySpec) -> int:
    """How many inputs the per-field form of `spec` has (a policy naming thousands of symbols is for the JSON
    view: a POST may carry only so many fields)."""
    per = {name: len(scope_form(model).base_fields) for name, model in _SECTION.items()}
    sections = {"strategies": len(spec.strategies), "symbols": len(spec.symbols)}
    keyed = sum((sections[name] + BLANK_SECTIONS) * per[name] for name in _SECTION)
    return len(ProposalHeadForm.base_fields) + len(scope_form(GlobalRules).base_fields) + keyed + 2


class PolicyFieldsForm:
    """The whole per-field form: head, global scope, a section per strategy and per symbol. `is_valid` builds
    the document and runs it through `check` (the same validation as the JSON view); `spec` is then the compact
    policy to propose."""

    def __init__(self, data: Any = None, *, initial: PolicySpec, check: Any) -> None:
        self.check, self.spec = check, None  # check(raw) -> PolicySpec, raising ValidationError (cause: pydantic)
        head_initial = {
            "description": initial.description,
            "strategy_sections": len(initial.strategies) + BLANK_SECTIONS,
            "symbol_sections": len(initial.symbols) + BLANK_SECTIONS,
        }
        self.head = ProposalHeadForm(data, initial=head_initial)
        self.global_form = scope_form(GlobalRules)(data, prefix="global", initial=_initial(initial.global_rules))
        self.global_form.heading = "Global limits"
        self.sections: dict[str, list[ScopeForm]] = {}
        for name, model in _SECTION.items():
            scopes = list(getattr(initial, name).items())
            count = len(scopes) + BLANK_SECTIONS
            if data is not None:  # as many as the page that was submitted showed
                count = min(_count(data, f"{_PREFIX[name]}_sections", count), MAX_SECTIONS)
            forms_ = []
            for index in range(count):
                key, rules = scopes[index] if index < len(scopes) else ("", None)
                start = {"key": key, **_initial(rules)} if rules is not None else {}
                section = scope_form(model)(data, prefix=f"{_PREFIX[name]}-{index}", initial=start)
                noun = _PREFIX[name]
                section.heading = f"{noun.capitalize()} {key}" if key else f"New {noun} (give a key to add one)"
                forms_.append(section)
            self.sections[name] = forms_
        self.non_field_errors: list[str] = []

    @property
    def scope_forms(self) -> list[ScopeForm]:
        return [self.global_form, *(f for group in self.sections.values() for f in group)]

    def all_forms(self) -> list[forms.Form]:
        return [self.head, *self.scope_forms]

    def is_valid(self) -> bool:
        if not all([form.is_valid() for form in self.all_forms()]):
            return False
        document: dict[str, Any] = {
            "description": self.head.cleaned_data["description"],
            "global": self.global_form.values(),
        }
        owners: dict[tuple[str, str], ScopeForm] = {}
        for name, group in self.sections.items():
            scopes: dict[str, Any] = {}
            for form in group:
                if form.cleaned_data.get("remove"):
                    continue
                key = form.canonical_key()
                if key is None:
                    if form.filled() and not form.errors:
                        form.add_error("key", f"give the {_PREFIX[name]}'s key, or tick remove")
                    continue
                if key in scopes:
                    form.add_error("key", f"{key} is named by another section too")
                    continue
                scopes[key], owners[(name, key)] = form.values(), form
            document[name] = scopes
        # Checked even when a section's key is wrong: every problem is shown at once, each beside its field.
        keys_wrong = any(form.errors for form in self.all_forms())
        try:
            spec = self.check(document)
        except ValidationError as exc:
            self._place(exc, owners)
            return False
        self.spec = None if keys_wrong else spec
        return not keys_wrong

    @property
    def cleaned(self) -> dict[str, Any]:
        assert self.spec is not None
        return compact_spec(self.spec)

    def _place(self, exc: ValidationError, owners: dict[tuple[str, str], ScopeForm]) -> None:
        """Each problem next to its field: pydantic's locations (the error's cause) or the envelope's breaches;
        what names no field of the form goes above it."""
        cause = exc.__cause__
        located: list[tuple[tuple[Any, ...], str]] = []
        if isinstance(cause, SpecValidationError):
            located = [(tuple(e["loc"]), e["msg"]) for e in cause.errors(include_url=False, include_input=False)]
        elif isinstance(cause, BreachError):
            located = [(_breach_loc(b), f"OUTSIDE_ENVELOPE: {b.message}") for b in cause.breaches]
        else:
            self.non_field_errors += exc.messages
            return
        for loc, message in located:
            form, field = self._owner(loc, owners)
            if form is None:
                self.non_field_errors.append(f"{'.'.join(map(str, loc)) or 'spec'}: {message}")
            else:
                form.add_error(field, message)

    def _owner(
        self, loc: tuple[Any, ...], owners: dict[tuple[str, str], ScopeForm]
    ) -> tuple[forms.Form | None, str | None]:
        if loc[:1] == ("description",):
            return self.head, "description"
        if len(loc) >= 2 and loc[0] == "global" and loc[1] in self.global_form.fields:
            return self.global_form, str(loc[1])
        if len(loc) >= 3 and (owner := owners.get((str(loc[0]), str(loc[1])))) and loc[2] in owner.fields:
            return owner, str(loc[2])
        if len(loc) == 2 and (owner := owners.get((str(loc[0]), str(loc[1])))):
            return owner, None
        return None, None


class BreachError(Exception):
    """The proposal envelope's refusal, carried as the cause of the ValidationError the form shows."""

    def __init__(self, breaches: list[Breach]) -> None:
        super().__init__(breaches)
        self.breaches = breaches


def _breach_loc(breach: Breach) -> tuple[str, ...]:
    # Breach scopes are the check's: "global", "strategy:<key>", "symbol:<SYM>".
    kind, _, key = breach.scope.partition(":")
    section = {"strategy": "strategies", "symbol": "symbols"}.get(kind)
    return (kind, breach.field) if section is None else (section, key, breach.field)


def _initial(rules: LimitSet | None) -> dict[str, Any]:
    if rules is None:
        return {}
    out: dict[str, Any] = {}
    for name in type(rules).model_fields:
        value = getattr(rules, name)
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, Enum):
            out[name] = value.value
        else:
            out[name] = value
    return out


def _count(data: Any, name: str, fallback: int) -> int:
    try:
        return max(0, int(data.get(name, fallback)))
    except (TypeError, ValueError):
        return fallback


def parse_with_check(raw: Any, proposer: Any, active: PolicyVersion | None) -> PolicySpec:
    """The one validation both admin views submit through: the schema (and size) by `parse_spec`, then, for someone
    who may not approve, the proposal envelope against the active version. `services.propose` checks both again."""
    spec = parse_spec(raw)
    found = extensions.proposal_breaches(proposer, spec, active) if proposer is not None else []
    if found:
        raise ValidationError(f"OUTSIDE_ENVELOPE: {extensions.describe(found)}") from BreachError(found)
    return spec
