"""The admin's propose page: a form per scope and field, generated from the PolicySpec models, that proposes
exactly what was entered; its problems beside their fields; the JSON view through the same validation."""

from typing import Any

from cio_kernel.policy.spec import GlobalRules, PolicySpec, StrategyRules, SymbolRules
from policies.models import PolicyVersion, compact_spec, parse_spec
from policies.spec_form import PolicyFieldsForm, scope_form

ADD = "/admin/policies/policyversion/add/"


def _as_posted(page: Any) -> dict[str, Any]:
    """What a browser would send back for the page as rendered (every input with its shown value)."""
    return _shown(page.context["form"])


def _shown(whole: PolicyFieldsForm) -> dict[str, Any]:
    posted: dict[str, Any] = {"view": "fields"}
    for form in whole.all_forms():
        for field in form:
            value = field.value()
            posted[field.html_name] = "" if value is None else field.field.prepare_value(value)
    return posted


def test_the_form_has_an_input_for_every_field_of_every_scope():
    assert set(scope_form(GlobalRules).base_fields) == set(GlobalRules.model_fields)
    for model in (StrategyRules, SymbolRules):
        assert set(scope_form(model).base_fields) == {"key", "remove", *model.model_fields}


def test_the_per_field_form_proposes_exactly_what_was_entered(browser, active_v1):
    officer = browser("officer1")
    posted = _as_posted(officer.get(ADD))
    posted.update({
        "rationale": "calmer week",
        "description": "per-field",
        "global-max_order_notional_usd": "900",
        "global-denied_symbols": "XRPUSDT, DOGEUSDT",
        "global-max_intent_age_s": "",  # may be unset: no age limit
        "global-max_clock_skew_s": "",  # may not: its default
        "global-require_identity_subject": "true",
        "strategy-0-key": "alpha",
        "strategy-0-max_leverage": "3",
        "strategy-0-allowed_actions": "sell close",
        "symbol-0-key": "BTCUSDT",
        "symbol-0-max_order_quantity": "0.5",
        "symbol-0-trading_state": "reducing",
        "symbol-0-allowed_order_types": "[]",
    })  # fmt: skip
    response = officer.post(ADD, posted)
    assert response.status_code == 302, [f.errors for f in response.context["form"].all_forms()]
    expected = PolicySpec.parse({
        "description": "per-field",
        "global": {
            "min_confidence": 0.5,  # untouched, from the active policy
            "max_order_notional_usd": 900.0,
            "denied_symbols": ["DOGEUSDT", "XRPUSDT"],
            "max_intent_age_s": None,
            "require_identity_subject": True,
        },
        "strategies": {"alpha": {"max_leverage": 3, "allowed_actions": ["close", "sell"]}},
        "symbols": {"BTCUSDT": {"max_order_quantity": 0.5, "trading_state": "reducing", "allowed_order_types": []}},
    })  # fmt: skip
    assert PolicyVersion.objects.get(version=2).spec == compact_spec(expected)


def test_problems_show_beside_their_fields_and_nothing_spurious_above(browser, active_v1):
    officer = browser("officer1")
    posted = _as_posted(officer.get(ADD))
    posted.update({"rationale": "x", "global-min_confidence": "7", "symbol-0-key": "BTCUSDT"})
    posted.update({"symbol-0-max_leverage": "0", "strategy-0-max_leverage": "2"})  # a strategy without its key
    form = officer.post(ADD, posted).context["form"]
    assert form.global_form.errors == {"min_confidence": ["Input should be less than or equal to 1"]}
    assert form.sections["strategies"][0].errors == {"key": ["give the strategy's key, or tick remove"]}
    form = officer.post(ADD, {**posted, "strategy-0-max_leverage": ""}).context["form"]
    assert form.sections["symbols"][0].errors == {"max_leverage": ["Input should be greater than 0"]}
    assert form.non_field_errors == [] and PolicyVersion.objects.count() == 1


def test_a_blank_or_double_encoded_json_spec_says_so_and_only_so(browser, active_v1):
    """Regression: a spec that failed its own field also drew "spec: Input should be an object" from validating
    the form's never-filled model instance."""
    officer = browser("officer1")
    blank = officer.post(ADD, {"view": "json", "spec": "", "rationale": "x"})
    assert blank.context["form"].errors == {"spec": ["This field is required."]}
    quoted = officer.post(ADD, {"view": "json", "spec": '"{\\"global\\": {}}"', "rationale": "x"})
    assert quoted.context["form"].errors == {
        "spec": ["the policy is a JSON object ({…}), not a string: is it quoted twice?"]
    }
    assert "Input should be an object" not in quoted.content.decode()


def test_a_scope_is_removed_by_its_box_and_two_sections_may_not_name_one_scope():
    active = PolicySpec.parse({"strategies": {"alpha": {"max_leverage": 3}}, "symbols": {"BTCUSDT": {}}})
    posted = _shown(PolicyFieldsForm(initial=active, check=parse_spec))
    posted.update({"rationale": "x", "strategy-0-remove": "on", "symbol-1-key": "BTCUSDT"})
    twice = PolicyFieldsForm(posted, initial=active, check=parse_spec)
    assert not twice.is_valid()
    assert twice.sections["symbols"][1].errors == {"key": ["BTCUSDT is named by another section too"]}
    posted["symbol-1-key"] = ""
    removed = PolicyFieldsForm(posted, initial=active, check=parse_spec)
    assert removed.is_valid() and removed.cleaned == compact_spec(PolicySpec.parse({"symbols": {"BTCUSDT": {}}}))


def test_the_envelope_refuses_an_agent_beside_the_field_it_breaches(browser, active_v1):
    agent = browser("agent")
    posted = {**_as_posted(agent.get(ADD)), "rationale": "x", "global-min_confidence": "0.1"}
    form = agent.post(ADD, posted).context["form"]
    assert form.global_form.errors == {
        "min_confidence": ["OUTSIDE_ENVELOPE: min_confidence 0.1 is below the floor 0.5"]
    }
    assert PolicyVersion.objects.count() == 1
