"""A reasoning cycle end to end, in process, against the real database, Redis and NATS: what it proposes, how,
and what it leaves behind (the cycle row, the thought in the audit store, the version's link to it)."""

import pytest

from audit.store import get_store
from core.errors import InvalidTransitionError
from policies import services
from policies.models import PolicyEvent, PolicyVersion, ProposerKind, Status
from strategist import cycle as cycles
from strategist.models import Cycle, Outcome, StrategistSettings
from strategist.triggers import MANUAL, SCHEDULE, Trigger
from tests.factories import make_spec
from tests.strategist.helpers import BASE_SPEC, portfolio, regime

pytestmark = pytest.mark.django_db(transaction=True)


def run(redis_client, kind=SCHEDULE, verified=True, **kwargs):
    """A cycle started in this process (trusted code: verified unless the test says otherwise)."""
    return cycles.run_cycle(Trigger(kind, {}, verified=verified), client=redis_client, use_env_llm=False, **kwargs)


def test_rule_brain_proposes_a_tightening_linked_to_its_thought(active_policy, redis_client):
    regime(redis_client, "BTCUSDT", 0.07)  # volatile
    cycle = run(redis_client)

    assert cycle.outcome == Outcome.PROPOSED and cycle.brain == "rules" and cycle.model == "rules-v1"
    proposal = cycle.proposal
    assert proposal.status == Status.PROPOSED and proposal.proposer_kind == ProposerKind.STRATEGIST
    assert proposal.proposed_by.username == "strategist" and proposal.thought_id == cycle.cycle_id
    assert proposal.based_on_id == active_policy.pk
    spec = proposal.parsed_spec
    assert spec.symbols["BTCUSDT"].max_order_notional_usd == 10_000  # half of the officers' 20,000
    assert spec.symbols["BTCUSDT"].max_order_quantity == 1.0  # everything else untouched
    assert "BTCUSDT volatility 7.0% is volatile" in proposal.rationale

    thought = get_store().get_thought(cycle.cycle_id)
    assert thought is not None and Cycle.objects.get(pk=cycle.pk).thought_stored_at is not None
    assert thought.proposed_version == proposal.version and thought.trigger == SCHEDULE and thought.brain == "rules"
    assert thought.trace_id == cycle.trace_id and thought.prompt_hash is None and thought.prompt_tokens == 0
    assert thought.validation["only_tightens"] is True and thought.validation["envelope"] == "inside"
    assert thought.inputs_summary["regime"]["BTCUSDT"]["volatility"] == 0.07
    assert thought.output["changes"] == [
        {"scope": "symbol", "key": "BTCUSDT", "field": "max_order_notional_usd", "value": 10_000.0}
    ]


def test_the_same_conditions_propose_nothing_new(active_policy, redis_client):
    regime(redis_client, "BTCUSDT", 0.07)
    first = run(redis_client)
    again = run(redis_client)
    assert again.outcome == Outcome.DUPLICATE and again.proposal_id == first.proposal_id
    assert PolicyVersion.objects.filter(proposer_kind=ProposerKind.STRATEGIST).count() == 1


def test_quiet_conditions_are_no_change(active_policy, redis_client):
    regime(redis_client, "BTCUSDT", 0.01)
    portfolio(redis_client, drawdown=0.01)
    cycle = run(redis_client)
    assert cycle.outcome == Outcome.NO_CHANGE and cycle.proposal is None
    assert cycle.rationale.startswith("No change")
    assert get_store().get_thought(cycle.cycle_id).proposed_version is None


def test_a_newer_proposal_amends_the_open_one_no_officer_reviewed(active_policy, redis_client, users):
    regime(redis_client, "BTCUSDT", 0.07)
    first = run(redis_client)
    before = PolicyVersion.objects.get(pk=first.proposal_id)
    regime(redis_client, "BTCUSDT", 0.2)  # extreme: a different proposal
    second = run(redis_client)

    assert second.outcome == Outcome.AMENDED and second.proposal_id == first.proposal_id
    assert PolicyVersion.objects.filter(proposer_kind=ProposerKind.STRATEGIST).count() == 1  # one under review
    amended = second.proposal
    assert amended.status == Status.PROPOSED and amended.thought_id == second.cycle_id
    assert amended.proposed_at == before.proposed_at  # waiting since the first: reminders are not postponed
    spec = amended.parsed_spec.symbols["BTCUSDT"]
    assert spec.max_order_notional_usd == 5_000 and spec.trading_state == "reducing"
    assert get_store().get_thought(second.cycle_id).proposed_version == amended.version

    (event,) = PolicyEvent.objects.filter(policy=amended, kind=PolicyEvent.Kind.AMENDED)
    previous = event.detail["previous"]
    assert previous["spec"] == before.spec and previous["checksum"] == before.checksum != amended.checksum
    assert previous["rationale"] == before.rationale and previous["thought_id"] == first.cycle_id
    assert previous["since"] == before.proposed_at.isoformat() and event.detail["thought_id"] == second.cycle_id
    assert event.actor.username == "strategist" and event.reason == amended.rationale

    # An officer who read the first content cannot approve the amended one unseen.
    with pytest.raises(InvalidTransitionError, match="changed since it was shown"):
        services.approve(amended, by=users["officer1"], checksum=before.checksum)
    assert services.approve(amended, by=users["officer1"], checksum=amended.checksum).status == Status.APPROVED


def test_after_an_officers_review_the_next_proposal_is_a_new_version(active_policy, redis_client, users):
    regime(redis_client, "BTCUSDT", 0.07)
    first = run(redis_client)
    services.reject(first.proposal, by=users["officer1"], reason="not now")
    regime(redis_client, "BTCUSDT", 0.2)
    second = run(redis_client)
    assert second.outcome == Outcome.PROPOSED and second.proposal_id != first.proposal_id
    approved = services.approve(second.proposal, by=users["officer1"], reason="fine")
    regime(redis_client, "BTCUSDT", 0.07)
    third = run(redis_client)
    assert third.outcome == Outcome.PROPOSED and third.proposal_id not in (first.proposal_id, second.proposal_id)

    # Neither reviewed version was rewritten, nor decided again.
    rejected, kept = PolicyVersion.objects.get(pk=first.proposal_id), PolicyVersion.objects.get(pk=second.proposal_id)
    assert (rejected.status, rejected.spec, rejected.decision_reason) == (
        Status.REJECTED,
        first.proposal.spec,
        "not now",
    )
    assert (kept.status, kept.spec, kept.checksum) == (Status.APPROVED, approved.spec, approved.checksum)
    assert not PolicyEvent.objects.filter(kind=PolicyEvent.Kind.AMENDED).exists()


def test_a_proposal_on_an_older_active_version_is_superseded_not_amended(active_policy, redis_client, users):
    regime(redis_client, "BTCUSDT", 0.07)
    first = run(redis_client)
    spec = make_spec(**{**BASE_SPEC, "min_confidence": 0.6}).model_dump(mode="json", by_alias=True)
    newer = services.propose(spec=spec, by=users["officer1"])
    services.activate(services.approve(newer, by=users["officer2"]), by=users["officer2"])
    regime(redis_client, "BTCUSDT", 0.2)
    second = run(redis_client)

    first.proposal.refresh_from_db()
    assert second.outcome == Outcome.PROPOSED and second.proposal.based_on_id == newer.pk
    assert first.proposal.status == Status.REJECTED
    assert f"superseded by the Strategist's newer proposal v{second.proposal.version}" in first.proposal.decision_reason


def test_auto_approval_only_for_pure_tightenings_under_an_officers_authority(active_policy, redis_client, users):
    settings_row = StrategistSettings.current()
    settings_row.auto_approve_tightening = True
    settings_row.auto_approve_authorised_by = users["officer2"]
    settings_row.save()
    regime(redis_client, "BTCUSDT", 0.07)
    tightening = run(redis_client)
    assert tightening.outcome == Outcome.AUTO_APPROVED
    approved = tightening.proposal
    # Approved by the rule, not in the officer's name: no person decided it; the event names who enabled the rule.
    assert approved.status == Status.APPROVED and approved.decided_by is None
    assert approved.decision_reason.startswith(f"approved by rule {cycles.AUTO_APPROVAL_RULE}")
    event = PolicyEvent.objects.get(policy=approved, kind=PolicyEvent.Kind.APPROVED)
    assert event.actor is None and event.detail["rule"] == cycles.AUTO_APPROVAL_RULE
    assert event.detail["rule_enabled_by"] == "officer2" and event.detail["unattended"] is True
    assert approved.activated_at is None  # activation stays a person's step


def test_an_unverified_cycle_is_never_auto_approved(active_policy, redis_client, users):
    settings_row = StrategistSettings.current()
    settings_row.auto_approve_tightening = True
    settings_row.auto_approve_authorised_by = users["officer2"]
    settings_row.save()
    regime(redis_client, "BTCUSDT", 0.07)
    cycle = run(redis_client, verified=False)
    assert cycle.outcome == Outcome.PROPOSED and cycle.proposal.status == Status.PROPOSED
    assert cycle.thought["validation"]["auto_approval"] == ["the cycle's trigger is not verified"]
    assert cycle.thought["inputs_summary"]["trigger_verified"] is False


def test_auto_approval_lapses_when_the_officer_loses_the_right(active_policy, redis_client, users):
    settings_row = StrategistSettings.current()
    settings_row.auto_approve_tightening = True
    settings_row.auto_approve_authorised_by = users["officer2"]
    settings_row.save()
    users["officer2"].groups.clear()
    regime(redis_client, "BTCUSDT", 0.07)
    cycle = run(redis_client)
    assert cycle.outcome == Outcome.PROPOSED and cycle.proposal.status == Status.PROPOSED


def test_switched_off_runs_nothing(active_policy, redis_client):
    settings_row = StrategistSettings.current()
    settings_row.enabled = False
    settings_row.save()
    assert run(redis_client) is None
    assert not Cycle.objects.exists()


def test_no_active_policy_is_recorded(strategist_stack, users, redis_client):
    cycle = run(redis_client, kind=MANUAL)
    assert cycle.outcome == Outcome.NO_POLICY and cycle.proposal is None
    assert get_store().get_thought(cycle.cycle_id).validation["outcome"] == Outcome.NO_POLICY
