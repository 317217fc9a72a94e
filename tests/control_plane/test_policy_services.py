"""The policy lifecycle in the service layer, against a real database, Redis and NATS."""

import threading

import pytest
from django.db import connection, transaction

from cio_kernel.policy.document import policy_checksum
from core import errors
from policies import live, services
from policies.models import PolicyEvent, PolicyVersion, ProposerKind, Status
from tests.control_plane.helpers import redis_policy
from tests.factories import make_spec


def _spec(**rules):
    return make_spec(**rules).model_dump(mode="json", by_alias=True)


def test_database_backend_is_the_one_asked_for(db):
    import os

    expected = "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    assert connection.vendor == expected


def test_four_eyes_lifecycle_writes_redis(active_v1, users, redis_client):
    assert active_v1.status == Status.ACTIVE and active_v1.version == 1
    assert active_v1.activated_by == users["officer2"] and active_v1.proposed_by == users["officer1"]
    document = redis_policy(redis_client)
    assert document is not None and document.version == 1
    assert document.checksum == active_v1.checksum == policy_checksum(active_v1.parsed_spec)
    assert document.activated_by == "officer2"
    kinds = list(PolicyEvent.objects.filter(policy=active_v1).order_by("id").values_list("kind", flat=True))
    assert kinds == ["proposed", "approved", "activated"]


def test_proposer_cannot_approve_their_own_version(stack, users):
    policy = services.propose(spec=_spec(), by=users["officer1"])
    with pytest.raises(errors.FourEyesError):
        services.approve(policy, by=users["officer1"])
    policy.refresh_from_db()
    assert policy.status == Status.PROPOSED


@pytest.mark.parametrize(
    ("who", "action"),
    [("viewer", "propose"), ("agent", "approve"), ("agent", "activate"), ("nobody", "propose"), ("viewer", "approve")],
)
def test_roles_are_enforced_in_the_service_layer(stack, users, who, action):
    policy = services.propose(spec=_spec(), by=users["officer1"])
    if action == "activate":
        services.approve(policy, by=users["officer2"])
    attempt = {
        "propose": lambda: services.propose(spec=_spec(), by=users[who]),
        "approve": lambda: services.approve(policy, by=users[who]),
        "activate": lambda: services.activate(policy, by=users[who]),
    }[action]
    with pytest.raises(errors.PermissionDeniedError):
        attempt()


def test_agent_proposals_are_marked_as_agent(stack, users):
    policy = services.propose(spec=_spec(), by=users["agent"], thought_id="thought-42", rationale="volatility up")
    assert policy.proposer_kind == "agent" and policy.thought_id == "thought-42"


def test_versions_are_immutable_after_proposal(stack, users):
    policy = services.propose(spec=_spec(), by=users["officer1"])
    policy.spec = _spec(min_confidence=0.99)
    with pytest.raises(Exception, match="immutable"):
        policy.save()


def test_invalid_spec_is_refused_with_every_problem(stack, users):
    with pytest.raises(errors.SpecInvalidError) as info:
        services.propose(
            spec={"global": {"min_confidence": 3, "max_order_quantity": -1, "typo": 1}}, by=users["officer1"]
        )
    message = str(info.value)
    assert "min_confidence" in message and "max_order_quantity" in message and "typo" in message


def test_only_approved_versions_activate_and_only_proposed_ones_are_decided(active_v1, users):
    with pytest.raises(errors.InvalidTransitionError):
        services.approve(active_v1, by=users["officer1"])
    proposed = services.propose(spec=_spec(), by=users["officer1"])
    with pytest.raises(errors.InvalidTransitionError):
        services.activate(proposed, by=users["officer2"])
    services.reject(proposed, by=users["officer2"], reason="too loose")
    proposed.refresh_from_db()
    assert proposed.status == Status.REJECTED and proposed.decision_reason == "too loose"


def test_activation_supersedes_the_previous_version(active_v1, users, redis_client):
    v2 = services.propose(spec=_spec(min_confidence=0.7), by=users["officer2"])
    services.approve(v2, by=users["officer1"])
    services.activate(v2, by=users["officer1"])
    active_v1.refresh_from_db()
    assert active_v1.status == Status.SUPERSEDED and active_v1.superseded_at is not None
    assert PolicyVersion.objects.filter(status=Status.ACTIVE).get() == v2
    assert redis_policy(redis_client).version == 2


def test_activation_fails_loudly_when_redis_is_down(active_v1, users, redis_proc, redis_client):
    v2 = services.propose(spec=_spec(), by=users["officer1"])
    services.approve(v2, by=users["officer2"])
    redis_proc.stop()
    with pytest.raises(errors.ActivationFailedError, match="Redis"):
        services.activate(v2, by=users["officer2"])
    v2.refresh_from_db()
    assert v2.status == Status.APPROVED  # the database does not claim it is active
    assert PolicyVersion.objects.get(status=Status.ACTIVE) == active_v1
    assert PolicyEvent.objects.filter(policy=v2, kind="activation_failed").exists()


def test_activation_fails_loudly_when_nats_is_down(active_v1, users, nats_proc, redis_client):
    v2 = services.propose(spec=_spec(), by=users["officer1"])
    services.approve(v2, by=users["officer2"])
    nats_proc.stop()
    with pytest.raises(errors.ActivationFailedError, match="NATS"):
        services.activate(v2, by=users["officer2"])
    v2.refresh_from_db()
    assert v2.status == Status.APPROVED
    assert redis_policy(redis_client).version == 1  # nothing was written before NATS was known to be up


def test_an_older_approved_version_cannot_overwrite_a_newer_active_one(active_v1, users, redis_client):
    v2 = services.propose(spec=_spec(), by=users["officer1"])
    v3 = services.propose(spec=_spec(min_confidence=0.8), by=users["officer1"])
    services.approve(v2, by=users["officer2"])
    services.approve(v3, by=users["officer2"])
    services.activate(v3, by=users["officer2"])
    with pytest.raises(errors.InvalidTransitionError, match="v3"):
        services.activate(v2, by=users["officer2"])
    assert redis_policy(redis_client).version == 3
    assert PolicyVersion.objects.get(status=Status.ACTIVE).version == 3


def test_rollback_reactivates_an_earlier_spec_as_a_new_version(active_v1, users, redis_client):
    v2 = services.propose(spec=_spec(min_confidence=0.9), by=users["officer1"])
    services.approve(v2, by=users["officer2"])
    services.activate(v2, by=users["officer2"])
    restored = services.rollback(active_v1, by=users["officer1"], reason="v2 rejects everything")
    assert restored.version == 3 and restored.status == Status.ACTIVE
    assert restored.checksum == active_v1.checksum
    assert redis_policy(redis_client).version == 3
    assert PolicyEvent.objects.filter(policy=restored, kind="rolled_back").exists()


def test_kill_switch_tightening_and_release_rules(active_v1, users, redis_client):
    halted, _ = services.set_trading_state(scope="global", state="halted", by=users["agent"], reason="anomaly")
    assert halted.parsed_spec.global_rules.trading_state == "halted"
    assert redis_policy(redis_client).spec.global_rules.trading_state == "halted"
    with pytest.raises(errors.PermissionDeniedError):
        services.set_trading_state(scope="global", state="active", by=users["agent"], reason="all good")
    with pytest.raises(errors.PermissionDeniedError):
        services.set_trading_state(scope="symbol", key="BTCUSDT", state="halted", by=users["viewer"], reason="x")
    request, _ = services.set_trading_state(scope="global", state="active", by=users["officer1"], reason="resolved")
    assert request.status == Status.PROPOSED  # a global release takes a second officer (test_global_release.py)
    released, _ = services.set_trading_state(scope="global", state="active", by=users["officer2"], reason="agreed")
    assert released.pk == request.pk and released.parsed_spec.global_rules.trading_state == "active"
    event = PolicyEvent.objects.get(policy=released, kind="trading_state")
    assert event.detail["from"] == "halted" and event.detail["to"] == "active" and event.reason == "agreed"


def test_kill_switch_per_strategy_and_symbol(active_v1, users):
    policy, _ = services.set_trading_state(
        scope="strategy", key="Iceberg Order Detector", state="reducing", by=users["officer1"], reason="drift"
    )
    policy, _ = services.set_trading_state(
        scope="symbol", key="DOGEUSDT", state="halted", by=users["officer1"], reason="delisting"
    )
    spec = policy.parsed_spec
    assert spec.strategies["iceberg_order_detector"].trading_state == "reducing"  # the policy holds keys
    assert spec.symbols["DOGEUSDT"].trading_state == "halted"
    assert spec.global_rules.min_confidence == 0.5  # the rest of the policy is untouched


def test_a_kill_switch_on_another_spelling_of_a_strategy_halts_that_strategy(active_v1, users):
    """Other case, other separators: one strategy, one scope, one halt — never a second scope or a 500."""
    services.set_trading_state(
        scope="strategy", key="iceberg_order_detector", state="reducing", by=users["officer1"], reason="drift"
    )
    halted, created = services.set_trading_state(
        scope="strategy", key="ICEBERG-Order.Detector", state="halted", by=users["officer1"], reason="worse"
    )
    assert created and set(halted.parsed_spec.strategies) == {"iceberg_order_detector"}
    assert halted.parsed_spec.strategies["iceberg_order_detector"].trading_state == "halted"
    again, created = services.set_trading_state(
        scope="strategy", key="Iceberg Order Detector", state="halted", by=users["agent"], reason="again"
    )
    assert not created and again.version == halted.version  # already halted under that key


@pytest.mark.parametrize(
    ("key", "hint"), [("dogeusdt", "DOGEUSDT"), ("DOGE/USDT", "DOGEUSDT"), ("DOGEUSDT\n", "DOGEUSDT")]
)
def test_a_kill_switch_on_a_misspelt_symbol_says_which_symbol_was_meant(active_v1, users, key, hint):
    before = PolicyVersion.objects.count()
    with pytest.raises(errors.SpecInvalidError, match=hint):
        services.set_trading_state(scope="symbol", key=key, state="halted", by=users["officer1"], reason="x")
    assert PolicyVersion.objects.count() == before


@pytest.mark.parametrize("key", ["mоmentum", "momentum\n", "a/b", "---"])
def test_a_kill_switch_on_something_that_is_no_strategy_is_refused_not_a_500(active_v1, users, key):
    with pytest.raises(errors.SpecInvalidError, match="strategy"):
        services.set_trading_state(scope="strategy", key=key, state="halted", by=users["officer1"], reason="x")


def test_halting_a_strategy_the_policy_does_not_admit_changes_nothing_and_admitting_it_is_a_release(active_v1, users):
    spec = active_v1.parsed_spec.model_dump(mode="json", by_alias=True)
    spec["global"]["only_listed_strategies"] = True
    listed = services.propose(spec=spec, by=users["officer1"])
    services.approve(listed, by=users["officer2"])
    services.activate(listed, by=users["officer1"])
    same, created = services.set_trading_state(
        scope="strategy", key="rogue-bot", state="halted", by=users["agent"], reason="stop it"
    )
    assert not created and "rogue_bot" not in same.parsed_spec.strategies  # refused already, stricter than halted
    with pytest.raises(errors.PermissionDeniedError):  # anything else would admit it: an officer's call
        services.set_trading_state(scope="strategy", key="rogue-bot", state="reducing", by=users["agent"], reason="x")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scope": "galaxy", "state": "halted", "reason": "x"}, "scope"),
        ({"scope": "symbol", "state": "halted", "reason": "x"}, "key"),
        ({"scope": "global", "state": "paused", "reason": "x"}, "state"),
        ({"scope": "global", "state": "halted", "reason": " "}, "reason"),
    ],
)
def test_kill_switch_input_errors(active_v1, users, kwargs, match):
    with pytest.raises(errors.SpecInvalidError, match=match):
        services.set_trading_state(by=users["officer1"], **kwargs)


@pytest.mark.django_db(transaction=True)
def test_concurrent_activations_leave_the_higher_version_active(stack, users, redis_client):
    proposed = [services.propose(spec=_spec(min_confidence=0.1 * i), by=users["officer1"]) for i in range(1, 4)]
    for policy in proposed:
        services.approve(policy, by=users["officer2"])
    barrier = threading.Barrier(len(proposed))
    outcomes: dict[int, str] = {}

    def activate(policy: PolicyVersion) -> None:
        barrier.wait()
        try:
            services.activate(policy, by=users["officer2"])
            outcomes[policy.version] = "active"
        except errors.InvalidTransitionError:
            outcomes[policy.version] = "refused"
        finally:
            connection.close()

    threads = [threading.Thread(target=activate, args=(p,)) for p in proposed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert redis_policy(redis_client).version == 3
    assert PolicyVersion.objects.get(status=Status.ACTIVE).version == 3
    assert outcomes[3] == "active"


def test_the_first_policy_is_seeded_through_the_activation_path(stack, users, redis_client):
    seeded = services.seed_first_policy(spec=_spec(), by=users["officer1"], rationale="first run")
    assert seeded is not None and seeded.status == Status.ACTIVE and seeded.version == 1
    document = redis_policy(redis_client)
    assert document is not None and document.version == 1 and document.checksum == seeded.checksum
    assert document.verified_by(live.policy_verifier())
    kinds = list(PolicyEvent.objects.filter(policy=seeded).order_by("id").values_list("kind", flat=True))
    assert kinds == ["proposed", "activated"]
    # A second run, or a history that exists, is left alone.
    assert services.seed_first_policy(spec=_spec(min_confidence=0.9), by=users["officer1"], rationale="x") is None
    assert PolicyVersion.objects.count() == 1 and redis_policy(redis_client).version == 1


def test_seeding_adopts_what_redis_already_runs_instead_of_overwriting_it(active_v1, users, redis_client):
    PolicyEvent.objects.all().delete()
    PolicyVersion.objects.all().delete()  # a fresh database beside a Redis that already runs v1
    assert services.seed_first_policy(spec=_spec(min_confidence=0.9), by=users["officer1"], rationale="x") is None
    adopted = PolicyVersion.objects.get()
    assert adopted.version == 1 and adopted.status == Status.ACTIVE and adopted.checksum == active_v1.checksum
    assert redis_policy(redis_client).checksum == active_v1.checksum


def test_seeding_with_redis_down_fails_and_is_recorded(stack, users, redis_proc):
    redis_proc.stop()
    with pytest.raises(errors.ActivationFailedError, match="Redis"):
        services.seed_first_policy(spec=_spec(), by=users["officer1"], rationale="first run")
    assert not PolicyVersion.objects.exists()
    failure = PolicyEvent.objects.get(kind="activation_failed")
    assert failure.detail == {"operation": "seed"}


def test_seeding_refuses_an_invalid_spec(stack, users):
    with pytest.raises(errors.SpecInvalidError):
        services.seed_first_policy(
            spec={"schema_version": 1, "global": {"limits": {"min_confidence": 7}}}, by=users["officer1"], rationale="x"
        )
    assert not PolicyVersion.objects.exists()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_amendment_waits_for_a_decision_holding_the_row_then_leaves_the_decided_spec_alone(active_v1, users):
    from strategist.cycle import strategist_user

    strategist = strategist_user()
    proposal = services.propose(spec=_spec(min_confidence=0.6), by=strategist, kind=ProposerKind.STRATEGIST)
    locked, answers = threading.Event(), {}

    def amend() -> None:
        locked.wait(30)
        try:
            answers["amended"] = services.amend(proposal, spec=_spec(min_confidence=0.7), by=strategist, rationale="2")
        except Exception as exc:  # any other answer fails the test
            answers["amended"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=amend)
    thread.start()
    with transaction.atomic():  # an officer's decision, holding the version's row lock while the amendment comes
        PolicyVersion.objects.select_for_update().get(pk=proposal.pk)
        locked.set()
        thread.join(0.5)  # (only gives the amendment time to reach the lock; nothing is asserted about time)
        services.approve(proposal, by=users["officer1"], reason="as read")
    thread.join(30)
    assert answers == {"amended": None}  # it found the version decided: not amendable, a new version instead
    approved = PolicyVersion.objects.get(pk=proposal.pk)
    assert approved.status == Status.APPROVED and approved.checksum == proposal.checksum
    assert not PolicyEvent.objects.filter(kind=PolicyEvent.Kind.AMENDED).exists()
