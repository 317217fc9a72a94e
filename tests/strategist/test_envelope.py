"""The envelope as officers and the Strategist meet it: seeded from the officers' baseline on first run (and admin
saying so), never past that baseline for what it leaves open, and the narrower auto-approval envelope, all
against the real database, Redis and the local chat-completions server."""

import pytest

from deploy.fake_openai import Step, answer
from policies import services
from policies.models import Status
from strategist import cycle as cycles
from strategist.models import Outcome, SettingsChange, StrategistSettings
from strategist.triggers import SCHEDULE, Trigger
from tests.factories import make_spec
from tests.strategist.helpers import BASE_SPEC, llm_config, regime

pytestmark = pytest.mark.django_db(transaction=True)
SETTINGS_URL = "/admin/strategist/strategistsettings/1/change/"


def run(redis_client, server=None):
    config = llm_config(server) if server is not None else None
    trigger = Trigger(SCHEDULE, {}, verified=True)  # started in this process
    return cycles.run_cycle(trigger, client=redis_client, llm_config=config, use_env_llm=False)


def allow_auto_approval(officer) -> StrategistSettings:
    row = StrategistSettings.current()
    row.auto_approve_tightening, row.auto_approve_authorised_by = True, officer
    row.save()
    return row


# -- seeding ------------------------------------------------------------------------------------------------------
def test_an_empty_envelope_is_seeded_from_the_officers_baseline_once_a_policy_is_active(strategist_stack, users):
    assert StrategistSettings.current().envelope_is_empty()  # nothing active yet: nothing to seed from
    v1 = services.propose(spec=make_spec(**BASE_SPEC).model_dump(mode="json", by_alias=True), by=users["officer1"])
    services.approve(v1, by=users["officer2"])
    services.activate(v1, by=users["officer2"])

    row = StrategistSettings.current()
    assert row.seeded_from_version == v1.version and row.awaiting_review
    envelope = row.envelope()
    assert envelope.max_order_notional_usd == 20_000 and envelope.max_drawdown_pct == 0.2
    assert envelope.min_confidence_floor == 0.5 and envelope.max_leverage is None  # unset in the baseline

    looser = make_spec(**{**BASE_SPEC, "max_order_notional_usd": 40_000}).model_dump(mode="json", by_alias=True)
    v2 = services.propose(spec=looser, by=users["officer1"])  # officers are not bound by it
    services.approve(v2, by=users["officer2"])
    services.activate(v2, by=users["officer2"])
    assert StrategistSettings.current().max_order_notional_usd == 20_000  # seeded once, never again


def test_admin_says_the_envelope_was_seeded_until_an_officer_saves_it(browser, active_policy):
    officer = browser("officer1")
    page = officer.get(SETTINGS_URL).content.decode()
    assert f"seeded on first run from v{active_policy.version}, the officers&#x27; baseline" in page
    assert "Review it, and save to make it yours" in page
    values = {
        "enabled": "on",
        "max_order_notional_usd": "25000",
        "max_drawdown_pct": "0.2",
        "min_confidence_floor": "0.5",
        "auto_approve_min_fraction": "0.5",
        "auto_approve_max_min_confidence": "0.9",
        "auto_approve_states": ["reducing"],
        "reason": "reviewed the seeded envelope",
    }
    assert officer.post(SETTINGS_URL, values).status_code == 302
    row = StrategistSettings.current()
    assert not row.awaiting_review and row.max_order_notional_usd == 25_000
    [change] = SettingsChange.objects.all()
    assert change.before["max_order_notional_usd"] == 20_000 and change.after["max_order_notional_usd"] == 25_000
    assert "save to make it yours" not in officer.get(SETTINGS_URL).content.decode()


def test_an_envelope_an_officer_set_is_never_overwritten(strategist_stack, users, browser):
    row = StrategistSettings.current()
    row.max_leverage, row.updated_by = 3, users["officer1"]
    row.save()
    v1 = services.propose(spec=make_spec(**BASE_SPEC).model_dump(mode="json", by_alias=True), by=users["officer1"])
    services.approve(v1, by=users["officer2"])
    services.activate(v1, by=users["officer2"])
    row = StrategistSettings.current()
    assert row.seeded_at is None and row.max_leverage == 3 and row.max_order_notional_usd is None


def test_the_auto_approval_envelope_is_edited_in_admin_and_checked(browser):
    officer = browser("officer1")
    bad = {
        "enabled": "on",
        "auto_approve_min_fraction": "0",
        "auto_approve_max_min_confidence": "0.9",
        "reason": "x",
    }
    page = officer.post(SETTINGS_URL, bad)
    assert page.status_code == 200 and "not a valid envelope" in page.content.decode()
    good = {**bad, "auto_approve_min_fraction": "0.25", "auto_approve_states": ["reducing", "halted"]}
    assert officer.post(SETTINGS_URL, good).status_code == 302
    auto = StrategistSettings.current().auto_envelope()
    assert auto.min_fraction_of_baseline == 0.25 and {s.value for s in auto.states} == {"reducing", "halted"}


# -- the Strategist meets the baseline ----------------------------------------------------------------------------
def test_the_strategist_cannot_loosen_past_the_baseline(active_policy, redis_client, fake_llm, users):
    base = make_spec(**{**BASE_SPEC, "denied_symbols": ["LUNAUSDT"], "require_stop_loss": True})
    v2 = services.propose(spec=base.model_dump(mode="json", by_alias=True), by=users["officer1"])
    services.approve(v2, by=users["officer2"])
    services.activate(v2, by=users["officer2"])
    loosen = [
        {"scope": "global", "field": "denied_symbols", "value": []},
        {"scope": "global", "field": "require_stop_loss", "value": None},
    ]
    fake_llm.then(Step(content=answer(rationale="LUNA looks fine again", changes=loosen)))
    cycle = run(redis_client, fake_llm)
    assert cycle.outcome == Outcome.OUTSIDE_ENVELOPE and cycle.proposal.status == Status.REJECTED
    reason = cycle.proposal.decision_reason
    assert "global.denied_symbols: denied_symbols [] is looser than the officers' baseline ([LUNAUSDT])" in reason
    assert "global.require_stop_loss" in reason


# -- auto-approval ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ([{"scope": "global", "field": "trading_state", "value": "halted"}], "global trading state"),
        ([{"scope": "global", "field": "allowed_symbols", "value": []}], "emptying an allow list"),
        ([{"scope": "global", "field": "allowed_symbols", "value": ["BTCUSDT"]}], "shrinking"),
        ([{"scope": "global", "field": "max_order_notional_usd", "value": 1.0}], "below 0.5 of the officers'"),
        ([{"scope": "symbol", "key": "ETHUSDT", "field": "trading_state", "value": "halted"}], "auto-approval env"),
    ],
    ids=["global-halt", "empty-allow-list", "shrunk-allow-list", "deep-cut", "symbol-halt"],
)
def test_auto_approval_never_covers_what_could_lock_the_fleet_out(
    active_policy, redis_client, fake_llm, users, changes, why
):
    base = make_spec(**{**BASE_SPEC, "allowed_symbols": ["BTCUSDT", "ETHUSDT"]})
    v2 = services.propose(spec=base.model_dump(mode="json", by_alias=True), by=users["officer1"])
    services.approve(v2, by=users["officer2"])
    services.activate(v2, by=users["officer2"])
    allow_auto_approval(users["officer2"])
    fake_llm.then(Step(content=answer(rationale="the data said so", changes=changes)))
    cycle = run(redis_client, fake_llm)
    assert cycle.outcome == Outcome.PROPOSED and cycle.proposal.status == Status.PROPOSED  # a person decides
    validation = cycle.thought["validation"]
    assert validation["only_tightens"] is True and validation["envelope"] == "inside"
    assert any(why in problem for problem in validation["auto_approval"]), validation["auto_approval"]


def test_auto_approval_covers_a_moderate_tightening_and_not_a_deep_one(active_policy, redis_client, users):
    allow_auto_approval(users["officer2"])
    regime(redis_client, "BTCUSDT", 0.07)  # volatile: half the officers' notional
    moderate = run(redis_client)
    assert moderate.outcome == Outcome.AUTO_APPROVED and moderate.thought["validation"]["auto_approval"] == "eligible"
    regime(redis_client, "BTCUSDT", 0.2)  # extreme: a quarter, and reducing
    deep = run(redis_client)
    assert deep.outcome == Outcome.PROPOSED and deep.proposal.status == Status.PROPOSED
    assert deep.thought["validation"]["auto_approval"] == [
        "symbol:BTCUSDT.max_order_notional_usd: 5000 is below 0.5 of the officers' baseline (20000)"
    ]
